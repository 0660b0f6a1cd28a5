//! The event log: round trips, seq, torn-tail repair, recovery of an open turn.

use std::io::Write as _;

use panel_actors::event::{Event, EventBody, TurnMode};
use panel_actors::event_log::{self, Durability, EventLog, LogError};
use panel_actors::id::SessionId;

use crate::helpers::cid;

fn sid(s: &str) -> SessionId {
    SessionId::parse(s).unwrap()
}

fn say(text: &str) -> EventBody {
    EventBody::HumanSpeak { text: text.into(), to: None, seat: None }
}

#[test]
fn every_kind_round_trips_through_json_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = EventLog::create(dir.path(), &sid("s1"), Durability::PerEvent).unwrap();
    let bodies = vec![
        say("hello \"there\"\n"),
        EventBody::HumanSpeak { text: "x".into(), to: Some(cid("ada")), seat: None },
        EventBody::TurnStart { mode: TurnMode::Panel, cast: vec![cid("ada"), cid("byron")] },
        EventBody::Deliberation { speaker: cid("ada"), text: "hm".into() },
        EventBody::Speak { speaker: cid("ada"), text: "ünïcødé ✓".into() },
        EventBody::Pass { speaker: cid("byron") },
        EventBody::Unparsed { raw: "<x>".into(), reason: "why".into() },
        EventBody::Leave { character: cid("byron"), line: "bye".into() },
        EventBody::Join { character: cid("byron"), materials: None },
        EventBody::Cost(panel_actors::event::Cost {
            model: "m".into(),
            input: 1,
            cache_write: 2,
            cache_write_1h: 1,
            cache_read: 3,
            output: 4,
            cache_hit: true,
            usd: Some(0.5),
            simulated: true,
            warm_until: Some(panel_actors::event::Timestamp::now()),
            context_tokens: Some(6),
        }),
        EventBody::TurnEnd { order: vec![cid("ada")], output: "raw".into(), provenance: None },
        EventBody::KeepWarm {
            input: 1,
            cache_write: 0,
            cache_read: 9,
            usd: Some(0.01),
            warm_until: None,
            simulated: false,
        },
        EventBody::Settings { keep_warm: panel_actors::event::KeepWarm::Always },
        EventBody::TurnAborted { reason: "r".into() },
        EventBody::Error { code: "c".into(), message: "m".into() },
        EventBody::ActorRestart { reason: "r".into() },
        EventBody::LogRepair { torn_bytes: 3 },
        EventBody::SessionClose { totals: Default::default() },
    ];
    for (i, body) in bodies.iter().enumerate() {
        let logged = log.append(i as u32, body.clone()).unwrap();
        assert_eq!(logged.event.seq, i as u64 + 1);
        let back: Event = serde_json::from_str(&logged.json).unwrap();
        assert_eq!(back, logged.event);
        assert_eq!(serde_json::to_string(&back).unwrap(), *logged.json, "byte-identical re-serialisation");
        let value: serde_json::Value = serde_json::from_str(&logged.json).unwrap();
        assert_eq!(value["kind"], body.kind());
        let ts = value["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.split('.').nth(1).unwrap().len() == 7, "RFC 3339 UTC with microseconds: {ts}");
    }
    let read = event_log::read(dir.path(), &sid("s1")).unwrap();
    assert_eq!(read.len(), bodies.len());
}

#[test]
fn creating_an_existing_session_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    EventLog::create(dir.path(), &sid("s1"), Durability::PerTurn).unwrap();
    assert!(matches!(EventLog::create(dir.path(), &sid("s1"), Durability::PerTurn), Err(LogError::Exists(_))));
}

#[test]
fn a_torn_final_line_is_cut_off_recorded_and_the_open_turn_closed() {
    let dir = tempfile::tempdir().unwrap();
    let id = sid("torn");
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    log.append(1, say("first")).unwrap();
    log.append(1, EventBody::TurnStart { mode: TurnMode::Panel, cast: vec![cid("ada")] }).unwrap();
    let path = log.path().to_owned();
    drop(log);
    let torn = b"{\"seq\":3,\"ts\":\"2026-11-25T20:00:00.000000Z\",\"sess";
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(torn).unwrap();

    let opened = EventLog::open(dir.path(), &id, Durability::PerTurn).unwrap();
    assert_eq!(opened.torn_bytes, torn.len() as u64);
    assert_eq!(opened.recovered_turn, Some(1));
    let kinds: Vec<_> = opened.events.iter().map(|l| l.event.body.kind()).collect();
    assert_eq!(kinds, ["human-speak", "turn-start", "log-repair", "turn-aborted"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n') && !text.contains("\"sess\n"), "only whole lines remain");
    assert_eq!(text.lines().count(), 4);
    let last = &opened.events[3].event;
    assert_eq!((last.seq, last.turn), (4, 1));
    assert_eq!(last.body, EventBody::TurnAborted { reason: "recovery".into() });

    // A second open finds nothing to repair.
    drop(opened);
    let again = EventLog::open(dir.path(), &id, Durability::PerTurn).unwrap();
    assert_eq!((again.torn_bytes, again.recovered_turn, again.events.len()), (0, None, 4));
}

#[test]
fn a_corrupt_middle_line_or_a_seq_gap_is_an_error_not_a_silent_drop() {
    let dir = tempfile::tempdir().unwrap();
    let id = sid("bad");
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    log.append(0, say("a")).unwrap();
    log.append(0, say("b")).unwrap();
    let path = log.path().to_owned();
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"seq\":2", "\"seq\":5", 1)).unwrap();
    let err = EventLog::open(dir.path(), &id, Durability::PerTurn).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { line: 2, .. }), "{err}");
    std::fs::write(&path, text.replacen("{\"seq\":2", "{garbage", 1)).unwrap();
    assert!(matches!(EventLog::open(dir.path(), &id, Durability::PerTurn), Err(LogError::Corrupt { line: 2, .. })));
}

#[test]
fn a_missing_log_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(EventLog::open(dir.path(), &sid("nope"), Durability::PerTurn), Err(LogError::NotFound(_))));
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let id = sid("locked");
    let mut first = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    first.append(0, EventBody::Error { code: "c".into(), message: "mine".into() }).unwrap();
    assert!(matches!(EventLog::open(dir.path(), &id, Durability::PerTurn), Err(LogError::Locked(_))));
    drop(first);
    let second = EventLog::open(dir.path(), &id, Durability::PerTurn).unwrap();
    assert_eq!(second.events.len(), 1);
}
