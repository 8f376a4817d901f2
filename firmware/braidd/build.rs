//! Records the target triple and build profile, which `braidd --version` prints so
//! that a binary found on a router says what it was built for.
fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=BRAID_TARGET={target}");
    println!("cargo:rustc-env=BRAID_PROFILE={profile}");
    println!("cargo:rerun-if-changed=build.rs");
}
