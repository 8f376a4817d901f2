//! The value syntax shared by the config file and the control commands: rates,
//! durations, loss and queue limits. One parser per kind, each error saying what
//! would be valid, so `rate = "20mbps"` in a file and `rate wan0 20mbps` on the
//! control socket are refused with the same explanation.

use std::fmt;

/// Nanoseconds, on CLOCK_MONOTONIC in the shell.
pub type Nanos = u64;
/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// What a rate looks like, for error messages.
pub const RATE_SYNTAX: &str =
    "a number followed by bit, kbit, mbit or gbit (per second, powers of 1000), e.g. \"20mbit\", or \"unlimited\" (also \"0\")";
/// What a duration looks like, for error messages.
pub const DURATION_SYNTAX: &str =
    "a number followed by us, ms or s, e.g. \"10ms\" or \"1.5s\" (\"0\" needs no unit)";
/// What a loss looks like, for error messages.
pub const LOSS_SYNTAX: &str =
    "a percentage from 0% to 100%, e.g. \"1%\", or a fraction from 0 to 1, e.g. 0.01";
/// What a queue limit looks like, for error messages.
pub const LIMIT_SYNTAX: &str =
    "a duration at the current rate, e.g. \"50ms\", or bytes: a whole number with an optional unit B, KB, KiB, MB or MiB, e.g. \"64KB\" or 65536";

/// Longest duration accepted anywhere (one day): keeps every sum far from overflow.
const MAX_DURATION: Nanos = 86_400 * NANOS_PER_SEC;

/// A bottleneck queue limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// As much as the link drains in this time at its current rate.
    Time(Nanos),
    /// A fixed number of bytes.
    Bytes(u64),
}

/// Splits "20.5mbit" into (20.5, "mbit"); the unit is lower-cased.
fn split_number(s: &str) -> Option<(f64, String)> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    v.is_finite().then(|| (v, unit.trim().to_ascii_lowercase()))
}

/// Parses a rate into bits per second; 0 means unlimited.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a rate: expected {RATE_SYNTAX}");
    let t = s.trim().to_ascii_lowercase();
    if t == "unlimited" {
        return Ok(0);
    }
    let (v, unit) = split_number(&t).ok_or_else(bad)?;
    let mult = match unit.as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "" if v == 0.0 => 1.0,
        _ => return Err(bad()),
    };
    let bits = (v * mult).round();
    if v != 0.0 && bits < 1.0 {
        return Err(format!("{s:?} is below 1 bit/s: expected {RATE_SYNTAX}"));
    }
    if bits > 1e12 {
        return Err(format!("{s:?} is above 1000gbit: expected {RATE_SYNTAX}"));
    }
    Ok(bits as u64)
}

/// Parses a duration into nanoseconds.
pub fn parse_duration(s: &str) -> Result<Nanos, String> {
    let bad = || format!("{s:?} is not a duration: expected {DURATION_SYNTAX}");
    let (v, unit) = split_number(s).ok_or_else(bad)?;
    let mult = match unit.as_str() {
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "" if v == 0.0 => 1.0,
        _ => return Err(bad()),
    };
    let ns = (v * mult).round();
    if ns > MAX_DURATION as f64 {
        return Err(format!(
            "{s:?} is longer than a day: expected {DURATION_SYNTAX}"
        ));
    }
    Ok(ns as Nanos)
}

/// Parses a loss given as text ("1%", "0.01") into a probability.
pub fn parse_loss(s: &str) -> Result<f64, String> {
    let bad = || format!("{s:?} is not a loss: expected {LOSS_SYNTAX}");
    let (v, unit) = split_number(s).ok_or_else(bad)?;
    match unit.as_str() {
        "%" => loss_fraction(v / 100.0).map_err(|_| bad()),
        "" => loss_fraction(v).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Checks a loss given as a number (a fraction).
pub fn loss_fraction(v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a loss: expected {LOSS_SYNTAX}"))
    }
}

/// Parses a queue limit given as text ("50ms", "64KB", "65536").
pub fn parse_limit(s: &str) -> Result<Limit, String> {
    let bad = || format!("{s:?} is not a queue limit: expected {LIMIT_SYNTAX}");
    let (v, unit) = split_number(s).ok_or_else(bad)?;
    let mult: u64 = match unit.as_str() {
        "us" | "ms" | "s" => return parse_duration(s).map(Limit::Time),
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1024,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        _ => return Err(bad()),
    };
    let bytes = v * mult as f64;
    if bytes.fract() != 0.0 || bytes > 1e12 {
        return Err(bad());
    }
    Ok(Limit::Bytes(bytes as u64))
}

/// Displays a rate (bits/s, 0 = unlimited) the way the config writes it.
pub struct RateDisplay(pub u64);

impl fmt::Display for RateDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.pad("unlimited"),
            r => f.pad(&format!("{:.3}mbit", r as f64 / 1e6)),
        }
    }
}

/// Displays nanoseconds as milliseconds with microsecond resolution.
pub struct Ms(pub Nanos);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{:.3}ms", self.0 as f64 / 1e6))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("20mbit"), Ok(20_000_000));
        assert_eq!(parse_rate("1.5Gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("64 kbit"), Ok(64_000));
        assert_eq!(parse_rate("100bit"), Ok(100));
        assert_eq!(parse_rate("unlimited"), Ok(0));
        assert_eq!(parse_rate("0"), Ok(0));
        for bad in [
            "20", "20mbps", "20M", "mbit", "-1mbit", ".5mbit", "0.1bit", "",
        ] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("kbit, mbit or gbit"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10ms"), Ok(10_000_000));
        assert_eq!(parse_duration("250us"), Ok(250_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in ["10", "10 min", "ms", "1e3ms", "2days"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("us, ms or s"), "{bad}: {e}");
        }
        assert!(parse_duration("100000s")
            .unwrap_err()
            .contains("longer than a day"));
    }

    #[test]
    fn losses() {
        assert_eq!(parse_loss("1%"), Ok(0.01));
        assert_eq!(parse_loss("0.05"), Ok(0.05));
        assert_eq!(parse_loss("100%"), Ok(1.0));
        for bad in ["101%", "1.5", "1 percent", "x"] {
            let e = parse_loss(bad).unwrap_err();
            assert!(e.contains("percentage"), "{bad}: {e}");
        }
        assert!(loss_fraction(-0.1).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("50ms"), Ok(Limit::Time(50_000_000)));
        assert_eq!(parse_limit("64KB"), Ok(Limit::Bytes(64_000)));
        assert_eq!(parse_limit("64KiB"), Ok(Limit::Bytes(65_536)));
        assert_eq!(parse_limit("65536"), Ok(Limit::Bytes(65_536)));
        assert_eq!(parse_limit("1.5MB"), Ok(Limit::Bytes(1_500_000)));
        for bad in ["64kbit", "1.5", "x", "10 frames"] {
            let e = parse_limit(bad).unwrap_err();
            assert!(e.contains("KiB"), "{bad}: {e}");
        }
    }

    #[test]
    fn display() {
        assert_eq!(RateDisplay(20_000_000).to_string(), "20.000mbit");
        assert_eq!(RateDisplay(0).to_string(), "unlimited");
        assert_eq!(Ms(1_234_567).to_string(), "1.235ms");
    }
}
