//! Keeping the prompt cache warm through the floor's pauses.
//!
//! A person reads four replies and thinks before answering, often for longer
//! than a 5-minute cache lives; the next turn then writes the whole
//! conversation again, at 12.5 times the price of reading it. A pre-warm —
//! the prefix the next turn will reuse, sent unstreamed with
//! `max_tokens: 0` shortly before the cache would go cold — costs one cache
//! read and keeps it warm for another TTL.
//!
//! Settings (`keep_warm`): `off`; `always` pings until the floor has been
//! silent for the cap (30 minutes by default); `auto` pings only while
//! someone watches the session and the ping is likely to pay — see
//! [`Session::worth_pinging`] for the model, in full.
//!
//! Every ping is a logged `keep-warm` event with its usage and price,
//! counted in the totals: panel never spends where the user cannot see it. A
//! failed ping is an `error` (`keep-warm-failed`) and changes nothing else.
//! A ping is not sent while a turn runs or input waits, and a turn that
//! finds a ping in flight waits for it — a `max_tokens: 0` request answers
//! in one round trip, and the turn then reads what it refreshed — but never
//! longer than [`PING_GRACE`]: a ping the provider holds must not hold the
//! floor. A ping answered after the turn went ahead is still logged and
//! counted with whatever usage the provider reported for it (panel bills
//! only what the provider billed, and all of that); it no longer moves the
//! cache clock, which the turn itself has refreshed since.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{CacheInfo, ChangeSettings, Session, SessionError, SessionInfo, Watched};
use crate::event::{Cost, EventBody, KeepWarm, Timestamp, TurnMode};
use crate::model_client::Prewarm;
use crate::provider::{Brief, CacheTtl, CompletionRequest, Task, Usage};

/// How long before the cache goes cold a ping is sent (unscaled): room for
/// the request's round trip.
const LEAD: Duration = Duration::from_secs(30);
/// The typical pause assumed until the session has shown its own (unscaled).
const PRIOR_PAUSE: Duration = Duration::from_secs(120);
/// Pauses remembered to judge this floor's pace.
const PAUSES: usize = 12;
/// The longest a floor line waits for a ping in flight (real time, not
/// scaled: it bounds a network round trip, not a cache lifetime).
pub(super) const PING_GRACE: Duration = Duration::from_millis(1500);

/// The session's side of keep-warm.
#[derive(Default)]
pub(super) struct Warmth {
    /// Someone watches the session (a subscriber is connected).
    watched: bool,
    /// Since when the floor has been silent: its last line, or the last turn's end.
    silent_since: Option<Instant>,
    /// When the last turn ended, while the floor has not spoken since.
    turn_ended: Option<Instant>,
    /// The floor's recent pauses, from a turn's end to its next line.
    pauses: VecDeque<Duration>,
    /// The next ping, when one is scheduled.
    timer: Option<SpawnHandle>,
    /// Pings sent so far: each one's number tells its answer from a later one's.
    sent: u64,
    /// The ping the next turn waits for (at most [`PING_GRACE`]).
    waiting_for: Option<u64>,
    /// When the waiting turn stops waiting.
    grace: Option<SpawnHandle>,
    /// A ping failed: no more until the floor speaks again. The cache may go
    /// cold, but a provider refusing pings is not hammered with them.
    failed: bool,
    /// Pings sent and not yet answered (one may outlive the turn it let go).
    unanswered: u32,
    /// Told once no ping is unanswered: a close or stop waits for them, since
    /// a ping the provider bills must reach the log and the totals.
    settled: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Warmth {
    /// A ping is on its way and the next turn waits for it.
    pub(super) fn pinging(&self) -> bool {
        self.waiting_for.is_some()
    }

    /// A ping is due: the actor should not be passivated before it.
    pub(super) fn wants_to_stay(&self) -> bool {
        self.timer.is_some() || self.waiting_for.is_some() || self.unanswered > 0
    }

    /// Resolves once every ping sent has been answered and recorded, or at
    /// once when none is out. A close or stop waits on it, at most
    /// [`PING_GRACE`].
    pub(super) fn settled(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.unanswered == 0 {
            let _ = tx.send(());
        } else {
            self.settled.push(tx);
        }
        rx
    }

    fn answered(&mut self) {
        self.unanswered = self.unanswered.saturating_sub(1);
        if self.unanswered == 0 {
            for tx in self.settled.drain(..) {
                let _ = tx.send(());
            }
        }
    }

    pub(super) fn floor_spoke(&mut self) {
        if let Some(ended) = self.turn_ended.take() {
            self.pauses.push_back(ended.elapsed());
            if self.pauses.len() > PAUSES {
                self.pauses.pop_front();
            }
        }
        self.silent_since = Some(Instant::now());
        self.failed = false;
    }

    /// A turn ended (or was aborted): the floor's next pause starts now.
    pub(super) fn turn_ended(&mut self) {
        let now = Instant::now();
        self.turn_ended = Some(now);
        self.silent_since = Some(now);
    }

    /// The floor's typical pause: the median of those seen, or a prior.
    fn typical_pause(&self) -> Option<Duration> {
        if self.pauses.len() < 3 {
            return None;
        }
        let mut seen: Vec<Duration> = self.pauses.iter().copied().collect();
        seen.sort();
        Some(seen[seen.len() / 2])
    }
}

impl Session {
    pub(super) fn cache_info(&self) -> CacheInfo {
        let now = Instant::now();
        let ttl = self.config.cache_ttl.unwrap_or_default();
        CacheInfo {
            state: self.cache.state(now),
            keep_warm: self.config.keep_warm,
            rewrite_usd: self.deps.pricing.rewrite_usd(&self.model, ttl, self.cache.prefix_tokens()),
            warming: self.warmth.wants_to_stay(),
            floor_pauses: self.warmth.pauses.len(),
            floor_pause_s: self.warmth.typical_pause().map(|m| m.as_secs_f64() * self.deps.time_scale.factor()),
        }
    }

    /// Plans the next ping, if the cache expires and anything is cached:
    /// shortly before it would go cold. Whether it is sent is decided then.
    pub(super) fn schedule_ping(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.warmth.timer.take() {
            ctx.cancel_future(timer);
        }
        // Before the first turn the floor's silence runs from the opening.
        if self.inflight.is_none() && self.warmth.silent_since.is_none() {
            self.warmth.turn_ended();
        }
        let off = self.config.keep_warm == KeepWarm::Off || self.closed || self.stopping || self.warmth.failed;
        let Some(ttl) = self.cache.ttl() else { return };
        if off || self.cache.prefix_tokens() == 0 || self.context.warm_prompt().is_none() {
            return;
        }
        let Some(left) = self.cache.remaining(Instant::now()).filter(|left| !left.is_zero()) else { return };
        let lead = self.deps.time_scale.shrink(LEAD).min(ttl / 10);
        let due = left.saturating_sub(lead);
        self.warmth.timer = Some(ctx.run_later(due, |act, ctx| {
            act.warmth.timer = None;
            act.ping(ctx);
        }));
    }

    /// A floor line found a ping in flight: it waits for the answer, but
    /// no longer than [`PING_GRACE`].
    pub(super) fn wait_for_ping(&mut self, ctx: &mut Context<Self>) {
        if self.warmth.waiting_for.is_none() || self.warmth.grace.is_some() {
            return;
        }
        self.warmth.grace = Some(ctx.run_later(PING_GRACE, |act, ctx| {
            act.warmth.grace = None;
            if let Some(ping) = act.warmth.waiting_for.take() {
                log::info!(
                    "session {}: ping {ping} still unanswered after {PING_GRACE:?}; the turn goes ahead",
                    act.id
                );
            }
            act.at_boundary(ctx);
        }));
    }

    /// Sends a pre-warm if it is still wanted now.
    fn ping(&mut self, ctx: &mut Context<Self>) {
        let busy = self.inflight.is_some() || !self.queue.is_empty() || self.warmth.waiting_for.is_some();
        if busy || !self.cache.warm(Instant::now()) || !self.worth_pinging() {
            return;
        }
        let (Some(prompt), Some(provider)) = (self.context.warm_prompt(), self.provider.clone()) else { return };
        let cast = self.context.cast().on_stage_characters().cloned().collect();
        let brief = Brief {
            session: self.id.clone(),
            turn: self.turns,
            mode: TurnMode::Panel,
            cast,
            to: None,
            floor: String::new(),
            depth: self.config.depth,
            task: Task::Turn,
            seed: self.seed(),
        };
        let request = CompletionRequest {
            prompt,
            brief,
            model: self.model.clone(),
            max_tokens: 0,
            cache_ttl: self.config.cache_ttl.unwrap_or_default(),
            constraint: None,
        };
        let sent = (Instant::now(), Timestamp::now());
        self.warmth.sent += 1;
        let number = self.warmth.sent;
        self.warmth.waiting_for = Some(number);
        self.warmth.unanswered += 1;
        self.deps
            .model
            .send(Prewarm { provider: provider.name.clone(), request })
            .into_actor(self)
            .map(move |answer, act, ctx| {
                let awaited = act.warmth.waiting_for == Some(number);
                if awaited {
                    act.warmth.waiting_for = None;
                    if let Some(grace) = act.warmth.grace.take() {
                        ctx.cancel_future(grace);
                    }
                }
                let recorded = match answer {
                    Ok(Ok(usage)) => act.warmed(sent, usage, provider.offline, awaited),
                    Ok(Err(e)) => {
                        act.warmth.failed = true;
                        let message = format!("the cache could not be kept warm (nothing else is affected): {e}");
                        act.emit(act.turns, EventBody::Error { code: "keep-warm-failed".into(), message })
                    }
                    Err(_) => Ok(()),
                };
                act.warmth.answered();
                if let Err(e) = recorded {
                    return act.fail_hard(&e, ctx);
                }
                // A turn that waited for the ping goes now; else the next ping
                // is planned. (A late answer leaves the turn it let go alone.)
                if awaited || act.inflight.is_none() {
                    act.at_boundary(ctx);
                }
                if act.inflight.is_none() && act.warmth.waiting_for.is_none() {
                    act.schedule_ping(ctx);
                }
            })
            .spawn(ctx);
    }

    /// A ping came back: it is logged, priced and counted, and, unless a
    /// turn went ahead without it, the cache clock restarts from its start.
    fn warmed(
        &mut self,
        sent: (Instant, Timestamp),
        usage: Usage,
        simulated: bool,
        awaited: bool,
    ) -> Result<(), crate::event_log::LogError> {
        if awaited {
            self.cache.used(sent, &usage);
        }
        let priced = Cost {
            model: self.model.clone(),
            input: usage.input,
            cache_write: usage.cache_write,
            cache_write_1h: usage.cache_write_1h,
            cache_read: usage.cache_read,
            ..Cost::default()
        };
        let usd = self.deps.pricing.usd(&priced);
        let body = EventBody::KeepWarm {
            input: usage.input,
            cache_write: usage.cache_write,
            cache_read: usage.cache_read,
            usd,
            warm_until: self.cache.warm_until(),
            simulated,
        };
        self.totals.add_event(&body);
        self.emit(self.turns, body)
    }

    /// Whether a ping now is worth sending.
    ///
    /// `always`: until the floor has been silent for the cap.
    ///
    /// `auto`, in addition: someone is watching (a subscriber is connected —
    /// nobody is about to speak to a session nobody has open), and the ping
    /// pays for itself in expectation. A ping costs one read of the cached
    /// prefix, `r·P` (prices per token, `P` tokens). Letting the cache go cold
    /// costs, if the floor speaks before the *next* ping would be due, the
    /// difference between writing the prefix again and reading it, `(w−r)·P`.
    /// So ping when `p·(w−r) > r`, where `p` is the chance the floor speaks
    /// within the coming TTL, having been silent for `s` so far.
    ///
    /// For `p` a simple heavy-tailed model of pauses — people answer within
    /// a minute or two, or go away for long — the survival function
    /// `S(t) = m / (m + t)`, whose median is `m`:
    /// `p = 1 − S(s + ttl) / S(s) = ttl / (m + s + ttl)`. `m` is the median of
    /// this floor's own recent pauses (each from a turn's end to the floor's
    /// next line; the last twelve) once it has shown three, else two minutes.
    ///
    /// Solved for the silence, the rule pings while
    /// `s < ttl·(w − 2r)/r − m`. At Anthropic's ratios (`w` = 1.25, `r` = 0.1
    /// with the 5-minute TTL) that is `s < 52.5 min − m`; with the 1-hour TTL
    /// (`w` = 2) it is 19 hours. So under the default 30-minute cap, `auto`
    /// stops before the cap only for a floor whose typical pause is over 22.5
    /// minutes; otherwise it pings, while someone watches, until the cap — as
    /// even a policy that knew this pause distribution exactly would (the
    /// chance of a return within the next TTL stays above `r/(w−r)`). What
    /// `auto` adds to `always` is the watcher rule and, for a slow floor or
    /// cheaper writes, the earlier stop.
    fn worth_pinging(&self) -> bool {
        let scale = self.deps.time_scale;
        let silence = self.warmth.silent_since.map_or(Duration::ZERO, |t| t.elapsed());
        if silence >= scale.shrink(self.deps.keep_warm_cap) {
            return false;
        }
        match self.config.keep_warm {
            KeepWarm::Off => false,
            KeepWarm::Always => true,
            KeepWarm::Auto => {
                let Some(ttl) = self.cache.ttl() else { return false };
                if !self.warmth.watched {
                    return false;
                }
                let ttl_kind = self.config.cache_ttl.unwrap_or_default();
                let (w, r) = match self.deps.pricing.price(&self.model) {
                    Some(p) => (p.cache_write(ttl_kind), p.cache_read),
                    // Unpriced: Anthropic's ratios (1.25× or 2× to write, 0.1× to read).
                    None => (if ttl_kind == CacheTtl::OneHour { 2.0 } else { 1.25 }, 0.1),
                };
                let m = self.warmth.typical_pause().unwrap_or_else(|| scale.shrink(PRIOR_PAUSE));
                let p = ttl.as_secs_f64() / (m + silence + ttl).as_secs_f64();
                p * (w - r) > r
            }
        }
    }
}

impl Handler<Watched> for Session {
    type Result = ();

    fn handle(&mut self, Watched(watched): Watched, ctx: &mut Self::Context) {
        self.warmth.watched = watched;
        if watched && self.warmth.timer.is_none() && self.inflight.is_none() {
            self.schedule_ping(ctx);
        }
    }
}

impl Handler<ChangeSettings> for Session {
    type Result = Result<SessionInfo, SessionError>;

    fn handle(&mut self, msg: ChangeSettings, ctx: &mut Self::Context) -> Self::Result {
        self.refuse_if_gone()?;
        if let Some(keep_warm) = msg.keep_warm
            && keep_warm != self.config.keep_warm
        {
            if self.cache.ttl().is_none() && keep_warm != KeepWarm::Off {
                return Err(SessionError::NothingToKeepWarm);
            }
            self.emit(self.turns, EventBody::Settings { keep_warm })?;
            self.config.keep_warm = keep_warm;
            if self.inflight.is_none() {
                self.schedule_ping(ctx);
            }
        }
        Ok(self.info())
    }
}
