//! What the registry answers: plain messages the HTTP edge only adapts.

use std::future::Future;
use std::pin::Pin;

use actix::fut::{ActorFutureExt as _, WrapFuture as _};
use actix::prelude::*;
use serde::Serialize;

use super::catalog::ProviderListing;
use super::{Access, Registry, RegistryError, SessionDetail, SessionSummary, Slot, StartFailure};
use crate::cache_clock::{CacheState, TimeScale};
use crate::event::{Cost, KeepWarm, Parent};
use crate::gateway::{DisconnectAll, Gateway, Watchers};
use crate::id::{CharacterId, SessionId};
use crate::model_client::Facts;
use crate::provider::{CacheTtl, Dialect};
use crate::roster::Character;
use crate::session::SessionError;
use crate::session::{CacheInfo, ContextInfo};
use crate::session::{Close, Inspect, NewSession, Notice, Panic, Session, SessionInfo, SessionNotice, Stop};

/// Open a new session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Create {
    pub title: Option<String>,
    /// The starting cast, from the roster.
    pub cast: Vec<CharacterId>,
    pub depth: Option<u8>,
    /// The provider and model (defaults: the server's); fixed for the session's life.
    pub provider: Option<String>,
    pub model: Option<String>,
    pub cache_ttl: Option<CacheTtl>,
    pub keep_warm: Option<KeepWarm>,
    /// A continued session: its cast as the parent had it (not as the roster
    /// has it now), where it comes from, and the direction carrying the conversation.
    pub continued: Option<Continued>,
}

#[derive(Debug, Clone)]
pub struct Continued {
    pub cast: Vec<Character>,
    pub parent: Parent,
    pub carry: String,
    /// What writing the carry cost (a recap), logged as the new session's first `cost`.
    pub opening_cost: Option<Cost>,
}

impl Create {
    /// A session of `cast` with every setting at the server's default.
    pub fn new(cast: Vec<CharacterId>) -> Self {
        Self {
            title: None,
            cast,
            depth: None,
            provider: None,
            model: None,
            cache_ttl: None,
            keep_warm: None,
            continued: None,
        }
    }
}

/// Every provider the server offers, with their models.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ProviderListing>")]
pub struct Providers;

/// Change a setting of a session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Configure {
    pub id: SessionId,
    pub keep_warm: Option<KeepWarm>,
}

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

/// A fresh session with this one's current cast and a new head.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Fork(pub SessionId);

/// Stop one session's actor; it stays stopped until [`StartActor`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct StopActor(pub SessionId);

#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct StartActor(pub SessionId);

/// Debugging aid: make one session's actor panic.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct Crash(pub SessionId);

/// Shutdown: abort turns in flight, flush logs, end every stream.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAll;

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
    };
    let tokens = s.context_tokens.unwrap_or(0);
    let window = pricing.context_tokens(&s.model);
    let share = window.filter(|w| *w > 0).map(|w| ((tokens as f64 / w as f64) * 1e4).round() / 1e4);
    (cache, ContextInfo { tokens, window, share })
}

/// Waits for a session's transition to end, then asks again.
fn retry_after<M, T>(
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
            Ok(Err(f)) => Err(RegistryError::Failed { id, code: f.code, message: f.message }),
            Err(_) => Err(RegistryError::Unavailable(id)),
        }
    })
}

fn ready<T: 'static>(result: Result<T, RegistryError>) -> Answer<T> {
    Box::pin(std::future::ready(result))
}

impl Registry {
    /// The session's summary with its actor's state, read from the log if
    /// this server has not seen it yet.
    fn summary(
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

impl Registry {
    /// What lane 0's model client knows about each provider.
    fn listings(&self) -> impl Future<Output = Vec<ProviderListing>> + use<> {
        let model = self.lanes.get(0).model.clone();
        let providers = self.deps.providers.clone();
        let pricing = self.deps.pricing.clone();
        let constrain = self.constrain;
        async move {
            let mut out = Vec::new();
            for info in providers.iter() {
                let facts = model.send(Facts { provider: info.name.clone() }).await.ok().flatten();
                out.push(ProviderListing::new(info, facts.as_ref(), &pricing, constrain));
            }
            out
        }
    }

    /// Checks a new session's provider, model and cast, then creates it.
    fn create(&mut self, msg: Create) -> ResponseActFuture<Self, Result<SessionInfo, RegistryError>> {
        let provider = msg.provider.clone().unwrap_or_else(|| self.deps.provider.name.clone());
        let Some(info) = self.deps.provider_named(&provider).cloned() else {
            return Box::pin(fut::ready(Err(SessionError::UnknownProvider(provider).into())));
        };
        let cast = match &msg.continued {
            Some(c) => Ok(c.cast.clone()),
            None => self.deps.cast(&msg.cast),
        };
        let cast = match cast {
            Ok(cast) => cast,
            Err(e) => return Box::pin(fut::ready(Err(e.into()))),
        };
        let model = self.lanes.get(0).model.clone();
        let facts = async move { model.send(Facts { provider: info.name.clone() }).await.ok().flatten() };
        Box::pin(facts.into_actor(self).then(move |facts, act, ctx| {
            let listing = ProviderListing::new(
                &act.deps.provider_named(&provider).cloned().unwrap_or_else(|| act.deps.provider.clone()),
                facts.as_ref(),
                &act.deps.pricing,
                act.constrain,
            );
            if let Some(model) = msg.model.as_deref().filter(|m| !listing.offers(m)) {
                let known: Vec<&str> = listing.models.iter().map(|m| m.id.as_str()).collect();
                let message = format!("{provider} offers no model {model:?}; it offers {}", known.join(", "));
                return Box::pin(fut::ready(Err(RegistryError::BadRequest { code: "unknown-model", message })))
                    as ResponseActFuture<Self, _>;
            }
            if msg.cache_ttl.is_some() && !listing.cache_expires {
                let message = format!("{provider} keeps its cache without a time limit: it takes no cache_ttl");
                return Box::pin(fut::ready(Err(RegistryError::BadRequest { code: "no-cache-ttl", message })));
            }
            act.begin_create(msg, provider, cast, listing.constraint, ctx)
        }))
    }

    fn begin_create(
        &mut self,
        msg: Create,
        provider: String,
        cast: Vec<Character>,
        constraint: Option<Dialect>,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<SessionInfo, RegistryError>> {
        // Ids carry the second and a random suffix; the directory knows every
        // session, so a clash is noticed here, and a few tries settle it.
        let Some(id) = (0..5)
            .map(|_| SessionId::generate(chrono::Utc::now()))
            .find(|id| !self.directory.contains(id) && !self.sessions.contains_key(id))
        else {
            let id = SessionId::generate(chrono::Utc::now());
            return Box::pin(fut::ready(Err(crate::event_log::LogError::Exists(id).into())));
        };
        let gateway = self.gateway(&id, ctx);
        let lane = self.entry(&id).lane;
        self.entry(&id).slot = Slot::Starting(Vec::new());
        let deps = self.deps_for(lane, ctx);
        let title = msg.title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| format!("Session {id}"));
        let mut new = NewSession::new(id.clone(), title, cast);
        new.depth = msg.depth;
        new.provider = Some(provider);
        new.model = msg.model;
        new.cache_ttl = msg.cache_ttl;
        new.keep_warm = msg.keep_warm;
        new.constraint = constraint;
        if let Some(c) = msg.continued {
            new.parent = Some(c.parent);
            new.carry = Some(c.carry);
            new.opening_cost = c.opening_cost;
        }
        let publisher = Some(gateway.recipient());
        let creating = tokio::task::spawn_blocking(move || Session::create(deps, new, publisher));
        Box::pin(creating.into_actor(self).then(move |created, act, ctx| {
            let created = created.unwrap_or_else(|e| Err(crate::session::SessionError::Panicked(e.to_string())));
            let entry = act.entry(&id);
            let waiters = match std::mem::replace(&mut entry.slot, Slot::Idle) {
                Slot::Starting(w) => w,
                _ => Vec::new(),
            };
            let mut written = None;
            let result = match created {
                Ok(session) => {
                    let info = session.info();
                    written = Some(session.flush());
                    let key = session.log_key();
                    let arbiter = act.lanes.get(lane).arbiter.clone();
                    let addr = Session::start_in_arbiter(&arbiter, move |_| session);
                    act.directory.add(&id);
                    let running = super::Running { addr, key, since: std::time::Instant::now(), attempts: 0 };
                    act.entry(&id).slot = Slot::Running(running);
                    act.make_room(ctx);
                    Ok(info)
                }
                Err(e) => Err(RegistryError::from(e)),
            };
            for w in waiters {
                let _ = w.send(Ok(()));
            }
            act.maybe_retire(&id, ctx);
            // Answer once `session-open` is on disk (and so published): a
            // client that subscribes next starts after it, as it should.
            async move {
                if let Some(written) = written {
                    written.await?;
                }
                result
            }
            .into_actor(act)
        }))
    }
}

impl Handler<Create> for Registry {
    type Result = ResponseActFuture<Self, Result<SessionInfo, RegistryError>>;

    fn handle(&mut self, msg: Create, _: &mut Self::Context) -> Self::Result {
        self.create(msg)
    }
}

impl Handler<Providers> for Registry {
    type Result = ResponseFuture<Vec<ProviderListing>>;

    fn handle(&mut self, _: Providers, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.listings())
    }
}

impl Handler<Configure> for Registry {
    type Result = ResponseFuture<Result<SessionInfo, RegistryError>>;

    fn handle(&mut self, msg: Configure, ctx: &mut Self::Context) -> Self::Result {
        match self.access(&msg.id, ctx) {
            Access::Ready(addr) => Box::pin(async move {
                let id = msg.id.clone();
                let change = crate::session::ChangeSettings { keep_warm: msg.keep_warm };
                Ok(addr.send(change).await.map_err(|_| RegistryError::Unavailable(id))??)
            }),
            Access::Denied(e) => ready(Err(e)),
            Access::Wait(rx) => retry_after(rx, ctx.address(), msg.id.clone(), msg),
        }
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
            let entry = act.entry(&closed_id);
            if let Slot::Stopping(waiters) = std::mem::replace(&mut entry.slot, Slot::Idle) {
                for w in waiters {
                    let _ = w.send(Ok(()));
                }
            }
            act.maybe_retire(&closed_id, ctx);
            match closed {
                Ok(()) => Box::pin(act.summary(&closed_id)) as Pin<Box<dyn ActorFuture<Self, Output = _>>>,
                Err(e) => Box::pin(fut::ready(Err(e))),
            }
        }))
    }
}

impl Handler<Fork> for Registry {
    type Result = ResponseActFuture<Self, Result<SessionInfo, RegistryError>>;

    fn handle(&mut self, Fork(id): Fork, ctx: &mut Self::Context) -> Self::Result {
        let me = ctx.address();
        Box::pin(self.summary(&id).then(move |from, act, _| {
            async move {
                let from = from?;
                let cast = from.on_stage.iter().map(|p| p.id.clone()).collect();
                let create = Create {
                    title: Some(format!("{} (new session)", from.title)),
                    depth: Some(from.depth),
                    provider: Some(from.provider.clone()),
                    model: Some(from.model.clone()),
                    ..Create::new(cast)
                };
                me.send(create).await.map_err(|_| RegistryError::Unavailable(from.id.clone()))?
            }
            .into_actor(act)
        }))
    }
}

impl Handler<StopActor> for Registry {
    type Result = ResponseFuture<Result<(), RegistryError>>;

    fn handle(&mut self, StopActor(id): StopActor, ctx: &mut Self::Context) -> Self::Result {
        if !self.directory.contains(&id) {
            return ready(Err(RegistryError::NotFound(id)));
        }
        let entry = self.entry(&id);
        match std::mem::replace(&mut entry.slot, Slot::Stopped) {
            Slot::Running(r) if r.addr.connected() => {
                entry.slot = Slot::Stopping(Vec::new());
                // The actor answers once its log is written and released.
                let stopped = r.addr.send(Stop { reason: "actor-stopped".into() });
                let settled = id.clone();
                ctx.spawn(async move { stopped.await.is_ok() }.into_actor(self).map(move |_, act, ctx| {
                    let entry = act.entry(&settled);
                    if let Slot::Stopping(waiters) = std::mem::replace(&mut entry.slot, Slot::Stopped) {
                        for w in waiters {
                            let _ = w.send(Ok(()));
                        }
                    }
                    act.maybe_retire(&settled, ctx);
                }));
                match self.wait(&id) {
                    Access::Wait(rx) => Box::pin(async move {
                        let _ = rx.await;
                        Ok(())
                    }),
                    _ => ready(Ok(())),
                }
            }
            Slot::Running(r) => {
                let release = self.deps.writer.release(r.key);
                Box::pin(async move {
                    let _ = release.await;
                    Ok(())
                })
            }
            waiting @ (Slot::Starting(_) | Slot::Stopping(_)) => {
                entry.slot = waiting;
                match self.wait(&id) {
                    Access::Wait(rx) => retry_after(rx, ctx.address(), id.clone(), StopActor(id)),
                    _ => ready(Ok(())),
                }
            }
            Slot::Failed(mut f) => {
                if let Some(retry) = f.retry.take() {
                    ctx.cancel_future(retry);
                }
                let release = f.key.map(|key| self.deps.writer.release(key));
                Box::pin(async move {
                    if let Some(r) = release {
                        let _ = r.await;
                    }
                    Ok(())
                })
            }
            Slot::Idle | Slot::Stopped => ready(Ok(())),
        }
    }
}

impl Handler<StartActor> for Registry {
    type Result = ResponseFuture<Result<SessionInfo, RegistryError>>;

    fn handle(&mut self, StartActor(id): StartActor, ctx: &mut Self::Context) -> Self::Result {
        if !self.directory.contains(&id) {
            return ready(Err(RegistryError::NotFound(id)));
        }
        if self.directory.is_closed(&id) {
            return ready(Err(RegistryError::Closed(id)));
        }
        let entry = self.entry(&id);
        let (release, attempts) = match &mut entry.slot {
            Slot::Running(r) if r.addr.connected() => return ready(Err(RegistryError::AlreadyRunning(id))),
            Slot::Starting(_) | Slot::Stopping(_) => {
                return match self.wait(&id) {
                    Access::Wait(rx) => retry_after(rx, ctx.address(), id.clone(), StartActor(id)),
                    _ => ready(Err(RegistryError::Unavailable(id))),
                };
            }
            Slot::Running(r) => (Some(r.key), 0),
            Slot::Failed(f) => {
                if let Some(retry) = f.retry.take() {
                    ctx.cancel_future(retry);
                }
                (f.key.take(), 0)
            }
            Slot::Idle | Slot::Stopped => (None, 0),
        };
        self.start(&id, release, attempts, Some("started on request".into()), false, ctx);
        let Access::Wait(rx) = self.wait(&id) else { return ready(Err(RegistryError::Unavailable(id))) };
        let me = ctx.address();
        Box::pin(async move {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(f)) => return Err(RegistryError::Failed { id, code: f.code, message: f.message }),
                Err(_) => return Err(RegistryError::Unavailable(id)),
            }
            let actor = me.send(Lookup(id.clone())).await.map_err(|_| RegistryError::Unavailable(id.clone()))??;
            actor.send(Inspect).await.map_err(|_| RegistryError::Unavailable(id))
        })
    }
}

impl Handler<Crash> for Registry {
    type Result = ResponseFuture<Result<(), RegistryError>>;

    fn handle(&mut self, Crash(id): Crash, ctx: &mut Self::Context) -> Self::Result {
        match self.access(&id, ctx) {
            Access::Ready(addr) => {
                addr.do_send(Panic);
                ready(Ok(()))
            }
            Access::Denied(e) => ready(Err(e)),
            Access::Wait(rx) => retry_after(rx, ctx.address(), id.clone(), Crash(id)),
        }
    }
}

impl Handler<StopAll> for Registry {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopAll, _: &mut Self::Context) -> Self::Result {
        let mut actors = Vec::new();
        let mut gateways = Vec::new();
        for entry in self.sessions.values_mut() {
            if let Slot::Running(r) = std::mem::replace(&mut entry.slot, Slot::Stopped) {
                actors.push(r.addr);
            }
            gateways.extend(entry.gateway.clone());
        }
        Box::pin(async move {
            let stopping = actors.iter().map(|a| a.send(Stop { reason: "shutdown".into() }));
            futures_util::future::join_all(stopping).await;
            for gateway in gateways {
                let _ = gateway.send(DisconnectAll).await;
            }
        })
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
        match notice.kind {
            Notice::Failed(message) => entry.death_note = Some(message),
            Notice::Idle => self.passivate(&id, false, ctx),
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
