//! The gateway: replay then live with no gap, the same bytes for everyone,
//! a subscriber that falls behind cut loose without slowing the others, and
//! one that goes away forgotten at once.

use std::sync::Arc;

use actix::prelude::*;
use panel_actors::event::{EventBody, Logged, Outbound, Publish};
use panel_actors::event_log::{self, Durability, EventLog};
use panel_actors::gateway::{CountSubscribers, Frame, Gateway, Replay, Subscribe, Watchers};
use panel_actors::id::SessionId;
use tokio::sync::mpsc;

fn say(n: usize) -> EventBody {
    EventBody::HumanSpeak { text: format!("line {n}"), to: None, seat: None }
}

fn publish(gateway: &Addr<Gateway>, log: &mut EventLog, n: usize) -> Arc<Logged> {
    let logged = log.append(1, say(n)).unwrap();
    gateway.do_send(Publish(Outbound::Event(logged.clone())));
    logged
}

fn frames(replay: &Replay) -> Vec<Vec<u8>> {
    match replay {
        Replay::Frames(f) => f.iter().map(|f| f.sse.to_vec()).collect(),
        other => panic!("expected frames, got {other:?}"),
    }
}

#[actix::test]
async fn a_subscriber_that_falls_behind_is_dropped_and_others_get_everything() {
    let dir = tempfile::tempdir().unwrap();
    let id = SessionId::parse("gw").unwrap();
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    let gateway = Gateway::new(id.clone(), 4, None).start();
    let mut slow = gateway.send(Subscribe { since: None, presence: false }).await.unwrap();
    let mut fast = gateway.send(Subscribe { since: None, presence: false }).await.unwrap();
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
    assert_eq!(slow_got[0].sse.as_ptr(), fast_got[0].sse.as_ptr(), "the very same bytes for both");
    assert_eq!(gateway.send(CountSubscribers).await.unwrap(), 1);

    // It reconnects from where it was and catches up from the gateway's memory.
    let again = gateway.send(Subscribe { since: Some(4), presence: false }).await.unwrap();
    let expected: Vec<_> = fast_got[4..].iter().map(|f| f.sse.to_vec()).collect();
    assert_eq!(frames(&again.replay), expected);
}

#[actix::test]
async fn a_new_gateway_sends_older_positions_to_the_log_and_frames_each_event_as_one_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let id = SessionId::parse("gw2").unwrap();
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    for n in 1..=3 {
        log.append(1, say(n)).unwrap();
    }
    let gateway = Gateway::new(id.clone(), 16, None).start();
    let sub = gateway.send(Subscribe { since: Some(1), presence: false }).await.unwrap();
    let Replay::FromLog { since } = sub.replay else { panic!("a fresh gateway remembers nothing") };
    let events = event_log::read_after(dir.path(), &id, since).unwrap();
    assert_eq!(events.iter().map(|l| l.event.seq).collect::<Vec<_>>(), [2, 3]);
    let frame = Frame::event(&events[0]);
    let text = std::str::from_utf8(&frame.sse).unwrap();
    assert!(text.starts_with("id: 2\nevent: human-speak\ndata: {\"seq\":2,"), "{text}");
    assert!(text.ends_with("}\n\n"));
    assert_eq!(&frame.json[..], events[0].json.as_bytes());
    assert!(frame.unnumbered.starts_with(b"event: human-speak\n"));
    let live_only = gateway.send(Subscribe { since: None, presence: false }).await.unwrap();
    assert!(matches!(live_only.replay, Replay::Nothing));
}

struct Owner(mpsc::UnboundedSender<usize>);

impl Actor for Owner {
    type Context = Context<Self>;
}

impl Handler<Watchers> for Owner {
    type Result = ();
    fn handle(&mut self, msg: Watchers, _: &mut Self::Context) {
        let _ = self.0.send(msg.count);
    }
}

#[actix::test]
async fn a_subscriber_that_goes_away_is_forgotten_at_once_and_the_owner_hears_of_it() {
    let (tx, mut counts) = mpsc::unbounded_channel();
    let owner = Owner(tx).start().recipient();
    let gateway = Gateway::new(SessionId::parse("gw3").unwrap(), 16, Some(owner)).start();
    for _ in 0..1000 {
        let sub = gateway.send(Subscribe { since: None, presence: false }).await.unwrap();
        assert_eq!(counts.recv().await, Some(1));
        drop(sub);
        assert_eq!(counts.recv().await, Some(0), "nothing published, and still it is gone");
    }
    assert_eq!(gateway.send(CountSubscribers).await.unwrap(), 0);
}

#[test]
fn reading_after_a_position_reads_only_the_end_of_a_long_log() {
    let dir = tempfile::tempdir().unwrap();
    let id = SessionId::parse("gw4").unwrap();
    let mut log = EventLog::create(dir.path(), &id, Durability::PerTurn).unwrap();
    for n in 1..=5000 {
        log.append(1, say(n)).unwrap();
    }
    let tail = event_log::read_after(dir.path(), &id, 4990).unwrap();
    assert_eq!(tail.iter().map(|l| l.event.seq).collect::<Vec<_>>(), (4991..=5000).collect::<Vec<_>>());
    assert_eq!(event_log::read_after(dir.path(), &id, 0).unwrap().len(), 5000);
    assert!(event_log::read_after(dir.path(), &id, 5000).unwrap().is_empty());
}
