//! The replay actor: plays one replay's samples, one after another, and
//! records them in the replay's own log.
//!
//! Each sample is one request through the model client (the same retries,
//! timeouts and limits as a turn), parsed as a turn is, and logged with its
//! `sample`: `turn-start`, confer lines, speaks and passes, `cost` (priced
//! like a turn) and `turn-end` with provenance — or `error` and
//! `turn-aborted` when it fails, and the next sample goes ahead. After the
//! last one, `replay-close` carries the replay's totals and the log is let go.
//!
//! Invariants:
//! - Samples run one at a time: their events never interleave, and each
//!   after the first reads what the one before wrote to the cache.
//! - Every event is appended before it is published (the log writer's
//!   rule), so a subscriber never sees what a reader of the file could not.
//! - It holds nothing of the session's: no actor, no context, no clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::plan::{Plan, Sample};
use crate::event::{Cost, EventBody, Provenance, Totals};
use crate::event_log::{Appender, LogError};
use crate::id::{CharacterId, SessionId};
use crate::model_client::{Cancel, Complete, ModelClient, StreamEvent, StreamId, StreamItem};
use crate::parser::{Parsed, Parser};
use crate::pricing::Pricing;
use crate::provider::{ResponseMeta, Usage};

/// Told to whoever started the replay once its log is complete and let go.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Finished {
    pub session: SessionId,
    pub id: String,
}

/// Told to whoever started the replay after each sample, once its events
/// are on disk; the run goes on (to the next sample, or to `replay-close`
/// when `last`) only once this is answered.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SampleEnded {
    pub session: SessionId,
    pub id: String,
    pub last: bool,
}

/// The server is stopping: end the sample in flight as `interrupted` and
/// close the replay now. Answered once its log is closed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Interrupt;

/// Who hears of a replay's progress.
pub struct Starter {
    pub ended: Recipient<SampleEnded>,
    pub finished: Recipient<Finished>,
}

struct Current {
    sample: Sample,
    stream: StreamId,
    parser: Option<Parser>,
    output: String,
    order: Vec<CharacterId>,
    sent: Instant,
    first_text: Option<Instant>,
}

pub struct ReplayRun {
    id: String,
    session: SessionId,
    turn: u32,
    provider: String,
    model_name: String,
    offline: bool,
    stop_sequences: Vec<String>,
    log: Appender,
    waiting: VecDeque<Sample>,
    current: Option<Current>,
    model: Addr<ModelClient>,
    pricing: Arc<Pricing>,
    totals: Totals,
    done: Option<Starter>,
}

impl ReplayRun {
    /// A run of `plan`, whose `replay-open` is already in `log`.
    pub fn new(
        id: String,
        plan: Plan,
        log: Appender,
        model: Addr<ModelClient>,
        pricing: Arc<Pricing>,
        done: Option<Starter>,
    ) -> Self {
        Self {
            id,
            session: plan.of.session,
            turn: plan.of.turn,
            provider: plan.provider,
            model_name: plan.model,
            offline: plan.offline,
            stop_sequences: plan.stop_sequences,
            log,
            waiting: plan.samples.into(),
            current: None,
            model,
            pricing,
            totals: Totals::default(),
            done,
        }
    }

    fn emit(&mut self, sample: Option<u32>, body: EventBody) -> Result<(), LogError> {
        self.log.append_sample(self.turn, sample, body).map(drop)
    }

    /// Starts the next sample, or closes the replay after the last.
    fn next(&mut self, ctx: &mut Context<Self>) -> Result<(), LogError> {
        let Some(sample) = self.waiting.pop_front() else { return self.close(ctx) };
        let n = Some(sample.spec.sample);
        let cast = sample.on_stage.iter().map(|(id, _)| id.clone()).collect();
        self.emit(n, EventBody::TurnStart { mode: sample.mode, cast })?;
        let on = sample.on_stage.iter().map(|(id, name)| (id, name.as_str()));
        let off = sample.off_stage.iter().map(|(id, name)| (id, name.as_str()));
        let parser = Parser::new(on, off);
        let stream = StreamId::next();
        let request = sample.request.clone();
        self.current = Some(Current {
            sample,
            stream,
            parser: Some(parser),
            output: String::new(),
            order: Vec::new(),
            sent: Instant::now(),
            first_text: None,
        });
        let sink = ctx.address().recipient();
        let provider = self.provider.clone();
        self.model
            .send(Complete { stream, provider, request, sink })
            .into_actor(self)
            .map(move |sent, act, ctx| {
                if sent.is_err() {
                    let failed = act.fail(stream, "model-unavailable", "the model client is not running");
                    act.after(failed, ctx);
                }
            })
            .spawn(ctx);
        Ok(())
    }

    fn on_parsed(&mut self, items: Vec<Parsed>) -> Result<(), LogError> {
        let Some(sample) = self.current.as_ref().map(|c| c.sample.spec.sample) else { return Ok(()) };
        for item in items {
            let body = match item {
                // Typing is not replayed: the replay's lines arrive whole.
                Parsed::SpeakDelta { .. } => continue,
                Parsed::Deliberation { speaker, text } => EventBody::Deliberation { speaker, text },
                Parsed::Speak { speaker, text } => {
                    self.answered(&speaker);
                    EventBody::Speak { speaker, text }
                }
                Parsed::Pass { speaker } => {
                    self.answered(&speaker);
                    EventBody::Pass { speaker }
                }
                Parsed::Unparsed { raw, reason } => EventBody::Unparsed { raw, reason },
            };
            self.emit(Some(sample), body)?;
        }
        Ok(())
    }

    fn answered(&mut self, who: &CharacterId) {
        if let Some(c) = &mut self.current
            && !c.order.contains(who)
        {
            c.order.push(who.clone());
        }
    }

    fn finish(&mut self, usage: Usage, meta: ResponseMeta) -> Result<(), LogError> {
        let rest = self.current.as_mut().and_then(|c| c.parser.take()).map(Parser::finish).unwrap_or_default();
        self.on_parsed(rest)?;
        let Some(current) = self.current.take() else { return Ok(()) };
        let n = Some(current.sample.spec.sample);
        let prompt_tokens = usage.input + usage.cache_read + usage.cache_write;
        let mut cost = Cost {
            model: self.model_name.clone(),
            input: usage.input,
            cache_write: usage.cache_write,
            cache_write_1h: usage.cache_write_1h,
            cache_read: usage.cache_read,
            output: usage.output,
            cache_hit: usage.cache_read > 0,
            usd: None,
            simulated: self.offline,
            // A replay keeps no cache clock: the session's stays its own.
            warm_until: None,
            context_tokens: (prompt_tokens > 0).then_some(prompt_tokens),
        };
        cost.usd = self.pricing.usd(&cost);
        self.totals.add(&cost);
        self.emit(n, EventBody::Cost(cost))?;
        if current.output.trim().is_empty() {
            let message = "the model's output is empty".to_owned();
            self.emit(n, EventBody::Error { code: "empty-output".into(), message })?;
            return self.emit(n, EventBody::TurnAborted { reason: "empty-output".into() });
        }
        let provenance = self.provenance(&current, &usage, meta);
        self.totals.turns += 1;
        let body =
            EventBody::TurnEnd { order: current.order, output: current.output, provenance: Some(Box::new(provenance)) };
        self.emit(n, body)
    }

    fn provenance(&self, current: &Current, usage: &Usage, meta: ResponseMeta) -> Provenance {
        let duration = current.sent.elapsed();
        let ttfb = current.first_text.map(|t| t.duration_since(current.sent));
        let generating = current.first_text.map_or(duration, |t| t.elapsed());
        let rate = (usage.output > 0 && !generating.is_zero()).then(|| usage.output as f64 / generating.as_secs_f64());
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        Provenance {
            provider: self.provider.clone(),
            model: self.model_name.clone(),
            reported_model: meta.model,
            request_id: meta.request_id,
            stop_reason: meta.stop_reason,
            max_tokens: current.sample.request.max_tokens,
            temperature: None,
            stop_sequences: self.stop_sequences.clone(),
            ttfb_ms: ttfb.map(|d| round(d.as_secs_f64() * 1e3)),
            duration_ms: round(duration.as_secs_f64() * 1e3),
            output_tokens_per_s: rate.map(round),
            prefix_hash: current.sample.prefix_hash.clone(),
            constraint: None,
        }
    }

    /// The sample in flight failed: record why; the next one goes ahead.
    fn fail(&mut self, stream: StreamId, code: &str, message: &str) -> Result<(), LogError> {
        let Some(current) = self.current.take_if(|c| c.stream == stream) else { return Ok(()) };
        self.model.do_send(Cancel(stream));
        let n = Some(current.sample.spec.sample);
        self.emit(n, EventBody::Error { code: code.into(), message: message.into() })?;
        self.emit(n, EventBody::TurnAborted { reason: code.into() })
    }

    fn close(&mut self, ctx: &mut Context<Self>) -> Result<(), LogError> {
        // Told once the file is whole and closed, even though this actor stops now.
        actix::spawn(self.closing()?);
        ctx.stop();
        Ok(())
    }

    /// Appends `replay-close` and lets the log go; the future resolves once
    /// it is closed and the starter has been told.
    fn closing(&mut self) -> Result<impl Future<Output = ()> + use<>, LogError> {
        let totals = self.totals.clone();
        self.log.append_sample(self.turn, None, EventBody::ReplayClose { totals })?;
        let released = self.log.release();
        let (session, id, done) = (self.session.clone(), self.id.clone(), self.done.take());
        Ok(async move {
            if let Err(e) = released.await {
                log::error!("replay {id} of session {session}: its log did not close cleanly: {e}");
            }
            if let Some(done) = done {
                done.finished.do_send(Finished { session, id });
            }
        })
    }

    /// Between samples: once the one that ended is on disk and its starter
    /// has heard of it, on to the next (or to the close).
    fn between(&mut self, ctx: &mut Context<Self>) {
        let Some(done) = &self.done else {
            let next = self.next(ctx);
            return self.step(next, ctx);
        };
        let flushed = self.log.flush();
        let ended = done.ended.clone();
        let (session, id, last) = (self.session.clone(), self.id.clone(), self.waiting.is_empty());
        let heard = async move {
            if let Err(e) = flushed.await {
                log::warn!("replay {id} of session {session}: its log could not be flushed: {e}");
            }
            // Told only now: `send` queues at once, and the book reads the
            // log when it hears.
            let _ = ended.send(SampleEnded { session, id, last }).await;
        };
        ctx.wait(heard.into_actor(self).map(|(), act, ctx| {
            let next = act.next(ctx);
            act.step(next, ctx);
        }));
    }

    /// After a step: on to the next sample once this one has ended, or stop
    /// if the log failed.
    fn after(&mut self, result: Result<(), LogError>, ctx: &mut Context<Self>) {
        if result.is_ok() && self.current.is_none() {
            return self.between(ctx);
        }
        self.step(result, ctx);
    }

    /// Stops the replay if its log failed.
    fn step(&mut self, result: Result<(), LogError>, ctx: &mut Context<Self>) {
        if let Err(e) = result {
            log::error!("replay {} of session {}: stopping, its log cannot be written: {e}", self.id, self.session);
            if let Some(current) = self.current.take() {
                self.model.do_send(Cancel(current.stream));
            }
            let (session, id) = (self.session.clone(), self.id.clone());
            if let Some(done) = self.done.take() {
                done.finished.do_send(Finished { session, id });
            }
            ctx.stop();
        }
    }
}

impl Actor for ReplayRun {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(256);
        let first = self.next(ctx);
        self.step(first, ctx);
    }
}

impl Handler<StreamEvent> for ReplayRun {
    type Result = ();

    fn handle(&mut self, event: StreamEvent, ctx: &mut Self::Context) {
        let Some(current) = self.current.as_mut().filter(|c| c.stream == event.stream) else { return };
        let result = match event.item {
            StreamItem::Text(text) => {
                current.first_text.get_or_insert_with(Instant::now);
                current.output.push_str(&text);
                let parsed = current.parser.as_mut().map(|p| p.feed(&text)).unwrap_or_default();
                match self.on_parsed(parsed) {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            StreamItem::Done(usage, meta) => self.finish(usage, meta),
            StreamItem::Failed(e) => self.fail(event.stream, &e.code, &e.message),
        };
        self.after(result, ctx);
    }
}

impl Handler<Interrupt> for ReplayRun {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Interrupt, ctx: &mut Self::Context) -> Self::Result {
        self.waiting.clear();
        let ended = match self.current.as_ref().map(|c| c.stream) {
            Some(stream) => self.fail(stream, super::INTERRUPTED, super::INTERRUPTED_WHY),
            None => Ok(()),
        };
        let closing = ended.and_then(|()| self.closing());
        ctx.stop();
        match closing {
            Ok(closed) => Box::pin(closed),
            Err(e) => {
                log::error!("replay {} of session {}: it could not be closed: {e}", self.id, self.session);
                Box::pin(async {})
            }
        }
    }
}
