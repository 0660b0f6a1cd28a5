//! The log writers: a few dedicated threads that write sessions' events to
//! their logs, sync them, and only then publish them to the gateways.
//!
//! Why threads of their own: a write, and above all an fsync, can block for
//! milliseconds (seconds on a sick disk). On an actor thread that would
//! freeze every session and stream sharing it. Here it only delays the lines
//! queued behind it on the same writer.
//!
//! Invariants:
//! - A session's [`Appender`] assigns `seq` and `ts` and serialises the event
//!   on the session's own thread; the writer thread writes the line, syncs it
//!   when the durability setting asks, and *then* publishes it. So nothing
//!   reaches a subscriber that is not first in the log, and everything a
//!   session hands over (events and typing deltas alike) reaches its gateway
//!   in the order it was handed over: one session's jobs all go to one
//!   thread, through one FIFO queue.
//! - A write that fails cuts the file back and marks the log failed: nothing
//!   after it is written or published (so `seq` never has a gap), the session
//!   is told ([`LogFailed`]) and stops, and its state is rebuilt from what
//!   the log really holds.
//! - [`Appender::release`] closes the file — and so lets go of its lock —
//!   after every line queued before it, and says when that is done. That is
//!   how a stopping actor hands its log to the next one without anybody
//!   sleeping on a lock.
//! - Queues are bounded. A writer too far behind refuses new events (the
//!   session fails cleanly) and drops typing deltas, which are ephemeral.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{Durability, EventLog, LogError, encode_sample};
use crate::event::{EventBody, Logged, Outbound, Publish};
use crate::id::SessionId;

/// Jobs a writer thread may have queued before it refuses more.
const QUEUE: usize = 65_536;

/// Told to a session whose log failed: it must stop.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct LogFailed {
    pub message: String,
}

/// Called on the writer thread with every event once it is in its log.
pub type Observer = Arc<dyn Fn(&Logged) + Send + Sync>;

enum Job {
    Attach { key: u64, log: EventLog, failure: Arc<Failure> },
    Watch { key: u64, watcher: Recipient<LogFailed> },
    Write { key: u64, logged: Arc<Logged>, sync: bool, publish: Option<Recipient<Publish>> },
    Publish { publish: Recipient<Publish>, item: Outbound },
    Flush { key: u64, reply: oneshot::Sender<Result<(), LogError>> },
    Release { key: u64, reply: Option<oneshot::Sender<Result<(), LogError>>> },
}

/// A log's failure, shared by the writer (who sets it) and the appender
/// (who checks it before queueing more).
#[derive(Debug, Default)]
struct Failure {
    failed: AtomicBool,
    message: Mutex<String>,
}

impl Failure {
    fn set(&self, message: String) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
        self.failed.store(true, Ordering::Release);
    }

    fn get(&self) -> Option<String> {
        self.failed.load(Ordering::Acquire).then(|| self.message.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The writer threads. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    lanes: Arc<Vec<SyncSender<Job>>>,
    next_key: Arc<AtomicU64>,
}

impl LogWriter {
    /// Starts `threads` writer threads. `observer` sees every event written.
    pub fn start(threads: usize, observer: Option<Observer>) -> Self {
        let lanes = (0..threads.max(1))
            .map(|n| {
                let (tx, rx) = sync_channel(QUEUE);
                let observer = observer.clone();
                std::thread::Builder::new()
                    .name(format!("panel-log-{n}"))
                    .spawn(move || run(&rx, observer.as_deref()))
                    .map(|_| tx)
            })
            .collect::<Result<Vec<_>, _>>()
            // Without a writer thread there is no server; say so at start-up.
            .unwrap_or_else(|e| panic!("cannot start a log writer thread: {e}"));
        Self { lanes: Arc::new(lanes), next_key: Arc::new(AtomicU64::new(1)) }
    }

    /// Hands an open log to a writer thread and returns the session's side of it.
    pub fn attach(&self, log: EventLog, publish: Option<Recipient<Publish>>) -> Appender {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let lane = self.lanes[(key % self.lanes.len() as u64) as usize].clone();
        let failure = Arc::new(Failure::default());
        let appender = Appender {
            session: log.session().clone(),
            next_seq: log.next_seq(),
            durability: log.durability(),
            key,
            lane,
            failure: failure.clone(),
            publish,
            released: false,
        };
        // The one control job that waits for room itself: every write of this
        // log must queue behind it. It comes once, as a session opens.
        let _ = appender.lane.send(Job::Attach { key, log, failure });
        appender
    }

    /// Closes the log a dead appender left behind, after everything it queued.
    pub fn release(&self, key: u64) -> impl Future<Output = Result<(), LogError>> + use<> {
        let lane = self.lanes[(key % self.lanes.len() as u64) as usize].clone();
        let (reply, done) = oneshot::channel();
        let queued = send_control(&lane, Job::Release { key, reply: Some(reply) });
        async move {
            if !queued {
                return Ok(());
            }
            done.await.unwrap_or(Ok(()))
        }
    }
}

/// A session's side of its log: it numbers, stamps and serialises events,
/// and queues them for its writer thread. See the module docs.
pub struct Appender {
    session: SessionId,
    next_seq: u64,
    durability: Durability,
    key: u64,
    lane: SyncSender<Job>,
    failure: Arc<Failure>,
    publish: Option<Recipient<Publish>>,
    released: bool,
}

impl Appender {
    /// Queues one event, assigning its `seq` and `ts`. It is published once
    /// it is written. An error means the log has failed (now or before).
    pub fn append(&mut self, turn: u32, body: EventBody) -> Result<Arc<Logged>, LogError> {
        self.append_sample(turn, None, body)
    }

    /// Like [`Appender::append`], for an event of one sample of a replay.
    pub fn append_sample(&mut self, turn: u32, sample: Option<u32>, body: EventBody) -> Result<Arc<Logged>, LogError> {
        if self.released {
            return Err(LogError::Failed(self.session.clone(), "the log was released".into()));
        }
        if let Some(message) = self.failure.get() {
            return Err(LogError::Failed(self.session.clone(), message));
        }
        let sync = self.durability.must_sync(&body);
        let logged = encode_sample(&self.session, self.next_seq, turn, sample, body)
            .map_err(|message| LogError::Failed(self.session.clone(), message))?;
        let job = Job::Write { key: self.key, logged: logged.clone(), sync, publish: self.publish.clone() };
        match self.lane.try_send(job) {
            Ok(()) => {
                self.next_seq += 1;
                Ok(logged)
            }
            Err(e) => {
                let message = match e {
                    TrySendError::Full(_) => "the log writer is too far behind",
                    TrySendError::Disconnected(_) => "the log writer has stopped",
                };
                self.failure.set(message.into());
                Err(LogError::Failed(self.session.clone(), message.into()))
            }
        }
    }

    /// Publishes an item that is not to be written (a typing delta, or an
    /// event already in the log), in order with the events queued before it.
    pub fn publish(&self, item: Outbound) {
        if let Some(publish) = &self.publish {
            // A delta the writer has no room for is simply not shown.
            let _ = self.lane.try_send(Job::Publish { publish: publish.clone(), item });
        }
    }

    /// Who to tell if the log fails (told at once if it already has).
    pub fn watch(&self, watcher: Recipient<LogFailed>) {
        self.send(Job::Watch { key: self.key, watcher });
    }

    /// Resolves once everything queued so far is written and on disk.
    pub fn flush(&self) -> impl Future<Output = Result<(), LogError>> + use<> {
        let (reply, done) = oneshot::channel();
        let queued = self.send(Job::Flush { key: self.key, reply });
        let session = self.session.clone();
        async move {
            if !queued {
                return Err(LogError::Failed(session, "the log writer has stopped".into()));
            }
            done.await.unwrap_or_else(|_| Err(LogError::Failed(session, "the log writer has stopped".into())))
        }
    }

    /// Closes the log after everything queued so far, releasing its lock;
    /// resolves when that is done. Nothing can be appended afterwards.
    pub fn release(&mut self) -> impl Future<Output = Result<(), LogError>> + use<> {
        self.released = true;
        let (reply, done) = oneshot::channel();
        let queued = self.send(Job::Release { key: self.key, reply: Some(reply) });
        async move {
            if !queued {
                return Ok(());
            }
            done.await.unwrap_or(Ok(()))
        }
    }

    /// The writer's name for this log, to release it if the session dies.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The `seq` the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Why the log failed, if it did.
    pub fn failed(&self) -> Option<String> {
        self.failure.get()
    }

    fn send(&self, job: Job) -> bool {
        send_control(&self.lane, job)
    }
}

/// Queues a control job (watch, flush, release), which must not be lost to
/// a full queue — nor block the actor's thread while a sick disk keeps the
/// queue full: then a thread of its own waits for room. Whether it was (or
/// will be) queued: false only once the writer has stopped.
fn send_control(lane: &SyncSender<Job>, job: Job) -> bool {
    match lane.try_send(job) {
        Ok(()) => true,
        Err(TrySendError::Disconnected(_)) => false,
        Err(TrySendError::Full(job)) => {
            let lane = lane.clone();
            std::thread::Builder::new()
                .name("panel-log-control".into())
                .spawn(move || {
                    let _ = lane.send(job);
                })
                .is_ok()
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        // A session that dies without releasing its log (a panic) still lets
        // go of the file once its queued lines are written.
        if !self.released {
            send_control(&self.lane, Job::Release { key: self.key, reply: None });
        }
    }
}

/// One log, as its writer thread holds it.
struct Slot {
    log: EventLog,
    failure: Arc<Failure>,
    watcher: Option<Recipient<LogFailed>>,
}

impl Slot {
    fn fail(&mut self, error: &LogError) {
        let message = error.to_string();
        log::error!("session {}: its log failed and takes no more events: {message}", self.log.session());
        self.failure.set(message.clone());
        if let Some(w) = &self.watcher {
            w.do_send(LogFailed { message });
        }
    }

    fn settle(&mut self) -> Result<(), LogError> {
        match self.failure.get() {
            Some(message) => Err(LogError::Failed(self.log.session().clone(), message)),
            None => self.log.sync().inspect_err(|e| self.fail(e)),
        }
    }
}

fn run(rx: &Receiver<Job>, observer: Option<&(dyn Fn(&Logged) + Send + Sync)>) {
    let mut logs: HashMap<u64, Slot> = HashMap::new();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Attach { key, log, failure } => {
                logs.insert(key, Slot { log, failure, watcher: None });
            }
            Job::Watch { key, watcher } => {
                if let Some(slot) = logs.get_mut(&key) {
                    if let Some(message) = slot.failure.get() {
                        watcher.do_send(LogFailed { message });
                    }
                    slot.watcher = Some(watcher);
                }
            }
            Job::Write { key, logged, sync, publish } => {
                let Some(slot) = logs.get_mut(&key) else { continue };
                if slot.failure.get().is_some() {
                    continue;
                }
                match slot.log.write(&logged, sync) {
                    Ok(()) => {
                        if let Some(observe) = observer {
                            observe(&logged);
                        }
                        if let Some(p) = publish {
                            p.do_send(Publish(Outbound::Event(logged)));
                        }
                    }
                    Err(e) => slot.fail(&e),
                }
            }
            Job::Publish { publish, item } => {
                // An event published without being written here (a repair
                // made when the log was opened) is news to the observer too.
                if let (Outbound::Event(logged), Some(observe)) = (&item, observer) {
                    observe(logged);
                }
                publish.do_send(Publish(item));
            }
            Job::Flush { key, reply } => {
                let result = logs.get_mut(&key).map_or(Ok(()), Slot::settle);
                let _ = reply.send(result);
            }
            Job::Release { key, reply } => {
                let result = logs.get_mut(&key).map_or(Ok(()), Slot::settle);
                // Dropping the log closes the file and lets go of its lock.
                logs.remove(&key);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::{Job, send_control};

    #[test]
    fn a_control_job_on_a_full_queue_neither_blocks_nor_is_lost() {
        let (lane, jobs) = sync_channel(1);
        assert!(send_control(&lane, Job::Release { key: 1, reply: None }));
        // The queue is full and nobody drains it: this must return at once.
        assert!(send_control(&lane, Job::Release { key: 2, reply: None }));
        let keys: Vec<u64> = (0..2)
            .map(|_| match jobs.recv_timeout(std::time::Duration::from_secs(10)) {
                Ok(Job::Release { key, .. }) => key,
                _ => panic!("a release was lost"),
            })
            .collect();
        assert_eq!(keys, [1, 2]);
        drop(jobs);
        assert!(!send_control(&lane, Job::Release { key: 3, reply: None }), "a stopped writer says so");
    }
}
