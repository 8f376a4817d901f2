//! Why did Kconfig drop a symbol? A small reader of the kernel's Kconfig files
//! that records, for every symbol, its `depends on` conditions together with the
//! enclosing `if`, `menu` and `choice` conditions, and evaluates them against a
//! resolved `.config` to name the ones that are unmet.
//!
//! It follows `source` from the top-level Kconfig (substituting `$(SRCARCH)`), and
//! relies on the kernel's layout convention: entries and block keywords start in
//! column 0, attributes are indented, and help text runs until the next line that
//! starts in column 0. It does not need to be a full Kconfig implementation: it
//! only explains a failure that Kconfig itself already decided.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Definitions of every symbol in a kernel tree.
#[derive(Debug, Default)]
pub struct Index {
    defs: HashMap<String, Vec<Def>>,
}

#[derive(Debug, Clone)]
struct Def {
    file: PathBuf,
    line: usize,
    /// Enclosing conditions (`if`, `menu`, `choice`), with where each comes from.
    outer: Vec<(String, String)>,
    /// The entry's own `depends on` expressions, with their lines.
    depends: Vec<(String, usize)>,
    has_prompt: bool,
}

#[derive(Debug, Clone)]
enum Frame {
    If(String, String),
    Menu(Vec<(String, String)>),
    Choice(Vec<(String, String)>),
}

impl Index {
    /// Reads the tree at `srctree` for architecture `srcarch` (e.g. `mips`).
    pub fn load(srctree: &Path, srcarch: &str) -> std::io::Result<Self> {
        let mut index = Index::default();
        let mut frames = Vec::new();
        index.read(srctree, srcarch, &srctree.join("Kconfig"), &mut frames, 0)?;
        Ok(index)
    }

    fn read(
        &mut self,
        srctree: &Path,
        srcarch: &str,
        file: &Path,
        frames: &mut Vec<Frame>,
        depth: usize,
    ) -> std::io::Result<()> {
        if depth > 32 {
            return Ok(());
        }
        let text = std::fs::read_to_string(file)?;
        let rel = file.strip_prefix(srctree).unwrap_or(file).to_path_buf();
        let lines: Vec<&str> = text.lines().collect();
        let mut current: Option<(String, Def)> = None;
        let mut i = 0;
        while i < lines.len() {
            let raw = lines[i];
            let lineno = i + 1;
            i += 1;
            // Join continuation lines.
            let mut line = raw.trim_end().to_string();
            while line.ends_with('\\') && i < lines.len() {
                line.pop();
                line.push(' ');
                line.push_str(lines[i].trim());
                i += 1;
            }
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let top = !raw.starts_with([' ', '\t']);
            let (kw, rest) = t
                .split_once(char::is_whitespace)
                .map_or((t, ""), |(k, r)| (k, r.trim()));
            if !top {
                match kw {
                    "depends" => {
                        let expr = rest.strip_prefix("on").unwrap_or(rest);
                        let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
                        let here = format!("{}:{lineno}", rel.display());
                        if let Some((_, d)) = current.as_mut() {
                            d.depends.push((expr, lineno));
                        } else if let Some(Frame::Menu(c) | Frame::Choice(c)) = frames.last_mut() {
                            c.push((expr, here));
                        }
                    }
                    "bool" | "tristate" | "string" | "int" | "hex" | "prompt"
                        if kw == "prompt" || rest.starts_with('"') =>
                    {
                        if let Some((_, d)) = current.as_mut() {
                            d.has_prompt = true;
                        }
                    }
                    "help" | "---help---" => {
                        // Skip help text: until the next line starting in column 0.
                        while i < lines.len()
                            && (lines[i].is_empty() || lines[i].starts_with([' ', '\t']))
                        {
                            i += 1;
                        }
                    }
                    _ => {}
                }
                continue;
            }
            // A top-level keyword ends the current entry.
            if let Some((name, d)) = current.take() {
                self.defs.entry(name).or_default().push(d);
            }
            match kw {
                "config" | "menuconfig" => {
                    current = Some((
                        rest.to_string(),
                        Def {
                            file: rel.clone(),
                            line: lineno,
                            outer: outer_conditions(frames),
                            depends: Vec::new(),
                            has_prompt: false,
                        },
                    ));
                }
                "if" => frames.push(Frame::If(
                    rest.to_string(),
                    format!("{}:{lineno}", rel.display()),
                )),
                "endif" | "endmenu" | "endchoice" => {
                    frames.pop();
                }
                "menu" => frames.push(Frame::Menu(Vec::new())),
                "choice" => frames.push(Frame::Choice(Vec::new())),
                "source" | "rsource" | "osource" | "orsource" => {
                    let path = rest.trim_matches('"').replace("$(SRCARCH)", srcarch);
                    if path.contains("$(") {
                        continue;
                    }
                    let full = if kw.starts_with('r') || kw == "orsource" {
                        file.parent().unwrap_or(srctree).join(&path)
                    } else {
                        srctree.join(&path)
                    };
                    if full.is_file() {
                        self.read(srctree, srcarch, &full, frames, depth + 1)?;
                    } else if !kw.starts_with('o') {
                        // A missing mandatory source: the tree is incomplete; carry on.
                        continue;
                    }
                }
                _ => {}
            }
        }
        if let Some((name, d)) = current.take() {
            self.defs.entry(name).or_default().push(d);
        }
        Ok(())
    }

    /// How many symbols are known (for sanity checks).
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// True when no symbol was found.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Explains why `name` is not set as wanted in `config`: one line per
    /// definition, naming each unmet condition with the values it saw.
    pub fn explain(&self, name: &str, config: &BTreeMap<String, String>) -> Vec<String> {
        let Some(defs) = self.defs.get(name) else {
            return vec![
                "no such symbol in this kernel's Kconfig (misspelt, or not in this version)".into(),
            ];
        };
        let mut out = Vec::new();
        for d in defs.iter().take(4) {
            let mut unmet = Vec::new();
            for (expr, at) in &d.outer {
                if eval(expr, config) == 0 {
                    unmet.push(format!("{at}: `{expr}` [{}]", values(expr, config)));
                }
            }
            for (expr, line) in &d.depends {
                if eval(expr, config) == 0 {
                    unmet.push(format!(
                        "{}:{line}: depends on `{expr}` [{}]",
                        d.file.display(),
                        values(expr, config)
                    ));
                }
            }
            if unmet.is_empty() && !d.has_prompt {
                unmet.push(format!(
                    "{}:{}: has no prompt: it is set only when another symbol selects it",
                    d.file.display(),
                    d.line
                ));
            }
            if unmet.is_empty() {
                unmet.push(format!(
                    "{}:{}: its dependencies are met; a `choice` or a conflicting request may have overridden it",
                    d.file.display(),
                    d.line
                ));
            }
            out.extend(unmet);
        }
        out
    }
}

fn outer_conditions(frames: &[Frame]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in frames {
        match f {
            Frame::If(e, at) => out.push((e.clone(), at.clone())),
            Frame::Menu(c) | Frame::Choice(c) => out.extend(c.iter().cloned()),
        }
    }
    out
}

/// `SYMBOL=value` for every symbol in `expr`.
fn values(expr: &str, config: &BTreeMap<String, String>) -> String {
    let mut seen = Vec::new();
    for tok in tokens(expr) {
        if let Tok::Sym(s) = tok {
            if is_symbol(&s) && !seen.contains(&s) {
                seen.push(s);
            }
        }
    }
    seen.iter()
        .map(|s| format!("{s}={}", config.get(s).map_or("n", String::as_str)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_symbol(s: &str) -> bool {
    !matches!(s, "y" | "m" | "n")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.is_empty()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Sym(String),
    Str(String),
    Op(&'static str),
}

fn tokens(expr: &str) -> Vec<Tok> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two = expr.get(i..i + 2).unwrap_or("");
        if c.is_ascii_whitespace() {
            i += 1;
        } else if let Some(op) = ["&&", "||", "!=", "<=", ">="]
            .into_iter()
            .find(|o| *o == two)
        {
            out.push(Tok::Op(op));
            i += 2;
        } else if let Some(op) = ["!", "(", ")", "=", "<", ">"]
            .into_iter()
            .find(|o| o.as_bytes()[0] == c)
        {
            out.push(Tok::Op(op));
            i += 1;
        } else if c == b'"' || c == b'\'' {
            let end = expr[i + 1..].find(c as char).map_or(b.len(), |e| i + 1 + e);
            out.push(Tok::Str(expr[i + 1..end].to_string()));
            i = end + 1;
        } else if expr[i..].starts_with("$(") {
            // A preprocessor macro: opaque, treated as true.
            let mut depth = 0;
            let start = i;
            while i < b.len() {
                match b[i] {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            out.push(Tok::Str(format!("macro:{}", &expr[start..i])));
        } else {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-' || b[i] == b'.')
            {
                i += 1;
            }
            if i == start {
                i += 1;
                continue;
            }
            out.push(Tok::Sym(expr[start..i].to_string()));
        }
    }
    out
}

/// Evaluates a Kconfig expression to a tristate: 0 (n), 1 (m), 2 (y).
pub fn eval(expr: &str, config: &BTreeMap<String, String>) -> u8 {
    let toks = tokens(expr);
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        config,
    };
    p.or()
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    config: &'a BTreeMap<String, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> u8 {
        let mut v = self.and();
        while self.eat("||") {
            v = v.max(self.and());
        }
        v
    }
    fn and(&mut self) -> u8 {
        let mut v = self.unary();
        while self.eat("&&") {
            v = v.min(self.unary());
        }
        v
    }
    fn unary(&mut self) -> u8 {
        if self.eat("!") {
            return 2 - self.unary();
        }
        if self.eat("(") {
            let v = self.or();
            self.eat(")");
            return v;
        }
        let left = self.atom();
        for op in ["=", "!=", "<", "<=", ">", ">="] {
            if self.eat(op) {
                let right = self.atom();
                let (l, r) = (left.text(), right.text());
                let ord = match (l.parse::<i64>(), r.parse::<i64>()) {
                    (Ok(a), Ok(b)) => a.cmp(&b),
                    _ => l.cmp(&r),
                };
                let ok = match op {
                    "=" => l == r,
                    "!=" => l != r,
                    "<" => ord.is_lt(),
                    "<=" => ord.is_le(),
                    ">" => ord.is_gt(),
                    _ => ord.is_ge(),
                };
                return if ok { 2 } else { 0 };
            }
        }
        left.tristate()
    }
    fn atom(&mut self) -> Atom {
        let t = self.peek().cloned();
        self.pos += 1;
        match t {
            Some(Tok::Sym(s)) => match s.as_str() {
                "y" | "m" | "n" => Atom::Lit(s),
                _ if s.parse::<i64>().is_ok() || s.starts_with("0x") => Atom::Lit(s),
                _ => Atom::Val(self.config.get(&s).cloned().unwrap_or_else(|| "n".into())),
            },
            Some(Tok::Str(s)) if s.starts_with("macro:") => Atom::Lit("y".into()),
            Some(Tok::Str(s)) => Atom::Lit(s),
            _ => Atom::Lit("y".into()),
        }
    }
}

enum Atom {
    Lit(String),
    Val(String),
}

impl Atom {
    fn text(&self) -> String {
        match self {
            Atom::Lit(s) | Atom::Val(s) => s.trim_matches('"').to_string(),
        }
    }
    fn tristate(&self) -> u8 {
        match self.text().as_str() {
            "y" => 2,
            "m" => 1,
            "n" | "" => 0,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests;
