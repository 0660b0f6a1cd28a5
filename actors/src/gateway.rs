//! The gateway actor: fans one session's events out to its subscribers.
//!
//! One gateway per watched or running session, started by the registry. It
//! outlives the session's actor, so subscribers stay connected while that
//! actor is killed, passivated or restarted, and simply receive what the
//! restarted actor publishes. A gateway with no subscribers whose session is
//! not running is retired by the registry; a later subscriber gets a new one.
//!
//! Invariants:
//! - Each event is framed once, as one SSE buffer, and the same [`Bytes`]
//!   (and slices of them) go to every subscriber: no copy per subscriber, one
//!   write per event.
//! - A subscription replays exactly the events after `since` and then goes
//!   live with no gap and no duplicate. The live queue is registered first;
//!   the replay then comes from the recent-history ring, or — for older
//!   positions — from the log, read by the subscriber's side off this thread.
//!   Everything published before the subscription is in the log (the writer
//!   logs before it publishes), everything after is in the live queue, and
//!   the subscriber skips live events it already replayed (by seq).
//! - Per-subscriber queues are bounded and never awaited: a subscriber whose
//!   queue is full is disconnected (it reconnects with `Last-Event-ID` and
//!   catches up from the log), so it never slows the session or the others.
//!   Typing deltas are ephemeral and simply skipped for one that is behind.
//! - A subscriber whose connection ends is removed at once (its
//!   [`Subscription`] holds a guard that tells the gateway), so memory follows
//!   the subscribers actually connected.
//! - Presence (who is here) is counted from the same guards: subscribers,
//!   and the seats attending through a WebSocket ([`Attend`]). Whenever it
//!   changes, a `presence` frame goes to the subscribers that asked for it
//!   (and at once to each new one); like typing, it is never logged and
//!   skipped for a subscriber that is behind. Those that did not ask all see
//!   exactly the same frames.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use actix::prelude::*;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::event::{Logged, Outbound, Presence, Publish, Timestamp};
use crate::id::SessionId;

/// Recent events kept for replay without reading the log: at most this
/// many, and at most [`HISTORY_BYTES`] of them.
const HISTORY: usize = 4096;
const HISTORY_BYTES: usize = 1 << 20;

/// One outbound item, framed once for every kind of subscriber.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The event's seq; `None` for an ephemeral delta.
    pub seq: Option<u64>,
    /// The whole SSE event: `id:` (for logged events), `event:`, `data:`, blank line.
    pub sse: Bytes,
    /// The SSE event without its `id:` line, for streams that number events their own way.
    pub unnumbered: Bytes,
    /// The bare event JSON: the SSE data, and the WebSocket payload.
    pub json: Bytes,
    /// A `presence` frame: ephemeral, but for every stream (not only those
    /// that asked for typing).
    pub presence: bool,
}

impl Frame {
    pub fn event(logged: &Logged) -> Self {
        let id = format!("id: {}\n", logged.event.seq);
        Self::build(Some(logged.event.seq), &id, logged.event.body.kind(), &logged.json)
    }

    /// An ephemeral delta: no `id:`, so it never moves a client's Last-Event-ID.
    pub fn delta(json: &Arc<str>) -> Self {
        Self::build(None, "", "speak-delta", json)
    }

    /// Who is here: ephemeral, like a delta.
    pub fn presence(presence: &Presence) -> Self {
        // A struct of strings and numbers always serialises.
        let json = serde_json::to_string(presence).unwrap_or_default();
        Self { presence: true, ..Self::build(None, "", "presence", &json) }
    }

    fn build(seq: Option<u64>, id: &str, kind: &str, json: &str) -> Self {
        // The JSON is a single line (serde_json escapes newlines), so one
        // `data:` line carries it whole.
        let head = format!("{id}event: {kind}\ndata: ");
        let mut buf = BytesMut::with_capacity(head.len() + json.len() + 2);
        buf.put_slice(head.as_bytes());
        buf.put_slice(json.as_bytes());
        buf.put_slice(b"\n\n");
        let sse = buf.freeze();
        let json = sse.slice(head.len()..sse.len() - 2);
        let unnumbered = sse.slice(id.len()..);
        Self { seq, sse, unnumbered, json, presence: false }
    }
}

/// Subscribe to a session: replay what came after `since` (nothing if
/// `None`), then live frames.
#[derive(Debug, Message)]
#[rtype(result = "Subscription")]
pub struct Subscribe {
    pub since: Option<u64>,
    /// Whether it wants `presence` frames (a page that shows who is here);
    /// without them every subscriber of a session sees the same frames.
    pub presence: bool,
}

/// Where a subscription's replay comes from.
#[derive(Debug)]
pub enum Replay {
    /// Live only.
    Nothing,
    /// Everything after `since`, from the gateway's memory.
    Frames(Vec<Frame>),
    /// Everything after `since`, to be read from the log by the subscriber
    /// (off the actor threads): it is older than the gateway remembers.
    FromLog { since: u64 },
}

pub struct Subscription {
    pub replay: Replay,
    pub live: mpsc::Receiver<Frame>,
    /// Tells the gateway when the subscriber goes away.
    pub guard: Unsubscriber,
}

/// Dropped with the subscriber's stream: the gateway forgets it at once.
pub struct Unsubscriber {
    gateway: Recipient<Unsubscribe>,
    id: u64,
}

impl Drop for Unsubscriber {
    fn drop(&mut self) {
        self.gateway.do_send(Unsubscribe(self.id));
    }
}

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(u64);

/// A connection that can speak attends the session, from a named seat or
/// none; it is counted in presence for as long as the answer lives.
#[derive(Debug, Message)]
#[rtype(result = "Attendance")]
pub struct Attend {
    pub seat: Option<String>,
}

/// Dropped when the attending connection ends.
pub struct Attendance {
    gateway: Recipient<Unattend>,
    id: u64,
}

impl Drop for Attendance {
    fn drop(&mut self) {
        self.gateway.do_send(Unattend(self.id));
    }
}

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unattend(u64);

/// Disconnect every subscriber (their streams end after what is queued).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DisconnectAll;

/// The registry is done with this gateway: disconnect everyone and stop.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Retire;

/// Stop, unless someone subscribed meanwhile. Answers whether it stopped.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct RetireIfIdle;

/// How many subscribers are connected.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CountSubscribers;

/// Told to the gateway's owner whenever its number of subscribers changes.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Watchers {
    pub session: SessionId,
    pub gateway: Addr<Gateway>,
    pub count: usize,
}

struct Subscriber {
    tx: mpsc::Sender<Frame>,
    presence: bool,
}

pub struct Gateway {
    session: SessionId,
    capacity: usize,
    owner: Option<Recipient<Watchers>>,
    next_subscriber: u64,
    subscribers: HashMap<u64, Subscriber>,
    /// Recent event frames with contiguous seqs, oldest first.
    history: VecDeque<Frame>,
    history_bytes: usize,
    /// The seq of the last event published, if any was.
    last_seq: Option<u64>,
    reported: usize,
    /// Connections attending (WebSockets), by id, with their seats.
    attending: HashMap<u64, Option<String>>,
    /// The presence last sent, to send only changes.
    presence: (Vec<String>, usize),
}

impl Gateway {
    /// A gateway for `session`. `capacity` bounds each subscriber's queue;
    /// `owner` hears how many subscribers there are.
    pub fn new(session: SessionId, capacity: usize, owner: Option<Recipient<Watchers>>) -> Self {
        Self {
            session,
            capacity: capacity.max(1),
            owner,
            next_subscriber: 0,
            subscribers: HashMap::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            last_seq: None,
            reported: 0,
            attending: HashMap::new(),
            presence: (Vec::new(), 0),
        }
    }

    fn remember(&mut self, frame: Frame) {
        self.history_bytes += frame.sse.len();
        self.history.push_back(frame);
        while self.history.len() > HISTORY || self.history_bytes > HISTORY_BYTES {
            match self.history.pop_front() {
                Some(old) => self.history_bytes -= old.sse.len(),
                None => break,
            }
        }
    }

    fn fan_out(&mut self, frame: &Frame, droppable: bool) {
        let session = &self.session;
        self.subscribers.retain(|id, sub| {
            if frame.presence && !sub.presence {
                return true;
            }
            match sub.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) if droppable => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::info!("session {session}: subscriber {id} fell behind; disconnecting it (it can resume from its Last-Event-ID)");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    fn replay_after(&self, since: u64) -> Replay {
        match (self.history.front().and_then(|f| f.seq), self.last_seq) {
            (_, Some(last)) if since >= last => Replay::Frames(Vec::new()),
            (Some(first), _) if since + 1 >= first => {
                Replay::Frames(self.history.iter().filter(|f| f.seq > Some(since)).cloned().collect())
            }
            _ => Replay::FromLog { since },
        }
    }

    /// Sends presence to everyone when it changed. Each seat is taken to
    /// watch through one of the streams — one, however many tabs it has open,
    /// since a browser's tabs share one stream — so the watchers are the
    /// streams beyond the seats'.
    fn tell_presence(&mut self) -> bool {
        let mut seats: Vec<String> = self.attending.values().flatten().cloned().collect();
        seats.sort();
        seats.dedup();
        let now = (seats.clone(), self.subscribers.len().saturating_sub(seats.len()));
        if now == self.presence {
            return false;
        }
        self.presence = now;
        let frame = self.presence_frame();
        self.fan_out(&frame, true);
        true
    }

    fn presence_frame(&self) -> Frame {
        let (seats, watchers) = self.presence.clone();
        Frame::presence(&Presence { ts: Timestamp::now(), session: self.session.clone(), seats, watchers })
    }

    fn report(&mut self, ctx: &Context<Self>) {
        self.tell_presence();
        let count = self.subscribers.len();
        if count != self.reported {
            self.reported = count;
            if let Some(owner) = &self.owner {
                owner.do_send(Watchers { session: self.session.clone(), gateway: ctx.address(), count });
            }
        }
    }
}

impl Actor for Gateway {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Sessions publish through the log writer with `do_send`; this only
        // sizes the bounded part used by subscribe requests.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Publish> for Gateway {
    type Result = ();

    fn handle(&mut self, Publish(item): Publish, ctx: &mut Self::Context) {
        match item {
            Outbound::Event(logged) => {
                let seq = logged.event.seq;
                if self.last_seq.is_some_and(|last| seq <= last) {
                    // Already seen (a repair published again).
                    return;
                }
                if self.last_seq.is_some_and(|last| seq != last + 1) {
                    // A gap (a gateway that started mid-session): the ring
                    // only ever holds contiguous events.
                    self.history.clear();
                    self.history_bytes = 0;
                }
                self.last_seq = Some(seq);
                let frame = Frame::event(&logged);
                self.fan_out(&frame, false);
                self.remember(frame);
            }
            Outbound::Delta(json) => self.fan_out(&Frame::delta(&json), true),
        }
        self.report(ctx);
    }
}

impl Handler<Subscribe> for Gateway {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Self::Context) -> Self::Result {
        let replay = match msg.since {
            Some(since) => self.replay_after(since),
            None => Replay::Nothing,
        };
        let (tx, live) = mpsc::channel(self.capacity);
        self.next_subscriber += 1;
        let id = self.next_subscriber;
        self.subscribers.insert(id, Subscriber { tx: tx.clone(), presence: msg.presence });
        // A new subscriber learns who is here, whether or not it changed that.
        if !self.tell_presence() && msg.presence {
            let _ = tx.try_send(self.presence_frame());
        }
        self.report(ctx);
        let guard = Unsubscriber { gateway: ctx.address().recipient(), id };
        MessageResult(Subscription { replay, live, guard })
    }
}

impl Handler<Unsubscribe> for Gateway {
    type Result = ();

    fn handle(&mut self, Unsubscribe(id): Unsubscribe, ctx: &mut Self::Context) {
        self.subscribers.remove(&id);
        self.report(ctx);
    }
}

impl Handler<Attend> for Gateway {
    type Result = MessageResult<Attend>;

    fn handle(&mut self, msg: Attend, ctx: &mut Self::Context) -> Self::Result {
        self.next_subscriber += 1;
        let id = self.next_subscriber;
        self.attending.insert(id, msg.seat);
        self.report(ctx);
        MessageResult(Attendance { gateway: ctx.address().recipient(), id })
    }
}

impl Handler<Unattend> for Gateway {
    type Result = ();

    fn handle(&mut self, Unattend(id): Unattend, ctx: &mut Self::Context) {
        self.attending.remove(&id);
        self.report(ctx);
    }
}

impl Handler<DisconnectAll> for Gateway {
    type Result = ();

    fn handle(&mut self, _: DisconnectAll, ctx: &mut Self::Context) {
        self.subscribers.clear();
        self.report(ctx);
    }
}

impl Handler<Retire> for Gateway {
    type Result = ();

    fn handle(&mut self, _: Retire, ctx: &mut Self::Context) {
        self.subscribers.clear();
        ctx.stop();
    }
}

impl Handler<RetireIfIdle> for Gateway {
    type Result = bool;

    fn handle(&mut self, _: RetireIfIdle, ctx: &mut Self::Context) -> bool {
        self.subscribers.retain(|_, sub| !sub.tx.is_closed());
        if self.subscribers.is_empty() {
            ctx.stop();
        }
        self.subscribers.is_empty()
    }
}

impl Handler<CountSubscribers> for Gateway {
    type Result = usize;

    fn handle(&mut self, _: CountSubscribers, ctx: &mut Self::Context) -> usize {
        self.subscribers.retain(|_, sub| !sub.tx.is_closed());
        self.report(ctx);
        self.subscribers.len()
    }
}
