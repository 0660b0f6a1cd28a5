//! What the registry answers: plain messages the HTTP edge only adapts —
//! finding a session's actor or gateway, listing, detail, closing, the
//! health counts, and what sessions and gateways tell it. Opening sessions
//! is in `creation.rs`; stopping and starting actors in `control.rs`.

use std::future::Future;
use std::pin::Pin;

use actix::fut::{ActorFutureExt as _, WrapFuture as _};
use actix::prelude::*;
use serde::Serialize;

use super::{Access, Registry, RegistryError, SessionDetail, SessionSummary, Slot, StartFailure};
use crate::cache_clock::{CacheState, TimeScale};
use crate::gateway::{Gateway, Watchers};
use crate::id::SessionId;
use crate::session::{CacheInfo, ContextInfo};
use crate::session::{Close, Inspect, Notice, Session, SessionNotice};

/// The running actor of a session, started from its log if need be.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Addr<Session>, RegistryError>")]
pub struct Lookup(pub SessionId);

/// A session's gateway (the session's actor need not run).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Addr<Gateway>, RegistryError>")]
pub struct GatewayOf(pub SessionId);

/// Every session in the logs folder, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<SessionSummary>")]
pub struct List;

#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionDetail, RegistryError>")]
pub struct Detail(pub SessionId);

/// Close a session for good, and write its artefacts.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionSummary, RegistryError>")]
pub struct CloseSession(pub SessionId);

/// Counts for the health check.
#[derive(Debug, Message)]
#[rtype(result = "RegistryStats")]
pub struct Stats;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RegistryStats {
    /// Sessions the server knows.
    pub sessions: usize,
    /// Session actors running.
    pub running: usize,
    /// Gateways alive (one per watched or running session).
    pub gateways: usize,
    /// Subscribers connected to those gateways.
    pub subscribers: usize,
}

type Answer<T> = Pin<Box<dyn Future<Output = Result<T, RegistryError>>>>;

/// The cache and context of a session no actor holds, from what its log said last.
fn at_rest(s: &SessionSummary, scale: TimeScale, pricing: &crate::pricing::Pricing) -> (CacheInfo, ContextInfo) {
    let now = chrono::Utc::now();
    let state = CacheState {
        ttl_s: s.cache_ttl.map(|t| scale.shrink(t.duration()).as_secs_f64()),
        warm_until: s.warm_until,
        prefix_tokens: s.prefix_tokens,
        warm: s.prefix_tokens > 0 && s.warm_until.is_none_or(|until| until.0 > now),
        remaining_s: s
            .warm_until
            .filter(|_| s.prefix_tokens > 0)
            .map(|until| (until.0 - now).to_std().unwrap_or_default().as_secs_f64()),
    };
    let cache = CacheInfo {
        rewrite_usd: s.cache_ttl.and_then(|ttl| pricing.rewrite_usd(&s.model, ttl, s.prefix_tokens)),
        state,
        keep_warm: s.keep_warm,
        warming: false,
        // A session not running has no live floor to judge.
        floor_pauses: 0,
        floor_pause_s: None,
    };
    let tokens = s.context_tokens.unwrap_or(0);
    let window = pricing.context_tokens(&s.model);
    let share = window.filter(|w| *w > 0).map(|w| ((tokens as f64 / w as f64) * 1e4).round() / 1e4);
    (cache, ContextInfo { tokens, window, share })
}

/// Waits for a session's transition to end, then asks again.
pub(super) fn retry_after<M, T>(
    rx: tokio::sync::oneshot::Receiver<Result<(), StartFailure>>,
    me: Addr<Registry>,
    id: SessionId,
    msg: M,
) -> Answer<T>
where
    M: Message<Result = Result<T, RegistryError>> + Send + 'static,
    T: Send + 'static,
    Registry: Handler<M>,
{
    Box::pin(async move {
        match rx.await {
            Ok(Ok(())) => me.send(msg).await.map_err(|_| RegistryError::Unavailable(id))?,
            Ok(Err(f)) => Err(super::starting::start_error(id, f)),
            Err(_) => Err(RegistryError::Unavailable(id)),
        }
    })
}

pub(super) fn ready<T: 'static>(result: Result<T, RegistryError>) -> Answer<T> {
    Box::pin(std::future::ready(result))
}

impl Registry {
    /// The session's summary with its actor's state, read from the log if
    /// this server has not seen it yet.
    pub(super) fn summary(
        &self,
        id: &SessionId,
    ) -> impl ActorFuture<Self, Output = Result<SessionSummary, RegistryError>> + use<> {
        let known = self.directory.get(id);
        let (logs, directory, id) = (self.deps.logs.clone(), self.directory.clone(), id.clone());
        let loading = async move {
            if let Some(summary) = known {
                return Ok(summary);
            }
            let ids = [id.clone()];
            tokio::task::spawn_blocking(move || {
                if let Some((_, problem)) = directory.load_missing(&logs, Some(&ids)).pop() {
                    log::warn!("session {} cannot be read: {problem}", ids[0]);
                }
                directory.get(&ids[0]).ok_or_else(|| RegistryError::NotFound(ids[0].clone()))
            })
            .await
            .unwrap_or_else(|_| Err(RegistryError::NotFound(id)))
        };
        loading.into_actor(self).map(|summary, act, _| {
            summary.map(|mut s| {
                act.describe(&mut s);
                s
            })
        })
    }
}

impl Handler<Lookup> for Registry {
    type Result = ResponseFuture<Result<Addr<Session>, RegistryError>>;

    fn handle(&mut self, Lookup(id): Lookup, ctx: &mut Self::Context) -> Self::Result {
        match self.access(&id, ctx) {
            Access::Ready(addr) => ready(Ok(addr)),
            Access::Denied(e) => ready(Err(e)),
            Access::Wait(rx) => retry_after(rx, ctx.address(), id.clone(), Lookup(id)),
        }
    }
}

impl Handler<GatewayOf> for Registry {
    type Result = Result<Addr<Gateway>, RegistryError>;

    fn handle(&mut self, GatewayOf(id): GatewayOf, ctx: &mut Self::Context) -> Self::Result {
        if !self.directory.contains(&id) {
            return Err(RegistryError::NotFound(id));
        }
        Ok(self.gateway(&id, ctx))
    }
}

impl Handler<List> for Registry {
    type Result = ResponseActFuture<Self, Vec<SessionSummary>>;

    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        let (logs, directory) = (self.deps.logs.clone(), self.directory.clone());
        let loading = tokio::task::spawn_blocking(move || {
            for (id, problem) in directory.load_missing(&logs, None) {
                log::warn!("session {id} cannot be listed: {problem}");
            }
            let mut all: Vec<SessionSummary> = directory.ids().iter().filter_map(|id| directory.get(id)).collect();
            all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
            all
        });
        Box::pin(loading.into_actor(self).map(|all, act, _| {
            let mut all = all.unwrap_or_default();
            for s in &mut all {
                act.describe(s);
            }
            all
        }))
    }
}

impl Handler<Detail> for Registry {
    type Result = ResponseActFuture<Self, Result<SessionDetail, RegistryError>>;

    fn handle(&mut self, Detail(id): Detail, _: &mut Self::Context) -> Self::Result {
        let actor = match self.sessions.get(&id).map(|e| &e.slot) {
            Some(Slot::Running(r)) if r.addr.connected() => Some(r.addr.clone()),
            _ => None,
        };
        let scale = self.deps.time_scale;
        let pricing = self.deps.pricing.clone();
        Box::pin(self.summary(&id).then(move |summary, act, _| {
            async move {
                let summary = summary?;
                let live = match actor {
                    Some(a) => a.send(Inspect).await.ok(),
                    None => None,
                };
                let (cache, context) = match &live {
                    Some(info) => (info.cache.clone(), info.context.clone()),
                    None => at_rest(&summary, scale, &pricing),
                };
                Ok(SessionDetail { summary, cache, context, live })
            }
            .into_actor(act)
        }))
    }
}

impl Handler<CloseSession> for Registry {
    type Result = ResponseActFuture<Self, Result<SessionSummary, RegistryError>>;

    fn handle(&mut self, CloseSession(id): CloseSession, ctx: &mut Self::Context) -> Self::Result {
        let addr = match self.access(&id, ctx) {
            Access::Ready(addr) => addr,
            Access::Denied(e) => return Box::pin(fut::ready(Err(e))),
            Access::Wait(rx) => {
                return Box::pin(retry_after(rx, ctx.address(), id.clone(), CloseSession(id)).into_actor(self));
            }
        };
        // Closing stops the actor: keep the sweep from taking that for a death.
        self.entry(&id).slot = Slot::Stopping(Vec::new());
        let logs = self.deps.logs.clone();
        let closed_id = id.clone();
        let closing = async move {
            addr.send(Close).await.map_err(|_| RegistryError::Unavailable(id.clone()))??;
            // The artefacts derive from the log, which is complete and
            // released; a failure here loses nothing (`panel rebuild` redoes it).
            let writing = {
                let id = id.clone();
                tokio::task::spawn_blocking(move || crate::record::write_session(&logs, &id)).await
            };
            match writing {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("session {id}: closed, but its artefacts could not be written: {e}"),
                Err(e) => log::error!("session {id}: closed, but writing its artefacts failed: {e}"),
            }
            Ok(())
        };
        Box::pin(closing.into_actor(self).then(move |closed: Result<(), RegistryError>, act, ctx| {
            // Whatever happened, the actor has stopped (or was stopping); its
            // log says the rest, and the next request reopens it from there.
            for w in act.entry(&closed_id).slot.end_stopping(Slot::Idle) {
                let _ = w.send(Ok(()));
            }
            act.maybe_retire(&closed_id, ctx);
            match closed {
                Ok(()) => Box::pin(act.summary(&closed_id)) as Pin<Box<dyn ActorFuture<Self, Output = _>>>,
                Err(e) => Box::pin(fut::ready(Err(e))),
            }
        }))
    }
}

impl Handler<Stats> for Registry {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Self::Context) -> Self::Result {
        let running =
            self.sessions.values().filter(|e| matches!(&e.slot, Slot::Running(r) if r.addr.connected())).count();
        MessageResult(RegistryStats {
            sessions: self.directory.len(),
            running,
            gateways: self.sessions.values().filter(|e| e.gateway.is_some()).count(),
            subscribers: self.sessions.values().map(|e| e.watchers).sum(),
        })
    }
}

impl Handler<SessionNotice> for Registry {
    type Result = ();

    fn handle(&mut self, notice: SessionNotice, ctx: &mut Self::Context) {
        let id = notice.id;
        let Some(entry) = self.sessions.get_mut(&id) else { return };
        // Only the incarnation now in the slot is heard: a notice from an
        // earlier one, late in arriving, is about an actor that is gone.
        match notice.kind {
            Notice::Failed(message) => {
                if matches!(&entry.slot, Slot::Running(r) if r.key == notice.generation) {
                    entry.death_note = Some(message);
                }
            }
            Notice::Idle => self.passivate(&id, notice.generation, false, ctx),
        }
    }
}

impl Handler<Watchers> for Registry {
    type Result = ();

    fn handle(&mut self, msg: Watchers, ctx: &mut Self::Context) {
        let current = self.sessions.get(&msg.session).and_then(|e| e.gateway.as_ref());
        if current != Some(&msg.gateway) {
            // A gateway the registry has let go of: if someone still watches
            // through it, send them to the current one.
            if msg.count > 0 && current.is_some() {
                msg.gateway.do_send(crate::gateway::Retire);
            }
            return;
        }
        let entry = self.entry(&msg.session);
        let was_watched = entry.watchers > 0;
        entry.watchers = msg.count;
        if let Slot::Running(r) = &entry.slot
            && was_watched != (msg.count > 0)
        {
            r.addr.do_send(crate::session::Watched(msg.count > 0));
        }
        self.maybe_retire(&msg.session, ctx);
    }
}
