//! Starting a session's actor from its log, and settling the slot once
//! the log is open: running, failed (perhaps to be rebuilt), or, for a
//! session found closed, idle with the directory told.
//!
//! Invariants: the log is opened off the registry's thread; whoever waited
//! on the start is answered with its outcome; a session found closed
//! answers [`RegistryError::Closed`] to its waiters, never a retry.

use std::time::Instant;

use actix::prelude::*;

use super::slot::{Failure, Running, Slot, StartFailure};
use super::{MAX_RESTARTS, Registry, RegistryError};
use crate::id::SessionId;
use crate::session::{Restarted, Session, SessionError};

/// The failure code a start answers for a session found closed.
pub(super) const CLOSED: &str = "session-closed";

/// What a waiter's failure means to the caller: a closed session is said
/// to be closed, anything else to have failed to start.
pub(super) fn start_error(id: SessionId, f: StartFailure) -> RegistryError {
    if f.code == CLOSED {
        RegistryError::Closed(id)
    } else {
        RegistryError::Failed { id, code: f.code, message: f.message }
    }
}

impl Registry {
    /// Starts the session's actor from its log, on its lane, off this
    /// thread. `release` is a log a dead actor left attached; it is let go
    /// first. `restarted` is logged as the reason, when given.
    pub(super) fn start(
        &mut self,
        id: &SessionId,
        release: Option<u64>,
        attempts: u32,
        restarted: Option<String>,
        supervised: bool,
        ctx: &mut Context<Self>,
    ) {
        let gateway = self.gateway(id, ctx);
        let entry = self.entry(id);
        entry.slot = Slot::Starting(Vec::new());
        let lane = entry.lane;
        let deps = self.deps_for(lane, ctx);
        let writer = deps.writer.clone();
        let logs = deps.logs.clone();
        let directory = self.directory.clone();
        let session = id.clone();
        let opening = async move {
            if let Some(key) = release {
                let _ = writer.release(key).await;
            }
            let publisher = Some(gateway.recipient());
            let id = session.clone();
            let opened = match tokio::task::spawn_blocking(move || Session::open(deps, session, publisher)).await {
                Ok(opened) => opened?,
                Err(e) => return Err(SessionError::Panicked(e.to_string())),
            };
            if !opened.is_closed() {
                return Ok(Some(opened));
            }
            // Closed before this server started, so the directory did not
            // know yet. Its log is let go of (and the release waited for)
            // and its summary read, so that this and every later request is
            // answered "closed" at once instead of opening it again.
            let key = opened.log_key();
            drop(opened);
            let _ = writer.release(key).await;
            let _ = tokio::task::spawn_blocking(move || directory.load_missing(&logs, Some(&[id]))).await;
            Ok(None)
        };
        let id = id.clone();
        ctx.spawn(opening.into_actor(self).map(move |opened, act, ctx| {
            act.opened(&id, opened, attempts, restarted, supervised, ctx);
        }));
    }

    fn opened(
        &mut self,
        id: &SessionId,
        opened: Result<Option<Session>, SessionError>,
        attempts: u32,
        restarted: Option<String>,
        supervised: bool,
        ctx: &mut Context<Self>,
    ) {
        let lane = self.entry(id).lane;
        let arbiter = self.lanes.get(lane).arbiter.clone();
        let entry = self.entry(id);
        let waiters = entry.slot.end_starting();
        let outcome = match opened {
            Ok(None) => Err(StartFailure { code: CLOSED, message: RegistryError::Closed(id.clone()).to_string() }),
            Ok(Some(session)) => {
                let key = session.log_key();
                let addr = Session::start_in_arbiter(&arbiter, move |_| session);
                if let Some(reason) = restarted {
                    addr.do_send(Restarted { reason });
                }
                if entry.watchers > 0 {
                    addr.do_send(crate::session::Watched(true));
                }
                entry.slot = Slot::Running(Running { addr, key, since: Instant::now(), attempts });
                self.make_room(ctx);
                Ok(())
            }
            Err(e) => {
                let failure = StartFailure { code: e.code(), message: e.to_string() };
                log::error!("session {id}: its actor cannot start: {}", failure.message);
                let failures = attempts + 1;
                let mut f = Failure { failure: failure.clone(), attempts: failures, key: None, retry: None };
                if supervised && failures < MAX_RESTARTS {
                    f.retry = Some(self.schedule_restart(id, failures, ctx));
                } else if supervised {
                    self.give_up(id, &failure.message, None, ctx);
                }
                self.entry(id).slot = Slot::Failed(f);
                Err(failure)
            }
        };
        for waiter in waiters {
            let _ = waiter.send(outcome.clone());
        }
        self.maybe_retire(id, ctx);
    }
}
