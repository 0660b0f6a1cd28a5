//! The streaming parser: turns the model's output, as it arrives, into
//! deliberation lines, speaks (with typing deltas), passes and unparsed text.
//!
//! The format it reads is set out in `roster/prompts/head.md.j2`:
//!
//! ```text
//! <confer>
//! Ada: …
//! Byron: …
//! </confer>
//! <speak who="Byron">…</speak>
//! <pass who="Cleo"/>
//! ```
//!
//! Invariants:
//! - **Chunk-invariant.** Every decision looks only at buffered text, and
//!   waits while a decision could still change with more input, so any split
//!   of the same text yields the same events (the ephemeral [`Parsed::SpeakDelta`]
//!   pieces aside, whose concatenation is still the same).
//! - **Lossless.** Text it cannot place — outside any block, an unknown or
//!   retired speaker, an unclosed block at the end — comes out as
//!   [`Parsed::Unparsed`] with the raw text. Only whitespace between blocks
//!   is dropped.
//! - **Panic-free.** It only slices at positions returned by `find` on ASCII
//!   patterns, which are always char boundaries.

use crate::id::CharacterId;

/// What the parser recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Deliberation {
        speaker: CharacterId,
        text: String,
    },
    /// Ephemeral: a piece of a speak still being written.
    SpeakDelta {
        speaker: CharacterId,
        text: String,
    },
    Speak {
        speaker: CharacterId,
        text: String,
    },
    Pass {
        speaker: CharacterId,
    },
    Unparsed {
        raw: String,
        reason: String,
    },
}

/// Longest text between `<` and `>` still considered a tag.
const MAX_TAG: usize = 256;
const CLOSE_SPEAK: &str = "</speak>";
const CLOSE_CONFER: &str = "</confer>";

/// A name as the parser may meet it, and who it means.
#[derive(Debug, Clone)]
struct Name {
    lower: String,
    id: CharacterId,
    on_stage: bool,
}

enum Who {
    OnStage(CharacterId),
    Off(String),
}

/// The current line of the confer.
enum Line {
    None,
    Entry(CharacterId, String),
    Unplaced(String, String),
}

enum State {
    Outside,
    Confer(Line),
    Speak { who: Who, open: String, text: String },
}

pub struct Parser {
    names: Vec<Name>,
    buf: String,
    stray: String,
    state: State,
    out: Vec<Parsed>,
}

impl Parser {
    /// A parser for one turn. `on_stage` and `off_stage` are `(id, display
    /// name)` pairs; names match case-insensitively, by display name or id.
    pub fn new<'a>(
        on_stage: impl IntoIterator<Item = (&'a CharacterId, &'a str)>,
        off_stage: impl IntoIterator<Item = (&'a CharacterId, &'a str)>,
    ) -> Self {
        let mut names = Vec::new();
        for (stage, list) in
            [(true, on_stage.into_iter().collect::<Vec<_>>()), (false, off_stage.into_iter().collect())]
        {
            for (id, name) in list {
                for lower in [name.trim().to_lowercase(), id.as_str().to_owned()] {
                    names.push(Name { lower, id: id.clone(), on_stage: stage });
                }
            }
        }
        Self { names, buf: String::new(), stray: String::new(), state: State::Outside, out: Vec::new() }
    }

    /// Feeds the next piece of output; returns what it completed.
    pub fn feed(&mut self, chunk: &str) -> Vec<Parsed> {
        self.buf.push_str(chunk);
        while self.step(false) {}
        std::mem::take(&mut self.out)
    }

    /// Ends the stream: whatever is still open becomes unparsed.
    pub fn finish(mut self) -> Vec<Parsed> {
        while self.step(true) {}
        match std::mem::replace(&mut self.state, State::Outside) {
            State::Outside => {}
            State::Confer(line) => {
                self.state = State::Confer(line);
                let rest = std::mem::take(&mut self.buf);
                self.confer_line(&rest);
                if let State::Confer(line) = std::mem::replace(&mut self.state, State::Outside) {
                    match line {
                        // The stream ended inside the confer: its last line may be cut short.
                        Line::Entry(id, text) => self.unparsed(format!("{id}: {text}"), "the confer was never closed"),
                        other => self.emit_line(other),
                    }
                }
            }
            State::Speak { open, text, .. } => {
                let raw = format!("{open}{text}{}", std::mem::take(&mut self.buf));
                self.unparsed(raw, "the speak was never closed");
            }
        }
        self.stray.push_str(&std::mem::take(&mut self.buf));
        self.flush_stray();
        self.out
    }

    fn resolve(&self, name: &str) -> Option<&Name> {
        let lower = name.trim().to_lowercase();
        // On-stage names win over off-stage ones with the same spelling.
        self.names.iter().filter(|n| n.lower == lower).max_by_key(|n| n.on_stage)
    }

    fn who(&self, name: Option<&str>) -> Who {
        match name.and_then(|n| self.resolve(n).map(|r| (n, r))) {
            Some((_, r)) if r.on_stage => Who::OnStage(r.id.clone()),
            Some((n, _)) => Who::Off(format!("{n} is not on stage")),
            None => Who::Off(format!("unknown speaker {:?}", name.unwrap_or(""))),
        }
    }

    fn unparsed(&mut self, raw: String, reason: &str) {
        if !raw.trim().is_empty() {
            self.out.push(Parsed::Unparsed { raw: raw.trim().to_owned(), reason: reason.to_owned() });
        }
    }

    fn flush_stray(&mut self) {
        let stray = std::mem::take(&mut self.stray);
        self.unparsed(stray, "text outside any block");
    }

    /// One step of progress; false when more input is needed.
    fn step(&mut self, at_end: bool) -> bool {
        match self.state {
            State::Outside => self.step_outside(at_end),
            State::Confer(_) => self.step_confer(),
            State::Speak { .. } => self.step_speak(),
        }
    }

    fn step_outside(&mut self, at_end: bool) -> bool {
        let Some(lt) = self.buf.find('<') else {
            self.stray.push_str(&std::mem::take(&mut self.buf));
            return false;
        };
        self.stray.push_str(&self.buf[..lt]);
        self.buf.drain(..lt);
        // The tag candidate ends at the first '>' — or is no tag at all if
        // another '<' or too much text comes first.
        let end = self.buf[1..].find(['<', '>']).map(|i| i + 1);
        let tag_end = match end {
            Some(i) if i <= MAX_TAG && self.buf.as_bytes()[i] == b'>' => i,
            None if self.buf.len() <= MAX_TAG && !at_end => return false,
            _ => {
                self.stray.push('<');
                self.buf.drain(..1);
                return true;
            }
        };
        let tag: String = self.buf.drain(..=tag_end).collect();
        match parse_tag(&tag) {
            Some(("confer", false, _)) => {
                self.flush_stray();
                self.state = State::Confer(Line::None);
            }
            Some(("speak", false, who)) => {
                self.flush_stray();
                self.state = State::Speak { who: self.who(who.as_deref()), open: tag, text: String::new() };
            }
            Some(("pass", _, who)) => {
                self.flush_stray();
                match self.who(who.as_deref()) {
                    Who::OnStage(speaker) => self.out.push(Parsed::Pass { speaker }),
                    Who::Off(reason) => self.unparsed(tag, &reason),
                }
            }
            // A closing `</pass>` after a non-self-closing pass carries nothing.
            Some(("/pass", _, _)) => self.flush_stray(),
            _ => self.stray.push_str(&tag),
        }
        true
    }

    fn step_confer(&mut self) -> bool {
        let body = self.buf.trim_start();
        if body.starts_with("<speak") || body.starts_with("<pass") {
            // The model forgot `</confer>`: the answers have begun.
            self.close_confer();
            return true;
        }
        let nl = self.buf.find('\n');
        match self.buf.find(CLOSE_CONFER) {
            Some(close) if nl.is_none_or(|nl| close < nl) => {
                let line: String = self.buf.drain(..close + CLOSE_CONFER.len()).collect();
                self.confer_line(&line[..close]);
                self.close_confer();
                true
            }
            _ => match nl {
                Some(nl) => {
                    let line: String = self.buf.drain(..=nl).collect();
                    self.confer_line(&line);
                    true
                }
                None => false,
            },
        }
    }

    /// One line of the confer: a new speaker's line, or more of the current one.
    fn confer_line(&mut self, line: &str) {
        let text = line.trim();
        if text.is_empty() {
            return;
        }
        let speaker = text.split_once(':').and_then(|(prefix, rest)| {
            let name = prefix.trim().trim_matches(['*', '_']).trim();
            looks_like_name(name).then(|| (self.who(Some(name)), rest.trim().trim_start_matches(['*', '_']).trim()))
        });
        let next = match speaker {
            Some((Who::OnStage(id), rest)) => Line::Entry(id, rest.to_owned()),
            Some((Who::Off(reason), _)) => Line::Unplaced(text.to_owned(), reason),
            None => {
                let State::Confer(current) = &mut self.state else { return };
                match current {
                    Line::Entry(_, t) | Line::Unplaced(t, _) => {
                        t.push('\n');
                        t.push_str(text);
                    }
                    Line::None => *current = Line::Unplaced(text.to_owned(), "a confer line without a speaker".into()),
                }
                return;
            }
        };
        if let State::Confer(current) = &mut self.state {
            let done = std::mem::replace(current, next);
            self.emit_line(done);
        }
    }

    fn emit_line(&mut self, line: Line) {
        match line {
            Line::None => {}
            Line::Entry(speaker, text) if !text.is_empty() => self.out.push(Parsed::Deliberation { speaker, text }),
            Line::Entry(..) => {}
            Line::Unplaced(raw, reason) => self.unparsed(raw, &reason),
        }
    }

    fn close_confer(&mut self) {
        if let State::Confer(line) = std::mem::replace(&mut self.state, State::Outside) {
            self.emit_line(line);
        }
    }

    fn step_speak(&mut self) -> bool {
        let close = self.buf.find(CLOSE_SPEAK);
        // A new block opening means the model forgot `</speak>`.
        let next_open = [self.buf.find("<speak "), self.buf.find("<pass ")].into_iter().flatten().min();
        let (content_end, consumed, done) = match (close, next_open) {
            (Some(c), Some(o)) if o < c => (o, o, true),
            (Some(c), _) => (c, c + CLOSE_SPEAK.len(), true),
            (None, Some(o)) => (o, o, true),
            (None, None) => {
                // Hold back a tail that could still become one of the tags.
                let hold = self.buf.rfind('<').filter(|&lt| {
                    let tail = &self.buf[lt..];
                    [CLOSE_SPEAK, "<speak ", "<pass "].iter().any(|t| t.starts_with(tail))
                });
                (hold.unwrap_or(self.buf.len()), hold.unwrap_or(self.buf.len()), false)
            }
        };
        let piece: String = self.buf.drain(..consumed).collect();
        let piece = &piece[..content_end];
        let State::Speak { who, text, .. } = &mut self.state else { return false };
        if !piece.is_empty() {
            text.push_str(piece);
            if let Who::OnStage(speaker) = who {
                self.out.push(Parsed::SpeakDelta { speaker: speaker.clone(), text: piece.to_owned() });
            }
        }
        if !done {
            return false;
        }
        if let State::Speak { who, open, text } = std::mem::replace(&mut self.state, State::Outside) {
            match who {
                Who::OnStage(speaker) if text.trim().is_empty() => self.out.push(Parsed::Pass { speaker }),
                Who::OnStage(speaker) => self.out.push(Parsed::Speak { speaker, text: text.trim().to_owned() }),
                Who::Off(reason) => self.unparsed(format!("{open}{text}{CLOSE_SPEAK}"), &reason),
            }
        }
        true
    }
}

/// A speaker prefix: a few words of letters, as a name would be.
fn looks_like_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.split_whitespace().count() <= 3
        && s.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '\''))
}

/// Splits `<name attr…>` / `<name …/>` / `</name>` into the lowercased name
/// (closing tags as `/name`), whether it self-closes, and its `who` attribute.
fn parse_tag(tag: &str) -> Option<(&'static str, bool, Option<String>)> {
    let inner = tag.strip_prefix('<')?.strip_suffix('>')?.trim();
    let (inner, self_closing) = match inner.strip_suffix('/') {
        Some(i) => (i.trim_end(), true),
        None => (inner, false),
    };
    let (name, attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    let name = match name.to_ascii_lowercase().as_str() {
        "confer" if attrs.trim().is_empty() => "confer",
        "speak" => "speak",
        "pass" => "pass",
        "/pass" => "/pass",
        _ => return None,
    };
    Some((name, self_closing, who_attr(attrs)))
}

fn who_attr(attrs: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let at = lower.find("who")?;
    let rest = attrs[at + 3..].trim_start().strip_prefix('=')?.trim_start();
    let value = match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].split(q).next()?,
        _ => rest.split(char::is_whitespace).next()?,
    };
    Some(value.to_owned())
}
