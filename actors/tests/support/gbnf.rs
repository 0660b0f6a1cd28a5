//! A small GBNF reader and matcher, for tests: does a grammar, as
//! llama.cpp would read it, accept a whole text?
//!
//! It reads the subset panel generates and a little more — rules
//! `name ::= body` (one per line, `#` comments), string literals with
//! `\n \r \t \" \\ \xHH` escapes, character classes `[...]` / `[^...]` with
//! ranges, rule references, groups, alternation `|`, and `?` `*` `+`
//! `{m}` `{m,}` `{m,n}` —
//! and rejects anything else as malformed, so a test also proves the
//! grammar is well-formed. Matching computes, for each expression and
//! start position, every position it can end at (memoised per rule), so
//! ambiguity costs time, never a wrong answer.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone)]
enum Expr {
    Lit(Vec<char>),
    Class { negated: bool, ranges: Vec<(char, char)> },
    Ref(String),
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Opt(Box<Expr>),
    Star(Box<Expr>),
    Plus(Box<Expr>),
    Repeat(Box<Expr>, usize, Option<usize>),
}

#[derive(Debug)]
pub struct Grammar {
    rules: HashMap<String, Expr>,
}

impl Grammar {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, body) = line.split_once("::=").ok_or_else(|| format!("line {}: no ::=", n + 1))?;
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("line {}: bad rule name {name:?}", n + 1));
            }
            let chars: Vec<char> = body.chars().collect();
            let mut p = Parser { s: &chars, i: 0 };
            let expr = p.alt().map_err(|e| format!("line {}: {e}", n + 1))?;
            p.ws();
            if p.i != chars.len() {
                return Err(format!("line {}: trailing input at {}", n + 1, p.i));
            }
            if rules.insert(name.to_owned(), expr).is_some() {
                return Err(format!("rule {name} defined twice"));
            }
        }
        let g = Self { rules };
        for expr in g.rules.values() {
            g.check_refs(expr)?;
        }
        if !g.rules.contains_key("root") {
            return Err("no root rule".into());
        }
        Ok(g)
    }

    fn check_refs(&self, e: &Expr) -> Result<(), String> {
        match e {
            Expr::Ref(r) if !self.rules.contains_key(r) => Err(format!("undefined rule {r}")),
            Expr::Seq(v) | Expr::Alt(v) => v.iter().try_for_each(|x| self.check_refs(x)),
            Expr::Opt(x) | Expr::Star(x) | Expr::Plus(x) | Expr::Repeat(x, ..) => self.check_refs(x),
            _ => Ok(()),
        }
    }

    /// Whether the whole of `text` is a sentence of the grammar.
    pub fn accepts(&self, text: &str) -> bool {
        let input: Vec<char> = text.chars().collect();
        let mut m = Matcher { g: self, input: &input, memo: HashMap::new() };
        m.ends(&Expr::Ref("root".into()), 0).contains(&input.len())
    }
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn alt(&mut self) -> Result<Expr, String> {
        let mut alts = vec![self.seq()?];
        loop {
            self.ws();
            if self.peek() != Some('|') {
                break;
            }
            self.i += 1;
            alts.push(self.seq()?);
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap() } else { Expr::Alt(alts) })
    }

    fn seq(&mut self) -> Result<Expr, String> {
        let mut items = Vec::new();
        loop {
            self.ws();
            match self.peek() {
                None | Some('|') | Some(')') => break,
                _ => items.push(self.postfix()?),
            }
        }
        if items.is_empty() {
            return Err(format!("empty alternative at {}", self.i));
        }
        Ok(if items.len() == 1 { items.pop().unwrap() } else { Expr::Seq(items) })
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        loop {
            match self.peek() {
                Some('?') => e = Expr::Opt(Box::new(e)),
                Some('*') => e = Expr::Star(Box::new(e)),
                Some('+') => e = Expr::Plus(Box::new(e)),
                Some('{') => {
                    let close = self.s[self.i..].iter().position(|c| *c == '}').ok_or("unclosed {")? + self.i;
                    let inner: String = self.s[self.i + 1..close].iter().collect();
                    let num = |t: &str| t.trim().parse::<usize>().map_err(|_| format!("bad repetition {{{inner}}}"));
                    let (min, max) = match inner.split_once(',') {
                        None => (num(&inner)?, Some(num(&inner)?)),
                        Some((lo, hi)) if hi.trim().is_empty() => (num(lo)?, None),
                        Some((lo, hi)) => (num(lo)?, Some(num(hi)?)),
                    };
                    if max.is_some_and(|m| m < min) {
                        return Err(format!("bad repetition {{{inner}}}"));
                    }
                    e = Expr::Repeat(Box::new(e), min, max);
                    self.i = close;
                }
                _ => return Ok(e),
            }
            self.i += 1;
        }
    }

    fn escaped(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("unterminated escape")?;
        self.i += 1;
        Ok(match c {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '"' | '\\' | ']' | '[' | '^' | '-' => c,
            'x' => {
                let hex: String = self.s.get(self.i..self.i + 2).ok_or("short \\x escape")?.iter().collect();
                self.i += 2;
                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or(format!("bad escape \\x{hex}"))?
            }
            other => return Err(format!("unknown escape \\{other}")),
        })
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some('"') => {
                self.i += 1;
                let mut text = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated literal".into()),
                        Some('"') => {
                            self.i += 1;
                            break;
                        }
                        Some('\\') => {
                            self.i += 1;
                            text.push(self.escaped()?);
                        }
                        Some(c) => {
                            self.i += 1;
                            text.push(c);
                        }
                    }
                }
                Ok(Expr::Lit(text))
            }
            Some('[') => {
                self.i += 1;
                let negated = self.peek() == Some('^');
                if negated {
                    self.i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let c = match self.peek() {
                        None => return Err("unterminated class".into()),
                        Some(']') => {
                            self.i += 1;
                            break;
                        }
                        Some('\\') => {
                            self.i += 1;
                            self.escaped()?
                        }
                        Some(c) => {
                            self.i += 1;
                            c
                        }
                    };
                    if self.peek() == Some('-') && self.s.get(self.i + 1).is_some_and(|c| *c != ']') {
                        self.i += 1;
                        let hi = match self.peek() {
                            Some('\\') => {
                                self.i += 1;
                                self.escaped()?
                            }
                            Some(h) => {
                                self.i += 1;
                                h
                            }
                            None => return Err("unterminated range".into()),
                        };
                        ranges.push((c, hi));
                    } else {
                        ranges.push((c, c));
                    }
                }
                Ok(Expr::Class { negated, ranges })
            }
            Some('(') => {
                self.i += 1;
                let e = self.alt()?;
                self.ws();
                if self.peek() != Some(')') {
                    return Err("unclosed group".into());
                }
                self.i += 1;
                Ok(e)
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '-' => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
                    self.i += 1;
                }
                Ok(Expr::Ref(self.s[start..self.i].iter().collect()))
            }
            other => Err(format!("unexpected {other:?} at {}", self.i)),
        }
    }
}

struct Matcher<'a> {
    g: &'a Grammar,
    input: &'a [char],
    memo: HashMap<(String, usize), BTreeSet<usize>>,
}

impl Matcher<'_> {
    fn ends(&mut self, e: &Expr, at: usize) -> BTreeSet<usize> {
        match e {
            Expr::Lit(text) => {
                let end = at + text.len();
                (self.input.get(at..end) == Some(text.as_slice())).then_some(end).into_iter().collect()
            }
            Expr::Class { negated, ranges } => match self.input.get(at) {
                Some(c) if ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *negated => [at + 1].into(),
                _ => BTreeSet::new(),
            },
            Expr::Ref(name) => {
                let key = (name.clone(), at);
                if let Some(known) = self.memo.get(&key) {
                    return known.clone();
                }
                // Guards left recursion (which panel's grammars never use).
                self.memo.insert(key.clone(), BTreeSet::new());
                let rule = self.g.rules[name].clone();
                let found = self.ends(&rule, at);
                self.memo.insert(key, found.clone());
                found
            }
            Expr::Seq(items) => {
                let mut here: BTreeSet<usize> = [at].into();
                for item in items {
                    let mut next = BTreeSet::new();
                    for p in here {
                        next.extend(self.ends(item, p));
                    }
                    if next.is_empty() {
                        return next;
                    }
                    here = next;
                }
                here
            }
            Expr::Alt(alts) => alts.iter().flat_map(|a| self.ends(a, at)).collect(),
            Expr::Opt(x) => {
                let mut out = self.ends(x, at);
                out.insert(at);
                out
            }
            Expr::Repeat(x, min, max) => {
                // Positions reachable after exactly k repetitions, k = 0, 1, …
                let mut out = BTreeSet::new();
                let mut here: BTreeSet<usize> = [at].into();
                let mut k = 0;
                loop {
                    if k >= *min {
                        out.extend(here.iter().copied());
                    }
                    if max.is_some_and(|m| k >= m) || here.is_empty() {
                        break;
                    }
                    let mut next = BTreeSet::new();
                    for p in &here {
                        next.extend(self.ends(x, *p).into_iter().filter(|q| q > p));
                    }
                    here = next;
                    k += 1;
                }
                out
            }
            Expr::Star(x) | Expr::Plus(x) => {
                let mut out = BTreeSet::new();
                let mut frontier: BTreeSet<usize> = [at].into();
                if matches!(e, Expr::Star(_)) {
                    out.insert(at);
                }
                while !frontier.is_empty() {
                    let mut next = BTreeSet::new();
                    for p in frontier {
                        for q in self.ends(x, p) {
                            if q > p && out.insert(q) {
                                next.insert(q);
                            }
                        }
                    }
                    frontier = next;
                }
                out
            }
        }
    }
}
