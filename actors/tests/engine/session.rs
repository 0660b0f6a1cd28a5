//! The session actor's turn lifecycle, end to end through the model client.

use panel_actors::event::{EventBody, Outbound, TurnMode};
use panel_actors::provider::{ModelError, ModelEvent, Usage};
use panel_actors::session::{CastChange, ChangeCast, Close, Inspect, Say, SessionError, Stop};

use crate::helpers::*;

fn say(text: &str) -> Say {
    Say { text: text.into(), to: None, seat: None }
}

#[actix::test]
async fn a_panel_turn_runs_the_whole_lifecycle_in_order() {
    let mut h = Harness::rehearsal();
    let s = h.create("panel", &["ada", "byron", "cleo"]);
    assert_eq!(kinds(&h.until("session-open").await), ["session-open"]);
    let accepted = s.send(say("What should a city automate first?")).await.unwrap().unwrap();
    assert_eq!((accepted.turn, accepted.queued), (1, 0));

    let published = h.until_with_deltas("turn-end").await;
    let events: Vec<_> =
        published.iter().filter_map(|o| if let Outbound::Event(l) = o { Some(l.clone()) } else { None }).collect();
    let k = kinds(&events);
    assert_eq!(k[..2], ["human-speak", "turn-start"]);
    assert_eq!(k[k.len() - 2..], ["cost", "turn-end"]);
    let first_answer = k.iter().position(|k| *k == "speak" || *k == "pass").unwrap();
    assert!(
        k[2..first_answer].iter().all(|k| *k == "deliberation") && first_answer > 3,
        "the confer comes first: {k:?}"
    );
    let mut answered = speakers(&events);
    let EventBody::TurnEnd { order, output, .. } = &events.last().unwrap().event.body else { unreachable!() };
    assert_eq!(order.iter().map(|c| c.to_string()).collect::<Vec<_>>(), answered);
    assert!(output.contains("<confer>"));
    answered.sort();
    assert_eq!(answered, ["ada", "byron", "cleo"]);
    assert!(events.iter().all(|l| l.event.turn == 1));
    let seqs: Vec<u64> = events.iter().map(|l| l.event.seq).collect();
    assert_eq!(seqs, (2..2 + events.len() as u64).collect::<Vec<_>>(), "seq has no gaps");

    // Typing deltas of each speak arrive before its final event.
    let first_speak =
        published.iter().position(|o| matches!(o, Outbound::Event(l) if l.event.body.kind() == "speak")).unwrap();
    assert!(published[..first_speak].iter().any(|o| matches!(o, Outbound::Delta(_))));
    let EventBody::TurnStart { mode, cast } = &events[1].event.body else { unreachable!() };
    assert_eq!((*mode, cast.len()), (TurnMode::Panel, 3));
}

#[actix::test]
async fn an_at_address_gets_one_answer_and_no_confer() {
    let mut h = Harness::rehearsal();
    let s = h.create("addr", &["ada", "byron", "cleo"]);
    s.send(say("@byron, what do you make of this?")).await.unwrap().unwrap();
    let events = h.until("turn-end").await;
    assert!(!kinds(&events).contains(&"deliberation"));
    assert_eq!(speakers(&events), ["byron"]);
    let EventBody::HumanSpeak { text, to, .. } = &events[1].event.body else { panic!() };
    assert_eq!((text.as_str(), to.as_ref().map(|t| t.as_str())), ("what do you make of this?", Some("byron")));

    let err = s.send(Say { text: "hi".into(), to: Some("Iris".into()), seat: None }).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "not-addressable");
}

#[actix::test]
async fn one_character_on_stage_is_a_one_to_one_without_confer() {
    let mut h = Harness::rehearsal();
    let s = h.create("solo", &["otto"]);
    s.send(say("Is this effect real?")).await.unwrap().unwrap();
    let events = h.until("turn-end").await;
    assert!(!kinds(&events).contains(&"deliberation"));
    assert_eq!(speakers(&events), ["otto"]);
    assert!(matches!(&events[2].event.body, EventBody::TurnStart { mode: TurnMode::OneToOne, .. }));
}

#[actix::test]
async fn input_during_a_turn_is_queued_in_order_and_refused_past_the_bound() {
    let script = Scripted::default();
    let mut h = Harness::with(Box::new(script.clone()));
    let s = h.create("queue", &["ada", "byron"]);
    let first = script.next_stream();
    s.send(say("one")).await.unwrap().unwrap();
    h.until("turn-start").await;
    for n in 1..=8 {
        let accepted = s.send(say(&format!("queued {n}"))).await.unwrap().unwrap();
        assert_eq!(accepted.queued, n);
    }
    let err = s.send(say("one too many")).await.unwrap().unwrap_err();
    assert!(matches!(err, SessionError::QueueFull(8)), "{err}");
    assert_eq!(s.send(Inspect).await.unwrap().queued_input, 8);

    let second = script.next_stream();
    first.send(text("<speak who=\"Ada\">done</speak>")).unwrap();
    drop(first);
    let events = h.until("turn-start").await;
    let k = kinds(&events);
    assert_eq!(k, ["speak", "cost", "turn-end", "human-speak", "turn-start"]);
    assert_eq!(events[3].event.body, EventBody::HumanSpeak { text: "queued 1".into(), to: None, seat: None });
    assert_eq!(events[3].event.turn, 2);
    drop(second);
}

#[actix::test]
async fn a_cast_change_mid_turn_waits_for_the_boundary() {
    let script = Scripted::default();
    let mut h = Harness::with(Box::new(script.clone()));
    let s = h.create("cast", &["ada", "byron"]);
    let first = script.next_stream();
    s.send(say("one")).await.unwrap().unwrap();
    h.until("turn-start").await;
    let accepted = s.send(ChangeCast(CastChange::Add(cid("cleo")))).await.unwrap().unwrap();
    assert!(accepted.pending);
    let info = s.send(Inspect).await.unwrap();
    assert_eq!(info.pending_changes, [CastChange::Add(cid("cleo"))]);
    assert_eq!(info.on_stage.len(), 2);
    // Checked against the cast as it will be: adding Cleo twice is refused now.
    let again = s.send(ChangeCast(CastChange::Add(cid("cleo")))).await.unwrap().unwrap_err();
    assert_eq!(again.code(), "already-on-stage");

    first.send(text("<speak who=\"Ada\">done</speak>")).unwrap();
    drop(first);
    let events = h.until("join").await;
    assert_eq!(kinds(&events), ["speak", "cost", "turn-end", "join"]);
    let join = &events[3].event;
    assert_eq!(join.turn, 2, "a change landing at the boundary belongs to the next turn");
    assert!(matches!(&join.body, EventBody::Join { materials: Some(m), .. } if m.name == "Cleo"));

    let _second = script.next_stream();
    s.send(say("two")).await.unwrap().unwrap();
    h.until("turn-start").await;
    let request = script.requests.borrow().last().unwrap().clone();
    let last = request.prompt.messages.last().unwrap().text.to_string();
    assert!(last.starts_with("<stage>Cleo joins the panel.") && last.ends_with("From the floor: \"two\""), "{last}");
    assert_eq!(request.brief.cast.len(), 3);
}

#[actix::test]
async fn retiring_lands_at_once_when_idle_and_the_last_character_cannot_leave() {
    let mut h = Harness::rehearsal();
    let s = h.create("retire", &["ada", "byron"]);
    h.until("session-open").await;
    let accepted = s.send(ChangeCast(CastChange::Retire(cid("byron")))).await.unwrap().unwrap();
    assert!(!accepted.pending);
    let leave = h.next().await;
    let EventBody::Leave { character, line } = &leave.event.body else { panic!("{leave:?}") };
    assert_eq!(character.as_str(), "byron");
    assert_eq!(line, &character_line("byron"));
    let err = s.send(ChangeCast(CastChange::Retire(cid("ada")))).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "last-character");
    let err = s.send(ChangeCast(CastChange::Add(cid("nobody")))).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "unknown-character");
    let err = s.send(ChangeCast(CastChange::Retire(cid("cleo")))).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "not-on-stage");
}

fn character_line(id: &str) -> String {
    character(id).farewell.unwrap()
}

#[actix::test]
async fn a_model_failure_mid_turn_aborts_it_and_leaves_the_context_as_before() {
    let script = Scripted::default();
    let mut h = Harness::with(Box::new(script.clone()));
    let s = h.create("abort", &["ada", "byron"]);
    let before = s.send(Inspect).await.unwrap().prefix_hash;
    let feed = script.next_stream();
    s.send(say("doomed")).await.unwrap().unwrap();
    h.until("turn-start").await;
    feed.send(text("<speak who=\"Ada\">half a tho")).unwrap();
    feed.send(Err(ModelError::new("overloaded", "the model is overloaded", true))).unwrap();
    let events = h.until("turn-aborted").await;
    let k = kinds(&events);
    assert_eq!(k[k.len() - 2..], ["error", "turn-aborted"]);
    assert_eq!(
        events[k.len() - 2].event.body,
        EventBody::Error { code: "overloaded".into(), message: "the model is overloaded".into() }
    );
    let info = s.send(Inspect).await.unwrap();
    assert!(!info.turn_in_flight);
    assert_eq!(info.prefix_hash, before, "the aborted turn left nothing in the context");

    // The floor can simply speak again.
    let feed = script.next_stream();
    s.send(say("again")).await.unwrap().unwrap();
    feed.send(text("<speak who=\"Ada\">whole</speak>")).unwrap();
    feed.send(Ok(ModelEvent::Usage(Usage { input: 10, output: 5, ..Usage::default() }))).unwrap();
    drop(feed);
    let events = h.until("turn-end").await;
    let cost = events
        .iter()
        .find_map(|l| if let EventBody::Cost(c) = &l.event.body { Some(c.clone()) } else { None })
        .unwrap();
    assert_eq!((cost.input, cost.output, cost.simulated), (10, 5, false));
    assert!(cost.usd.unwrap() > 0.0);
    let request = script.requests.borrow().last().unwrap().clone();
    assert_eq!(request.prompt.messages.len(), 1, "only the new floor line: {:?}", request.prompt.messages);
}

#[actix::test]
async fn an_empty_output_aborts_the_turn_with_a_clear_error() {
    let script = Scripted::default();
    let mut h = Harness::with(Box::new(script.clone()));
    let s = h.create("empty", &["ada", "byron"]);
    let feed = script.next_stream();
    s.send(say("hello?")).await.unwrap().unwrap();
    drop(feed);
    let events = h.until("turn-aborted").await;
    assert!(events.iter().any(|l| matches!(&l.event.body, EventBody::Error { code, .. } if code == "empty-output")));
    assert!(!s.send(Inspect).await.unwrap().turn_in_flight);
}

#[actix::test]
async fn the_rehearsal_engine_reports_simulated_cache_writes_then_reads() {
    let mut h = Harness::rehearsal();
    let s = h.create("cache", &["ada", "byron", "cleo"]);
    let mut costs = Vec::new();
    for floor in ["First question about hospitals.", "A second one, about trust."] {
        s.send(say(floor)).await.unwrap().unwrap();
        let events = h.until("turn-end").await;
        costs.extend(
            events.iter().filter_map(|l| if let EventBody::Cost(c) = &l.event.body { Some(c.clone()) } else { None }),
        );
    }
    assert!(costs.iter().all(|c| c.simulated && c.model == "rehearsal" && c.usd.is_some()));
    assert!(costs[0].cache_write > 1000 && costs[0].cache_read == 0, "{:?}", costs[0]);
    assert!(costs[1].cache_read >= costs[0].cache_write, "turn 2 reads what turn 1 wrote: {:?}", costs[1]);
    let totals = s.send(Inspect).await.unwrap().totals;
    assert_eq!(totals.cache_read, costs[0].cache_read + costs[1].cache_read);
}

#[actix::test]
async fn a_session_rebuilt_from_its_log_has_the_same_prefix_hash() {
    let mut h = Harness::rehearsal();
    let s = h.create("replay", &["ada", "byron", "cleo"]);
    s.send(say("Open question one.")).await.unwrap().unwrap();
    h.until("turn-end").await;
    s.send(ChangeCast(CastChange::Add(cid("otto")))).await.unwrap().unwrap();
    s.send(ChangeCast(CastChange::Retire(cid("cleo")))).await.unwrap().unwrap();
    s.send(say("@Otto is that significant?")).await.unwrap().unwrap();
    h.until("turn-end").await;
    s.send(ChangeCast(CastChange::Add(cid("cleo")))).await.unwrap().unwrap();
    s.send(say("And now everyone.")).await.unwrap().unwrap();
    h.until("turn-end").await;
    let live = s.send(Inspect).await.unwrap();

    s.send(Stop { reason: "debugging".into() }).await.unwrap();
    let rebuilt = h.reopen("replay");
    let info = rebuilt.info();
    assert_eq!(info.prefix_hash, live.prefix_hash);
    assert_eq!((info.turns, info.totals.clone(), info.next_seq), (live.turns, live.totals.clone(), live.next_seq));
    let cast: Vec<_> = info.on_stage.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(cast, ["ada", "byron", "otto", "cleo"]);
}

#[actix::test]
async fn stopping_mid_turn_aborts_it_and_the_rebuilt_session_carries_on() {
    let script = Scripted::default();
    let mut h = Harness::with(Box::new(script.clone()));
    let s = h.create("stop", &["ada", "byron"]);
    let before = s.send(Inspect).await.unwrap().prefix_hash;
    let feed = script.next_stream();
    s.send(say("interrupted")).await.unwrap().unwrap();
    h.until("turn-start").await;
    s.send(say("waiting")).await.unwrap().unwrap();
    feed.send(text("<confer>\nAda: hm\nByron: yes\n")).unwrap();
    h.until("deliberation").await;
    s.send(Stop { reason: "actor-stopped".into() }).await.unwrap();
    let events = h.until("turn-aborted").await;
    assert_eq!(events.last().unwrap().event.body, EventBody::TurnAborted { reason: "actor-stopped".into() });
    let dropped = h.next().await;
    assert!(
        matches!(&dropped.event.body, EventBody::Error { code, message } if code == "input-dropped" && message.contains("waiting"))
    );

    let rebuilt = h.reopen("stop");
    assert_eq!(rebuilt.info().prefix_hash, before);
    assert!(!rebuilt.info().turn_in_flight);
}

#[actix::test]
async fn a_closed_session_refuses_more_input() {
    let mut h = Harness::rehearsal();
    let s = h.create("close", &["ada", "byron"]);
    s.send(say("Only question.")).await.unwrap().unwrap();
    h.until("turn-end").await;
    let totals = s.send(Close).await.unwrap().unwrap();
    assert_eq!(totals.turns, 1);
    let close = h.until("session-close").await;
    assert!(matches!(&close.last().unwrap().event.body, EventBody::SessionClose { totals: t } if *t == totals));
    assert!(h.reopen("close").info().closed);
}

#[actix::test]
async fn bad_input_gets_a_clear_error() {
    let h = Harness::rehearsal();
    let s = h.create("bad", &["ada", "byron"]);
    assert_eq!(s.send(say("   ")).await.unwrap().unwrap_err().code(), "empty-text");
    assert_eq!(s.send(say(&"x".repeat(8_001))).await.unwrap().unwrap_err().code(), "text-too-long");
    assert_eq!(s.send(say("@nobody hello")).await.unwrap().unwrap_err().code(), "not-addressable");
}

#[actix::test]
async fn cast_changes_mid_turn_are_bounded_and_an_add_then_retire_cancels_out() {
    let script = Scripted::default();
    let mut h = Harness::with(Box::new(script.clone()));
    h.deps.limits.cast_queue = 2;
    let s = h.create("castq", &["ada", "byron", "cleo"]);
    let feed = script.next_stream();
    s.send(say("one")).await.unwrap().unwrap();
    h.until("turn-start").await;
    // The review's flood: thousands of add/retire pairs for one character.
    for _ in 0..5000 {
        s.send(ChangeCast(CastChange::Add(cid("otto")))).await.unwrap().unwrap();
        s.send(ChangeCast(CastChange::Retire(cid("otto")))).await.unwrap().unwrap();
    }
    assert!(s.send(Inspect).await.unwrap().pending_changes.is_empty(), "each pair cancelled out");
    s.send(ChangeCast(CastChange::Retire(cid("cleo")))).await.unwrap().unwrap();
    s.send(ChangeCast(CastChange::Add(cid("otto")))).await.unwrap().unwrap();
    let full = s.send(ChangeCast(CastChange::Add(cid("maren")))).await.unwrap().unwrap_err();
    assert!(matches!(full, SessionError::CastQueueFull(2)), "{full}");
    assert_eq!(full.code(), "cast-queue-full");
    // Undoing a waiting change is always allowed, full queue or not.
    s.send(ChangeCast(CastChange::Add(cid("cleo")))).await.unwrap().unwrap();
    let info = s.send(Inspect).await.unwrap();
    assert_eq!(info.pending_changes, [CastChange::Add(cid("otto"))]);

    let before = info.context_bytes;
    feed.send(text("<speak who=\"Ada\">done</speak>")).unwrap();
    drop(feed);
    let events = h.until("join").await;
    assert_eq!(kinds(&events[events.len() - 4..]), ["speak", "cost", "turn-end", "join"]);
    let after = s.send(Inspect).await.unwrap().context_bytes;
    assert!(after - before < 8_000, "one join's materials, not thousands: {before} → {after}");
}
