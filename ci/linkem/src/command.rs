//! The changes that can be made to a running link, shared by the scripted
//! `[[event]]` entries of the config file and the control socket, and the
//! parser of the control socket's one-line commands. One vocabulary for both,
//! so a test can script a change or make it live with the same words.

use crate::model::Params;
use crate::units::{self, Limit, Nanos};

/// Which directions of a path a change applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dirs {
    /// a -> b only.
    Up,
    /// b -> a only.
    Down,
    /// Both directions.
    Both,
}

impl Dirs {
    /// Parses `up`, `down` or `both`.
    pub fn parse(s: &str) -> Result<Dirs, String> {
        match s {
            "up" => Ok(Dirs::Up),
            "down" => Ok(Dirs::Down),
            "both" => Ok(Dirs::Both),
            other => Err(format!(
                "{other:?} is not a direction: expected up (a to b), down (b to a) or both"
            )),
        }
    }

    /// Whether direction `dir` (0 = up, 1 = down) is included.
    pub fn includes(self, dir: usize) -> bool {
        matches!(
            (self, dir),
            (Dirs::Both, _) | (Dirs::Up, 0) | (Dirs::Down, 1)
        )
    }
}

/// One change to one direction.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Drop everything queued or in flight, and every arrival until restored.
    Cut,
    /// End a cut.
    Restore,
    /// New rate in bits/s (0 = unlimited).
    Rate(u64),
    /// New one-way delay.
    Delay(Nanos),
    /// New jitter half-width.
    Jitter(Nanos),
    /// New loss probability.
    Loss(f64),
    /// New queue limit.
    Limit(Limit),
}

impl Change {
    /// The parameters after this change, for the changes that are parameters
    /// (`None` for cut and restore).
    pub fn apply(&self, p: &Params) -> Option<Params> {
        let mut p = p.clone();
        match *self {
            Change::Cut | Change::Restore => return None,
            Change::Rate(r) => p.rate = r,
            Change::Delay(d) => p.delay = d,
            Change::Jitter(j) => p.jitter = j,
            Change::Loss(l) => p.loss = l,
            Change::Limit(l) => p.limit = Some(l),
        }
        Some(p)
    }
}

/// A control socket request.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Changes applied, in order, to the named path's directions.
    Apply {
        /// Path name (checked by the caller, which knows the paths).
        path: String,
        /// Which directions.
        dirs: Dirs,
        /// What to change.
        changes: Vec<Change>,
    },
    /// One line of counters per path direction.
    Stats,
    /// The list of commands.
    Help,
}

/// The commands the control socket understands, for `help` and errors.
pub const COMMANDS: &str = "cut PATH [up|down|both] | restore PATH [up|down|both] | rate PATH DIR RATE | \
delay PATH DIR DELAY [JITTER] | jitter PATH DIR JITTER | loss PATH DIR LOSS | limit PATH DIR LIMIT | stats | help";

/// Parses one control line, e.g. `rate wan0 up 20mbit`.
pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let usage = |what: &str| format!("usage: {what}");
    let Some((&verb, args)) = words.split_first() else {
        return Err(format!("empty command; commands: {COMMANDS}"));
    };
    let apply = |path: &str, dirs: Dirs, changes: Vec<Change>| Command::Apply {
        path: path.to_owned(),
        dirs,
        changes,
    };
    match verb {
        "stats" if args.is_empty() => Ok(Command::Stats),
        "help" if args.is_empty() => Ok(Command::Help),
        "stats" | "help" => Err(usage(verb)),
        "cut" | "restore" => {
            let change = if verb == "cut" {
                Change::Cut
            } else {
                Change::Restore
            };
            match *args {
                [path] => Ok(apply(path, Dirs::Both, vec![change])),
                [path, dir] => Ok(apply(path, Dirs::parse(dir)?, vec![change])),
                _ => Err(usage(&format!("{verb} PATH [up|down|both]"))),
            }
        }
        "rate" | "jitter" | "loss" | "limit" => match *args {
            [path, dir, value] => {
                let change = match verb {
                    "rate" => Change::Rate(units::parse_rate(value)?),
                    "jitter" => Change::Jitter(units::parse_duration(value)?),
                    "loss" => Change::Loss(units::parse_loss(value)?),
                    _ => Change::Limit(units::parse_limit(value)?),
                };
                Ok(apply(path, Dirs::parse(dir)?, vec![change]))
            }
            _ => Err(usage(&format!(
                "{verb} PATH up|down|both {}",
                verb.to_ascii_uppercase()
            ))),
        },
        "delay" => match *args {
            [path, dir, delay] => Ok(apply(
                path,
                Dirs::parse(dir)?,
                vec![Change::Delay(units::parse_duration(delay)?)],
            )),
            [path, dir, delay, jitter] => Ok(apply(
                path,
                Dirs::parse(dir)?,
                vec![
                    Change::Delay(units::parse_duration(delay)?),
                    Change::Jitter(units::parse_duration(jitter)?),
                ],
            )),
            _ => Err(usage("delay PATH up|down|both DELAY [JITTER]")),
        },
        other => Err(format!("{other:?} is not a command; commands: {COMMANDS}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse("stats"), Ok(Command::Stats));
        assert_eq!(
            parse("cut wan0"),
            Ok(Command::Apply {
                path: "wan0".into(),
                dirs: Dirs::Both,
                changes: vec![Change::Cut]
            })
        );
        assert_eq!(
            parse(" rate  wan1 up 20mbit\n"),
            Ok(Command::Apply {
                path: "wan1".into(),
                dirs: Dirs::Up,
                changes: vec![Change::Rate(20_000_000)]
            })
        );
        assert_eq!(
            parse("delay w down 30ms 5ms"),
            Ok(Command::Apply {
                path: "w".into(),
                dirs: Dirs::Down,
                changes: vec![Change::Delay(30_000_000), Change::Jitter(5_000_000)]
            })
        );
        assert_eq!(
            parse("loss w both 1%"),
            Ok(Command::Apply {
                path: "w".into(),
                dirs: Dirs::Both,
                changes: vec![Change::Loss(0.01)]
            })
        );
    }

    #[test]
    fn bad_commands_say_what_is_valid() {
        assert!(parse("").unwrap_err().contains("commands: cut"));
        assert!(parse("frobnicate x").unwrap_err().contains("not a command"));
        assert!(parse("rate wan0 up")
            .unwrap_err()
            .contains("usage: rate PATH"));
        assert!(parse("rate wan0 sideways 1mbit")
            .unwrap_err()
            .contains("up (a to b)"));
        assert!(parse("rate wan0 up 20mbps")
            .unwrap_err()
            .contains("kbit, mbit or gbit"));
        assert!(parse("stats now").unwrap_err().contains("usage: stats"));
    }

    #[test]
    fn changes_apply_to_params() {
        let p = Params::default();
        assert_eq!(Change::Rate(5).apply(&p).unwrap().rate, 5);
        assert_eq!(Change::Cut.apply(&p), None);
        assert!(Dirs::Up.includes(0) && !Dirs::Up.includes(1));
        assert!(Dirs::Both.includes(1) && Dirs::Down.includes(1));
    }
}
