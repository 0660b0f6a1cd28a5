//! Dynamics benchmark: metrics and tables for a 1,000-turn session.
//!
//! The log is built in memory — 1,000 panel turns of three characters, each
//! with a two-line confer, two speaks and a pass, a cost and a turn-end,
//! plus a keep-warm ping every tenth pause (about 8,100 events) — then
//! `panel_actors::dynamics::compute` and `panel data` (CSV and JSON Lines,
//! into a temporary folder) are timed, best of five.
//!
//! Run: `cargo bench --bench dynamics`. Goal: both well under a second, so
//! the live drawer can recompute on every turn end of a long session.

use std::path::Path;
use std::time::{Duration, Instant};

use panel::config::DataFormat;
use panel_actors::dynamics;
use panel_actors::event::{Cost, Event, EventBody, Provenance, SessionConfig, Timestamp, TurnMode};
use panel_actors::id::{CharacterId, SessionId};
use panel_actors::roster::Roster;
use panel_actors::templates::Templates;

const TURNS: u32 = 1_000;

fn log() -> Vec<Event> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("roster");
    let roster = Roster::load(&root.join("characters")).unwrap();
    let ids: Vec<CharacterId> = ["ada", "byron", "cleo"].iter().map(|c| CharacterId::parse(c).unwrap()).collect();
    let participants = ids.iter().map(|c| roster.get(c).cloned().unwrap()).collect();
    let mut bodies = vec![(
        0,
        EventBody::SessionOpen {
            config: SessionConfig::new("Bench".into(), 2, "rehearsal".into()),
            model: "rehearsal".into(),
            head: String::new(),
            participants,
            templates: Box::new(Templates::load(&root.join("prompts")).unwrap()),
            parent: None,
            carry: None,
            study: None,
        },
    )];
    for turn in 1..=TURNS {
        let [a, b, c] = [0, 1, 2].map(|k| ids[(turn as usize + k) % 3].clone());
        bodies.push((
            turn,
            EventBody::HumanSpeak { text: format!("Question number {turn}, what now?"), to: None, seat: None },
        ));
        bodies.push((turn, EventBody::TurnStart { mode: TurnMode::Panel, cast: ids.clone() }));
        bodies.push((turn, EventBody::Deliberation { speaker: a.clone(), text: "I will take this one first.".into() }));
        bodies.push((turn, EventBody::Deliberation { speaker: b.clone(), text: "Then I answer Ada.".into() }));
        bodies
            .push((turn, EventBody::Speak { speaker: a.clone(), text: "The triage queue fails first, Byron.".into() }));
        bodies.push((turn, EventBody::Speak { speaker: b.clone(), text: "No, Ada: the handover notes do.".into() }));
        bodies.push((turn, EventBody::Pass { speaker: c.clone() }));
        let context = 2_000 + 60 * u64::from(turn);
        let cost = Cost {
            model: "m".into(),
            input: 60,
            cache_read: context - 60,
            output: 40,
            usd: Some(0.001),
            context_tokens: Some(context),
            ..Cost::default()
        };
        bodies.push((turn, EventBody::Cost(cost)));
        let provenance = Box::new(Provenance { ttfb_ms: Some(120.0), ..Provenance::default() });
        bodies.push((
            turn,
            EventBody::TurnEnd { order: vec![a, b, c], output: String::new(), provenance: Some(provenance) },
        ));
        if turn % 10 == 0 {
            let ping = EventBody::KeepWarm {
                input: 0,
                cache_write: 0,
                cache_read: context,
                usd: Some(0.0001),
                warm_until: None,
                simulated: true,
            };
            bodies.push((turn, ping));
        }
    }
    let session = SessionId::parse("bench").unwrap();
    let ts = Timestamp::now();
    bodies
        .into_iter()
        .enumerate()
        .map(|(seq, (turn, body))| Event { seq: seq as u64, ts, session: session.clone(), turn, sample: None, body })
        .collect()
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let events = log();
    let d = dynamics::compute(&events);
    assert_eq!(d.session.turns, TURNS);
    let metrics = best_of(5, || {
        std::hint::black_box(dynamics::compute(std::hint::black_box(&events)));
    });
    let out = tempfile::tempdir().unwrap();
    let logs = [events];
    let csv = best_of(5, || panel::data::write(&logs, out.path(), DataFormat::Csv).unwrap());
    let jsonl = best_of(5, || panel::data::write(&logs, out.path(), DataFormat::Jsonl).unwrap());
    let size = |name: &str| std::fs::metadata(out.path().join(name)).map_or(0, |m| m.len());
    println!("dynamics bench: {TURNS} turns, {} events", logs[0].len());
    println!("  metrics (dynamics::compute)  {:>8.2} ms", metrics.as_secs_f64() * 1e3);
    println!(
        "  tables, CSV (4 + schema)     {:>8.2} ms  (acts.csv {} KB)",
        csv.as_secs_f64() * 1e3,
        size("acts.csv") / 1024
    );
    println!(
        "  tables, JSON Lines           {:>8.2} ms  (acts.jsonl {} KB)",
        jsonl.as_secs_f64() * 1e3,
        size("acts.jsonl") / 1024
    );
    println!("  gini {:.4}, pass rate {:.4}, usd {:.4}", d.session.gini, d.session.pass_rate, d.session.usd);
}
