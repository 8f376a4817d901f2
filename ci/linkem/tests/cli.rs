//! The command line without root: help text, config errors that name the
//! file, field and valid syntax, unknown interfaces, and the `ctl` client's
//! exit status against a stand-in control socket.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Output};

fn linkem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid-linkem"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `run --config` on `config` and returns (success, output).
fn run_config(config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lem.toml");
    std::fs::write(&file, config).unwrap();
    let o = linkem(&["run", "--config", file.to_str().unwrap()]);
    (o.status.success(), text(&o), file.display().to_string())
}

#[test]
fn help_documents_frame_bytes_and_commands() {
    let o = linkem(&["--help"]);
    assert!(o.status.success());
    let t = text(&o);
    assert!(t.contains("whole Ethernet frame"), "{t}");
    assert!(t.contains("ethtool -K"), "{t}");
    assert!(t.contains("run") && t.contains("ctl"), "{t}");
    let t = text(&linkem(&["ctl", "--help"]));
    assert!(t.contains("rate PATH DIR RATE"), "{t}");
    let t = text(&linkem(&["run", "--help"]));
    assert!(t.contains("--control") && t.contains("--seed"), "{t}");
}

#[test]
fn bad_rate_names_file_line_field_and_syntax() {
    let (ok, t, file) = run_config(
        "[[path]]\nname = \"wan0\"\na = \"la\"\nb = \"lb\"\n[path.up]\nrate = \"20mbps\"\n",
    );
    assert!(!ok);
    assert!(
        t.contains(&format!(
            "{file}:6: [[path]] \"wan0\" up.rate: \"20mbps\" is not a rate"
        )),
        "{t}"
    );
    assert!(t.contains("kbit, mbit or gbit"), "{t}");
}

#[test]
fn unknown_field_and_missing_file() {
    let (ok, t, file) =
        run_config("[[path]]\nname = \"wan0\"\na = \"la\"\nb = \"lb\"\nlatency = \"1ms\"\n");
    assert!(!ok);
    assert!(
        t.contains(&file) && t.contains("unknown field `latency`"),
        "{t}"
    );
    let o = linkem(&["run", "--config", "/nonexistent/lem.toml"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/lem.toml"), "{}", text(&o));
}

#[test]
fn unknown_interface_lists_the_existing_ones() {
    let (ok, t, file) =
        run_config("[[path]]\nname = \"wan0\"\na = \"nosuchif0\"\nb = \"nosuchif1\"\n");
    assert!(!ok);
    assert!(
        t.contains(&format!(
            "{file}: [[path]] \"wan0\" a: interface \"nosuchif0\" does not exist"
        )),
        "{t}"
    );
    assert!(t.contains("interfaces here: ") && t.contains("lo"), "{t}");
}

#[test]
fn bad_event_names_the_paths() {
    let (ok, t, _) = run_config(
        "[[path]]\nname = \"wan0\"\na = \"la\"\nb = \"lb\"\n[[event]]\nat = \"1s\"\npath = \"wan9\"\naction = \"cut\"\n",
    );
    assert!(!ok);
    assert!(t.contains("no path is named \"wan9\"; paths: wan0"), "{t}");
}

/// `ctl` sends one line, prints the reply, and fails on `error:`.
#[test]
fn ctl_exit_status_follows_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        let mut got = Vec::new();
        for reply in [
            "path=wan0 dir=up in_frames=1\nok\n",
            "error: no path is named \"x\"; paths: wan0\n",
        ] {
            let (mut s, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&s).read_line(&mut line).unwrap();
            got.push(line);
            s.write_all(reply.as_bytes()).unwrap();
        }
        got
    });
    let s = sock.to_str().unwrap();
    let o = linkem(&["ctl", s, "stats"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "path=wan0 dir=up in_frames=1\nok\n"
    );
    let o = linkem(&["ctl", s, "cut", "x", "up"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("error: no path"));
    assert_eq!(
        server.join().unwrap(),
        vec!["stats\n".to_owned(), "cut x up\n".to_owned()]
    );
    let o = linkem(&["ctl", "/nonexistent.sock", "stats"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("control socket /nonexistent.sock"),
        "{}",
        text(&o)
    );
}
