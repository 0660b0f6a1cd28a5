//! The dynamics metrics, each checked by hand on a small fixed log: a panel
//! turn with a pass, an @-turn, a join and leaves, then a one-to-one.

use panel_actors::dynamics::{Pickup, compute, gini, words};
use panel_actors::event::{Cost, Event, EventBody, Provenance, SessionConfig, Timestamp, TurnMode};
use panel_actors::id::SessionId;

use crate::helpers::{character, cid, templates};

fn cost(
    input: u64,
    cache_write: u64,
    cache_read: u64,
    output: u64,
    usd: Option<f64>,
    context: Option<u64>,
) -> EventBody {
    EventBody::Cost(Cost {
        model: "m".into(),
        input,
        cache_write,
        cache_read,
        output,
        usd,
        context_tokens: context,
        ..Cost::default()
    })
}

fn end(order: &[&str], ttfb: Option<f64>) -> EventBody {
    let provenance = ttfb.map(|t| Box::new(Provenance { ttfb_ms: Some(t), ..Provenance::default() }));
    EventBody::TurnEnd { order: order.iter().map(|c| cid(c)).collect(), output: String::new(), provenance }
}

fn speak(who: &str, text: &str) -> EventBody {
    EventBody::Speak { speaker: cid(who), text: text.into() }
}

/// The fixed log, as (turn, body) in order.
pub fn fixed_log() -> Vec<Event> {
    let stage = || vec![cid("ada"), cid("byron"), cid("cleo")];
    let bodies: Vec<(u32, EventBody)> = vec![
        (
            0,
            EventBody::SessionOpen {
                config: SessionConfig::new("Fixed".into(), 2, "rehearsal".into()),
                model: "rehearsal-1".into(),
                head: String::new(),
                participants: vec![character("ada"), character("byron"), character("cleo")],
                templates: Box::new(templates()),
                parent: None,
                carry: None,
                study: None,
            },
        ),
        (1, EventBody::HumanSpeak { text: "What now?".into(), to: None, seat: None }),
        (1, EventBody::TurnStart { mode: TurnMode::Panel, cast: stage() }),
        (1, EventBody::Deliberation { speaker: cid("ada"), text: "I lead.".into() }),
        (1, EventBody::Deliberation { speaker: cid("byron"), text: "Let me follow.".into() }),
        (1, speak("ada", "Byron is wrong here.")),
        (1, speak("byron", "Ada, I disagree strongly.")),
        (1, EventBody::Pass { speaker: cid("cleo") }),
        (1, cost(100, 50, 0, 20, Some(0.01), Some(150))),
        (1, end(&["ada", "byron", "cleo"], Some(120.0))),
        (
            1,
            EventBody::KeepWarm {
                input: 0,
                cache_write: 0,
                cache_read: 150,
                usd: Some(0.001),
                warm_until: None,
                simulated: false,
            },
        ),
        (2, EventBody::HumanSpeak { text: "@Cleo thoughts?".into(), to: Some(cid("cleo")), seat: None }),
        (2, EventBody::TurnStart { mode: TurnMode::Addressed, cast: stage() }),
        (2, speak("cleo", "Just one idea.")),
        (2, cost(10, 0, 150, 5, Some(0.002), None)),
        (2, end(&["cleo"], None)),
        (3, EventBody::Join { character: cid("iris"), materials: Some(character("iris")) }),
        (3, EventBody::Leave { character: cid("ada"), line: "Farewell all.".into() }),
        (3, EventBody::Leave { character: cid("byron"), line: "Goodbye.".into() }),
        (3, EventBody::Leave { character: cid("cleo"), line: "Until later.".into() }),
        (3, EventBody::HumanSpeak { text: "Hello Iris".into(), to: None, seat: None }),
        (3, EventBody::TurnStart { mode: TurnMode::OneToOne, cast: vec![cid("iris")] }),
        // Ada is named but no longer on stage: not a mention.
        (3, speak("iris", "Ada has left us.")),
        (3, cost(5, 0, 160, 4, None, Some(165))),
        (3, end(&["iris"], Some(80.0))),
    ];
    let session = SessionId::parse("dyn").unwrap();
    bodies
        .into_iter()
        .enumerate()
        .map(|(seq, (turn, body))| Event {
            seq: seq as u64,
            ts: Timestamp::now(),
            session: session.clone(),
            turn,
            sample: None,
            body,
        })
        .collect()
}

#[test]
fn words_are_runs_of_non_whitespace() {
    assert_eq!(words("  two\twords\n"), 2);
    assert_eq!(words(""), 0);
    assert_eq!(words("Ada, I disagree."), 3);
}

#[test]
fn gini_is_zero_for_equals_and_grows_with_dominance() {
    assert_eq!(gini(&[3.0, 3.0, 3.0]), 0.0);
    assert_eq!(gini(&[]), 0.0);
    assert!((gini(&[0.0, 0.0, 9.0]) - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn each_turn_is_measured_from_its_own_events() {
    let d = compute(&fixed_log());
    let [t1, t2, t3] = &d.turns[..] else { panic!("three turns, got {}", d.turns.len()) };
    assert_eq!((t1.turn, t1.mode, t1.lead.as_deref()), (1, TurnMode::Panel, Some("ada")));
    assert_eq!(t1.order, ["ada", "byron", "cleo"]);
    assert_eq!((t1.speaks, t1.passes, t1.confer_lines, t1.confer_words), (2, 1, 2, 5));
    assert_eq!(t1.words.get("ada"), Some(&4));
    assert_eq!(t1.words.get("byron"), Some(&4));
    assert_eq!(t1.passed, ["cleo"]);
    assert_eq!((t1.input_tokens, t1.cache_write_tokens, t1.cache_read_tokens, t1.output_tokens), (100, 50, 0, 20));
    assert_eq!((t1.usd, t1.ttfb_ms, t1.context_tokens, t1.keep_warm_pings), (0.01, Some(120.0), Some(150), 0));

    assert_eq!((t2.mode, t2.lead.as_deref(), t2.speaks, t2.confer_lines), (TurnMode::Addressed, Some("cleo"), 1, 0));
    // The ping fell in the pause before turn 2; no context size recorded, so prompt tokens summed.
    assert_eq!((t2.keep_warm_pings, t2.context_tokens, t2.ttfb_ms), (1, Some(160), None));

    assert_eq!(
        (t3.mode, t3.lead.as_deref(), t3.usd, t3.context_tokens),
        (TurnMode::OneToOne, Some("iris"), 0.0, Some(165))
    );
}

#[test]
fn each_character_is_measured_across_the_session() {
    let d = compute(&fixed_log());
    let ids: Vec<&str> = d.characters.iter().map(|c| c.character.as_str()).collect();
    assert_eq!(ids, ["ada", "byron", "cleo", "iris"], "the opening cast, then joiners");
    let by = |id: &str| d.characters.iter().find(|c| c.character == id).unwrap().clone();
    let (ada, byron, cleo, iris) = (by("ada"), by("byron"), by("cleo"), by("iris"));
    assert_eq!(ada.name, "Ada");
    assert_eq!((ada.speaks, ada.passes, ada.words, ada.share, ada.leads), (1, 0, 4, 0.2667, 1));
    assert_eq!((cleo.speaks, cleo.passes, cleo.words, cleo.share, cleo.addressed), (1, 1, 3, 0.2, 1));
    assert_eq!((iris.words, iris.share, iris.leads, iris.addressed), (4, 0.2667, 1, 0));
    assert_eq!((ada.confer_lines, ada.confer_words, byron.confer_lines, byron.confer_words), (1, 2, 1, 3));
    // Byron's line came straight after Ada's in the panel turn.
    assert_eq!((byron.pickups_given, byron.pickups_received, ada.pickups_given, ada.pickups_received), (1, 0, 0, 1));
    assert_eq!(d.pickups, [Pickup { by: "byron".into(), of: "ada".into(), count: 1 }]);
    // Ada names Byron, Byron names Ada; Iris names Ada after she left.
    assert_eq!((ada.mentions_out, ada.mentions_in, byron.mentions_out, byron.mentions_in), (1, 1, 1, 1));
    assert_eq!((iris.mentions_out, cleo.mentions_in), (0, 0));
}

#[test]
fn the_session_totals_count_turns_and_pings() {
    let s = compute(&fixed_log()).session;
    assert_eq!(
        (s.session.as_str(), s.title.as_str(), s.provider.as_str(), s.model.as_str()),
        ("dyn", "Fixed", "rehearsal", "rehearsal-1")
    );
    assert_eq!((s.turns, s.keep_warm_pings), (3, 1));
    assert_eq!(s.usd, 0.013);
    // Reads 0 + 150 (ping) + 150 + 160 over prompts 150 + 150 + 160 + 165.
    assert_eq!(s.cache_read_share, 0.736);
    assert_eq!(s.pass_rate, 0.2);
    // Words 4, 4, 3, 4: six unit differences over 2 · 4 · 15.
    assert_eq!(s.gini, 0.05);
}

#[test]
fn a_log_without_its_opening_still_yields_figures() {
    let log = fixed_log();
    let d = compute(&log[1..]);
    assert_eq!(d.session.turns, 3);
    assert_eq!(d.characters.iter().find(|c| c.character == "ada").unwrap().name, "ada");
    assert_eq!(compute(&[]).turns.len(), 0);
}
