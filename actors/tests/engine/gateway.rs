//! The gateway: replay then live with no gap, the same bytes for everyone,
//! and a subscriber that falls behind cut loose without slowing the others.

use std::sync::Arc;

use actix::prelude::*;
use panel_actors::event::{EventBody, Logged, Outbound, Publish};
use panel_actors::event_log::{Durability, EventLog};
use panel_actors::gateway::{CountSubscribers, Gateway, Subscribe};
use panel_actors::id::SessionId;

fn say(n: usize) -> EventBody {
    EventBody::HumanSpeak { text: format!("line {n}"), to: None }
}

fn publish(gateway: &Addr<Gateway>, log: &mut EventLog, n: usize) -> Arc<Logged> {
    let logged = log.append(1, say(n)).unwrap();
    gateway.do_send(Publish(Outbound::Event(logged.clone())));
    logged
}

#[actix::test]
async fn a_subscriber_that_falls_behind_is_dropped_and_others_get_everything() {
    let dir = tempfile::tempdir().unwrap();
    let id = SessionId::parse("gw").unwrap();
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    let gateway = Gateway::new(id.clone(), dir.path().to_owned(), 4).unwrap().start();
    let mut slow = gateway.send(Subscribe { since: None }).await.unwrap().unwrap();
    let mut fast = gateway.send(Subscribe { since: None }).await.unwrap().unwrap();
    let mut fast_got = Vec::new();
    for n in 1..=10 {
        publish(&gateway, &mut log, n);
        // The fast one keeps up: it drains after every event.
        fast_got.push(fast.live.recv().await.unwrap());
    }
    assert_eq!(fast_got.len(), 10);
    let mut slow_got = Vec::new();
    while let Some(frame) = slow.live.recv().await {
        slow_got.push(frame);
    }
    assert_eq!(slow_got.len(), 4, "it kept what fit in its queue, then was disconnected");
    assert_eq!(slow_got[0].json.as_ptr(), fast_got[0].json.as_ptr(), "the very same bytes for both");
    assert_eq!(gateway.send(CountSubscribers).await.unwrap(), 1);

    // It reconnects from where it was and catches up from the log.
    let again = gateway.send(Subscribe { since: Some(4) }).await.unwrap().unwrap();
    let replayed: Vec<_> = again.replay.iter().map(|f| f.sse()).collect();
    let expected: Vec<_> = fast_got[4..].iter().map(|f| f.sse()).collect();
    assert_eq!(replayed, expected);
    assert_eq!(again.last_seq, 10);
}

#[actix::test]
async fn a_new_gateway_replays_an_existing_log_and_frames_events_for_sse() {
    let dir = tempfile::tempdir().unwrap();
    let id = SessionId::parse("gw2").unwrap();
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    for n in 1..=3 {
        log.append(1, say(n)).unwrap();
    }
    let gateway = Gateway::new(id, dir.path().to_owned(), 16).unwrap().start();
    let sub = gateway.send(Subscribe { since: Some(1) }).await.unwrap().unwrap();
    assert_eq!(sub.replay.len(), 2);
    let sse = sub.replay[0].sse();
    let text = std::str::from_utf8(&sse).unwrap();
    assert!(text.starts_with("id: 2\nevent: human-speak\ndata: {\"seq\":2,"), "{text}");
    assert!(text.ends_with("}\n\n"));
    let everything = gateway.send(Subscribe { since: Some(0) }).await.unwrap().unwrap();
    assert_eq!(everything.replay.len(), 3);
    let live_only = gateway.send(Subscribe { since: None }).await.unwrap().unwrap();
    assert!(live_only.replay.is_empty());
}
