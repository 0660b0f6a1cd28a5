//! The messages a session answers besides the turn's own stream: the
//! floor's input, cast changes, inspection, and its own life (close, stop,
//! passivate, restart).

use std::time::Instant;

use actix::prelude::*;

use super::keep_warm::PING_GRACE;
use super::{
    CastAccepted, CastChange, ChangeCast, Close, Inspect, Panic, Passivate, Queued, Restarted, Say, SayAccepted,
    Session, SessionError, Stop,
};
use crate::event::{EventBody, Totals};
use crate::event_log::{LogError, LogFailed};
use crate::floor::check_seat;

impl Handler<LogFailed> for Session {
    type Result = ();

    fn handle(&mut self, msg: LogFailed, ctx: &mut Self::Context) {
        let err = LogError::Failed(self.id.clone(), msg.message);
        self.fail_hard(&err, ctx);
    }
}

impl Handler<Say> for Session {
    type Result = Result<SayAccepted, SessionError>;

    fn handle(&mut self, msg: Say, ctx: &mut Self::Context) -> Self::Result {
        self.refuse_if_gone()?;
        self.active = Instant::now();
        let (text, to) = self.address(&msg.text, msg.to.as_deref())?;
        if text.is_empty() {
            return Err(SessionError::EmptyText);
        }
        if text.chars().count() > self.deps.limits.max_text {
            return Err(SessionError::TextTooLong(self.deps.limits.max_text));
        }
        let seat = msg.seat.as_deref().map(|s| check_seat(s, self.projected.on_stage_characters())).transpose()?;
        if seat.is_some() && !self.context.renderer().shows_seats() {
            return Err(SessionError::SeatsUnsupported);
        }
        self.warmth.floor_spoke();
        if self.inflight.is_none() && self.queue.is_empty() {
            // Taken at once: if it cannot fit the model's window, say so now,
            // and the floor keeps its line to continue in a fresh session.
            self.budget.check(&self.context, &text)?;
            let turn = self.next_turn();
            self.queue.push_back(Queued { text, to, seat });
            self.at_boundary(ctx);
            return Ok(SayAccepted { turn, queued: 0 });
        }
        if self.queue.len() >= self.deps.limits.queue {
            return Err(SessionError::QueueFull(self.deps.limits.queue));
        }
        self.queue.push_back(Queued { text, to, seat });
        let ahead = self.queue.len();
        Ok(SayAccepted { turn: self.turns + self.turns_waiting() as u32, queued: ahead })
    }
}

impl Handler<ChangeCast> for Session {
    type Result = Result<CastAccepted, SessionError>;

    fn handle(&mut self, ChangeCast(change): ChangeCast, ctx: &mut Self::Context) -> Self::Result {
        self.refuse_if_gone()?;
        self.active = Instant::now();
        // A change that undoes one still waiting cancels it instead of queueing.
        let undoes = match &change {
            CastChange::Add(id) => CastChange::Retire(id.clone()),
            CastChange::Retire(id) => CastChange::Add(id.clone()),
        };
        let cancels = self.cast_queue.iter().rposition(|c| *c == undoes);
        if cancels.is_none() && self.cast_queue.len() >= self.deps.limits.cast_queue {
            return Err(SessionError::CastQueueFull(self.deps.limits.cast_queue));
        }
        match &change {
            CastChange::Add(id) => {
                let roster = self.deps.roster.current();
                let joiner = self
                    .projected
                    .known(id)
                    .or_else(|| roster.get(id))
                    .ok_or_else(|| SessionError::UnknownCharacter(id.clone()))?
                    .clone();
                if self.projected.on_stage().len() >= self.deps.limits.max_cast {
                    return Err(SessionError::CastFull(self.deps.limits.max_cast));
                }
                // Seats heard, and seats whose lines wait to be.
                let seats = self.context.seats().chain(self.queue.iter().filter_map(|q| q.seat.as_deref()));
                if let Some(seat) = crate::floor::seat_taken(&joiner, seats) {
                    return Err(SessionError::SeatTaken { name: joiner.name.clone(), seat: seat.to_owned() });
                }
                self.projected.join(&joiner)?;
            }
            CastChange::Retire(id) => self.projected.retire(id)?,
        }
        match cancels {
            Some(i) => {
                self.cast_queue.remove(i);
            }
            None => self.cast_queue.push(change),
        }
        let pending = self.inflight.is_some();
        if !pending {
            self.at_boundary(ctx);
        }
        Ok(CastAccepted { pending })
    }
}

impl Handler<Inspect> for Session {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.info())
    }
}

impl Handler<Close> for Session {
    type Result = ResponseFuture<Result<Totals, SessionError>>;

    fn handle(&mut self, _: Close, ctx: &mut Self::Context) -> Self::Result {
        if let Err(e) = self.refuse_if_gone() {
            return Box::pin(std::future::ready(Err(e)));
        }
        let wound_down = self.wind_down("session closed", ctx);
        self.stopping = true;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.after_pings(ctx, move |act, ctx| {
            let result = wound_down.and_then(|()| {
                let totals = act.totals.clone();
                act.emit(act.turns, EventBody::SessionClose { totals: totals.clone() })?;
                Ok(totals)
            });
            act.closed = true;
            let _ = tx.send((result, act.log.release()));
            ctx.stop();
        });
        // Answer once `session-close` is on disk and the log is let go of,
        // so the artefacts written next see the whole log.
        Box::pin(async move {
            let (result, released) = rx.await.map_err(|_| SessionError::Stopping)?;
            let totals = result?;
            released.await?;
            Ok(totals)
        })
    }
}

impl Handler<Stop> for Session {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Stop, ctx: &mut Self::Context) -> Self::Result {
        if !self.stopping
            && let Err(e) = self.wind_down(&msg.reason, ctx)
        {
            log::error!("session {}: could not log its wind-down: {e}", self.id);
        }
        self.stopping = true;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.after_pings(ctx, move |act, ctx| {
            let _ = tx.send(act.log.release());
            ctx.stop();
        });
        let id = self.id.clone();
        Box::pin(async move {
            let Ok(released) = rx.await else { return };
            if let Err(e) = released.await {
                log::error!("session {id}: its log did not close cleanly: {e}");
            }
        })
    }
}

impl Session {
    /// Runs `then` once every ping out has been answered and logged — a
    /// ping the provider bills belongs in the log and the totals — but no
    /// later than [`PING_GRACE`]: a provider that holds a ping must not hold
    /// a close. With no ping out, `then` runs at once.
    fn after_pings(&mut self, ctx: &mut Context<Self>, then: impl FnOnce(&mut Self, &mut Context<Self>) + 'static) {
        let settled = self.warmth.settled();
        let id = self.id.clone();
        let waited = async move {
            if tokio::time::timeout(PING_GRACE, settled).await.is_err() {
                log::warn!("session {id}: a ping still unanswered after {PING_GRACE:?} is left out of the log");
            }
        };
        ctx.spawn(waited.into_actor(self).map(move |(), act, ctx| then(act, ctx)));
    }
}

impl Handler<Passivate> for Session {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Passivate, ctx: &mut Self::Context) -> Self::Result {
        // Anything that arrived since the offer to passivate keeps it alive.
        let rested = msg.now
            || !self.warmth.wants_to_stay() && self.deps.passivate_after.is_some_and(|a| self.active.elapsed() >= a);
        let still_idle = self.idle() && !self.stopping && rested;
        if !still_idle {
            return Box::pin(std::future::ready(false));
        }
        self.stopping = true;
        let released = self.log.release();
        ctx.stop();
        Box::pin(async move { released.await.is_ok() })
    }
}

impl Handler<Restarted> for Session {
    type Result = ();

    fn handle(&mut self, msg: Restarted, ctx: &mut Self::Context) {
        self.active = Instant::now();
        let turn = self.turns;
        if let Err(e) = self.emit(turn, EventBody::ActorRestart { reason: msg.reason }) {
            self.fail_hard(&e, ctx);
        }
    }
}

impl Handler<Panic> for Session {
    type Result = ();

    fn handle(&mut self, _: Panic, _: &mut Self::Context) {
        panic!("session {}: panic requested through the debug route", self.id);
    }
}
