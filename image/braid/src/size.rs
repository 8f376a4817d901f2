//! Byte sizes and addresses as written in data files: an integer (`0x10000`,
//! `65536`) or a string with a binary suffix (`"64k"`, `"16M"`, `"1G"`), the way
//! OpenWrt device files and datasheets write them.

use serde::Deserialize;
use std::fmt;

/// A size or address read from a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Int(u64),
    Str(String),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match RawSize::deserialize(d)? {
            RawSize::Int(n) => Ok(Size(n)),
            RawSize::Str(s) => parse(&s).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `"64k"`, `"16M"`, `"1G"`, `"0x10000"` or `"65536"`.
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let err = || {
        format!("`{s}` is not a size; write an integer, a hex number like \"0x10000\", or a number with k, M or G (\"64k\", \"16M\")")
    };
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(&hex.replace('_', ""), 16).map_err(|_| err());
    }
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(err)
}

impl fmt::Display for Size {
    /// Hex, with a human size where it is a round number of KiB or MiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        write!(f, "{n:#x}")?;
        if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            write!(f, " ({} MiB)", n >> 20)
        } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
            write!(f, " ({} KiB)", n >> 10)
        } else {
            Ok(())
        }
    }
}

/// Formats a byte count for people: `1.23 MiB`, `456.7 KiB`, `12 B`.
pub fn human(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.2} MiB", n as f64 / f64::from(1 << 20))
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse("0x10000"), Ok(0x10000));
        assert_eq!(parse("0xfd_0000"), Ok(0xfd0000));
        assert_eq!(parse("64k"), Ok(65536));
        assert_eq!(parse("16M"), Ok(16 << 20));
        assert_eq!(parse("1G"), Ok(1 << 30));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("16 MB").unwrap_err().contains("is not a size"));
        assert!(parse("k").is_err());
        assert!(parse("99999999999999999999G").is_err());
    }

    #[test]
    fn toml_accepts_integers_and_strings() {
        #[derive(Deserialize)]
        struct T {
            a: Size,
            b: Size,
        }
        let t: T = toml::from_str("a = 0x20000\nb = \"128k\"").unwrap();
        assert_eq!((t.a, t.b), (Size(0x20000), Size(0x20000)));
        let e = toml::from_str::<T>("a = 1\nb = \"lots\"")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`lots` is not a size"), "{e}");
    }

    #[test]
    fn display() {
        assert_eq!(Size(0x10000).to_string(), "0x10000 (64 KiB)");
        assert_eq!(Size(16 << 20).to_string(), "0x1000000 (16 MiB)");
        assert_eq!(Size(0x1234).to_string(), "0x1234");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
