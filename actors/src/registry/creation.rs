//! Opening sessions: a new one, a fork with the same cast, the providers on
//! offer, and a running session's settings.

use std::collections::BTreeMap;
use std::future::Future;

use actix::fut::{ActorFutureExt as _, WrapFuture as _};
use actix::prelude::*;

use super::catalog::ProviderListing;
use super::messages::{ready, retry_after};
use super::{Access, Registry, RegistryError, Slot};
use crate::event::{Cost, KeepWarm, Parent, StudyTag};
use crate::id::{CharacterId, SessionId};
use crate::model_client::Facts;
use crate::provider::{CacheTtl, Dialect};
use crate::roster::Character;
use crate::session::SessionError;
use crate::session::{NewSession, Session, SessionInfo};

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
    /// The sampling seed (a fresh one when `None`).
    pub seed: Option<u64>,
    /// A study's session: which study, condition and repeat.
    pub study: Option<StudyTag>,
    /// Prompt files replacing the server's for this session, by file name.
    pub prompts: Option<BTreeMap<String, String>>,
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
            seed: None,
            study: None,
            prompts: None,
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

/// A fresh session with this one's current cast and a new head.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Fork(pub SessionId);

impl Registry {
    /// What lane 0's model client knows about each provider.
    pub(super) fn listings(&self) -> impl Future<Output = Vec<ProviderListing>> + use<> {
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
        let name = info.name.clone();
        let facts = async move { model.send(Facts { provider: name }).await.ok().flatten() };
        Box::pin(facts.into_actor(self).then(move |facts, act, ctx| {
            let listing = ProviderListing::new(&info, facts.as_ref(), &act.deps.pricing, act.constrain);
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
        let templates = match msg.prompts.as_ref().map(|files| self.deps.renderer.templates().with_files(files)) {
            Some(Err(e)) => {
                let message = format!("{e:#}");
                return Box::pin(fut::ready(Err(RegistryError::BadRequest { code: "bad-prompts", message })));
            }
            Some(Ok(t)) => Some(t),
            None => None,
        };
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
        new.seed = msg.seed;
        new.study = msg.study;
        new.templates = templates;
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
            let waiters = entry.slot.end_starting();
            let mut written = None;
            let result = match created {
                Ok(session) => {
                    let info = session.info();
                    written = Some(session.flush());
                    let key = session.log_key();
                    let arbiter = act.lanes.get(lane).arbiter.clone();
                    let addr = Session::start_in_arbiter(&arbiter, move |_| session);
                    act.directory.add(&id);
                    let running = super::slot::Running { addr, key, since: std::time::Instant::now(), attempts: 0 };
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
