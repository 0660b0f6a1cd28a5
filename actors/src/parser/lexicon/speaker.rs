//! Speaker prefixes (`Ada:`, `- **Byron** (dryly):`) and the rule for what a
//! display name may be.
//!
//! The roster checks names with [`check_name`], the same rule the prefix
//! matcher relies on, so every name the roster accepts is one the parser can
//! find at the start of a line. Like every matcher in the lexicon, [`speaker`]
//! answers on a prefix: `Partial` until more input could not change it.

use super::{Cursor, Decision, Step};

/// Longest display name, in characters.
pub const MAX_NAME: usize = 48;
/// Longest parenthetical aside after a speaker's name: `Byron (dryly):`.
const MAX_ASIDE: usize = 80;
/// Words of a speaker prefix the parser does not know (`Zed:`, `Dr Who:`).
const MAX_UNKNOWN_WORDS: usize = 4;
/// Lower-case words that may sit inside a name (`Sir Robert de Montfort`).
const PARTICLES: [&str; 18] = [
    "de", "del", "della", "van", "von", "der", "den", "la", "le", "du", "da", "di", "al", "bin", "ibn", "of", "the",
    "y",
];

/// Characters a name may not hold: they are the output format's own syntax.
const FORBIDDEN: [char; 11] = ['<', '>', '"', ':', '(', ')', '*', '_', '[', ']', '#'];

/// Why a display name cannot be used, or `Ok` if it can.
pub fn check_name(name: &str) -> Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("the name is empty".into());
    }
    if trimmed.chars().count() > MAX_NAME {
        return Err(format!("the name is longer than {MAX_NAME} characters"));
    }
    if let Some(c) = trimmed.chars().find(|c| FORBIDDEN.contains(c) || c.is_control()) {
        return Err(format!("the name may not contain {c:?}: it is part of the output format"));
    }
    if !trimmed.chars().any(char::is_alphabetic) {
        return Err("the name needs at least one letter".into());
    }
    if trimmed.starts_with(['-', '•', '–', '—', '+']) {
        return Err("the name may not start with a bullet".into());
    }
    Ok(())
}

/// A known name: lowercased, and the index of whoever it names.
#[derive(Debug, Clone)]
pub struct KnownName {
    pub lower: String,
    pub who: usize,
}

/// Who a speaker prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// One of the known names, by the index given with it.
    Known(usize),
    /// A name-like word or two the parser does not know.
    Unknown(String),
}

/// A recognised speaker prefix: who, and how many bytes it covers, up to
/// and including the colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speaker {
    pub named: Named,
    pub len: usize,
}

/// A list bullet: `- `, `* `, `• `, `1. `, `2) `. Optional.
fn bullet(c: &mut Cursor) -> Step<()> {
    let start = c.at;
    let rest = c.rest();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let marker = if digits > 0 {
        match rest.as_bytes().get(digits) {
            None => return c.out_of_input(),
            Some(b'.' | b')') => digits + 1,
            Some(_) => return Step::Done(()),
        }
    } else {
        match rest.chars().next() {
            None => return c.out_of_input(),
            Some(ch @ ('-' | '*' | '•' | '–' | '—' | '+')) => ch.len_utf8(),
            Some(_) => return Step::Done(()),
        }
    };
    // A bullet needs a space after it; `*Ada*` is emphasis, not a bullet.
    match rest[marker..].chars().next() {
        None => c.out_of_input(),
        Some(' ' | '\t') => {
            c.at = start + marker;
            c.skip_blanks();
            Step::Done(())
        }
        Some(_) => Step::Done(()),
    }
}

/// What follows a name up to and including the colon: emphasis, an aside in
/// parentheses, emphasis again, then `:`.
fn after_name(c: &mut Cursor) -> Step<()> {
    if let s @ (Step::Fail | Step::More) = c.emphasis() {
        return s;
    }
    c.skip_blanks();
    if c.peek() == Some('(') {
        let close = c.rest().find(')');
        let aside = &c.rest()[1..close.unwrap_or(c.rest().len())];
        if aside.contains(['(', '\n']) || aside.chars().count() > MAX_ASIDE {
            return Step::Fail;
        }
        match close {
            None => return c.out_of_input(),
            Some(i) => c.at += i + 1,
        }
        c.skip_blanks();
        if let s @ (Step::Fail | Step::More) = c.emphasis() {
            return s;
        }
        c.skip_blanks();
    }
    // The prefix ends at the colon. What follows it (`**Ada:** yes` closes
    // its emphasis there) belongs to the line, and is trimmed when the line
    // is emitted: deciding here would depend on how the text was chunked.
    match c.peek() {
        None => c.out_of_input(),
        Some(':') => {
            c.at += 1;
            Step::Done(())
        }
        Some(_) => Step::Fail,
    }
}

/// Compares the input with a lowercased name, case-insensitively.
fn known(c: &mut Cursor, lower: &str) -> Step<()> {
    let mut input = c.rest().char_indices();
    let mut name = lower.chars();
    loop {
        let Some(want) = name.next() else { return Step::Done(()) };
        let Some((i, got)) = input.next() else { return c.out_of_input() };
        let mut folded = got.to_lowercase();
        if folded.next() != Some(want) {
            return Step::Fail;
        }
        // A character that lowercases to several (rare) must match them all.
        for extra in folded {
            if name.next() != Some(extra) {
                return Step::Fail;
            }
        }
        if name.clone().next().is_none() {
            c.at += i + got.len_utf8();
            return Step::Done(());
        }
    }
}

/// A name-like run of words the parser does not know: capitalised words
/// (particles allowed inside), at most a few, stopping before what follows
/// a name.
fn unknown(c: &mut Cursor) -> Step<String> {
    let start = c.at;
    let mut words = 0;
    loop {
        let word_start = c.at;
        let rest = c.rest();
        let len =
            rest.find(|ch: char| !(ch.is_alphanumeric() || matches!(ch, '\'' | '.' | '-' | '’'))).unwrap_or(rest.len());
        let word = &rest[..len];
        let ended = len < rest.len() || c.complete;
        if word.is_empty() {
            return if ended { Step::Fail } else { Step::More };
        }
        // A lower-case word can only be a particle: settle it as soon as no
        // particle can start the way it does.
        let capitalised = word.chars().next().is_some_and(char::is_uppercase);
        let particle = if ended { PARTICLES.contains(&word) } else { PARTICLES.iter().any(|p| p.starts_with(word)) };
        if !(capitalised || words > 0 && particle) {
            return Step::Fail;
        }
        if !ended {
            return Step::More;
        }
        words += 1;
        c.at += len;
        if words > MAX_UNKNOWN_WORDS || c.at - start > MAX_NAME * 4 {
            return Step::Fail;
        }
        // One space may join another word of the name.
        let after = c.rest();
        if after.starts_with(' ') && after[1..].starts_with(|ch: char| ch.is_alphanumeric()) {
            c.at += 1;
            continue;
        }
        if after.is_empty() || after == " " {
            if !c.complete {
                return Step::More;
            }
            c.at = word_start + len;
        }
        return Step::Done(c.s[start..c.at].to_owned());
    }
}

/// Whether `line` (leading blanks already stripped) starts with a speaker
/// prefix. `complete` says the line is whole; otherwise running out of
/// input answers [`Decision::Partial`].
pub fn speaker(line: &str, complete: bool, names: &[KnownName]) -> Decision<Speaker> {
    let mut c = Cursor { s: line, at: 0, complete };
    let mut partial = match bullet(&mut c) {
        Step::Done(()) => false,
        Step::More => return Decision::Partial,
        Step::Fail => return Decision::No,
    };
    match c.emphasis() {
        Step::Done(()) => {}
        Step::More => return Decision::Partial,
        Step::Fail => return Decision::No,
    }
    let at_name = c.at;
    // The longest known name that forms a whole prefix wins.
    let mut best: Option<(usize, Speaker)> = None;
    for name in names {
        let mut attempt = Cursor { s: line, at: at_name, complete };
        match known(&mut attempt, &name.lower).and_then(|()| after_name(&mut attempt)) {
            Step::Done(()) if best.as_ref().is_none_or(|(l, _)| name.lower.len() > *l) => {
                best = Some((name.lower.len(), Speaker { named: Named::Known(name.who), len: attempt.at }));
            }
            Step::More => partial = true,
            _ => {}
        }
    }
    if let Some((_, found)) = best {
        return Decision::Yes(found);
    }
    if partial {
        return Decision::Partial;
    }
    let mut attempt = Cursor { s: line, at: at_name, complete };
    match unknown(&mut attempt) {
        Step::Done(name) => match after_name(&mut attempt) {
            Step::Done(()) => Decision::Yes(Speaker { named: Named::Unknown(name), len: attempt.at }),
            Step::More => Decision::Partial,
            Step::Fail => Decision::No,
        },
        Step::More => Decision::Partial,
        Step::Fail => Decision::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<KnownName> {
        ["ada", "byron", "sir robert de montfort", "robert"]
            .iter()
            .enumerate()
            .map(|(who, n)| KnownName { lower: n.to_string(), who })
            .collect()
    }

    fn who(line: &str) -> Decision<Named> {
        match speaker(line, true, &names()) {
            Decision::Yes(s) => Decision::Yes(s.named),
            Decision::No => Decision::No,
            Decision::Partial => Decision::Partial,
        }
    }

    #[test]
    fn speaker_prefixes_in_the_shapes_models_write_them() {
        for (line, expected) in [
            ("Ada: yes", Named::Known(0)),
            ("ADA : yes", Named::Known(0)),
            ("**Byron:** yes", Named::Known(1)),
            ("**Byron**: yes", Named::Known(1)),
            ("Byron (dryly): or we could just ship it.", Named::Known(1)),
            ("- Byron: a bullet", Named::Known(1)),
            ("2. Ada: numbered", Named::Known(0)),
            ("* *Ada*: both", Named::Known(0)),
            ("Sir Robert de Montfort: a long name", Named::Known(2)),
            ("Robert: the short one", Named::Known(3)),
            ("Zed: a stranger", Named::Unknown("Zed".into())),
            ("Dr Who (aside): hello", Named::Unknown("Dr Who".into())),
        ] {
            assert_eq!(who(line), Decision::Yes(expected), "{line}");
        }
    }

    #[test]
    fn ordinary_text_is_not_a_speaker() {
        for line in ["and then: what?", "I think so: maybe", "Then we should look: hm", "Ada, Byron: both", "(aside)"] {
            assert_eq!(who(line), Decision::No, "{line}");
        }
    }

    #[test]
    fn a_prefix_is_undecided_until_its_characters_settle_it() {
        let n = names();
        assert_eq!(speaker("Ad", false, &n), Decision::Partial);
        assert_eq!(speaker("Byron (dr", false, &n), Decision::Partial);
        assert_eq!(speaker("an", false, &n), Decision::No, "nothing known starts so, and it is not capitalised");
        assert!(matches!(speaker("Ada:", false, &n), Decision::Yes(_)));
        assert_eq!(speaker("Then we", false, &n), Decision::No);
    }

    #[test]
    fn the_speaker_prefix_ends_at_the_colon() {
        let Decision::Yes(s) = speaker("**Ada:**  yes", true, &names()) else { panic!() };
        assert_eq!(&"**Ada:**  yes"[s.len..], "**  yes");
    }

    #[test]
    fn names_the_roster_accepts_are_names_the_parser_can_read() {
        assert!(check_name("Sir Robert de Montfort").is_ok());
        assert!(check_name("Ada: the engineer").is_err());
        assert!(check_name("- Ada").is_err());
        assert!(check_name("*Ada*").is_err());
        assert!(check_name("1234").is_err());
    }
}
