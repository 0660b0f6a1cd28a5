//! The floor as a room: the humans' lines of one turn, and their seats.
//!
//! A floor line may come from a named seat ("Maya"). A seat is a label the
//! human chose, shown to the model (`From the floor (Maya): "…"`) and to
//! everyone watching; it is not an identity and grants nothing.
//!
//! Invariants:
//! - A seat name is 1–32 characters, trimmed, with no control characters,
//!   and is not the name, id or first name of a character on stage (the
//!   model must never mistake a human for a voice it writes) — compared
//!   as they read, not as they are spelled: case, compatibility forms
//!   (fullwidth letters) and invisible format characters (zero-width
//!   spaces) aside. Nor may a character join under a seat that has spoken.
//! - A turn answers one or more floor lines, in arrival order. At most one
//!   character is addressed in a turn: lines addressed to another wait for
//!   a turn of their own ([`joins`]).

use crate::id::CharacterId;
use crate::roster::Character;

/// Longest seat name, in characters (as for a character's name).
pub const MAX_SEAT: usize = 32;

/// One floor line as the context renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorLine<'a> {
    pub text: &'a str,
    /// The character this line addresses, if any.
    pub to: Option<&'a CharacterId>,
    /// The seat it came from; `None` for the anonymous floor.
    pub seat: Option<&'a str>,
}

impl<'a> FloorLine<'a> {
    /// A line from the anonymous floor.
    pub fn new(text: &'a str, to: Option<&'a CharacterId>) -> Self {
        Self { text, to, seat: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    #[error("a seat name needs 1–{MAX_SEAT} characters")]
    Length,
    #[error("a seat name may not hold control characters")]
    Control,
    #[error("{0:?} is a character on stage; pick another seat name")]
    OnStage(String),
}

/// How a name reads, for telling names apart: compatibility-normalised
/// (NFKC), without the characters that show nothing, in lower case.
fn reading(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    name.nfkc().filter(|&c| !shows_nothing(c)).collect::<String>().trim().to_lowercase()
}

/// Unicode's default-ignorable code points (DerivedCoreProperties.txt,
/// `Default_Ignorable_Code_Point`): the format characters, and the few
/// others that render as nothing (variation selectors, fillers).
fn shows_nothing(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    const OTHERS: &[(char, char)] = &[
        ('\u{034F}', '\u{034F}'),
        ('\u{115F}', '\u{1160}'),
        ('\u{17B4}', '\u{17B5}'),
        ('\u{180B}', '\u{180F}'),
        ('\u{3164}', '\u{3164}'),
        ('\u{FE00}', '\u{FE0F}'),
        ('\u{FFA0}', '\u{FFA0}'),
        ('\u{FFF0}', '\u{FFF8}'),
        ('\u{E0000}', '\u{E0FFF}'),
    ];
    c.general_category() == GeneralCategory::Format || OTHERS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether a seat reading `seat` (see [`reading`]) would pass for the
/// character with this id and name.
fn passes_for(seat: &str, id: &str, name: &str) -> bool {
    let name = reading(name);
    let first = name.split_whitespace().next().unwrap_or_default();
    name == seat || reading(id) == seat || first == seat
}

/// The first of `seats` that would pass for character `c`, if any.
pub fn seat_taken<'s>(c: &Character, seats: impl IntoIterator<Item = &'s str>) -> Option<&'s str> {
    seats.into_iter().find(|seat| passes_for(&reading(seat), c.id.as_str(), &c.name))
}

/// Checks a seat name against the cast on stage and returns it trimmed.
pub fn check_seat<'c>(name: &str, on_stage: impl IntoIterator<Item = &'c Character>) -> Result<String, SeatError> {
    check_seat_named(name, on_stage.into_iter().map(|c| (c.id.as_str(), c.name.as_str())))
}

/// [`check_seat`], against the cast on stage as (id, name) pairs.
pub fn check_seat_named<'c>(
    name: &str,
    on_stage: impl IntoIterator<Item = (&'c str, &'c str)>,
) -> Result<String, SeatError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_SEAT {
        return Err(SeatError::Length);
    }
    if name.chars().any(char::is_control) {
        return Err(SeatError::Control);
    }
    let wanted = reading(name);
    if wanted.is_empty() {
        return Err(SeatError::Length);
    }
    if on_stage.into_iter().any(|(id, cast_name)| passes_for(&wanted, id, cast_name)) {
        return Err(SeatError::OnStage(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// Whether a waiting line may be answered in the same turn as `batch`:
/// lines are heard together in a room (some seat has a name), and a turn
/// addresses at most one character.
pub fn joins(batch_to: Option<&CharacterId>, line_to: Option<&CharacterId>) -> bool {
    match (batch_to, line_to) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The floor of one turn as one text: its lines, each after its seat's name
/// when it has one. What a brief, a transcript or a comparison shows as
/// "the floor line" of a turn heard from a room.
pub fn as_one<'a>(lines: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let lines: Vec<_> = lines.into_iter().collect();
    if let [(text, None)] = lines.as_slice() {
        return (*text).to_owned();
    }
    let shown: Vec<String> = lines
        .iter()
        .map(|(text, seat)| match seat {
            Some(seat) => format!("{seat}: {text}"),
            None => (*text).to_owned(),
        })
        .collect();
    shown.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Character {
        Character {
            id: CharacterId::parse("ada").unwrap(),
            name: "Ada Lovelace".into(),
            tagline: String::new(),
            colour: "#000000".into(),
            farewell: None,
            materials: String::new(),
            avatar: None,
        }
    }

    #[test]
    fn a_seat_name_is_trimmed_and_kept() {
        assert_eq!(check_seat("  Maya ", [&ada()]).unwrap(), "Maya");
    }

    #[test]
    fn a_seat_name_of_a_character_on_stage_or_with_control_characters_is_refused() {
        for name in ["Ada Lovelace", "ada", "ADA", "Ada"] {
            assert_eq!(check_seat(name, [&ada()]), Err(SeatError::OnStage(name.to_owned())), "{name}");
        }
        assert_eq!(check_seat("Ma\u{1b}[2Jya", [&ada()]), Err(SeatError::Control));
        assert_eq!(check_seat("Ma\nya", [&ada()]), Err(SeatError::Control));
        assert_eq!(check_seat("   ", [&ada()]), Err(SeatError::Length));
        assert_eq!(check_seat(&"m".repeat(33), [&ada()]), Err(SeatError::Length));
        assert!(check_seat(&"é".repeat(32), [&ada()]).is_ok(), "characters, not bytes");
    }

    #[test]
    fn a_seat_that_only_looks_like_a_cast_name_is_refused_as_one() {
        for name in ["A\u{200b}da", "\u{ff21}da", "Ada\u{2060}", "\u{feff}ADA LOVELACE", "Ada\u{fe0f}", "\u{3164}Ada"] {
            assert_eq!(check_seat(name, [&ada()]), Err(SeatError::OnStage(name.trim().to_owned())), "{name:?}");
        }
        assert_eq!(check_seat("\u{200b}\u{200d}", [&ada()]), Err(SeatError::Length), "nothing that reads");
        assert!(check_seat("👩\u{200d}🔬 Maya", [&ada()]).is_ok(), "an emoji's joiner is not refused");
    }

    #[test]
    fn a_character_cannot_join_under_a_seat_that_has_spoken() {
        assert_eq!(seat_taken(&ada(), ["Maya", "ada"]), Some("ada"));
        assert_eq!(seat_taken(&ada(), ["Ａda Lovelace"]), Some("Ａda Lovelace"));
        assert_eq!(seat_taken(&ada(), ["Maya", "Adam"]), None);
    }

    #[test]
    fn a_turn_addresses_at_most_one_character() {
        let (a, b) = (CharacterId::parse("ada").unwrap(), CharacterId::parse("byron").unwrap());
        assert!(joins(None, Some(&a)) && joins(Some(&a), None) && joins(Some(&a), Some(&a)));
        assert!(!joins(Some(&a), Some(&b)));
    }

    #[test]
    fn one_anonymous_line_is_shown_as_it_is_and_a_room_by_seat() {
        assert_eq!(as_one([("Why?", None)]), "Why?");
        assert_eq!(as_one([("Why?", Some("Maya")), ("How?", None)]), "Maya: Why?\nHow?");
    }
}
