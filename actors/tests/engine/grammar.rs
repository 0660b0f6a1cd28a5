//! The per-turn grammar, read and run by a GBNF matcher: it accepts every
//! output the rehearsal engine writes for such a turn, and rejects outputs
//! that break the format's rules.

use panel_actors::event::TurnMode;
use panel_actors::grammar::{Bounds, bounds, estimated_tokens, for_turn};
use panel_actors::id::SessionId;
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::provider::{Brief, Task};
use std::time::Duration;

use crate::gbnf::Grammar;
use crate::helpers::{character, cid, templates};

fn grammar(mode: TurnMode, cast: &[&str], to: Option<&str>) -> Grammar {
    let names: Vec<String> = cast.iter().map(|c| character(c).name).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let to = to.map(|c| character(c).name);
    let text = for_turn(&templates().format, mode, &names, to.as_deref(), 4, 4096);
    Grammar::parse(&text).unwrap_or_else(|e| panic!("malformed grammar: {e}\n{text}"))
}

/// The shipped display names of `cast`.
fn names_of(cast: &[&str]) -> Vec<String> {
    cast.iter().map(|c| character(c).name).collect()
}

fn rehearsal_output(session: &str, turn: u32, mode: TurnMode, cast: &[&str], to: Option<&str>) -> String {
    let brief = Brief {
        session: SessionId::parse(session).unwrap(),
        turn,
        mode,
        cast: cast.iter().map(|c| character(c)).collect(),
        to: to.map(cid),
        floor: format!("Question {turn}: what fails first, and who notices?"),
        depth: 4,
        task: Task::Turn,
        seed: 7,
    };
    Rehearsal::embedded(Duration::ZERO).compose(&brief)
}

#[test]
fn a_panel_turns_grammar_accepts_every_rehearsal_output_for_that_turn() {
    for cast in [&["ada", "byron"][..], &["ada", "byron", "cleo"], &["ada", "otto", "iris", "maren", "cleo"]] {
        let g = grammar(TurnMode::Panel, cast, None);
        for turn in 1..=40 {
            let out = rehearsal_output(&format!("s{}", cast.len()), turn, TurnMode::Panel, cast, None);
            assert!(g.accepts(&out), "turn {turn} of {cast:?} rejected:\n{out}");
        }
    }
}

#[test]
fn addressed_and_one_to_one_grammars_accept_the_rehearsal_engines_single_speak() {
    let g = grammar(TurnMode::Addressed, &["ada", "byron", "cleo"], Some("byron"));
    let solo = grammar(TurnMode::OneToOne, &["cleo"], None);
    for turn in 1..=20 {
        let out = rehearsal_output("a", turn, TurnMode::Addressed, &["ada", "byron", "cleo"], Some("byron"));
        assert!(g.accepts(&out), "{out}");
        let out = rehearsal_output("o", turn, TurnMode::OneToOne, &["cleo"], None);
        assert!(solo.accepts(&out), "{out}");
    }
}

#[test]
fn a_panel_turns_grammar_rejects_what_breaks_the_rules() {
    let g = grammar(TurnMode::Panel, &["ada", "byron", "cleo"], None);
    let confer = "<confer>\nAda: Mine.\nByron: Go on.\n</confer>\n";
    let ok = format!(
        "{confer}<speak who=\"Ada\">One.</speak>\n<pass who=\"Cleo\"/>\n<speak who=\"Byron\">Two,\nover lines.</speak>\n"
    );
    assert!(g.accepts(&ok), "the well-formed turn is accepted");
    let broken = [
        (
            "an unknown name in the confer",
            "<confer>\nZed: Mine.\n</confer>\n<speak who=\"Ada\">One.</speak>\n".to_owned(),
        ),
        ("an unknown speaker", format!("{confer}<speak who=\"Zed\">One.</speak>\n")),
        (
            "a second speak by one character",
            format!("{confer}<speak who=\"Ada\">One.</speak>\n<speak who=\"Ada\">Again.</speak>\n"),
        ),
        ("a pass after a speak by the same", format!("{confer}<speak who=\"Ada\">One.</speak>\n<pass who=\"Ada\"/>\n")),
        ("a confer after a speak", format!("{confer}<speak who=\"Ada\">One.</speak>\n{confer}")),
        ("no speak at all", format!("{confer}<pass who=\"Ada\"/>\n<pass who=\"Byron\"/>\n")),
        ("no confer", "<speak who=\"Ada\">One.</speak>\n".to_owned()),
        ("speak text opening a tag", format!("{confer}<speak who=\"Ada\">One <b>bold</b>.</speak>\n")),
        (
            "a confer line over two lines",
            "<confer>\nAda: Mine\nand more.\n</confer>\n<speak who=\"Ada\">One.</speak>\n".to_owned(),
        ),
        ("prose outside the tags", format!("{confer}Well then.\n<speak who=\"Ada\">One.</speak>\n")),
        (
            "a confer of more than twice the depth",
            format!("<confer>\n{}</confer>\n<speak who=\"Ada\">One.</speak>\n", "Ada: x\n".repeat(9)),
        ),
    ];
    for (what, text) in broken {
        assert!(!g.accepts(&text), "{what} was accepted:\n{text}");
    }
}

#[test]
fn an_addressed_turns_grammar_admits_exactly_one_speak_by_the_addressee() {
    let g = grammar(TurnMode::Addressed, &["ada", "byron", "cleo"], Some("byron"));
    assert!(g.accepts("<speak who=\"Byron\">Just me.</speak>\n"));
    assert!(g.accepts("<speak who=\"Byron\">Just me.</speak>"), "the final newline is optional");
    for broken in [
        "<speak who=\"Ada\">Not me.</speak>\n",
        "<confer>\nByron: Mine.\n</confer>\n<speak who=\"Byron\">Me.</speak>\n",
        "<speak who=\"Byron\">Me.</speak>\n<speak who=\"Byron\">Again.</speak>\n",
        "<pass who=\"Byron\"/>\n",
    ] {
        assert!(!g.accepts(broken), "accepted: {broken}");
    }
}

#[test]
fn the_grammar_uses_the_format_words_of_the_shipped_templates() {
    let f = templates().format;
    let text = for_turn(&f, TurnMode::Panel, &["Ada", "Byron"], None, 4, 4096);
    assert!(text.contains("\"<confer>\""), "{text}");
    assert!(text.contains("\"<speak who=\\\"Ada\\\">\""), "{text}");
    // Other words make another grammar: the format's words are its one source.
    let mut other = f.clone();
    other.confer_open = "<huddle>".into();
    other.confer_close = "</huddle>".into();
    let g = Grammar::parse(&for_turn(&other, TurnMode::Panel, &["Ada", "Byron"], None, 4, 4096)).unwrap();
    assert!(g.accepts("<huddle>\nAda: x\n</huddle>\n<speak who=\"Ada\">y</speak>\n"));
    assert!(!g.accepts("<confer>\nAda: x\n</confer>\n<speak who=\"Ada\">y</speak>\n"));
}

#[test]
fn the_gbnf_reader_refuses_malformed_grammars() {
    for bad in ["root ::= \"a", "root ::= missing", "root ::= ( \"a\"", "nope", "root ::= [a", "root ::= \"a\"{3,1}"] {
        assert!(Grammar::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_speak_that_runs_on_past_its_line_limit_is_not_admitted() {
    let g = grammar(TurnMode::OneToOne, &["ada"], None);
    let lines = |n: usize| (0..n).map(|i| format!("Line {i}.")).collect::<Vec<_>>().join("\n");
    let speak = |n: usize| format!("<speak who=\"Ada\">{}</speak>\n", lines(n));
    let b = bounds(&templates().format, TurnMode::OneToOne, &["Ada"], None, 4, 4096);
    assert_eq!((b.speak_lines, b.speak_line), (panel_actors::grammar::SPEAK_LINES, panel_actors::grammar::SPEAK_LINE));
    assert!(g.accepts(&speak(panel_actors::grammar::SPEAK_LINES)), "paragraphs are fine");
    assert!(g.accepts("<speak who=\"Ada\">\nA line after a break.\n</speak>\n"));
    assert!(!g.accepts(&speak(panel_actors::grammar::SPEAK_LINES + 1)), "a speak repeating itself must close");
    let long = format!("<speak who=\"Ada\">{}</speak>\n", "x".repeat(panel_actors::grammar::SPEAK_LINE + 1));
    assert!(!g.accepts(&long), "and so must one line that runs on");
}

#[test]
fn a_speak_line_may_not_open_with_an_on_stage_name_and_a_colon() {
    let panel = grammar(TurnMode::Panel, &["ada", "byron", "cleo"], None);
    let addressed = grammar(TurnMode::Addressed, &["ada", "byron", "cleo"], Some("ada"));
    let confer = "<confer>\nAda: Mine.\n</confer>\n";
    let in_panel = |text: &str| format!("{confer}<speak who=\"Ada\">{text}</speak>\n");
    let in_addressed = |text: &str| format!("<speak who=\"Ada\">{text}</speak>\n");
    for bleed in [
        "Cleo: I would never.",
        "Fine.\nCleo: I would never.",
        "Fine.\n\nBYRON: Nor I.",
        "cleo : lower case, a blank before the colon",
        "Ada: speaking of myself as a script would.",
    ] {
        assert!(!panel.accepts(&in_panel(bleed)), "a panel speak carried {bleed:?}");
        assert!(!addressed.accepts(&in_addressed(bleed)), "an addressed speak carried {bleed:?}");
    }
    for fine in [
        "Cleo",
        "Cleo said no: twice.",
        "Cleopatra: not on stage.",
        "Clever: a word, not a name.",
        "Note: a label.",
        "Byron, Cleo: both of you.",
        "We agree, Cleo: yes.",
        "Ada\nByron and I\nC",
    ] {
        assert!(panel.accepts(&in_panel(fine)), "a panel speak refused {fine:?}");
        assert!(addressed.accepts(&in_addressed(fine)), "an addressed speak refused {fine:?}");
    }
}

#[test]
fn the_name_guard_holds_for_names_that_share_prefixes_or_carry_punctuation() {
    let names = ["Ada", "Adam", "Dr. O'Hara-Lee [II]", "Émile"];
    let text = for_turn(&templates().format, TurnMode::Panel, &names, None, 4, 4096);
    let g = Grammar::parse(&text).unwrap_or_else(|e| panic!("malformed grammar: {e}\n{text}"));
    let speak = |line: &str| format!("<confer>\nAda: x\n</confer>\n<speak who=\"Ada\">{line}</speak>\n");
    for bleed in
        ["Adam: hi", "ada: hi", "Dr. O'Hara-Lee [II]: hi", "dr. o'hara-lee [ii] : hi", "Émile: hi", "ÉMILE: hi"]
    {
        assert!(!g.accepts(&speak(bleed)), "accepted {bleed:?}");
    }
    for fine in ["Adams: hi", "Ad: hi", "Dr. O'Hara: hi", "Dr. O'Hara-Lee [II] said: hi", "Emile: hi", "[II]: -^\\"] {
        assert!(g.accepts(&speak(fine)), "refused {fine:?}");
    }
}

/// The longest turn `b` admits: every line at its limit, every character speaking.
fn longest_turn(mode: TurnMode, names: &[&str], b: Bounds) -> String {
    let speak = |who: &str| {
        let lines = vec!["x".repeat(b.speak_line); b.speak_lines];
        format!("<speak who=\"{who}\">{}</speak>\n", lines.join("\n"))
    };
    if mode != TurnMode::Panel {
        return speak(names[0]);
    }
    let longest = names.iter().max_by_key(|n| n.len()).unwrap();
    let confer = format!("{longest}: {}\n", "x".repeat(b.confer_line)).repeat(b.confer_lines);
    let speaks: String = names.iter().map(|n| speak(n)).collect();
    format!("<confer>\n{confer}</confer>\n{speaks}")
}

#[test]
fn the_grammars_bounds_come_from_max_tokens_and_its_longest_turn_fits_them() {
    let f = templates().format;
    for (mode, cast) in [
        (TurnMode::Panel, &["ada", "byron", "cleo"][..]),
        (TurnMode::Panel, &["ada", "otto", "iris", "maren", "cleo"]),
        (TurnMode::OneToOne, &["cleo"]),
    ] {
        let names = names_of(cast);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut previous: Option<Bounds> = None;
        for max_tokens in [220, 400, 1000, 4096] {
            let b = bounds(&f, mode, &names, None, 4, max_tokens);
            let g = Grammar::parse(&for_turn(&f, mode, &names, None, 4, max_tokens)).unwrap();
            let longest = longest_turn(mode, &names, b);
            assert!(g.accepts(&longest), "{mode:?} at {max_tokens}: the longest turn by {b:?} is refused:\n{longest}");
            let estimate = estimated_tokens(&longest);
            assert!(estimate <= max_tokens as usize, "{mode:?} {cast:?}: {estimate} tokens > {max_tokens} ({b:?})");
            // The bounds are the grammar's own: one character more is refused.
            let over = Bounds { speak_line: b.speak_line + 1, ..b };
            assert!(!g.accepts(&longest_turn(mode, &names, over)), "a speak line past {b:?} was admitted");
            if mode == TurnMode::Panel {
                let over = Bounds { confer_line: b.confer_line + 1, ..b };
                assert!(!g.accepts(&longest_turn(mode, &names, over)), "a confer line past {b:?} was admitted");
            }
            if let Some(p) = previous {
                let total = |b: Bounds| (b.speak_lines * b.speak_line, b.confer_lines * b.confer_line);
                let (now, before) = (total(b), total(p));
                assert!(now.0 > before.0 && now.1 >= before.1, "a larger budget bought no more: {p:?} → {b:?}");
            }
            previous = Some(b);
        }
    }
    // 220 tokens among three speakers leave each a line of prose, not pages.
    let names = names_of(&["ada", "byron", "cleo"]);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let small = bounds(&f, TurnMode::Panel, &names, None, 4, 220);
    assert!(small.speak_lines * small.speak_line <= 150 && small.speak_line >= 40, "{small:?}");
    assert!(small.confer_lines * small.confer_line <= 100, "{small:?}");
}
