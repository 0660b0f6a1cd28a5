//! What the registry answers: plain messages the HTTP edge only adapts.

use actix::prelude::*;

use super::{Registry, RegistryError, SessionDetail, SessionSummary};
use crate::gateway::{DisconnectAll, Gateway};
use crate::id::{CharacterId, SessionId};
use crate::session::{Close, Inspect, NewSession, Panic, Restarted, Session, SessionInfo, Stop};

/// Open a new session.
#[derive(Debug, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Create {
    pub title: Option<String>,
    pub cast: Vec<CharacterId>,
    pub depth: Option<u8>,
}

/// The running actor of a session, started from its log if need be.
#[derive(Debug, Message)]
#[rtype(result = "Result<Addr<Session>, RegistryError>")]
pub struct Lookup(pub SessionId);

/// A session's gateway (the session's actor need not run).
#[derive(Debug, Message)]
#[rtype(result = "Result<Addr<Gateway>, RegistryError>")]
pub struct GatewayOf(pub SessionId);

/// Every session in the logs folder, newest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<SessionSummary>")]
pub struct List;

#[derive(Debug, Message)]
#[rtype(result = "Result<SessionDetail, RegistryError>")]
pub struct Detail(pub SessionId);

/// Close a session for good.
#[derive(Debug, Message)]
#[rtype(result = "Result<SessionSummary, RegistryError>")]
pub struct CloseSession(pub SessionId);

/// A fresh session with this one's current cast and a new head.
#[derive(Debug, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Fork(pub SessionId);

/// Stop one session's actor; it stays stopped until [`StartActor`].
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct StopActor(pub SessionId);

#[derive(Debug, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct StartActor(pub SessionId);

/// Debugging aid: make one session's actor panic.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct Crash(pub SessionId);

/// Shutdown: abort turns in flight, flush logs, end every stream.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAll;

/// How many session actors are running.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct CountRunning;

impl Handler<Create> for Registry {
    type Result = Result<SessionInfo, RegistryError>;

    fn handle(&mut self, msg: Create, _: &mut Self::Context) -> Self::Result {
        // Ids carry the second and a random suffix, so a clash is rare; a few
        // tries settle it, and a persistent clash is reported, not looped on.
        let mut clash = None;
        for _ in 0..5 {
            let id = SessionId::generate(chrono::Utc::now());
            if self.sessions.contains_key(&id) || crate::event_log::events_path(&self.deps.logs, &id).exists() {
                clash = Some(id);
                continue;
            }
            let gateway = Gateway::new(id.clone(), self.deps.logs.clone(), self.gateway_capacity)?.start();
            let title = msg.title.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| format!("Session {id}"));
            let new = NewSession { id: id.clone(), title, cast: msg.cast.clone(), depth: msg.depth };
            match Session::create(self.deps.clone(), new, Some(gateway.clone().recipient())) {
                Ok(session) => {
                    let info = session.info();
                    let actor = Some(session.start());
                    self.sessions.insert(id, super::Entry { gateway, actor, stopped: false });
                    return Ok(info);
                }
                // Lost a race for the id: try another.
                Err(crate::session::SessionError::Log(crate::event_log::LogError::Exists(id))) => clash = Some(id),
                Err(e) => return Err(e.into()),
            }
        }
        let id = clash.unwrap_or_else(|| SessionId::generate(chrono::Utc::now()));
        Err(crate::event_log::LogError::Exists(id).into())
    }
}

impl Handler<Lookup> for Registry {
    type Result = Result<Addr<Session>, RegistryError>;

    fn handle(&mut self, Lookup(id): Lookup, _: &mut Self::Context) -> Self::Result {
        self.running(&id)
    }
}

impl Handler<GatewayOf> for Registry {
    type Result = Result<Addr<Gateway>, RegistryError>;

    fn handle(&mut self, GatewayOf(id): GatewayOf, _: &mut Self::Context) -> Self::Result {
        Ok(self.entry(&id)?.gateway.clone())
    }
}

impl Handler<List> for Registry {
    type Result = MessageResult<List>;

    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        let mut all: Vec<SessionSummary> = self
            .known_ids()
            .into_iter()
            .filter_map(|id| self.summary(&id).map_err(|e| log::warn!("session {id} cannot be listed: {e}")).ok())
            .collect();
        all.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        MessageResult(all)
    }
}

impl Handler<Detail> for Registry {
    type Result = ResponseFuture<Result<SessionDetail, RegistryError>>;

    fn handle(&mut self, Detail(id): Detail, _: &mut Self::Context) -> Self::Result {
        let summary = self.summary(&id);
        let actor = self.sessions.get(&id).and_then(|e| e.actor.clone()).filter(|a| a.connected());
        Box::pin(async move {
            let summary = summary?;
            let live = match actor {
                Some(a) => a.send(Inspect).await.ok(),
                None => None,
            };
            Ok(SessionDetail { summary, live })
        })
    }
}

impl Handler<CloseSession> for Registry {
    type Result = ResponseActFuture<Self, Result<SessionSummary, RegistryError>>;

    fn handle(&mut self, CloseSession(id): CloseSession, _: &mut Self::Context) -> Self::Result {
        let actor = self.running(&id);
        let closing = async move {
            let actor = actor?;
            actor.send(Close).await.map_err(|_| RegistryError::Unavailable(id.clone()))??;
            Ok(id)
        };
        Box::pin(closing.into_actor(self).map(|res: Result<SessionId, RegistryError>, act, _| {
            let id = res?;
            if let Some(e) = act.sessions.get_mut(&id) {
                e.actor = None;
            }
            // The artefacts are derived from the log, which is complete; a
            // failure here loses nothing (`panel rebuild` writes them again).
            if let Err(e) = crate::record::write_session(&act.deps.logs, &id) {
                log::error!("session {id}: closed, but its artefacts could not be written: {e}");
            }
            act.summary(&id)
        }))
    }
}

impl Handler<Fork> for Registry {
    type Result = Result<SessionInfo, RegistryError>;

    fn handle(&mut self, Fork(id): Fork, ctx: &mut Self::Context) -> Self::Result {
        let from = self.summary(&id)?;
        let cast = from.on_stage.iter().map(|p| p.id.clone()).collect();
        let title = Some(format!("{} (fork)", from.title));
        <Self as Handler<Create>>::handle(self, Create { title, cast, depth: Some(from.depth) }, ctx)
    }
}

impl Handler<StopActor> for Registry {
    type Result = ResponseFuture<Result<(), RegistryError>>;

    fn handle(&mut self, StopActor(id): StopActor, _: &mut Self::Context) -> Self::Result {
        let entry = self.entry(&id);
        let actor = entry.map(|e| {
            e.stopped = true;
            e.actor.take()
        });
        Box::pin(async move {
            if let Some(actor) = actor? {
                // A dead actor cannot answer; either way it is stopped now.
                let _ = actor.send(Stop { reason: "actor-stopped".into() }).await;
            }
            Ok(())
        })
    }
}

impl Handler<StartActor> for Registry {
    type Result = ResponseFuture<Result<SessionInfo, RegistryError>>;

    fn handle(&mut self, StartActor(id): StartActor, _: &mut Self::Context) -> Self::Result {
        let started = self.entry(&id).and_then(|e| {
            if e.actor.as_ref().is_some_and(|a| a.connected()) {
                return Err(RegistryError::AlreadyRunning(id.clone()));
            }
            e.stopped = false;
            e.actor = None;
            Ok(())
        });
        let actor = started.and_then(|()| self.running(&id));
        Box::pin(async move {
            let actor = actor?;
            actor
                .send(Restarted { reason: "started on request".into() })
                .await
                .map_err(|_| RegistryError::Unavailable(id.clone()))?;
            actor.send(Inspect).await.map_err(|_| RegistryError::Unavailable(id))
        })
    }
}

impl Handler<Crash> for Registry {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, Crash(id): Crash, _: &mut Self::Context) -> Self::Result {
        self.running(&id)?.do_send(Panic);
        Ok(())
    }
}

impl Handler<StopAll> for Registry {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopAll, _: &mut Self::Context) -> Self::Result {
        let mut actors = Vec::new();
        let mut gateways = Vec::new();
        for entry in self.sessions.values_mut() {
            entry.stopped = true;
            actors.extend(entry.actor.take());
            gateways.push(entry.gateway.clone());
        }
        Box::pin(async move {
            for actor in actors {
                let _ = actor.send(Stop { reason: "shutdown".into() }).await;
            }
            for gateway in gateways {
                let _ = gateway.send(DisconnectAll).await;
            }
        })
    }
}

impl Handler<CountRunning> for Registry {
    type Result = usize;

    fn handle(&mut self, _: CountRunning, _: &mut Self::Context) -> usize {
        self.sessions.values().filter(|e| e.actor.as_ref().is_some_and(|a| a.connected())).count()
    }
}
