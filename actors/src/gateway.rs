//! The gateway actor: fans one session's events out to its subscribers.
//!
//! One gateway per session, owned by the registry. It outlives the session's
//! actor, so subscribers stay connected while that actor is killed and
//! restarted, and simply receive what the restarted actor publishes.
//!
//! Invariants:
//! - Each event is framed once, as SSE bytes and as bare JSON, and the same
//!   [`Bytes`] go to every subscriber.
//! - A subscription replays exactly the events after `since` and then goes
//!   live with no gap and no duplicate. That holds because the session logs
//!   an event before publishing it and the gateway handles `Publish` and
//!   [`Subscribe`] in one mailbox: when a subscription is handled, every
//!   event up to `last_seq` is in the log (or in the recent-history ring),
//!   and every later one is still in the mailbox, to be sent live.
//! - Per-subscriber queues are bounded and never awaited: a subscriber whose
//!   queue is full is disconnected (it reconnects with `Last-Event-ID` and
//!   catches up from the log), so it never slows the session or the others.
//!   Typing deltas are ephemeral and simply skipped for a subscriber that is
//!   behind.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::event::{Logged, Outbound, Publish};
use crate::event_log::{self, LogError};
use crate::id::SessionId;

/// Events kept in memory for quick replay; older ones come from the log.
const HISTORY: usize = 4096;

/// One outbound item, framed once for every kind of subscriber.
///
/// The JSON is not copied: `json` shares the buffer the log wrote, and an SSE
/// subscriber is sent `prefix`, `json`, then [`Frame::END`].
#[derive(Debug, Clone)]
pub struct Frame {
    /// `id:` and `event:` lines, and the `data: ` that starts the last line.
    pub prefix: Bytes,
    /// The bare event JSON: the SSE data, and the WebSocket payload.
    pub json: Bytes,
}

/// Lets a `Bytes` borrow an `Arc<str>` without copying it.
struct SharedStr(Arc<str>);

impl AsRef<[u8]> for SharedStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Frame {
    /// The blank line that ends an SSE event.
    pub const END: &'static [u8] = b"\n\n";

    pub fn event(logged: &Logged) -> Self {
        let kind = logged.event.body.kind();
        // The JSON is a single line (serde_json escapes newlines), so one
        // `data:` line carries it whole.
        let prefix = format!("id: {}\nevent: {kind}\ndata: ", logged.event.seq);
        Self { prefix: Bytes::from(prefix), json: Bytes::from_owner(SharedStr(logged.json.clone())) }
    }

    /// An ephemeral delta: no `id:`, so it never moves a client's Last-Event-ID.
    pub fn delta(json: &Arc<str>) -> Self {
        Self {
            prefix: Bytes::from_static(b"event: speak-delta\ndata: "),
            json: Bytes::from_owner(SharedStr(json.clone())),
        }
    }

    /// The whole SSE event in one buffer (a copy; for tests and tools).
    pub fn sse(&self) -> Vec<u8> {
        [&self.prefix[..], &self.json[..], Self::END].concat()
    }
}

/// Subscribe to a session: replay what came after `since` (nothing if
/// `None`), then live frames.
#[derive(Debug, Message)]
#[rtype(result = "Result<Subscription, LogError>")]
pub struct Subscribe {
    pub since: Option<u64>,
}

pub struct Subscription {
    pub replay: Vec<Frame>,
    pub live: mpsc::Receiver<Frame>,
    /// The seq of the last event replayed or about to be sent live.
    pub last_seq: u64,
}

/// Disconnect every subscriber (their streams end after what is queued).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DisconnectAll;

/// How many subscribers are connected.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CountSubscribers;

pub struct Gateway {
    session: SessionId,
    logs: PathBuf,
    capacity: usize,
    next_subscriber: u64,
    subscribers: HashMap<u64, mpsc::Sender<Frame>>,
    history: VecDeque<(u64, Frame)>,
    last_seq: u64,
}

impl Gateway {
    /// A gateway for `session`, starting after what its log already holds.
    /// `capacity` bounds each subscriber's queue.
    pub fn new(session: SessionId, logs: PathBuf, capacity: usize) -> Result<Self, LogError> {
        let mut gateway = Self {
            session,
            logs,
            capacity: capacity.max(1),
            next_subscriber: 0,
            subscribers: HashMap::new(),
            history: VecDeque::new(),
            last_seq: 0,
        };
        match event_log::read(&gateway.logs, &gateway.session) {
            Ok(events) => {
                for logged in events.iter().skip(events.len().saturating_sub(HISTORY)) {
                    gateway.remember(logged);
                }
                gateway.last_seq = events.last().map_or(0, |l| l.event.seq);
            }
            Err(LogError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        Ok(gateway)
    }

    fn remember(&mut self, logged: &Arc<Logged>) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((logged.event.seq, Frame::event(logged)));
    }

    fn fan_out(&mut self, frame: &Frame, droppable: bool) {
        let session = &self.session;
        self.subscribers.retain(|id, tx| match tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) if droppable => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                log::info!("session {session}: subscriber {id} fell behind; disconnecting it (it can resume from its Last-Event-ID)");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    fn replay_after(&self, since: u64) -> Result<Vec<Frame>, LogError> {
        if since >= self.last_seq {
            return Ok(Vec::new());
        }
        if self.history.front().is_some_and(|(seq, _)| *seq <= since + 1) {
            return Ok(self.history.iter().filter(|(seq, _)| *seq > since).map(|(_, f)| f.clone()).collect());
        }
        let events = event_log::read(&self.logs, &self.session)?;
        Ok(events
            .iter()
            .filter(|l| l.event.seq > since && l.event.seq <= self.last_seq)
            .map(|l| Frame::event(l))
            .collect())
    }
}

impl Actor for Gateway {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Sessions publish with `do_send`; this only sizes the bounded part
        // used by subscribe requests.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<Publish> for Gateway {
    type Result = ();

    fn handle(&mut self, Publish(item): Publish, _: &mut Self::Context) {
        match item {
            Outbound::Event(logged) => {
                if logged.event.seq <= self.last_seq {
                    // Already seen (a gateway created after this was logged).
                    return;
                }
                self.last_seq = logged.event.seq;
                self.remember(&logged);
                if let Some((_, frame)) = self.history.back() {
                    let frame = frame.clone();
                    self.fan_out(&frame, false);
                }
            }
            Outbound::Delta(json) => self.fan_out(&Frame::delta(&json), true),
        }
    }
}

impl Handler<Subscribe> for Gateway {
    type Result = Result<Subscription, LogError>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        let replay = match msg.since {
            Some(since) => self.replay_after(since)?,
            None => Vec::new(),
        };
        let (tx, live) = mpsc::channel(self.capacity);
        self.next_subscriber += 1;
        self.subscribers.insert(self.next_subscriber, tx);
        Ok(Subscription { replay, live, last_seq: self.last_seq })
    }
}

impl Handler<DisconnectAll> for Gateway {
    type Result = ();

    fn handle(&mut self, _: DisconnectAll, _: &mut Self::Context) {
        self.subscribers.clear();
    }
}

impl Handler<CountSubscribers> for Gateway {
    type Result = usize;

    fn handle(&mut self, _: CountSubscribers, _: &mut Self::Context) -> usize {
        self.subscribers.retain(|_, tx| !tx.is_closed());
        self.subscribers.len()
    }
}
