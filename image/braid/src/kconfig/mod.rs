//! Kernel configuration as data: fragments, the resolved `.config`, and the check
//! that every requested symbol survived.
//!
//! Kconfig silently drops a requested symbol whose dependencies are not met, so a
//! merged config can lack MPTCP (or a console driver) without any warning. After
//! `olddefconfig`, [`verify`] compares every requested value with the result, and
//! [`deps::Index`] explains each miss with the dependency that is unmet.

pub mod deps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One requested setting: `CONFIG_NAME=value`, or `# CONFIG_NAME is not set` (n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Symbol name without the `CONFIG_` prefix.
    pub name: String,
    /// Value as written: `y`, `m`, `n`, a number, or a quoted string.
    pub value: String,
}

/// Where a setting was requested, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Fragment file, or the board file for inline settings.
    pub file: PathBuf,
    /// 1-based line, when it came from a fragment.
    pub line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file.display()),
            None => write!(f, "{} (kernel.config)", self.file.display()),
        }
    }
}

/// Parses one config line; `None` if it is not a setting (blank, other comment,
/// or malformed).
pub fn parse_line(line: &str) -> Option<Setting> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# CONFIG_") {
        let name = rest.strip_suffix(" is not set")?;
        return valid_name(name).then(|| Setting {
            name: name.to_string(),
            value: "n".into(),
        });
    }
    let (name, value) = line.strip_prefix("CONFIG_")?.split_once('=')?;
    (valid_name(name) && !value.is_empty()).then(|| Setting {
        name: name.to_string(),
        value: value.to_string(),
    })
}

/// Kconfig names are mostly upper case, but not all (PPC_85xx, VFPv3).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Reads a fragment: every setting with its line. Lines that are neither blank,
/// comments nor settings are an error naming the line.
pub fn parse_fragment(path: &Path, text: &str) -> Result<Vec<(Setting, Origin)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(s) = parse_line(t) {
            out.push((
                s,
                Origin {
                    file: path.to_path_buf(),
                    line: Some(i + 1),
                },
            ));
        } else if !(t.is_empty() || t.starts_with('#')) {
            return Err(format!(
                "{}:{}: `{t}` is not `CONFIG_NAME=value` or `# CONFIG_NAME is not set`",
                path.display(),
                i + 1
            ));
        }
    }
    Ok(out)
}

/// The settings of a resolved `.config`: every symbol that is set (n is absent).
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(parse_line)
        .filter(|s| s.value != "n")
        .map(|s| (s.name, s.value))
        .collect()
}

/// A requested setting that did not end up as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was asked, and where.
    pub wanted: Setting,
    /// Where it was asked.
    pub origin: Origin,
    /// What the resolved config says (`n` when unset).
    pub got: String,
}

/// Compares requested settings (later ones override earlier ones, as in
/// merge_config.sh) with the resolved config.
pub fn verify(requested: &[(Setting, Origin)], config: &BTreeMap<String, String>) -> Vec<Mismatch> {
    let mut last: BTreeMap<&str, &(Setting, Origin)> = BTreeMap::new();
    for r in requested {
        last.insert(&r.0.name, r);
    }
    last.values()
        .filter_map(|(wanted, origin)| {
            let got = config.get(&wanted.name).map_or("n", String::as_str);
            (got != wanted.value).then(|| Mismatch {
                wanted: wanted.clone(),
                origin: origin.clone(),
                got: got.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            parse_line("CONFIG_MPTCP=y"),
            Some(Setting {
                name: "MPTCP".into(),
                value: "y".into()
            })
        );
        assert_eq!(
            parse_line("# CONFIG_MODULES is not set").unwrap().value,
            "n"
        );
        assert_eq!(
            parse_line("CONFIG_CMDLINE=\"console=ttyS0\"")
                .unwrap()
                .value,
            "\"console=ttyS0\""
        );
        assert_eq!(parse_line("# a comment"), None);
        assert_eq!(parse_line("CONFIG_PPC_85xx=y").unwrap().name, "PPC_85xx");
        assert_eq!(parse_line("CONFIG_A-B=y"), None);
        assert_eq!(parse_line("CONFIG_X="), None);
        assert_eq!(parse_line("MPTCP=y"), None);
    }

    #[test]
    fn fragment_errors_name_the_line() {
        let e = parse_fragment(Path::new("f.config"), "CONFIG_A=y\n\n# note\nCONFIG_B y\n")
            .unwrap_err();
        assert!(e.starts_with("f.config:4: `CONFIG_B y`"), "{e}");
        let ok =
            parse_fragment(Path::new("f.config"), "CONFIG_A=y\n# CONFIG_B is not set\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].1.line, Some(2));
    }

    #[test]
    fn verify_reports_dropped_and_changed_symbols() {
        let o = |l| Origin {
            file: "f".into(),
            line: Some(l),
        };
        let req = vec![
            (parse_line("CONFIG_A=y").unwrap(), o(1)),
            (parse_line("CONFIG_B=y").unwrap(), o(2)),
            (parse_line("# CONFIG_C is not set").unwrap(), o(3)),
            (parse_line("CONFIG_D=\"x\"").unwrap(), o(4)),
            (parse_line("CONFIG_B=m").unwrap(), o(5)),
        ];
        let config =
            parse_config("CONFIG_A=y\nCONFIG_C=y\nCONFIG_D=\"x\"\n# CONFIG_B is not set\n");
        let m = verify(&req, &config);
        let names: Vec<(&str, &str, &str)> = m
            .iter()
            .map(|m| {
                (
                    m.wanted.name.as_str(),
                    m.wanted.value.as_str(),
                    m.got.as_str(),
                )
            })
            .collect();
        assert_eq!(names, [("B", "m", "n"), ("C", "n", "y")]);
        assert_eq!(m[0].origin.line, Some(5), "the later request wins");
    }
}
