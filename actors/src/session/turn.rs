//! The turn lifecycle of the session actor: the boundary, a turn's start,
//! its stream, and its end or abort.

use std::time::Instant;

use actix::prelude::*;

use super::{CastChange, Inflight, Queued, Session};
use crate::event::{Cost, EventBody, Outbound, Provenance, SpeakDelta, Timestamp};
use crate::event_log::LogError;
use crate::floor::{self, FloorLine, joins};
use crate::id::CharacterId;
use crate::model_client::{Cancel, Complete, StreamEvent, StreamId, StreamItem};
use crate::parser::{Parsed, Parser};
use crate::provider::{Brief, CompletionRequest, ResponseMeta, Task, Usage};

/// Stop reasons that mean the model's window cut the answer short.
const CUT_BY_WINDOW: [&str; 2] = ["model_context_window_exceeded", "truncated"];

impl Session {
    /// At a turn boundary: land the queued cast changes, then take the next
    /// queued floor message, if any. A keep-warm ping in flight is let finish
    /// first (it is quick, and the turn then reads what it refreshed), for
    /// [`PING_GRACE`](super::keep_warm::PING_GRACE) at most.
    pub(super) fn at_boundary(&mut self, ctx: &mut Context<Self>) {
        if self.inflight.is_some() {
            return;
        }
        // Cast changes land even while a ping is out: they only append to the
        // tail, after the prefix the ping is warming.
        if let Err(e) = self.land_cast_changes() {
            return self.fail_hard(&e, ctx);
        }
        if self.warmth.pinging() {
            if !self.queue.is_empty() {
                self.wait_for_ping(ctx);
            }
            return;
        }
        while let Some(next) = self.next_batch() {
            match self.start_turn(next, ctx) {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => return self.fail_hard(&e, ctx),
            }
        }
    }

    fn land_cast_changes(&mut self) -> Result<(), LogError> {
        let turn = self.next_turn();
        for change in std::mem::take(&mut self.cast_queue) {
            let landed = match &change {
                CastChange::Add(id) => {
                    let known = self.context.cast().known(id).cloned();
                    match known.clone().or_else(|| self.deps.roster.current().get(id).cloned()) {
                        Some(joiner) => self.context.join(&joiner).map(|_| EventBody::Join {
                            character: id.clone(),
                            materials: known.is_none().then_some(joiner),
                        }),
                        None => Err(crate::megaprompt::CastError::NotOnStage(id.clone()).into()),
                    }
                }
                CastChange::Retire(id) => {
                    let renderer = self.context.renderer();
                    let line =
                        self.context.cast().known(id).map(|c| renderer.farewell(c).to_owned()).unwrap_or_default();
                    self.context.retire(id, &line).map(|()| EventBody::Leave { character: id.clone(), line })
                }
            };
            // Changes were checked against the projected cast when they were
            // accepted, so a failure here is a bug worth recording, not hiding.
            let body = landed.unwrap_or_else(|e| EventBody::Error {
                code: "cast-change-failed".into(),
                message: format!("{change:?} could not land: {e}"),
            });
            self.emit(turn, body)?;
        }
        self.projected = self.context.cast().clone();
        Ok(())
    }

    /// The floor lines the next turn answers: the first waiting line, and —
    /// once the floor is a room — every later one that can share its turn.
    fn next_batch(&mut self) -> Option<Vec<Queued>> {
        let first = self.queue.pop_front()?;
        let mut room = self.context.is_room() || first.seat.is_some();
        let mut to = first.to.clone();
        let mut batch = vec![first];
        while let Some(next) = self.queue.front() {
            room |= next.seat.is_some();
            if !room || !joins(to.as_ref(), next.to.as_ref()) {
                break;
            }
            to = to.or_else(|| next.to.clone());
            batch.extend(self.queue.pop_front());
        }
        Some(batch)
    }

    /// How many turns the waiting lines will take, as [`Self::next_batch`] cuts them.
    pub(super) fn turns_waiting(&self) -> usize {
        let mut turns = 0;
        let (mut room, mut to) = (self.context.is_room(), None::<&CharacterId>);
        for (i, line) in self.queue.iter().enumerate() {
            room |= line.seat.is_some();
            if i == 0 || !room || !joins(to, line.to.as_ref()) {
                turns += 1;
                to = None;
            }
            to = to.or(line.to.as_ref());
        }
        turns
    }

    /// Opens a turn for `batch`, the floor lines it answers. Returns false if
    /// none could be answered (an addressee left meanwhile, or they no longer
    /// fit the model's window) and they were recorded as errors instead.
    fn start_turn(&mut self, batch: Vec<Queued>, ctx: &mut Context<Self>) -> Result<bool, LogError> {
        let turn = self.next_turn();
        let said = || batch.iter().map(|q| q.text.as_str()).collect::<Vec<_>>().join("\n\n");
        match self.budget.check(&self.context, &said()) {
            Ok(needed) => self.budget.sending(needed),
            Err(e) => {
                let message = format!("{e}. This message was not sent: {:?}", said());
                self.emit(turn, EventBody::Error { code: e.code().into(), message })?;
                return Ok(false);
            }
        }
        let mut heard = Vec::with_capacity(batch.len());
        for input in batch {
            let line = FloorLine { text: &input.text, to: input.to.as_ref(), seat: input.seat.as_deref() };
            let opened = match heard.is_empty() {
                true => self.context.begin_turn(line),
                false => self.context.hear(line),
            };
            match opened {
                Ok(()) => heard.push(input),
                Err(e) => {
                    let message = format!("{e}; this message was not sent: {:?}", input.text);
                    self.emit(turn, EventBody::Error { code: "not-addressable".into(), message })?;
                }
            }
        }
        if heard.is_empty() {
            return Ok(false);
        }
        self.turns = turn;
        self.totals.turns = turn;
        for line in &heard {
            let (text, to, seat) = (line.text.clone(), line.to.clone(), line.seat.clone());
            self.emit(turn, EventBody::HumanSpeak { text, to, seat })?;
        }
        let input = Queued {
            text: floor::as_one(heard.iter().map(|q| (q.text.as_str(), q.seat.as_deref()))),
            to: heard.iter().find_map(|q| q.to.clone()),
            seat: None,
        };
        let cast = self.context.cast();
        let mode = cast.mode(input.to.as_ref());
        let on_stage: Vec<_> = cast.on_stage_characters().cloned().collect();
        let on = on_stage.iter().map(|c| (&c.id, c.name.as_str()));
        let off: Vec<_> =
            cast.known_characters().filter(|c| !cast.is_on_stage(&c.id)).map(|c| (&c.id, c.name.as_str())).collect();
        let parser = Parser::new(on, off);
        let ids = on_stage.iter().map(|c| c.id.clone()).collect();
        self.emit(turn, EventBody::TurnStart { mode, cast: ids })?;

        let to = input.to.as_ref().and_then(|id| on_stage.iter().find(|c| c.id == *id));
        let constraint = self.constraint_for(mode, &on_stage, to);
        let prefix_hash = self.context.prefix_hash();
        let brief = Brief {
            session: self.id.clone(),
            turn,
            mode,
            cast: on_stage,
            to: input.to,
            floor: input.text,
            depth: self.config.depth,
            task: Task::Turn,
            seed: Brief::seed_for(self.seed(), &prefix_hash),
        };
        let request = CompletionRequest {
            prompt: self.context.prompt(),
            brief,
            model: self.model.clone(),
            max_tokens: self.max_tokens(),
            cache_ttl: self.config.cache_ttl.unwrap_or_default(),
            constraint,
        };
        let stream = StreamId::next();
        let sent = (Instant::now(), Timestamp::now());
        self.inflight = Some(Inflight {
            stream,
            parser: Some(parser),
            output: String::new(),
            order: Vec::new(),
            sent,
            first_text: None,
            prefix_hash,
            request: request.constraint.is_some().then(|| request.clone()),
        });
        let sink = ctx.address().recipient();
        let provider = self.config.provider.clone();
        self.deps
            .model
            .send(Complete { stream, provider, request, sink })
            .into_actor(self)
            .map(move |sent, act, ctx| {
                if sent.is_err() {
                    let failed = act.abort_turn(
                        stream,
                        Some(("model-unavailable", "the model client is not running")),
                        "model-unavailable",
                    );
                    act.after(failed, ctx);
                }
            })
            .spawn(ctx);
        Ok(true)
    }

    /// Most tokens a turn may write.
    pub(super) fn max_tokens(&self) -> u32 {
        self.config.max_tokens.unwrap_or(self.deps.max_tokens)
    }

    fn on_parsed(&mut self, items: Vec<Parsed>) -> Result<(), LogError> {
        let turn = self.turns;
        for item in items {
            let body = match item {
                Parsed::SpeakDelta { speaker, text } => {
                    let delta = SpeakDelta { ts: Timestamp::now(), session: self.id.clone(), turn, speaker, text };
                    self.log.publish(Outbound::delta(&delta));
                    continue;
                }
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
            self.emit(turn, body)?;
        }
        Ok(())
    }

    fn answered(&mut self, who: &CharacterId) {
        if let Some(inflight) = &mut self.inflight
            && !inflight.order.contains(who)
        {
            inflight.order.push(who.clone());
        }
    }

    fn finish_turn(&mut self, usage: Usage, meta: ResponseMeta) -> Result<(), LogError> {
        let rest = self.inflight.as_mut().and_then(|i| i.parser.take()).map(Parser::finish).unwrap_or_default();
        self.on_parsed(rest)?;
        let Some(inflight) = self.inflight.take() else { return Ok(()) };
        let turn = self.turns;
        self.cache.used(inflight.sent, &usage);
        let prompt_tokens = usage.input + usage.cache_read + usage.cache_write;
        self.budget.turn_ended(prompt_tokens, usage.output, &inflight.output);
        let mut cost = Cost {
            model: self.model.clone(),
            input: usage.input,
            cache_write: usage.cache_write,
            cache_write_1h: usage.cache_write_1h,
            cache_read: usage.cache_read,
            output: usage.output,
            cache_hit: usage.cache_read > 0,
            usd: None,
            simulated: self.provider.as_ref().is_some_and(|p| p.offline),
            warm_until: self.cache.warm_until(),
            context_tokens: (prompt_tokens > 0).then_some(prompt_tokens),
        };
        cost.usd = self.deps.pricing.usd(&cost);
        if cost.usd.is_none() {
            log::warn!(
                "session {}: no price known for model {:?}; its tokens are recorded unpriced",
                self.id,
                cost.model
            );
        }
        self.totals.add(&cost);
        self.emit(turn, EventBody::Cost(cost))?;
        let cut_short = meta.stop_reason.as_deref().is_some_and(|r| CUT_BY_WINDOW.contains(&r));
        let provenance = self.provenance(&inflight, &usage, meta);
        match self.context.commit_turn(&inflight.output) {
            Ok(()) => {
                let provenance = Some(Box::new(provenance));
                self.emit(turn, EventBody::TurnEnd { order: inflight.order, output: inflight.output, provenance })?;
                self.warmth.turn_ended();
                if cut_short {
                    // What was written stands; the next turn would not fit either.
                    self.budget.mark_full();
                    let message = "the answer was cut short: the conversation has filled the model's window. \
                                   Continue it fresh in a new session to go on."
                        .to_owned();
                    self.emit(turn, EventBody::Error { code: "context-full".into(), message })?;
                }
                Ok(())
            }
            Err(e) => {
                self.emit(turn, EventBody::Error { code: "empty-output".into(), message: e.to_string() })?;
                self.emit(turn, EventBody::TurnAborted { reason: "empty-output".into() })?;
                let _ = self.context.abort_turn();
                Ok(())
            }
        }
    }

    /// What produced the turn: who answered, how fast, why it stopped.
    fn provenance(&self, inflight: &Inflight, usage: &Usage, meta: ResponseMeta) -> Provenance {
        let (sent, _) = inflight.sent;
        let duration = sent.elapsed();
        let ttfb = inflight.first_text.map(|t| t.duration_since(sent));
        let generating = inflight.first_text.map_or(duration, |t| t.elapsed());
        let rate = (usage.output > 0 && !generating.is_zero()).then(|| usage.output as f64 / generating.as_secs_f64());
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        Provenance {
            provider: self.config.provider.clone(),
            model: self.model.clone(),
            reported_model: meta.model,
            request_id: meta.request_id,
            stop_reason: meta.stop_reason,
            max_tokens: self.max_tokens(),
            temperature: None,
            stop_sequences: self.context.renderer().templates().stop_sequences.clone(),
            ttfb_ms: ttfb.map(|d| round(d.as_secs_f64() * 1e3)),
            duration_ms: round(duration.as_secs_f64() * 1e3),
            output_tokens_per_s: rate.map(round),
            prefix_hash: inflight.prefix_hash.clone(),
            // After a refusal the turn was resent without it, and this is None.
            constraint: self.config.constraint,
        }
    }

    /// Ends the turn in flight without keeping its output. `error` is logged
    /// as an `error` event first when the abort is a failure, not a request.
    pub(super) fn abort_turn(
        &mut self,
        stream: StreamId,
        error: Option<(&str, &str)>,
        reason: &str,
    ) -> Result<(), LogError> {
        if self.inflight.as_ref().is_none_or(|i| i.stream != stream) {
            return Ok(());
        }
        self.inflight = None;
        self.deps.model.do_send(Cancel(stream));
        let turn = self.turns;
        if let Some((code, message)) = error {
            if code == "context-full" {
                // The provider refused the prompt for its size: later turns
                // are refused here, before sending, until it is continued fresh.
                self.budget.mark_full();
            }
            self.emit(turn, EventBody::Error { code: code.into(), message: message.into() })?;
        }
        self.emit(turn, EventBody::TurnAborted { reason: reason.into() })?;
        self.warmth.turn_ended();
        // The turn is open, so this cannot fail; replay does the same.
        let _ = self.context.abort_turn();
        Ok(())
    }

    /// Before the actor stops: abort the turn in flight, record the floor
    /// messages that will not be answered, and land accepted cast changes.
    pub(super) fn wind_down(&mut self, reason: &str, _ctx: &mut Context<Self>) -> Result<(), LogError> {
        if let Some(stream) = self.inflight.as_ref().map(|i| i.stream) {
            self.abort_turn(stream, None, reason)?;
        }
        for dropped in std::mem::take(&mut self.queue) {
            let message = format!("not answered ({reason}): {:?}", dropped.text);
            self.emit(self.next_turn(), EventBody::Error { code: "input-dropped".into(), message })?;
        }
        self.land_cast_changes()
    }

    /// After a step of the turn: stop on a log failure, else carry on at the
    /// boundary (and, once idle, look after the cache through the pause).
    pub(super) fn after(&mut self, result: Result<(), LogError>, ctx: &mut Context<Self>) {
        match result {
            Err(e) => self.fail_hard(&e, ctx),
            Ok(()) => {
                self.at_boundary(ctx);
                if self.inflight.is_none() {
                    self.schedule_ping(ctx);
                }
            }
        }
    }
}

impl Handler<StreamEvent> for Session {
    type Result = ();

    fn handle(&mut self, event: StreamEvent, ctx: &mut Self::Context) {
        self.active = Instant::now();
        let Some(inflight) = self.inflight.as_mut().filter(|i| i.stream == event.stream) else {
            // A stream of a turn that has already ended: ignore its leftovers.
            return;
        };
        let result = match event.item {
            StreamItem::Text(text) => {
                inflight.first_text.get_or_insert_with(Instant::now);
                // Once text streams, the grammar was taken: no resend needed.
                inflight.request = None;
                inflight.output.push_str(&text);
                let parsed = inflight.parser.as_mut().map(|p| p.feed(&text)).unwrap_or_default();
                match self.on_parsed(parsed) {
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            StreamItem::Done(usage, meta) => self.finish_turn(usage, meta),
            StreamItem::Failed(e) => match self.constraint_refused(event.stream, &e, ctx) {
                Ok(true) => return,
                Ok(false) => self.abort_turn(event.stream, Some((&e.code, &e.message)), &e.code),
                Err(log) => Err(log),
            },
        };
        self.after(result, ctx);
    }
}
