//! Supervision: an actor that died without being asked to (a panic, a log
//! it could not write) is rebuilt from its log — at once the first time,
//! then backing off exponentially — and after a few failures in a row the
//! registry gives up, says why in the log when it can, and shows the
//! session as failed until someone acts on it. actix's own `Supervisor`
//! does not restart a panicked actor, hence the sweep.

use actix::prelude::*;

use super::{Failure, MAX_RESTARTS, RESTART_BACKOFF, Registry, STABLE, Slot, StartFailure};
use crate::event::EventBody;
use crate::event_log::{EventLog, LogError};
use crate::id::SessionId;

impl Registry {
    /// Rebuilds after the `failures`-th failure in a row, waiting longer each time.
    pub(super) fn schedule_restart(&mut self, id: &SessionId, failures: u32, ctx: &mut Context<Self>) -> SpawnHandle {
        let delay = RESTART_BACKOFF.saturating_mul(1 << failures.clamp(1, 16).saturating_sub(1));
        let id = id.clone();
        ctx.run_later(delay, move |act, ctx| {
            let entry = act.entry(&id);
            let Slot::Failed(f) = &mut entry.slot else { return };
            let (key, attempts) = (f.key.take(), f.attempts);
            let reason = "the actor died; rebuilt from its log".to_owned();
            act.start(&id, key, attempts, Some(reason), true, ctx);
        })
    }

    /// The running actor of `id` is gone without being asked to: rebuild it
    /// from its log, backing off while it keeps failing.
    pub(super) fn died(&mut self, id: &SessionId, ctx: &mut Context<Self>) {
        let entry = self.entry(id);
        let Slot::Running(r) = std::mem::replace(&mut entry.slot, Slot::Idle) else { return };
        let note = entry.death_note.take().unwrap_or_else(|| "the actor stopped unexpectedly".into());
        // Failures in a row: a run that lasted a while starts the count afresh.
        let failures = if r.since.elapsed() > STABLE { 1 } else { r.attempts + 1 };
        let failure = StartFailure { code: "actor-failed", message: note.clone() };
        if failures > MAX_RESTARTS {
            self.give_up(id, &note, Some(r.key), ctx);
            self.entry(id).slot = Slot::Failed(Failure { failure, attempts: failures, key: None, retry: None });
            self.maybe_retire(id, ctx);
            return;
        }
        log::warn!("session {id}: its actor died ({note}); rebuild {failures} of {MAX_RESTARTS}");
        if failures == 1 {
            // The first rebuild is at once: most deaths are one-off panics.
            self.start(id, Some(r.key), failures, Some(format!("{note}; rebuilt from its log")), true, ctx);
            return;
        }
        let retry = Some(self.schedule_restart(id, failures, ctx));
        self.entry(id).slot = Slot::Failed(Failure { failure, attempts: failures, key: Some(r.key), retry });
    }

    /// Stops rebuilding: says why in the log if it can still be written
    /// (a disk that was full may have room again), and in the logs of the
    /// server either way.
    pub(super) fn give_up(&mut self, id: &SessionId, reason: &str, release: Option<u64>, ctx: &mut Context<Self>) {
        log::error!(
            "session {id}: its actor failed {MAX_RESTARTS} times; not rebuilding it until someone acts ({reason})"
        );
        let writer = self.deps.writer.clone();
        let logs = self.deps.logs.clone();
        let durability = self.deps.durability;
        let gateway = self.sessions.get(id).and_then(|e| e.gateway.clone());
        let message = format!("the session stopped: {reason}. It is tried again when you next act on it.");
        let id = id.clone();
        let record = async move {
            if let Some(key) = release {
                let _ = writer.release(key).await;
            }
            let written = tokio::task::spawn_blocking(move || {
                let opened = EventLog::open(&logs, &id, durability)?;
                let turn = opened.events.last().map_or(0, |l| l.event.turn);
                let mut events = opened.repairs().to_vec();
                let mut log = opened.log;
                events.push(log.append(turn, EventBody::Error { code: "actor-failed".into(), message })?);
                Ok::<_, LogError>(events)
            })
            .await;
            if let (Ok(Ok(events)), Some(gateway)) = (written, gateway) {
                for logged in events {
                    gateway.do_send(crate::event::Publish(crate::event::Outbound::Event(logged)));
                }
            }
        };
        ctx.spawn(record.into_actor(self));
    }

    /// Restarts actors that died without being asked to.
    pub(super) fn sweep(&mut self, ctx: &mut Context<Self>) {
        let dead: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| matches!(&e.slot, Slot::Running(r) if !r.addr.connected()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.died(&id, ctx);
        }
    }
}
