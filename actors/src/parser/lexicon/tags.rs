//! The tags in the model's output: the markers that end a speak or a confer
//! or open the next answer (`</SPEAK >`, `<pass …`), matched on a prefix as
//! bytes arrive, and whole tags (`<speak who="Ada">`) read by attribute.

use super::{Cursor, Decision, Step};

/// The tags that end a speak or a confer, or open the next answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `</speak>`, any case, blanks allowed before `>`.
    CloseSpeak,
    /// `</confer>`.
    CloseConfer,
    /// `<speak …` or `<pass …`: the next answer begins (not consumed).
    OpenAnswer,
}

/// Whether `s` (starting at a `<`) is one of `wanted`, and its length.
pub fn marker(s: &str, wanted: &[Marker]) -> Decision<(Marker, usize)> {
    let mut partial = false;
    for &m in wanted {
        let mut c = Cursor { s, at: 0, complete: false };
        let step = match m {
            Marker::CloseSpeak => close_tag(&mut c, "speak"),
            Marker::CloseConfer => close_tag(&mut c, "confer"),
            Marker::OpenAnswer => open_answer(&mut c),
        };
        match step {
            Step::Done(()) => return Decision::Yes((m, c.at)),
            Step::More => partial = true,
            Step::Fail => {}
        }
    }
    if partial { Decision::Partial } else { Decision::No }
}

fn close_tag(c: &mut Cursor, name: &str) -> Step<()> {
    c.literal("</").and_then(|()| c.literal(name)).and_then(|()| {
        c.skip_blanks();
        c.literal(">")
    })
}

fn open_answer(c: &mut Cursor) -> Step<()> {
    if let s @ (Step::Fail | Step::More) = c.literal("<") {
        return s;
    }
    let save = c.at;
    let named = match c.literal("speak") {
        Step::Done(()) => Step::Done(()),
        Step::More => return Step::More,
        Step::Fail => {
            c.at = save;
            c.literal("pass")
        }
    };
    named.and_then(|()| match c.peek() {
        None => Step::More,
        Some(' ' | '\t' | '\n' | '\r' | '>' | '/') => {
            // Only the name is consumed: the caller leaves the tag for later.
            Step::Done(())
        }
        Some(_) => Step::Fail,
    })
}

/// A whole tag, `<name attr="v" …>`, `</name>` or `<name … />`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Lowercased; a closing tag's name starts with `/`.
    pub name: String,
    pub self_closing: bool,
    attrs: Vec<(String, String)>,
}

impl Tag {
    /// Parses `<…>`; `None` if it is not tag-shaped.
    pub fn parse(tag: &str) -> Option<Self> {
        let inner = tag.strip_prefix('<')?.strip_suffix('>')?.trim();
        let (inner, self_closing) = match inner.strip_suffix('/') {
            Some(i) => (i.trim_end(), true),
            None => (inner, false),
        };
        let (name, mut rest) = match inner.find(char::is_whitespace) {
            Some(i) => (&inner[..i], inner[i..].trim_start()),
            None => (inner, ""),
        };
        let name = match name.strip_prefix('/') {
            Some(n) => format!("/{}", n.trim().to_ascii_lowercase()),
            None => name.to_ascii_lowercase(),
        };
        let mut attrs = Vec::new();
        while !rest.is_empty() {
            let key_len = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
            let key = rest[..key_len].to_ascii_lowercase();
            rest = rest[key_len..].trim_start();
            let Some(after_eq) = rest.strip_prefix('=') else {
                attrs.push((key, String::new()));
                continue;
            };
            let after_eq = after_eq.trim_start();
            let (value, next) = match after_eq.chars().next() {
                Some(q @ ('"' | '\'')) => match after_eq[1..].find(q) {
                    Some(end) => (&after_eq[1..=end], &after_eq[end + 2..]),
                    None => (&after_eq[1..], ""),
                },
                _ => {
                    let end = after_eq.find(char::is_whitespace).unwrap_or(after_eq.len());
                    (&after_eq[..end], &after_eq[end..])
                }
            };
            attrs.push((key, value.to_owned()));
            rest = next.trim_start();
        }
        Some(Self { name, self_closing, attrs })
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_match_any_case_and_tolerate_blanks() {
        let all = [Marker::CloseSpeak, Marker::CloseConfer, Marker::OpenAnswer];
        assert_eq!(marker("</Speak >x", &all), Decision::Yes((Marker::CloseSpeak, 9)));
        assert_eq!(marker("</CONFER>", &all), Decision::Yes((Marker::CloseConfer, 9)));
        assert_eq!(marker("<Pass who", &all), Decision::Yes((Marker::OpenAnswer, 5)));
        assert_eq!(marker("</spe", &all), Decision::Partial);
        assert_eq!(marker("<b>", &all), Decision::No);
        assert_eq!(marker("<speaker>", &all), Decision::No);
    }

    #[test]
    fn tags_are_read_by_attribute_name_in_any_case() {
        let t = Tag::parse("<Speak tone=\"x\" WHO='Ada'>").unwrap();
        assert_eq!((t.name.as_str(), t.attr("who"), t.attr("tone")), ("speak", Some("Ada"), Some("x")));
        let t = Tag::parse("< /Speak >").unwrap();
        assert_eq!(t.name, "/speak");
        let t = Tag::parse("<pass who=Cleo/>").unwrap();
        assert!(t.self_closing);
        assert_eq!(t.attr("who"), Some("Cleo"));
    }
}
