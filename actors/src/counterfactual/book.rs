//! The replay book: the actor that starts replays, knows which are being
//! played, lists them, and hands out the gateway a replay streams through.
//!
//! Invariants:
//! - A replay is started only once its plan holds (the turn exists and has
//!   ended, the settings are on offer): a bad request creates no file.
//! - Its `replay-open` is on disk before the start is answered, so a
//!   client that subscribes next sees the replay from its first event.
//! - Replays are written through a log writer of their own, with no
//!   observer: the session directory (and so the session's listing and
//!   totals) never hears of them.
//! - A running replay streams through its gateway; a finished one through
//!   a fresh gateway per subscriber, whose replay comes from the log — the
//!   same resume rules as a session's stream (`since` / `Last-Event-ID`).
//! - `replays/index.json` lists a session's replays for the chat and the
//!   static viewer; it is rewritten when one starts, after each of its
//!   samples (before the next is begun) and when it ends ([`super::index`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::prelude::*;

use super::index::{Indexer, read_all};
use super::plan::{Plan, plan};
use super::run::{Finished, Interrupt, ReplayRun, SampleEnded, Starter};
use super::summary::{ReplayListing, Summary, summarise};
use super::{Offer, ReplayError, ReplayRequest, replays_dir};
use crate::event_log::{self, Durability, EventLog, LogWriter};
use crate::gateway::Gateway;
use crate::id::SessionId;
use crate::model_client::ModelClient;
use crate::pricing::Pricing;

/// What the book needs, fixed for the server's life.
#[derive(Clone)]
pub struct BookDeps {
    pub logs: PathBuf,
    pub pricing: Arc<Pricing>,
    pub durability: Durability,
    /// Bounds each subscriber's queue, as for sessions.
    pub capacity: usize,
    /// The solo instruction's template, as `roster/prompts/` has it now.
    pub solo_template: String,
    /// What a request may write when the session did not say.
    pub max_tokens: u32,
}

pub struct Replays {
    deps: BookDeps,
    writer: LogWriter,
    running: HashMap<(SessionId, String), Playing>,
    /// Replays past their last sample whose run has not yet said it is done:
    /// never shown as playing again.
    ending: std::collections::HashSet<(SessionId, String)>,
    /// Set by [`StopReplays`]: no replay is begun after it.
    stopping: bool,
    index: Indexer,
}

/// A replay being played: the gateway it streams through, and its run.
struct Playing {
    gateway: Addr<Gateway>,
    run: Addr<ReplayRun>,
}

/// The server is stopping: every replay being played ends its sample in
/// flight as `interrupted` and closes. Answered once their logs are closed
/// and their sessions' indexes say so (or after `grace`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopReplays {
    pub grace: std::time::Duration,
}

impl Replays {
    pub fn new(deps: BookDeps) -> Self {
        // One thread is plenty: a replay writes a turn's worth of lines per sample.
        Self {
            deps,
            writer: LogWriter::start(1, None),
            running: HashMap::new(),
            ending: Default::default(),
            stopping: false,
            index: Indexer::default(),
        }
    }

    /// Rewrites `session`'s index with what is being played now.
    fn reindex(&self, session: &SessionId) -> impl Future<Output = Result<(), ReplayError>> + use<> {
        let running = self
            .running
            .keys()
            .filter(|key| key.0 == *session && !self.ending.contains(*key))
            .map(|(_, id)| id.clone())
            .collect();
        self.index.write(self.deps.logs.clone(), session.clone(), running)
    }

    fn listed(&self, session: &SessionId, mut listing: ReplayListing) -> ReplayListing {
        // Closed in its log is ended, even before the run's last word reaches the book.
        listing.running = !listing.closed && self.running.contains_key(&(session.clone(), listing.id.clone()));
        listing
    }
}

impl Actor for Replays {
    type Context = Context<Self>;

    /// Closes what a stop or a crash cut short before any replay is begun,
    /// listed or streamed.
    fn started(&mut self, ctx: &mut Self::Context) {
        let (logs, durability, index) = (self.deps.logs.clone(), self.deps.durability, self.index.clone());
        let closing = tokio::task::spawn_blocking(move || super::repair::close_interrupted(&logs, durability, &index));
        ctx.wait(closing.into_actor(self).map(|closed, _, _| {
            if let Err(e) = closed {
                log::warn!("interrupted replays could not be closed: {e}");
            }
        }));
    }
}

/// Play turn `ask.turn` of `session` again. `model` is the model client
/// (and `arbiter` the thread) the replay runs on: the session's own lane.
#[derive(Message)]
#[rtype(result = "Result<ReplayListing, ReplayError>")]
pub struct Begin {
    pub session: SessionId,
    pub ask: ReplayRequest,
    pub offers: Vec<Offer>,
    pub model: Addr<ModelClient>,
    pub arbiter: ArbiterHandle,
}

/// A session's replays, oldest first.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<ReplayListing>, ReplayError>")]
pub struct ListReplays(pub SessionId);

/// One replay, and what it (with the other replays of its turn) says about that turn.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(ReplayListing, Summary), ReplayError>")]
pub struct DescribeReplay {
    pub session: SessionId,
    pub id: String,
}

/// The gateway to subscribe to for one replay's events, and its log.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(Addr<Gateway>, PathBuf), ReplayError>")]
pub struct ReplayGateway {
    pub session: SessionId,
    pub id: String,
}

/// `logs/<session>/replays/<id>.jsonl`, for an id that is a valid path part.
pub fn replay_path(logs: &Path, session: &SessionId, id: &str) -> Result<PathBuf, ReplayError> {
    let id = SessionId::parse(id).map_err(|_| ReplayError::NotFound(id.chars().take(80).collect()))?;
    Ok(replays_dir(logs, session).join(format!("{id}.jsonl")))
}

impl Handler<Begin> for Replays {
    type Result = ResponseActFuture<Self, Result<ReplayListing, ReplayError>>;

    fn handle(&mut self, msg: Begin, _: &mut Self::Context) -> Self::Result {
        if self.stopping {
            return Box::pin(fut::ready(Err(ReplayError::Unavailable("the server is stopping".into()))));
        }
        let deps = self.deps.clone();
        let Begin { session, ask, offers, model, arbiter } = msg;
        let planning = {
            let session = session.clone();
            tokio::task::spawn_blocking(move || -> Result<(Plan, String, EventLog), ReplayError> {
                let events = event_log::read(&deps.logs, &session)?;
                let plan = plan(&session, &events, &ask, &offers, &deps.solo_template, deps.max_tokens)?;
                // Ids name their second (a clash is tried again); listings are
                // ordered by their `replay-open` time.
                for _ in 0..5 {
                    let id = SessionId::generate(chrono::Utc::now()).to_string();
                    let path = replays_dir(&deps.logs, &session).join(format!("{id}.jsonl"));
                    match EventLog::create_file(path, &session, deps.durability) {
                        Ok(log) => return Ok((plan, id, log)),
                        Err(event_log::LogError::Exists(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(ReplayError::Unavailable("no free replay id".into()))
            })
        };
        Box::pin(planning.into_actor(self).then(move |planned, act, ctx| {
            let planned = planned.unwrap_or_else(|e| Err(ReplayError::Unavailable(e.to_string())));
            let (plan, id, file) = match planned {
                Ok(p) => p,
                Err(e) => return Box::pin(fut::ready(Err(e))) as ResponseActFuture<Self, _>,
            };
            let capacity = act.deps.capacity;
            let gateway_for = session.clone();
            let gateway = Gateway::start_in_arbiter(&arbiter, move |_| Gateway::new(gateway_for, capacity, None));
            let mut log = act.writer.attach(file, Some(gateway.clone().recipient()));
            let opened = log.append_sample(plan.of.turn, None, plan.open_event(&id));
            let written = log.flush();
            let listing = opened.map(|logged| ReplayListing::from_events(&[logged]));
            let done = Starter { ended: ctx.address().recipient(), finished: ctx.address().recipient() };
            let pricing = act.deps.pricing.clone();
            let run_id = id.clone();
            let run = ReplayRun::start_in_arbiter(&arbiter, move |_| {
                ReplayRun::new(run_id, plan, log, model, pricing, Some(done))
            });
            act.running.insert((session.clone(), id.clone()), Playing { gateway, run });
            let indexed = act.reindex(&session);
            let answer_for = session.clone();
            Box::pin(
                async move {
                    written.await?;
                    let listing =
                        listing?.ok_or_else(|| ReplayError::Unavailable("replay-open was not written".into()))?;
                    if let Err(e) = indexed.await {
                        log::warn!("session {session}: the replay index could not be written: {e}");
                    }
                    Ok(listing)
                }
                .into_actor(act)
                .map(move |listing: Result<ReplayListing, ReplayError>, act, _| {
                    listing.map(|l| act.listed(&answer_for, l))
                }),
            )
        }))
    }
}

impl Handler<SampleEnded> for Replays {
    type Result = ResponseFuture<()>;

    /// Answered once the index holds the sample, so that the run's next
    /// event is published after it.
    fn handle(&mut self, msg: SampleEnded, _: &mut Self::Context) -> Self::Result {
        if msg.last {
            self.ending.insert((msg.session.clone(), msg.id.clone()));
        }
        let written = self.reindex(&msg.session);
        let session = msg.session;
        Box::pin(async move {
            if let Err(e) = written.await {
                log::warn!("session {session}: the replay index could not be written: {e}");
            }
        })
    }
}

impl Handler<Finished> for Replays {
    type Result = ();

    fn handle(&mut self, msg: Finished, ctx: &mut Self::Context) {
        // The gateway lives on while subscribers hold it; new ones get a fresh one.
        let key = (msg.session.clone(), msg.id);
        self.running.remove(&key);
        self.ending.remove(&key);
        let written = self.reindex(&msg.session);
        let session = msg.session;
        ctx.spawn(
            async move {
                if let Err(e) = written.await {
                    log::warn!("session {session}: the replay index could not be written: {e}");
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<StopReplays> for Replays {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: StopReplays, _: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let playing: Vec<(SessionId, Addr<ReplayRun>)> =
            self.running.drain().map(|((session, _), playing)| (session, playing.run)).collect();
        let (logs, index) = (self.deps.logs.clone(), self.index.clone());
        Box::pin(async move {
            let mut sessions: Vec<SessionId> = playing.iter().map(|(s, _)| s.clone()).collect();
            sessions.sort();
            sessions.dedup();
            let closed = futures_util::future::join_all(playing.into_iter().map(|(_, run)| run.send(Interrupt)));
            if tokio::time::timeout(msg.grace, closed).await.is_err() {
                log::warn!("replays did not close within {:?} of the stop", msg.grace);
            }
            // Nothing plays now; a replay that did not close is closed at the next start.
            let _ = tokio::task::spawn_blocking(move || {
                for session in sessions {
                    if let Err(e) = index.write_now(&logs, &session, &[]) {
                        log::warn!("session {session}: the replay index could not be written: {e}");
                    }
                }
            })
            .await;
        })
    }
}

impl Handler<ListReplays> for Replays {
    type Result = ResponseActFuture<Self, Result<Vec<ReplayListing>, ReplayError>>;

    fn handle(&mut self, ListReplays(session): ListReplays, _: &mut Self::Context) -> Self::Result {
        let logs = self.deps.logs.clone();
        let reading = session.clone();
        let read = tokio::task::spawn_blocking(move || {
            if !event_log::events_path(&logs, &reading).exists() {
                return Err(ReplayError::Log(event_log::LogError::NotFound(reading)));
            }
            read_all(&logs, &reading)
        });
        Box::pin(read.into_actor(self).map(move |read, act, _| {
            let logs = read.map_err(|e| ReplayError::Unavailable(e.to_string()))??;
            Ok(logs.iter().filter_map(|l| ReplayListing::from_events(l)).map(|l| act.listed(&session, l)).collect())
        }))
    }
}

impl Handler<DescribeReplay> for Replays {
    type Result = ResponseActFuture<Self, Result<(ReplayListing, Summary), ReplayError>>;

    fn handle(&mut self, msg: DescribeReplay, _: &mut Self::Context) -> Self::Result {
        let logs = self.deps.logs.clone();
        let DescribeReplay { session, id } = msg;
        let reading = (session.clone(), id.clone());
        let read = tokio::task::spawn_blocking(move || -> Result<(ReplayListing, Summary), ReplayError> {
            let (session, id) = reading;
            let path = replay_path(&logs, &session, &id)?;
            let this = match event_log::read_file(&path, &session) {
                Err(event_log::LogError::NotFound(_)) => return Err(ReplayError::NotFound(id)),
                other => other?,
            };
            let listing = ReplayListing::from_events(&this).ok_or_else(|| ReplayError::NotFound(id.clone()))?;
            let events = event_log::read(&logs, &session)?;
            // This replay's samples alone: the turn's across all its replays
            // (other settings among them) is the index's.
            let summary = summarise(listing.turn, &events, std::slice::from_ref(&this));
            Ok((listing, summary))
        });
        Box::pin(read.into_actor(self).map(move |read, act, _| {
            let (listing, summary) = read.map_err(|e| ReplayError::Unavailable(e.to_string()))??;
            Ok((act.listed(&session, listing), summary))
        }))
    }
}

impl Handler<ReplayGateway> for Replays {
    type Result = Result<(Addr<Gateway>, PathBuf), ReplayError>;

    fn handle(&mut self, msg: ReplayGateway, _: &mut Self::Context) -> Self::Result {
        let path = replay_path(&self.deps.logs, &msg.session, &msg.id)?;
        if let Some(playing) = self.running.get(&(msg.session.clone(), msg.id.clone())) {
            return Ok((playing.gateway.clone(), path));
        }
        if !path.exists() {
            return Err(ReplayError::NotFound(msg.id));
        }
        // Finished: nothing more will be published; the subscriber reads the log.
        Ok((Gateway::new(msg.session, self.deps.capacity, None).start(), path))
    }
}
