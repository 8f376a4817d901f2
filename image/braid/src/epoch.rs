//! Build time for reproducible outputs: `SOURCE_DATE_EPOCH` (reproducible-builds.org),
//! else the time of the checkout's last commit, else 0. No output of braid
//! depends on the clock.

use std::path::Path;

/// Seconds since the epoch to stamp into every output.
pub fn source_date_epoch() -> u64 {
    if let Some(v) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return v;
    }
    let root = crate::workspace::Workspace::discover().root;
    git(&root, &["log", "-1", "--format=%ct"])
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Short commit hash of the checkout, or "unknown".
pub fn revision(root: &Path) -> String {
    git(root, &["rev-parse", "--short=12", "HEAD"])
        .map_or_else(|| "unknown".into(), |s| s.trim().to_string())
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel's KBUILD_BUILD_TIMESTAMP for `epoch`: `date`'s default format in UTC.
pub fn kbuild_timestamp(epoch: u64) -> String {
    let (y, m, d) = civil_from_days((epoch / 86_400) as i64);
    let s = epoch % 86_400;
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {d:2} {:02}:{:02}:{:02} UTC {y}",
        DAYS[((epoch / 86_400) % 7) as usize],
        MONTHS[(m - 1) as usize],
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_match_date() {
        assert_eq!(super::kbuild_timestamp(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(
            super::kbuild_timestamp(1_700_000_000),
            "Tue Nov 14 22:13:20 UTC 2023"
        );
        assert_eq!(
            super::kbuild_timestamp(951_782_400),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
    }
}
