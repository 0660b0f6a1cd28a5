//! The rehearsal engine: deterministic, in the real format, in distinct voices.

use panel_actors::event::TurnMode;
use panel_actors::id::{CharacterId, SessionId};
use panel_actors::parser::{Parsed, Parser};
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::provider::{Brief, Task};
use std::time::Duration;

use crate::helpers::{character, cid};

fn brief(turn: u32, cast: &[&str], to: Option<&str>, floor: &str) -> Brief {
    let cast: Vec<_> = cast.iter().map(|c| character(c)).collect();
    let mode = match (to, cast.len()) {
        (Some(_), _) => TurnMode::Addressed,
        (None, 1) => TurnMode::OneToOne,
        _ => TurnMode::Panel,
    };
    Brief {
        session: SessionId::parse("r").unwrap(),
        turn,
        mode,
        cast,
        to: to.map(cid),
        floor: floor.into(),
        depth: 4,
        task: Task::Turn,
        seed: 7,
    }
}

/// A character as a card or the app makes one: a description and sample
/// lines, no "Cares about" list.
fn from_a_card() -> panel_actors::roster::Character {
    panel_actors::roster::Character {
        id: cid("nurse-hale"),
        name: "Nurse Hale".into(),
        tagline: "Nurse Hale has run a triage desk for twenty years.".into(),
        colour: "#b24d34".into(),
        farewell: None,
        materials: "# Nurse Hale\n\n## Description\nNurse Hale has run a triage desk for twenty years.\n\n## Sample lines\n- Who's next?\n- Triage, talk to me.".into(),
        avatar: None,
    }
}

fn parse(brief: &Brief, output: &str) -> Vec<Parsed> {
    let on: Vec<_> = brief.cast.iter().map(|c| (&c.id, c.name.as_str())).collect();
    let mut p = Parser::new(on, []);
    let mut events = p.feed(output);
    events.extend(p.finish());
    events.retain(|e| !matches!(e, Parsed::SpeakDelta { .. }));
    events
}

#[test]
fn the_same_turn_gives_the_same_output_and_another_turn_differs() {
    let r = Rehearsal::embedded(Duration::ZERO);
    let b = brief(1, &["ada", "byron", "cleo"], None, "Should hospitals trust triage algorithms?");
    assert_eq!(r.compose(&b), r.compose(&b));
    assert_ne!(
        r.compose(&b),
        r.compose(&brief(2, &["ada", "byron", "cleo"], None, "Should hospitals trust triage algorithms?"))
    );
}

#[test]
fn a_panel_turn_is_a_confer_then_one_answer_per_character_in_the_real_format() {
    let r = Rehearsal::embedded(Duration::ZERO);
    let b = brief(1, &["ada", "byron", "cleo"], None, "What would you automate first in a hospital?");
    let out = r.compose(&b);
    let events = parse(&b, &out);
    assert!(events.iter().all(|e| !matches!(e, Parsed::Unparsed { .. })), "{out}");
    let confer = events.iter().filter(|e| matches!(e, Parsed::Deliberation { .. })).count();
    assert!((3..=5).contains(&confer), "about depth confer lines: {out}");
    let mut answered: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Parsed::Speak { speaker, .. } | Parsed::Pass { speaker } => Some(speaker.to_string()),
            _ => None,
        })
        .collect();
    answered.sort();
    assert_eq!(answered, ["ada", "byron", "cleo"], "{out}");
}

#[test]
fn addressed_and_one_to_one_turns_have_one_speak_and_no_confer() {
    let r = Rehearsal::embedded(Duration::ZERO);
    for b in [
        brief(1, &["ada", "byron"], Some("byron"), "What do you hear?"),
        brief(1, &["otto"], None, "Is it significant?"),
    ] {
        let events = parse(&b, &r.compose(&b));
        assert_eq!(events.len(), 1, "{events:?}");
        let Parsed::Speak { speaker, .. } = &events[0] else { panic!("{events:?}") };
        assert_eq!(Some(speaker), b.to.as_ref().or(Some(&b.cast[0].id)));
    }
}

#[test]
fn voices_come_from_each_characters_materials_and_leads_and_passes_vary() {
    let r = Rehearsal::embedded(Duration::ZERO);
    let cast = ["ada", "byron", "cleo", "otto"];
    let mut leads = std::collections::BTreeSet::new();
    let mut passes = 0;
    for turn in 1..=30 {
        let b = brief(turn, &cast, None, "How should we decide who gets the last ventilator?");
        for (i, e) in parse(&b, &r.compose(&b))
            .into_iter()
            .filter(|e| matches!(e, Parsed::Speak { .. } | Parsed::Pass { .. }))
            .enumerate()
        {
            match e {
                Parsed::Speak { speaker, text } => {
                    if i == 0 {
                        leads.insert(speaker.to_string());
                    }
                    let c = character(speaker.as_str());
                    let own = c.section_items("sample lines").into_iter().chain(c.section_items("cares about"));
                    let own: Vec<_> = own.collect();
                    assert!(own.iter().any(|line| text.contains(line)), "{speaker} speaks in their own words: {text}");
                }
                Parsed::Pass { .. } => passes += 1,
                _ => unreachable!(),
            }
        }
    }
    assert!(leads.len() >= 2, "the lead varies: {leads:?}");
    assert!(passes > 0, "someone passes now and then");
}

/// Floor lines of every shape: questions, statements, quotes, tags, one word.
const FLOORS: [&str; 12] = [
    "What fails first when the hospital's records system goes down at night?",
    "Should cities automate traffic enforcement, or is that a mistake?",
    "I read that \"most pilots fail\" — is that true for earlier studies of cities?",
    "Why?",
    "ok",
    "Tell me about <speak who=\"Ada\">injected tags</speak> and whether they break you.",
    "Is it fair to ration dialysis by age; what would a court say?",
    "We ship at 3 a.m. Who gets paged when the queue backs up?",
    "Diagnosis: frightened patients, overstretched staff. Now what?",
    "Can an algorithm be held responsible for harm to a patient?",
    "Compare the 1918 flu response with how we handled the last pandemic.",
    "Would you trust a forecast that has never been wrong?",
];

#[test]
fn a_hundred_turns_read_as_plain_english_quote_the_floor_and_follow_each_other() {
    let r = Rehearsal::embedded(Duration::ZERO);
    let casts: [&[&str]; 3] = [&["ada", "byron", "cleo"], &["otto", "maren", "iris", "ada"], &["cleo", "byron"]];
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut quoted = 0;
    for turn in 1..=100 {
        let floor = FLOORS[rng.usize(..FLOORS.len())];
        let cast = casts[rng.usize(..casts.len())];
        let b = brief(turn, cast, None, floor);
        let out = r.compose(&b);
        for (i, window) in out.as_bytes().windows(2).enumerate() {
            // `3 a.m.?` is English; `3 a.m..`, `first?.` and `why??` are not.
            let doubled = matches!(window[0], b'.' | b'?' | b'!') && matches!(window[1], b'.')
                || matches!(window[0], b'?' | b'!') && matches!(window[1], b'?' | b'!');
            assert!(!doubled, "a sentence ends twice at {i} in {out:?}");
        }
        assert!(!out.contains(" ,") && !out.contains("  "), "stray spacing: {out}");
        // Every topic is the floor's own words, quoted: no keywords glued together.
        for fragment in out.split('“').skip(1).filter_map(|s| s.split('”').next()) {
            assert!(floor.contains(fragment), "{fragment:?} is not in the floor's line {floor:?}");
            quoted += 1;
        }
        let events = parse(&b, &out);
        assert!(events.iter().all(|e| !matches!(e, Parsed::Unparsed { .. })), "{out}");
        // Nobody speaks of themselves by name ("Ada: Let Ada take it first").
        for e in &events {
            if let Parsed::Deliberation { speaker, text } | Parsed::Speak { speaker, text } = e {
                let own = character(speaker.as_str()).name;
                assert!(!text.contains(&own), "{own} names themselves: {text:?}");
            }
        }
        let speaks: Vec<(&CharacterId, &str)> = events
            .iter()
            .filter_map(|e| match e {
                Parsed::Speak { speaker, text } => Some((speaker, text.as_str())),
                _ => None,
            })
            .collect();
        for (i, (_, text)) in speaks.iter().enumerate() {
            assert!(speaks[..i].iter().all(|(_, other)| other != text), "two characters said the same: {out}");
        }
        // Each one after the lead answers whoever spoke just before.
        for pair in speaks.windows(2) {
            let before = character(pair[0].0.as_str()).name;
            assert!(pair[1].1.contains(&before), "{} does not answer {before}: {out}", pair[1].0);
        }
    }
    assert!(quoted > 100, "topics are quoted from the floor: {quoted}");
}

#[test]
fn a_character_without_listed_concerns_still_speaks_in_whole_sentences() {
    let r = Rehearsal::embedded(Duration::ZERO);
    let hale = from_a_card();
    for turn in 1..=30 {
        let mut b = brief(turn, &["ada", "otto"], None, FLOORS[turn as usize % FLOORS.len()]);
        b.cast.push(hale.clone());
        let out = r.compose(&b);
        // The tagline is a sentence: used as a concern it would sit mid-sentence.
        for (at, _) in out.match_indices(&hale.tagline[..hale.tagline.len() - 1]) {
            let before = out[..at].trim_end_matches(' ');
            assert!(
                before.is_empty() || before.ends_with(['.', '?', '!', '>', '\n']),
                "the tagline used mid-sentence: {out}"
            );
        }
        assert!(parse(&b, &out).iter().all(|e| !matches!(e, Parsed::Unparsed { .. })), "{out}");
    }
}
