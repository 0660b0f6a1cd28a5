//! Stopping and starting one session's actor (debugging and supervision),
//! making one panic on purpose, and shutting every session down.

use actix::fut::{ActorFutureExt as _, WrapFuture as _};
use actix::prelude::*;

use super::messages::{Lookup, ready, retry_after};
use super::{Access, Registry, RegistryError, Slot};
use crate::gateway::DisconnectAll;
use crate::id::SessionId;
use crate::session::{Inspect, Panic, SessionInfo, Stop};

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

impl Handler<StopActor> for Registry {
    type Result = ResponseFuture<Result<(), RegistryError>>;

    fn handle(&mut self, StopActor(id): StopActor, ctx: &mut Self::Context) -> Self::Result {
        if !self.directory.contains(&id) {
            return ready(Err(RegistryError::NotFound(id)));
        }
        let entry = self.entry(&id);
        // What must finish before the slot is stopped: until then it is
        // "stopping", so a start that comes meanwhile waits for the log to
        // be let go of instead of opening it into the lock.
        let releasing: futures_util::future::BoxFuture<'static, ()> =
            match std::mem::replace(&mut entry.slot, Slot::Stopping(Vec::new())) {
                Slot::Running(r) if r.addr.connected() => {
                    // The actor answers once its log is written and released.
                    let stopped = r.addr.send(Stop { reason: "actor-stopped".into() });
                    Box::pin(async move {
                        let _ = stopped.await;
                    })
                }
                Slot::Running(r) => {
                    let release = self.deps.writer.release(r.key);
                    Box::pin(async move {
                        let _ = release.await;
                    })
                }
                waiting @ (Slot::Starting(_) | Slot::Stopping(_)) => {
                    entry.slot = waiting;
                    return match self.wait(&id) {
                        Access::Wait(rx) => retry_after(rx, ctx.address(), id.clone(), StopActor(id)),
                        _ => ready(Ok(())),
                    };
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
                    })
                }
                Slot::Idle | Slot::Stopped => {
                    entry.slot = Slot::Stopped;
                    return ready(Ok(()));
                }
            };
        let settled = id.clone();
        ctx.spawn(releasing.into_actor(self).map(move |(), act, ctx| {
            for w in act.entry(&settled).slot.end_stopping(Slot::Stopped) {
                let _ = w.send(Ok(()));
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
                Ok(Err(f)) => return Err(super::starting::start_error(id, f)),
                Err(_) => return Err(RegistryError::Unavailable(id)),
            }
            // The actor may be gone again before it is asked: passivated
            // (the lookup starts it once more) or stopped by a request that
            // came meanwhile (the lookup says so, a clear conflict).
            for _ in 0..3 {
                let actor = me.send(Lookup(id.clone())).await.map_err(|_| RegistryError::Unavailable(id.clone()))??;
                if let Ok(info) = actor.send(Inspect).await {
                    return Ok(info);
                }
            }
            Err(RegistryError::ActorStopped(id))
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
