//! The parser: the format as DESIGN.md gives it, its losslessness, and the
//! two properties — chunk invariance and no panics.

use panel_actors::id::CharacterId;
use panel_actors::parser::{Parsed, Parser};
use proptest::prelude::*;

use crate::helpers::cid;

const VALID: &str = "<confer>\nAda: I think what they are really asking is about load.\nByron: No — look at the second half of it.\nIt is about fear.\nAda: Fair. Then you take it first.\n</confer>\n<speak who=\"Byron\">It is fear, dressed as a capacity plan.\nSecond paragraph.</speak>\n<speak who=\"ada\">Byron is half right.</speak>\n<pass who=\"Cleo\"/>\n";

fn parser() -> Parser {
    let on = [(cid("ada"), "Ada"), (cid("byron"), "Byron"), (cid("cleo"), "Cleo")];
    let off = [(cid("iris"), "Iris")];
    Parser::new(on.iter().map(|(i, n)| (i, *n)), off.iter().map(|(i, n)| (i, *n)))
}

fn parse_in(chunks: &[&str]) -> Vec<Parsed> {
    let mut p = parser();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.feed(c));
    }
    out.extend(p.finish());
    out
}

/// The events that are logged: everything but the typing deltas.
fn logged(events: &[Parsed]) -> Vec<Parsed> {
    events.iter().filter(|e| !matches!(e, Parsed::SpeakDelta { .. })).cloned().collect()
}

fn deltas_of(events: &[Parsed], who: &CharacterId) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Parsed::SpeakDelta { speaker, text } if speaker == who => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn delib(who: &str, text: &str) -> Parsed {
    Parsed::Deliberation { speaker: cid(who), text: text.into() }
}

#[test]
fn the_documented_format_parses_into_confer_speaks_and_a_pass() {
    let events = parse_in(&[VALID]);
    assert_eq!(
        logged(&events),
        vec![
            delib("ada", "I think what they are really asking is about load."),
            delib("byron", "No — look at the second half of it.\nIt is about fear."),
            delib("ada", "Fair. Then you take it first."),
            Parsed::Speak {
                speaker: cid("byron"),
                text: "It is fear, dressed as a capacity plan.\nSecond paragraph.".into()
            },
            Parsed::Speak { speaker: cid("ada"), text: "Byron is half right.".into() },
            Parsed::Pass { speaker: cid("cleo") },
        ]
    );
    assert_eq!(deltas_of(&events, &cid("byron")), "It is fear, dressed as a capacity plan.\nSecond paragraph.");
}

#[test]
fn speak_text_streams_as_deltas_before_its_final_event() {
    let mut p = parser();
    assert!(p.feed("<speak who=\"Ada\">Hel").contains(&Parsed::SpeakDelta { speaker: cid("ada"), text: "Hel".into() }));
    // A possible closing tag is held back until it is certain.
    assert_eq!(p.feed("lo</spe"), vec![Parsed::SpeakDelta { speaker: cid("ada"), text: "lo".into() }]);
    assert_eq!(p.feed("ak>"), vec![Parsed::Speak { speaker: cid("ada"), text: "Hello".into() }]);
}

#[test]
fn names_match_case_insensitively_and_markdown_bold_is_tolerated() {
    let events = parse_in(&["<confer>\n**ADA:** yes\ncleo: no\n</confer><PASS WHO='byron' />"]);
    assert_eq!(logged(&events), vec![delib("ada", "yes"), delib("cleo", "no"), Parsed::Pass { speaker: cid("byron") }]);
}

#[test]
fn a_speaker_who_is_not_on_stage_is_reported_not_shown_as_theirs() {
    let events = parse_in(&["<speak who=\"Iris\">I have left.</speak><speak who=\"Zed\">Who?</speak>"]);
    assert!(events.iter().all(|e| !matches!(e, Parsed::Speak { .. } | Parsed::SpeakDelta { .. })), "{events:?}");
    let reasons: Vec<_> = events
        .iter()
        .map(|e| match e {
            Parsed::Unparsed { raw, reason } => (raw.as_str(), reason.as_str()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(reasons[0], ("<speak who=\"Iris\">I have left.</speak>", "Iris is not on stage"));
    assert!(reasons[1].1.contains("unknown speaker"), "{reasons:?}");
}

#[test]
fn text_it_cannot_place_is_kept_as_unparsed() {
    let events = parse_in(&[
        "Sure! Here is the panel:\n<confer>\nPreamble line\nAda: ok\nIris: I'm back\n</confer><aside>hmm</aside><speak who=\"Ada\">cut off",
    ]);
    let unparsed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Parsed::Unparsed { raw, .. } => Some(raw.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        unparsed,
        [
            "Sure! Here is the panel:",
            "Preamble line",
            "Iris: I'm back",
            "<aside>hmm</aside>",
            "<speak who=\"Ada\">cut off"
        ]
    );
    assert!(logged(&events).contains(&delib("ada", "ok")));
}

#[test]
fn an_unclosed_confer_at_the_end_is_kept_and_an_empty_speak_is_a_pass() {
    let events = parse_in(&["<speak who=\"Ada\">  </speak><confer>\nAda: first\nByron: cut sh"]);
    assert_eq!(
        logged(&events),
        vec![
            Parsed::Pass { speaker: cid("ada") },
            delib("ada", "first"),
            Parsed::Unparsed { raw: "Byron: cut sh".into(), reason: "the confer was never closed".into() },
        ]
    );
}

#[test]
fn a_forgotten_closing_tag_does_not_swallow_the_next_block() {
    let events = parse_in(&["<confer>\nAda: go\n<speak who=\"Ada\">One<speak who=\"Byron\">Two</speak>"]);
    assert_eq!(
        logged(&events),
        vec![
            delib("ada", "go"),
            Parsed::Speak { speaker: cid("ada"), text: "One".into() },
            Parsed::Speak { speaker: cid("byron"), text: "Two".into() },
        ]
    );
}

#[test]
fn a_speaker_with_an_aside_a_bullet_or_a_long_name_keeps_their_own_line() {
    let on = [(cid("ada"), "Ada"), (cid("byron"), "Byron"), (cid("robert"), "Sir Robert de Montfort")];
    let mut p = Parser::new(on.iter().map(|(i, n)| (i, *n)), []);
    let mut events = p.feed(
        "<confer>\nAda: ship it?\nByron (dryly): or we could just ship it.\n- Byron: a bullet\n\
         Sir Robert de Montfort: I object.\n2. **Ada:** noted\n</confer>",
    );
    events.extend(p.finish());
    assert_eq!(
        logged(&events),
        vec![
            delib("ada", "ship it?"),
            delib("byron", "or we could just ship it."),
            delib("byron", "a bullet"),
            delib("robert", "I object."),
            delib("ada", "noted"),
        ]
    );
}

#[test]
fn tags_match_in_any_case_with_blanks_and_attributes_in_any_order() {
    let events = parse_in(&[
        "<CONFER>\nAda: go\n</CONFER >\n<Speak who=\"Ada\">Hi.</Speak>\n<speak tone=\"x\" WHO='Byron'>Yo.</speak >",
    ]);
    assert_eq!(
        logged(&events),
        vec![
            delib("ada", "go"),
            Parsed::Speak { speaker: cid("ada"), text: "Hi.".into() },
            Parsed::Speak { speaker: cid("byron"), text: "Yo.".into() },
        ]
    );
    assert_eq!(deltas_of(&events, &cid("ada")), "Hi.", "Byron's text never streams into Ada's bubble");
}

#[test]
fn a_confer_line_is_emitted_once_the_next_lines_first_characters_settle_it() {
    let mut p = parser();
    assert_eq!(p.feed("<confer>\nAda: one\n"), vec![], "the next line might continue it");
    assert_eq!(p.feed("By"), vec![], "\"By\" could still be Byron's name");
    assert_eq!(p.feed("ron:"), vec![delib("ada", "one")], "a new speaker: Ada's line has ended");
    assert_eq!(p.feed(" two\nand"), vec![], "\"and\" cannot start a name: it continues Byron's line");
    assert_eq!(p.feed(" more\n</conf"), vec![]);
    assert_eq!(p.feed("er>"), vec![delib("byron", "two\nand more")]);
}

#[test]
fn a_stranger_in_the_confer_is_reported_and_not_credited_to_the_previous_speaker() {
    let events = parse_in(&["<confer>\nAda: one\nZed (aside): two\nByron: three\n</confer>"]);
    assert_eq!(
        logged(&events),
        vec![
            delib("ada", "one"),
            Parsed::Unparsed { raw: "Zed (aside): two".into(), reason: "unknown speaker \"Zed\"".into() },
            delib("byron", "three"),
        ]
    );
}

/// Splits `text` at the given char positions.
fn split_at_chars(text: &str, cuts: &[usize]) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([chars.len()]) {
        pieces.push(chars[start..cut].iter().collect());
        start = cut;
    }
    pieces
}

/// Valid output with a few bytes mutated: the shapes a model gets almost right.
fn mutated_valid() -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                Just("<"),
                Just(">"),
                Just("\n"),
                Just("</speak>"),
                Just("<confer>"),
                Just("é"),
                Just(":"),
                Just(""),
                Just("- "),
                Just("**"),
                Just(" (dryly)"),
                Just("</CONFER >"),
                Just("<Speak who='Ada'>"),
                Just("Zed: "),
                Just("\r\n")
            ],
        ),
        0..6,
    );
    edits.prop_map(|edits| {
        let mut s: Vec<char> = VALID.chars().collect();
        for (at, insert) in edits {
            let i = at.index(s.len());
            s.splice(i..(i + 1).min(s.len()), insert.chars());
        }
        s.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_split_of_the_same_text_gives_the_same_events(text in prop_oneof![mutated_valid(), ".{0,200}"], cuts in prop::collection::vec(any::<usize>(), 0..12)) {
        let whole = parse_in(&[&text]);
        let pieces = split_at_chars(&text, &cuts);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let split = parse_in(&refs);
        prop_assert_eq!(logged(&whole), logged(&split));
        for who in ["ada", "byron", "cleo"] {
            prop_assert_eq!(deltas_of(&whole, &cid(who)), deltas_of(&split, &cid(who)));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_lose_no_text(bytes in prop::collection::vec(any::<u8>(), 0..400), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let pieces = split_at_chars(&text, &cuts);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let events = parse_in(&refs);
        // Every non-whitespace character of the input shows up in some event.
        let kept: usize = events.iter().map(|e| match e {
            Parsed::Unparsed { raw, .. } => raw.chars().filter(|c| !c.is_whitespace()).count(),
            _ => 0,
        }).sum();
        let had = text.chars().filter(|c| !c.is_whitespace()).count();
        let placed = events.iter().any(|e| !matches!(e, Parsed::Unparsed { .. }));
        prop_assert!(placed || kept == had, "lost text: had {} kept {} in {:?}", had, kept, events);
    }
}
