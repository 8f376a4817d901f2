//! The TOML configuration: paths (two interfaces and the settings of each
//! direction) and scripted events. Loaded in two steps, like the board files:
//! serde into raw structs that refuse unknown fields, then validation into
//! typed values; every error names the file, the line, the field and what
//! would be valid.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::command::{Change, Dirs};
use crate::model::Params;
use crate::units::{self, Nanos};

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The emulated paths, in file order.
    pub paths: Vec<PathConfig>,
    /// Scripted events, sorted by time (file order among equal times).
    pub events: Vec<Event>,
}

/// One emulated path: two interfaces bridged, one model per direction.
#[derive(Clone, Debug, PartialEq)]
pub struct PathConfig {
    /// The name used by events and control commands.
    pub name: String,
    /// Interface toward the router side; frames arriving here go "up".
    pub a: String,
    /// Interface toward the concentrator side; frames arriving here go "down".
    pub b: String,
    /// a -> b.
    pub up: Params,
    /// b -> a.
    pub down: Params,
}

/// A change applied at a fixed time after linkem is ready.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Time after the `linkem: ready` line.
    pub at: Nanos,
    /// Index into [`Config::paths`].
    pub path: usize,
    /// Which directions.
    pub dirs: Dirs,
    /// What to do.
    pub change: Change,
}

/// A configuration error with its place.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown field (toml names the line).
    #[error("{file}: {message}")]
    Toml {
        /// The file.
        file: String,
        /// toml's message, with line, column and the offending text.
        message: String,
    },
    /// A value that parsed as TOML but is not valid.
    #[error("{file}:{line}: {field}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line (of the value, or of the table for a missing field).
        line: usize,
        /// Where, e.g. `[[path]] "wan0" up.rate`.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    path: Vec<Spanned<RawPath>>,
    #[serde(default)]
    event: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    name: Spanned<String>,
    a: Spanned<String>,
    b: Spanned<String>,
    up: Option<RawDirection>,
    down: Option<RawDirection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirection {
    rate: Option<Spanned<Value>>,
    delay: Option<Spanned<Value>>,
    jitter: Option<Spanned<Value>>,
    loss: Option<Spanned<Value>>,
    limit: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    at: Spanned<Value>,
    path: Spanned<String>,
    action: Spanned<String>,
    direction: Option<Spanned<String>>,
    rate: Option<Spanned<Value>>,
    delay: Option<Spanned<Value>>,
    jitter: Option<Spanned<Value>>,
    loss: Option<Spanned<Value>>,
    limit: Option<Spanned<Value>>,
}

/// Reads and validates a configuration file.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.display().to_string(),
        source,
    })?;
    parse(&file.display().to_string(), &text)
}

/// Validates configuration text; `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Toml {
        file: file.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    Validator { file, text }.config(raw)
}

struct Validator<'a> {
    file: &'a str,
    text: &'a str,
}

/// Kinds of unit values, each with its parser.
#[derive(Clone, Copy)]
enum Kind {
    Rate,
    Duration,
    Loss,
    Limit,
}

impl Validator<'_> {
    fn err(&self, span: std::ops::Range<usize>, field: &str, message: String) -> ConfigError {
        let line = self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line,
            field: field.to_owned(),
            message,
        }
    }

    fn config(&self, raw: RawFile) -> Result<Config, ConfigError> {
        if raw.path.is_empty() {
            return Err(self.err(
                0..0,
                "[[path]]",
                "no path: add at least one [[path]] table with name, a and b".into(),
            ));
        }
        let mut paths = Vec::new();
        let mut names = HashSet::new();
        let mut ifaces = HashSet::new();
        for p in raw.path {
            let span = p.span();
            let p = self.path(p.into_inner())?;
            if !names.insert(p.name.clone()) {
                return Err(self.err(
                    span,
                    "[[path]] name",
                    format!("{:?} is used by two paths: names must be unique", p.name),
                ));
            }
            for ifname in [&p.a, &p.b] {
                if !ifaces.insert(ifname.clone()) {
                    return Err(self.err(
                        span,
                        &format!("[[path]] {:?}", p.name),
                        format!("interface {ifname:?} appears twice: each interface belongs to one side of one path"),
                    ));
                }
            }
            paths.push(p);
        }
        let mut events = Vec::new();
        for e in raw.event {
            events.push(self.event(e, &paths)?);
        }
        events.sort_by_key(|e| e.at);
        Ok(Config { paths, events })
    }

    fn path(&self, raw: RawPath) -> Result<PathConfig, ConfigError> {
        let name = raw.name.get_ref().clone();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(self.err(
                raw.name.span(),
                "[[path]] name",
                format!("{name:?}: a path name must be non-empty without spaces (control commands are split on spaces)"),
            ));
        }
        let at = format!("[[path]] {name:?}");
        for (field, v) in [("a", &raw.a), ("b", &raw.b)] {
            let n = v.get_ref();
            if n.is_empty() || n.len() > 15 || n.contains(|c: char| c == '/' || c.is_whitespace()) {
                return Err(self.err(
                    v.span(),
                    &format!("{at} {field}"),
                    format!("{n:?} is not an interface name: 1 to 15 characters, no '/' or spaces"),
                ));
            }
        }
        if raw.a.get_ref() == raw.b.get_ref() {
            return Err(self.err(
                raw.b.span(),
                &format!("{at} b"),
                "a and b must be two different interfaces".into(),
            ));
        }
        let up = match &raw.up {
            Some(d) => self.direction(d, &format!("{at} up"))?,
            None => Params::default(),
        };
        let down = match &raw.down {
            Some(d) => self.direction(d, &format!("{at} down"))?,
            None => up.clone(),
        };
        Ok(PathConfig {
            name,
            a: raw.a.into_inner(),
            b: raw.b.into_inner(),
            up,
            down,
        })
    }

    fn direction(&self, raw: &RawDirection, at: &str) -> Result<Params, ConfigError> {
        let mut p = Params::default();
        let field = |f: &str| format!("{at}.{f}");
        if let Some(v) = &raw.rate {
            p.rate = self.parse(v, &field("rate"), Kind::Rate, units::parse_rate)?;
        }
        if let Some(v) = &raw.delay {
            p.delay = self.parse(v, &field("delay"), Kind::Duration, units::parse_duration)?;
        }
        if let Some(v) = &raw.jitter {
            p.jitter = self.parse(v, &field("jitter"), Kind::Duration, units::parse_duration)?;
        }
        if let Some(v) = &raw.loss {
            p.loss = self.parse(v, &field("loss"), Kind::Loss, units::parse_loss)?;
        }
        if let Some(v) = &raw.limit {
            p.limit = Some(self.parse(v, &field("limit"), Kind::Limit, units::parse_limit)?);
        }
        Ok(p)
    }

    /// Parses one unit value, given as a string (or, for loss and limit, a
    /// number: a fraction, a byte count).
    fn parse<T>(
        &self,
        v: &Spanned<Value>,
        field: &str,
        kind: Kind,
        parser: fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let text = match (v.get_ref(), kind) {
            (Value::String(s), _) => s.clone(),
            (Value::Float(x), Kind::Loss) => x.to_string(),
            (Value::Integer(x), Kind::Loss | Kind::Limit) => x.to_string(),
            (other, _) => {
                let m = format!(
                    "{other} is a {}: expected {}",
                    other.type_str(),
                    kind.syntax()
                );
                return Err(self.err(v.span(), field, m));
            }
        };
        parser(&text).map_err(|m| self.err(v.span(), field, m))
    }

    fn event(&self, raw: RawEvent, paths: &[PathConfig]) -> Result<Event, ConfigError> {
        let at = self.parse(
            &raw.at,
            "[[event]] at",
            Kind::Duration,
            units::parse_duration,
        )?;
        let field = |f: &str| format!("[[event]] at {} {f}", units::Ms(at));
        let path = paths
            .iter()
            .position(|p| p.name == *raw.path.get_ref())
            .ok_or_else(|| {
                let known: Vec<&str> = paths.iter().map(|p| p.name.as_str()).collect();
                let m = format!(
                    "no path is named {:?}; paths: {}",
                    raw.path.get_ref(),
                    known.join(", ")
                );
                self.err(raw.path.span(), &field("path"), m)
            })?;
        let dirs = match &raw.direction {
            None => Dirs::Both,
            Some(d) => {
                Dirs::parse(d.get_ref()).map_err(|m| self.err(d.span(), &field("direction"), m))?
            }
        };
        let action = raw.action.get_ref().as_str();
        let need = |name: &str,
                    v: &Option<Spanned<Value>>|
         -> Result<Spanned<Value>, ConfigError> {
            v.clone().ok_or_else(|| {
                let m = format!("action = \"{name}\" needs a {name} field in the same [[event]]");
                self.err(raw.action.span(), &field(name), m)
            })
        };
        let change = match action {
            "cut" => Change::Cut,
            "restore" => Change::Restore,
            "rate" => Change::Rate(self.parse(
                &need("rate", &raw.rate)?,
                &field("rate"),
                Kind::Rate,
                units::parse_rate,
            )?),
            "delay" => Change::Delay(self.parse(
                &need("delay", &raw.delay)?,
                &field("delay"),
                Kind::Duration,
                units::parse_duration,
            )?),
            "jitter" => Change::Jitter(self.parse(
                &need("jitter", &raw.jitter)?,
                &field("jitter"),
                Kind::Duration,
                units::parse_duration,
            )?),
            "loss" => Change::Loss(self.parse(
                &need("loss", &raw.loss)?,
                &field("loss"),
                Kind::Loss,
                units::parse_loss,
            )?),
            "limit" => Change::Limit(self.parse(
                &need("limit", &raw.limit)?,
                &field("limit"),
                Kind::Limit,
                units::parse_limit,
            )?),
            other => {
                let m = format!("{other:?} is not an action: expected cut, restore, rate, delay, jitter, loss or limit");
                return Err(self.err(raw.action.span(), &field("action"), m));
            }
        };
        let values = [
            ("rate", &raw.rate),
            ("delay", &raw.delay),
            ("jitter", &raw.jitter),
            ("loss", &raw.loss),
            ("limit", &raw.limit),
        ];
        for (name, v) in values {
            if let (Some(v), true) = (v, name != action) {
                let m = format!("{name} only belongs in an event with action = \"{name}\" (this one is {action:?})");
                return Err(self.err(v.span(), &field(name), m));
            }
        }
        Ok(Event {
            at,
            path,
            dirs,
            change,
        })
    }
}

impl Kind {
    fn syntax(self) -> &'static str {
        match self {
            Kind::Rate => units::RATE_SYNTAX,
            Kind::Duration => units::DURATION_SYNTAX,
            Kind::Loss => units::LOSS_SYNTAX,
            Kind::Limit => units::LIMIT_SYNTAX,
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
