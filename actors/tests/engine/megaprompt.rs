//! The megaprompt: cache marks where DESIGN.md puts them, joins that only
//! add tail bytes, retires that remove nothing.

use panel_actors::floor::FloorLine;
use panel_actors::megaprompt::{CastError, Megaprompt, MegapromptError, Role};
use panel_actors::templates::Renderer;

use crate::helpers::{character, cid, templates};

fn opened(cast: &[&str]) -> Megaprompt {
    let renderer = std::sync::Arc::new(Renderer::new(templates()).unwrap());
    let cast: Vec<_> = cast.iter().map(|c| character(c)).collect();
    let head = renderer.head(4, &cast).unwrap();
    Megaprompt::new(renderer, head, &cast)
}

fn one_turn(m: &mut Megaprompt, floor: &str, reply: &str) {
    m.begin_turn(FloorLine::new(floor, None)).unwrap();
    m.commit_turn(reply).unwrap();
}

/// Everything the prompt holds, flattened, to compare prefixes.
fn flat(m: &Megaprompt) -> String {
    let p = m.prompt();
    let mut s: String = p.system.iter().map(|b| b.text.to_string()).collect();
    for msg in &p.messages {
        s.push_str(&msg.text);
    }
    s
}

#[test]
fn the_head_holds_the_rules_and_the_starting_cast() {
    let m = opened(&["ada", "byron"]);
    assert!(m.head().contains("<character name=\"Ada\">"));
    assert!(m.head().contains("<character name=\"Byron\">"));
    assert!(m.head().contains("about 4 exchanges"), "the confer depth is a template parameter");
    assert!(!m.head().contains("Cleo"));
}

#[test]
fn cache_marks_sit_at_the_end_of_the_head_and_on_the_newest_message() {
    let mut m = opened(&["ada", "byron"]);
    one_turn(&mut m, "first", "<speak who=\"Ada\">one</speak>");
    m.begin_turn(FloorLine::new("second", Some(&cid("byron")))).unwrap();
    let p = m.prompt();
    assert_eq!(p.system.len(), 1);
    assert!(p.system[0].cache);
    let roles: Vec<_> = p.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    let marks: Vec<_> = p.messages.iter().map(|m| m.cache).collect();
    assert_eq!(marks, [false, false, true]);
    assert_eq!(&*p.messages[0].text, "From the floor: \"first\"");
    assert_eq!(&*p.messages[2].text, "From the floor, to Byron: \"second\"");
    assert!(!p.stop_sequences.is_empty());
}

#[test]
fn a_join_adds_only_tail_bytes() {
    let mut m = opened(&["ada", "byron"]);
    one_turn(&mut m, "first", "<speak who=\"Ada\">one</speak>");
    let before = flat(&m);
    let head = m.head().to_owned();
    m.join(&character("cleo")).unwrap();
    m.begin_turn(FloorLine::new("second", None)).unwrap();
    let after = flat(&m);
    assert!(after.starts_with(&before), "everything before the join is unchanged");
    assert_eq!(m.head(), head, "the head never changes");
    let added = &after[before.len()..];
    assert!(added.starts_with("<stage>Cleo joins the panel."), "{added}");
    assert!(added.contains(&character("cleo").materials));
    assert!(added.ends_with("From the floor: \"second\""));
}

#[test]
fn a_retire_removes_nothing_and_a_return_appends_only_a_short_line() {
    let mut m = opened(&["ada", "byron", "cleo"]);
    one_turn(&mut m, "first", "<speak who=\"Cleo\">one</speak>");
    let before = flat(&m);
    m.retire(&cid("cleo"), "History will have the last word anyway.").unwrap();
    m.begin_turn(FloorLine::new("second", None)).unwrap();
    m.commit_turn("<speak who=\"Ada\">two</speak>").unwrap();
    let after = flat(&m);
    assert!(after.starts_with(&before));
    assert!(
        after.contains("Cleo leaves the panel, saying: \"History will have the last word anyway.\" Stop voicing Cleo.")
    );
    assert!(!m.cast().is_on_stage(&cid("cleo")));
    let before_return = flat(&m);
    m.join(&character("cleo")).unwrap();
    m.begin_turn(FloorLine::new("third", None)).unwrap();
    let added = flat(&m)[before_return.len()..].to_owned();
    assert!(added.starts_with("<stage>Cleo returns to the panel."), "{added}");
    assert!(!added.contains(&character("cleo").materials), "a returning character's materials are not repeated");
}

#[test]
fn down_to_one_the_panel_is_told_it_is_a_one_to_one_and_the_last_cannot_leave() {
    let mut m = opened(&["ada", "byron"]);
    m.retire(&cid("byron"), "bye").unwrap();
    m.begin_turn(FloorLine::new("hello", None)).unwrap();
    let text = m.prompt().messages[0].text.to_string();
    assert!(text.contains("Only Ada remains"), "{text}");
    m.commit_turn("<speak who=\"Ada\">hi</speak>").unwrap();
    assert!(matches!(m.retire(&cid("ada"), "bye"), Err(MegapromptError::Cast(CastError::LastCharacter(_)))));
    assert!(matches!(m.join(&character("ada")), Err(MegapromptError::Cast(CastError::AlreadyOnStage(_)))));
}

#[test]
fn an_aborted_turn_leaves_the_context_as_before_but_keeps_its_stage_directions() {
    let mut m = opened(&["ada", "byron"]);
    one_turn(&mut m, "first", "<speak who=\"Ada\">one</speak>");
    let hash = m.prefix_hash();
    m.join(&character("cleo")).unwrap();
    let with_join = m.prefix_hash();
    m.begin_turn(FloorLine::new("lost", None)).unwrap();
    m.abort_turn().unwrap();
    assert_eq!(m.prefix_hash(), with_join);
    assert_ne!(m.prefix_hash(), hash);
    m.begin_turn(FloorLine::new("again", None)).unwrap();
    let last = m.prompt().messages.last().unwrap().text.to_string();
    assert!(last.starts_with("<stage>Cleo joins") && last.ends_with("\"again\"") && !last.contains("lost"), "{last}");
}

#[test]
fn an_empty_output_is_refused_and_rendering_is_deterministic() {
    let mut a = opened(&["ada", "byron"]);
    a.begin_turn(FloorLine::new("x", None)).unwrap();
    assert!(matches!(a.commit_turn("  \n"), Err(MegapromptError::EmptyOutput)));
    let b = {
        let mut b = opened(&["ada", "byron"]);
        b.begin_turn(FloorLine::new("x", None)).unwrap();
        b
    };
    assert_eq!(a.prompt(), b.prompt());
    assert_eq!(a.prefix_hash(), b.prefix_hash());
}

#[test]
fn a_rooms_lines_share_one_message_and_the_room_is_told_once_where_a_seat_first_speaks() {
    let mut m = opened(&["ada", "byron"]);
    one_turn(&mut m, "alone", "<speak who=\"Ada\">one</speak>");
    let byron = cid("byron");
    m.begin_turn(FloorLine::new("anyone?", None)).unwrap();
    m.hear(FloorLine { text: "why?", to: None, seat: Some("Maya") }).unwrap();
    m.hear(FloorLine { text: "and you?", to: Some(&byron), seat: Some("Theo") }).unwrap();
    let last = m.prompt().messages.last().unwrap().text.to_string();
    let expected = [
        "From the floor: \"anyone?\"",
        "<stage>The floor is now several people",
        "From the floor (Maya): \"why?\"",
        "From the floor (Theo), to Byron: \"and you?\"",
    ];
    let at: Vec<usize> = expected.iter().map(|e| last.find(e).unwrap_or_else(|| panic!("{e} in {last}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in arrival order: {last}");
    assert!(m.is_room());
    m.commit_turn("<speak who=\"Byron\">two</speak>").unwrap();
    m.begin_turn(FloorLine { text: "again", to: None, seat: Some("Maya") }).unwrap();
    let last = m.prompt().messages.last().unwrap().text.to_string();
    assert_eq!(last, "From the floor (Maya): \"again\"", "told once");
}

#[test]
fn an_aborted_turn_that_opened_the_room_takes_the_room_back_with_it() {
    let mut m = opened(&["ada", "byron"]);
    one_turn(&mut m, "alone", "<speak who=\"Ada\">one</speak>");
    let before = m.prefix_hash();
    m.begin_turn(FloorLine::new("anyone?", None)).unwrap();
    m.hear(FloorLine { text: "why?", to: None, seat: Some("Maya") }).unwrap();
    m.abort_turn().unwrap();
    assert!(!m.is_room());
    assert_eq!(m.prefix_hash(), before, "as before the floor spoke");
    assert!(matches!(m.hear(FloorLine::new("late", None)), Err(MegapromptError::NoTurnOpen)));
}
