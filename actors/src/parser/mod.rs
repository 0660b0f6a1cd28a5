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
//!   waits while more input could still change it, so any split of the same
//!   text yields the same events (the ephemeral [`Parsed::SpeakDelta`]
//!   pieces aside, whose concatenation is still the same).
//! - **Prompt.** A confer line is emitted as soon as the first characters of
//!   the line after it settle that it has ended (a speaker's name and colon,
//!   the closing tag, an answer opening), not when that next line is whole.
//!   Text that cannot begin a speaker prefix continues the line.
//! - **Linear.** Only bytes not yet decided stay buffered (a tag or a speaker
//!   prefix being written, both bounded); text is moved out as soon as its
//!   place is known, so each byte is scanned a bounded number of times.
//! - **Lossless.** Text it cannot place — outside any block, an unknown or
//!   retired speaker, an unclosed block at the end — comes out as
//!   [`Parsed::Unparsed`] with the raw text. Only whitespace between blocks
//!   is dropped.
//! - **Forgiving of case and decoration.** Tags and attributes match in any
//!   case and by attribute name; a speaker may be written with a bullet,
//!   emphasis or a parenthetical aside (`- **Byron** (dryly): …`), and is
//!   resolved against the cast by the longest name that fits.
//! - **Panic-free.** It only slices at positions of ASCII bytes, or at
//!   lengths the lexicon measured on the same text.
//!
//! It stays one file (about 430 lines) on purpose: it is one state machine,
//! and its states and transitions read best side by side; the lexicon it
//! leans on is already apart, in `lexicon/`.

mod lexicon;

pub use lexicon::check_name;
use lexicon::{Decision, KnownName, Marker, Named, Speaker, Tag};

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

/// Someone the parser may meet by name.
struct Person {
    id: CharacterId,
    name: String,
    on_stage: bool,
}

enum Who {
    OnStage(CharacterId),
    Off(String),
}

/// The confer line being read. It is emitted once the next line shows it has ended.
enum Line {
    None,
    Entry { speaker: CharacterId, prefix: String, text: String },
    Unplaced { raw: String, reason: String },
}

enum State {
    Outside,
    /// `line_start`: the next text begins a line whose kind is not yet known.
    Confer {
        line: Line,
        line_start: bool,
    },
    Speak {
        who: Who,
        open: String,
        text: String,
    },
}

pub struct Parser {
    people: Vec<Person>,
    names: Vec<KnownName>,
    buf: String,
    stray: String,
    state: State,
    out: Vec<Parsed>,
}

impl Parser {
    /// A parser for one turn. `on_stage` and `off_stage` are `(id, display
    /// name)` pairs; names match case-insensitively, by display name or id,
    /// and an on-stage name wins over an off-stage one spelt the same.
    pub fn new<'a>(
        on_stage: impl IntoIterator<Item = (&'a CharacterId, &'a str)>,
        off_stage: impl IntoIterator<Item = (&'a CharacterId, &'a str)>,
    ) -> Self {
        let on = on_stage.into_iter().map(|p| (p, true));
        let off = off_stage.into_iter().map(|p| (p, false));
        let people: Vec<Person> = on
            .chain(off)
            .map(|((id, name), on_stage)| Person { id: id.clone(), name: name.trim().to_owned(), on_stage })
            .collect();
        let names = people
            .iter()
            .enumerate()
            .flat_map(|(who, p)| {
                [p.name.to_lowercase(), p.id.as_str().to_owned()].map(|lower| KnownName { lower, who })
            })
            .filter(|n| !n.lower.is_empty())
            .collect();
        Self { people, names, buf: String::new(), stray: String::new(), state: State::Outside, out: Vec::new() }
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
        let rest = std::mem::take(&mut self.buf);
        match std::mem::replace(&mut self.state, State::Outside) {
            State::Outside => self.stray.push_str(&rest),
            State::Confer { line, .. } => match line {
                // The stream ended inside the confer: its last line may be cut short.
                Line::Entry { prefix, text, .. } => {
                    self.unparsed(format!("{prefix}{text}{rest}"), "the confer was never closed")
                }
                other => {
                    self.emit_line(other);
                    self.stray.push_str(&rest);
                }
            },
            State::Speak { open, text, .. } => {
                self.unparsed(format!("{open}{text}{rest}"), "the speak was never closed")
            }
        }
        self.flush_stray();
        self.out
    }

    fn step(&mut self, at_end: bool) -> bool {
        match self.state {
            State::Outside => self.step_outside(at_end),
            State::Confer { line_start: true, .. } => self.confer_line_start(at_end),
            State::Confer { .. } => self.confer_mid_line(at_end),
            State::Speak { .. } => self.step_speak(at_end),
        }
    }

    /// Who a `who="…"` attribute names.
    fn who_attr(&self, name: Option<&str>) -> Who {
        let written = name.unwrap_or("").trim();
        let lower = written.to_lowercase();
        let found = self
            .people
            .iter()
            .filter(|p| p.name.to_lowercase() == lower || p.id.as_str() == lower)
            .max_by_key(|p| p.on_stage);
        match found {
            Some(p) if p.on_stage => Who::OnStage(p.id.clone()),
            Some(p) => Who::Off(format!("{} is not on stage", p.name)),
            None => Who::Off(format!("unknown speaker {written:?}")),
        }
    }

    fn who_named(&self, named: &Named) -> Who {
        match named {
            Named::Known(i) if self.people[*i].on_stage => Who::OnStage(self.people[*i].id.clone()),
            Named::Known(i) => Who::Off(format!("{} is not on stage", self.people[*i].name)),
            Named::Unknown(name) => Who::Off(format!("unknown speaker {name:?}")),
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

    fn step_outside(&mut self, at_end: bool) -> bool {
        let Some(lt) = self.buf.find('<') else {
            self.stray.push_str(&self.buf);
            self.buf.clear();
            return false;
        };
        self.stray.push_str(&self.buf[..lt]);
        self.buf.drain(..lt);
        // The tag ends at the first '>' — or is no tag at all if another '<'
        // or too much text comes first. Only a tag's length is ever scanned.
        let window = &self.buf.as_bytes()[1..self.buf.len().min(MAX_TAG + 1)];
        let tag_end = match window.iter().position(|&b| b == b'<' || b == b'>').map(|i| i + 1) {
            Some(i) if self.buf.as_bytes()[i] == b'>' => i,
            None if self.buf.len() <= MAX_TAG && !at_end => return false,
            _ => {
                self.stray.push('<');
                self.buf.drain(..1);
                return true;
            }
        };
        let raw: String = self.buf.drain(..=tag_end).collect();
        let Some(tag) = Tag::parse(&raw) else {
            self.stray.push_str(&raw);
            return true;
        };
        match tag.name.as_str() {
            "confer" if !tag.self_closing => {
                self.flush_stray();
                self.state = State::Confer { line: Line::None, line_start: true };
            }
            "speak" | "pass" => {
                self.flush_stray();
                let who = self.who_attr(tag.attr("who"));
                if tag.name == "speak" && !tag.self_closing {
                    self.state = State::Speak { who, open: raw, text: String::new() };
                } else {
                    match who {
                        Who::OnStage(speaker) => self.out.push(Parsed::Pass { speaker }),
                        Who::Off(reason) => self.unparsed(raw, &reason),
                    }
                }
            }
            // A closing `</pass>` after a non-self-closing pass carries nothing.
            "/pass" => self.flush_stray(),
            _ => self.stray.push_str(&raw),
        }
        true
    }

    /// At the start of a confer line: skip blank lines, then decide — as
    /// soon as the first characters allow — whether the confer ends here, a
    /// new speaker begins, or the line continues the one before.
    fn confer_line_start(&mut self, at_end: bool) -> bool {
        let lead = self.buf.len() - self.buf.trim_start_matches([' ', '\t', '\r']).len();
        let rest = &self.buf[lead..];
        if rest.starts_with('\n') {
            self.buf.drain(..=lead);
            return true;
        }
        if rest.is_empty() {
            return false;
        }
        let complete = at_end || rest.contains('\n');
        if rest.starts_with('<') {
            match lexicon::marker(rest, &[Marker::CloseConfer, Marker::OpenAnswer]) {
                Decision::Yes((Marker::CloseConfer, len)) => {
                    self.buf.drain(..lead + len);
                    self.close_confer();
                    return true;
                }
                Decision::Yes(_) => {
                    self.buf.drain(..lead);
                    self.close_confer();
                    return true;
                }
                Decision::Partial if !complete => return false,
                _ => {}
            }
        }
        let decision = lexicon::speaker(rest, complete, &self.names);
        let State::Confer { line, line_start } = &mut self.state else { return false };
        match decision {
            Decision::Partial => false,
            Decision::No => {
                self.buf.drain(..lead);
                *line_start = false;
                match line {
                    Line::Entry { text, .. } => text.push('\n'),
                    Line::Unplaced { raw, .. } => raw.push('\n'),
                    Line::None => {
                        let reason = "a confer line without a speaker".to_owned();
                        *line = Line::Unplaced { raw: String::new(), reason };
                    }
                }
                true
            }
            Decision::Yes(Speaker { named, len }) => {
                let prefix = self.buf[lead..lead + len].to_owned();
                self.buf.drain(..lead + len);
                let next = match self.who_named(&named) {
                    Who::OnStage(speaker) => Line::Entry { speaker, prefix, text: String::new() },
                    Who::Off(reason) => Line::Unplaced { raw: prefix, reason },
                };
                let State::Confer { line, line_start } = &mut self.state else { return false };
                *line_start = false;
                let done = std::mem::replace(line, next);
                self.emit_line(done);
                true
            }
        }
    }

    /// Inside a confer line whose speaker is known: text up to the newline
    /// belongs to it, unless the confer closes or an answer opens first.
    fn confer_mid_line(&mut self, at_end: bool) -> bool {
        let stop = self.buf.find(['\n', '<']);
        let upto = stop.unwrap_or(self.buf.len());
        let piece: String = self.buf.drain(..upto).collect();
        self.push_line_text(&piece);
        if stop.is_none() {
            return false;
        }
        if self.buf.starts_with('\n') {
            self.buf.drain(..1);
            if let State::Confer { line_start, .. } = &mut self.state {
                *line_start = true;
            }
            return true;
        }
        match lexicon::marker(&self.buf, &[Marker::CloseConfer, Marker::OpenAnswer]) {
            Decision::Yes((Marker::CloseConfer, len)) => {
                self.buf.drain(..len);
                self.close_confer();
            }
            Decision::Yes(_) => self.close_confer(),
            Decision::Partial if !at_end => return false,
            _ => {
                self.buf.drain(..1);
                self.push_line_text("<");
            }
        }
        true
    }

    fn push_line_text(&mut self, piece: &str) {
        if let State::Confer { line, .. } = &mut self.state {
            match line {
                Line::Entry { text, .. } => text.push_str(piece),
                Line::Unplaced { raw, .. } => raw.push_str(piece),
                Line::None => {}
            }
        }
    }

    fn emit_line(&mut self, line: Line) {
        match line {
            Line::None => {}
            Line::Entry { speaker, text, .. } => {
                // `**Ada:** yes` leaves the emphasis that closed the name.
                let text = text.replace("\r\n", "\n");
                let text = text.trim().trim_start_matches(['*', '_']).trim();
                if !text.is_empty() {
                    self.out.push(Parsed::Deliberation { speaker, text: text.to_owned() });
                }
            }
            Line::Unplaced { raw, reason } => self.unparsed(raw, &reason),
        }
    }

    fn close_confer(&mut self) {
        if let State::Confer { line, .. } = std::mem::replace(&mut self.state, State::Outside) {
            self.emit_line(line);
        }
    }

    /// Inside a speak: text streams out as deltas up to `</speak>`, or up to
    /// the next answer's opening tag if the model forgot to close this one.
    fn step_speak(&mut self, at_end: bool) -> bool {
        let stop = self.buf.find('<');
        let upto = stop.unwrap_or(self.buf.len());
        if upto > 0 {
            let piece: String = self.buf.drain(..upto).collect();
            self.push_speak_text(piece);
        }
        if stop.is_none() {
            return false;
        }
        match lexicon::marker(&self.buf, &[Marker::CloseSpeak, Marker::OpenAnswer]) {
            Decision::Yes((Marker::CloseSpeak, len)) => {
                self.buf.drain(..len);
                self.close_speak();
            }
            Decision::Yes(_) => self.close_speak(),
            Decision::Partial if !at_end => return false,
            _ => {
                self.buf.drain(..1);
                self.push_speak_text("<".to_owned());
            }
        }
        true
    }

    fn push_speak_text(&mut self, piece: String) {
        let State::Speak { who, text, .. } = &mut self.state else { return };
        text.push_str(&piece);
        if let Who::OnStage(speaker) = who {
            self.out.push(Parsed::SpeakDelta { speaker: speaker.clone(), text: piece });
        }
    }

    fn close_speak(&mut self) {
        if let State::Speak { who, open, text } = std::mem::replace(&mut self.state, State::Outside) {
            match who {
                Who::OnStage(speaker) if text.trim().is_empty() => self.out.push(Parsed::Pass { speaker }),
                Who::OnStage(speaker) => self.out.push(Parsed::Speak { speaker, text: text.trim().to_owned() }),
                Who::Off(reason) => self.unparsed(format!("{open}{text}</speak>"), &reason),
            }
        }
    }
}
