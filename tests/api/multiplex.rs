//! `GET /api/events?sessions=…`: several sessions on one stream — history
//! merged in logged order, live events as they come, a combined id that
//! resumes every session at once with no gap and no duplicate, sessions
//! added and removed between connections, and a clear note for a session
//! that is missing or closed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::helpers::*;

async fn multi(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Sse {
    let mut req = app.client.get(app.url(&format!("/api/events?{query}")));
    if let Some(id) = last_event_id {
        req = req.insert_header(("Last-Event-ID", id.to_owned()));
    }
    Sse::from_response(req.send().await.expect("the stream answers"))
}

/// Logged events of the multiplexed stream (they carry a combined id).
fn logged_multi(events: &[SseEvent]) -> Vec<Value> {
    events.iter().filter(|e| e.raw_id.is_some()).map(SseEvent::json).collect()
}

/// Reads until every session in `want` has logged a `turn-end` for `turn`.
async fn until_turns_end(sse: &mut Sse, want: &[&str], turn: u64) -> Vec<SseEvent> {
    let mut seen = Vec::new();
    let mut ended: Vec<String> = Vec::new();
    while ended.len() < want.len() {
        let e = sse.next().await.expect("the stream stays open");
        if e.event == "turn-end" {
            let v = e.json();
            if v["turn"] == turn {
                ended.push(v["session"].as_str().unwrap().to_owned());
            }
        }
        seen.push(e);
    }
    seen
}

/// Each session's seqs in the order received.
fn seqs(events: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in events {
        by.entry(e["session"].as_str().unwrap().to_owned()).or_default().push(e["seq"].as_u64().unwrap());
    }
    by
}

fn gapless(seqs: &[u64]) -> bool {
    seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1)
}

#[actix_web::test]
async fn three_sessions_interleave_on_one_stream_each_in_order_with_nothing_missing() {
    let app = spawn_with(Options { pace_ms: 1, ..Options::default() }).await;
    let ids = [app.create(&["ada", "byron"]).await, app.create(&["cleo", "otto"]).await, app.create(&["iris"]).await];
    let list = ids.join(",");
    let mut sse = multi(&app, &format!("sessions={list}&since="), None).await;
    for id in &ids {
        app.say(id, "What fails first?").await;
    }
    let seen = until_turns_end(&mut sse, &ids.iter().map(String::as_str).collect::<Vec<_>>(), 1).await;
    let events = logged_multi(&seen);
    let by = seqs(&events);
    assert_eq!(by.len(), 3);
    for (id, s) in &by {
        assert!(gapless(s), "{id}: {s:?}");
    }
    // Live events of different sessions were interleaved, not sent one session at a time.
    let order: Vec<&str> = events.iter().map(|e| e["session"].as_str().unwrap()).collect();
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches > 2, "interleaved: {order:?}");
    // The id names every session's position.
    let last = seen.iter().rev().find_map(|e| e.raw_id.clone()).unwrap();
    for (id, s) in &by {
        assert!(last.contains(&format!("{id}:{}", s.last().unwrap())), "{last}");
    }
}

#[actix_web::test]
async fn a_reconnect_mid_turn_with_the_combined_id_resumes_every_session_exactly() {
    let app = spawn_with(Options { pace_ms: 3, ..Options::default() }).await;
    let ids = [app.create(&["ada", "byron", "cleo"]).await, app.create(&["otto", "iris"]).await];
    let list = ids.join(",");
    let mut sse = multi(&app, &format!("sessions={list}"), None).await;
    for id in &ids {
        app.say(id, "What should we weigh first?").await;
    }
    // Read a little way into the turns, then drop the connection.
    let mut first = Vec::new();
    while logged_multi(&first).iter().filter(|e| e["kind"] == "deliberation").count() < 2 {
        first.push(sse.next().await.unwrap());
    }
    let resume = first.iter().rev().find_map(|e| e.raw_id.clone()).unwrap();
    drop(sse);

    let mut again = multi(&app, &format!("sessions={list}"), Some(&resume)).await;
    let second = until_turns_end(&mut again, &[ids[0].as_str(), ids[1].as_str()], 1).await;
    // What the first connection saw live, then the second: together each session's whole turn.
    let all: Vec<Value> = logged_multi(&first).into_iter().chain(logged_multi(&second)).collect();
    for (id, s) in seqs(&all) {
        assert!(gapless(&s), "{id}: no gap, no duplicate: {s:?}");
        let mut log = app.sse(&id, Some(0)).await;
        let mut expected = 0;
        while let Some(e) = log.next().await {
            if e.id.is_some() {
                expected += 1;
            }
            if e.event == "turn-end" {
                break;
            }
        }
        assert_eq!(s.len(), expected, "{id}: every logged event");
    }
}

#[actix_web::test]
async fn a_session_added_starts_from_its_beginning_and_one_removed_goes_quiet() {
    let app = spawn_app().await;
    let (a, b, c) = (app.create(&["ada"]).await, app.create(&["byron"]).await, app.create(&["cleo"]).await);
    for id in [&a, &b, &c] {
        let mut sse = app.sse(id, None).await;
        app.say(id, "Hello?").await;
        sse.until("turn-end").await;
    }
    let mut sse = multi(&app, &format!("sessions={a},{b}&since=0"), None).await;
    let seen = until_turns_end(&mut sse, &[a.as_str(), b.as_str()], 1).await;
    let position = seen.iter().rev().find_map(|e| e.raw_id.clone()).unwrap();
    drop(sse);

    // Now B and C: B resumes from its position, C from its start; A is gone.
    let mut sse = multi(&app, &format!("sessions={b},{c}"), Some(&position)).await;
    let seen = until_turns_end(&mut sse, &[c.as_str()], 1).await;
    let by = seqs(&logged_multi(&seen));
    assert!(!by.contains_key(&b), "B had nothing new: {by:?}");
    assert!(!by.contains_key(&a));
    assert!(gapless(&by[&c]), "C from its first event");
    app.say(&b, "And you?").await;
    let seen = until_turns_end(&mut sse, &[b.as_str()], 2).await;
    let by = seqs(&logged_multi(&seen));
    let b_was: u64 = position.split(',').find_map(|p| p.strip_prefix(&format!("{b}:"))).unwrap().parse().unwrap();
    assert_eq!(by[&b][0], b_was + 1, "B goes on where it was: {:?}", by[&b]);
    assert!(by[&b].windows(2).all(|w| w[1] == w[0] + 1));
    assert!(!by.contains_key(&a), "A is no longer followed");
}

#[actix_web::test]
async fn a_missing_or_closed_session_gets_a_clear_note_and_the_others_carry_on() {
    let app = spawn_app().await;
    let (open, closed) = (app.create(&["ada"]).await, app.create(&["byron"]).await);
    let (status, _) = app.post_empty(&format!("/api/sessions/{closed}/close")).await;
    assert_eq!(status, 200);
    let missing = "20200101-000000-gone";
    let mut sse = multi(&app, &format!("sessions={open},{missing},{closed}&since=0"), None).await;
    let mut notes = Vec::new();
    while notes.len() < 2 {
        let e = sse.next().await.unwrap();
        if e.event == "stream-error" {
            notes.push(e.json());
        }
    }
    let code = |id: &str| notes.iter().find(|n| n["session"] == id).map(|n| n["code"].clone());
    assert_eq!(code(missing), Some(json!("session-not-found")), "{notes:?}");
    assert_eq!(code(&closed), Some(json!("session-closed")), "{notes:?}");
    app.say(&open, "Still here?").await;
    let seen = until_turns_end(&mut sse, &[open.as_str()], 1).await;
    assert!(gapless(&seqs(&logged_multi(&seen))[&open]));
}

#[actix_web::test]
async fn bad_requests_for_the_stream_are_refused_clearly() {
    let app = spawn_app().await;
    let id = app.create(&["ada"]).await;
    for (query, code) in [
        ("sessions=", "no-sessions"),
        ("sessions=NOT%20AN%20ID", "bad-id"),
        (&*format!("sessions={id}&since=nonsense"), "bad-last-event-id"),
        (
            &*format!("sessions={}", (0..65).map(|i| format!("20200101-000000-{i:04}")).collect::<Vec<_>>().join(",")),
            "too-many-sessions",
        ),
    ] {
        let (status, body) = app.get(&format!("/api/events?{query}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)), "{query}: {body}");
    }
}

#[actix_web::test]
async fn deltas_come_only_for_the_sessions_that_ask_and_the_directory_note_for_lists() {
    let app = spawn_with(Options { pace_ms: 1, ..Options::default() }).await;
    let (a, b) = (app.create(&["ada"]).await, app.create(&["byron"]).await);
    let mut sse = multi(&app, &format!("sessions={a},{b}&deltas={a}&directory=1"), None).await;
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["event_streams"], 1, "{health}");
    app.say(&a, "Tell me more.").await;
    app.say(&b, "And you?").await;
    let seen = until_turns_end(&mut sse, &[a.as_str(), b.as_str()], 1).await;
    let delta_sessions: Vec<Value> =
        seen.iter().filter(|e| e.event == "speak-delta").map(|e| e.json()["session"].clone()).collect();
    assert!(!delta_sessions.is_empty() && delta_sessions.iter().all(|s| *s == a.as_str()), "{delta_sessions:?}");
    assert!(seen.iter().any(|e| e.event == "directory"), "lists hear that something changed");
}

/// Moves every event from the second floor line on `back` seconds earlier, as
/// a wall clock stepped back mid-session would have written them.
fn step_the_clock_back(log: &std::path::Path, back: i64) {
    let text = std::fs::read_to_string(log).unwrap();
    let mut floor_lines = 0;
    let mut out = String::new();
    for line in text.lines() {
        let mut event: Value = serde_json::from_str(line).unwrap();
        if event["kind"] == "human-speak" {
            floor_lines += 1;
        }
        if floor_lines >= 2 {
            let ts = chrono::DateTime::parse_from_rfc3339(event["ts"].as_str().unwrap()).unwrap();
            let earlier = ts - chrono::Duration::seconds(back);
            event["ts"] = json!(earlier.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
        out.push_str(&serde_json::to_string(&event).unwrap());
        out.push('\n');
    }
    assert!(floor_lines >= 2, "the log has two floor lines");
    std::fs::write(log, out).unwrap();
}

#[actix_web::test]
async fn a_clock_stepped_back_mid_session_loses_nothing_on_the_multiplexed_replay() {
    let logs = tempfile::tempdir().unwrap();
    let first = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let (stepped, other) = (first.create(&["ada", "byron"]).await, first.create(&["cleo"]).await);
    for (i, text) in ["The first question.", "The second question."].iter().enumerate() {
        for id in [&stepped, &other] {
            let mut sse = first.sse(id, Some(0)).await;
            first.say(id, text).await;
            while sse.until("turn-end").await.last().unwrap().json()["turn"] != i as u64 + 1 {}
        }
    }
    for id in [&stepped, &other] {
        assert_eq!(first.post_empty(&format!("/api/sessions/{id}/close")).await.0, 200);
    }
    first.stopper.clone().stop().await;
    step_the_clock_back(&logs.path().join(&stepped).join("events.jsonl"), 3);

    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let single = logged(&app.sse(&stepped, Some(0)).await.until("session-close").await);
    assert!(single.len() > 10, "the single-session replay sends the whole log");
    let mut sse = multi(&app, &format!("sessions={stepped},{other}&since=0"), None).await;
    let mut seen = Vec::new();
    let mut closed = 0;
    while closed < 2 {
        let e = sse.next().await.expect("the replay goes on until both sessions are closed");
        if e.event == "session-close" {
            closed += 1;
        }
        seen.push(e);
    }
    let by = seqs(&logged_multi(&seen));
    assert_eq!(by[&stepped].len(), single.len(), "every event of the stepped session: {:?}", by[&stepped]);
    assert!(gapless(&by[&stepped]), "in log order: {:?}", by[&stepped]);
    assert!(gapless(&by[&other]), "{:?}", by[&other]);
    let last = seen.iter().rev().find_map(|e| e.raw_id.clone()).unwrap();
    assert!(last.contains(&format!("{stepped}:{}", single.len())), "the position covers the whole log: {last}");
}
