//! Unit tests of the config loader: good files, and bad ones whose errors name
//! the file, the line, the field and what would be valid.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::units::Limit;

const GOOD: &str = r#"
[[path]]
name = "wan0"
a = "la0"
b = "lb0"
up = { rate = "20mbit", delay = "30ms", jitter = "2ms", loss = "1%", limit = "20ms" }
down = { rate = "50mbit", delay = "30ms" }

[[path]]
name = "wan1"
a = "la1"
b = "lb1"
[path.up]
rate = "10mbit"

[[event]]
at = "2s"
path = "wan1"
action = "cut"

[[event]]
at = "500ms"
path = "wan0"
action = "rate"
direction = "up"
rate = "5mbit"
"#;

fn err(text: &str) -> String {
    parse("lem.toml", text).unwrap_err().to_string()
}

#[test]
fn good_file() {
    let c = parse("lem.toml", GOOD).unwrap();
    assert_eq!(c.paths.len(), 2);
    let p = &c.paths[0];
    assert_eq!(
        (p.name.as_str(), p.a.as_str(), p.b.as_str()),
        ("wan0", "la0", "lb0")
    );
    assert_eq!(p.up.rate, 20_000_000);
    assert_eq!(p.up.delay, 30_000_000);
    assert_eq!(p.up.jitter, 2_000_000);
    assert_eq!(p.up.loss, 0.01);
    assert_eq!(p.up.limit, Some(Limit::Time(20_000_000)));
    assert_eq!(p.down.rate, 50_000_000);
    // A path without [path.down] uses the up settings both ways.
    assert_eq!(c.paths[1].down, c.paths[1].up);
    // Events are sorted by time.
    assert_eq!(c.events[0].at, 500_000_000);
    assert_eq!((c.events[0].path, c.events[0].dirs), (0, Dirs::Up));
    assert_eq!(c.events[0].change, Change::Rate(5_000_000));
    assert_eq!(
        (c.events[1].path, c.events[1].dirs, &c.events[1].change),
        (1, Dirs::Both, &Change::Cut)
    );
}

#[test]
fn bad_values_name_file_line_field_and_syntax() {
    let e = err("[[path]]\nname = \"w\"\na = \"x\"\nb = \"y\"\nup = { rate = \"20mbps\" }\n");
    assert!(e.starts_with("lem.toml:5: [[path]] \"w\" up.rate: "), "{e}");
    assert!(e.contains("kbit, mbit or gbit"), "{e}");

    let e = err("[[path]]\nname = \"w\"\na = \"x\"\nb = \"y\"\n[path.down]\ndelay = 30\n");
    assert!(
        e.contains("down.delay: 30 is a integer: expected a number followed by us, ms or s"),
        "{e}"
    );

    let e = err("[[path]]\nname = \"w\"\na = \"x\"\nb = \"x\"\n");
    assert!(e.contains("two different interfaces"), "{e}");

    let e = err("[[path]]\nname = \"w\"\na = \"x\"\nb = \"y\"\n[path.up]\nrat = \"1mbit\"\n");
    assert!(
        e.starts_with("lem.toml: ") && e.contains("unknown field `rat`"),
        "{e}"
    );

    let e = err("");
    assert!(e.contains("no path"), "{e}");
}

#[test]
fn bad_events() {
    let base = "[[path]]\nname = \"w\"\na = \"x\"\nb = \"y\"\n";
    let e = err(&format!(
        "{base}[[event]]\nat = \"1s\"\npath = \"v\"\naction = \"cut\"\n"
    ));
    assert!(e.contains("no path is named \"v\"; paths: w"), "{e}");
    let e = err(&format!(
        "{base}[[event]]\nat = \"1s\"\npath = \"w\"\naction = \"explode\"\n"
    ));
    assert!(e.contains("expected cut, restore, rate"), "{e}");
    let e = err(&format!(
        "{base}[[event]]\nat = \"1s\"\npath = \"w\"\naction = \"rate\"\n"
    ));
    assert!(e.contains("needs a rate field"), "{e}");
    let e = err(&format!(
        "{base}[[event]]\nat = \"1s\"\npath = \"w\"\naction = \"cut\"\ndirection = \"left\"\n"
    ));
    assert!(
        e.contains("expected up (a to b), down (b to a) or both"),
        "{e}"
    );
}
