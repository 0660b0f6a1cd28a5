//! Holding a local model to the format: a grammar with every turn, when the
//! session's server understands one.
//!
//! A session opened on an OpenAI-compatible server that identified itself
//! (llama.cpp, vLLM) records the dialect in its config; each turn then
//! carries the [`crate::grammar`] for that turn, in that dialect. Anthropic
//! and unidentified servers never get one.
//!
//! A server that refuses the field (a 400 naming it, before anything has
//! streamed) does not cost the turn: it is sent again unconstrained, the
//! session drops the constraint for good, and says so once with an `error`
//! event coded `constraint-unsupported` — which replay reads too, so a
//! restarted session does not try again.

use actix::prelude::*;

use super::Session;
use crate::event::{EventBody, TurnMode};
use crate::event_log::LogError;
use crate::grammar;
use crate::model_client::{Complete, StreamId};
use crate::provider::{CompletionRequest, Constraint, ModelError};
use crate::roster::Character;

pub use crate::event::CONSTRAINT_UNSUPPORTED as UNSUPPORTED;

/// Words in a 400's message that say the server refused the grammar field
/// (llama.cpp: "failed to parse grammar"; strict servers: "unrecognized
/// request argument", "extra inputs are not permitted").
const REFUSALS: [&str; 7] = [
    "grammar",
    "structured",
    "guided",
    "unrecognized request argument",
    "extra inputs",
    "not permitted",
    "unknown field",
];

impl Session {
    /// The constraint for a turn of `mode` with `cast` on stage, if the
    /// session's server takes one.
    pub(super) fn constraint_for(
        &self,
        mode: TurnMode,
        cast: &[Character],
        to: Option<&Character>,
    ) -> Option<Constraint> {
        let dialect = self.config.constraint?;
        let names: Vec<&str> = cast.iter().map(|c| c.name.as_str()).collect();
        let words = &self.context.renderer().templates().format;
        let grammar =
            grammar::for_turn(words, mode, &names, to.map(|c| c.name.as_str()), self.config.depth, self.max_tokens());
        Some(Constraint { dialect, grammar })
    }

    /// If `error` is the server refusing the turn's grammar, sends the turn
    /// again without it and returns true; otherwise false.
    pub(super) fn constraint_refused(
        &mut self,
        stream: StreamId,
        error: &ModelError,
        ctx: &mut Context<Self>,
    ) -> Result<bool, LogError> {
        let message = error.message.to_lowercase();
        if error.code != "bad-request" || !REFUSALS.iter().any(|w| message.contains(w)) {
            return Ok(false);
        }
        // Only a constrained turn keeps its request, and only until it streams.
        let Some(inflight) = self.inflight.as_mut().filter(|i| i.stream == stream && i.output.is_empty()) else {
            return Ok(false);
        };
        let Some(request) = inflight.request.take() else { return Ok(false) };
        let dialect = self.config.constraint.take();
        let message = format!(
            "the model server refused the format grammar ({dialect:?}), so this session's turns go unconstrained \
             from now on: {}",
            error.message
        );
        self.emit(self.turns, EventBody::Error { code: UNSUPPORTED.into(), message })?;
        let request = CompletionRequest { constraint: None, ..request };
        let retry = StreamId::next();
        if let Some(inflight) = self.inflight.as_mut() {
            inflight.stream = retry;
        }
        let provider = self.config.provider.clone();
        self.deps.model.do_send(Complete { stream: retry, provider, request, sink: ctx.address().recipient() });
        Ok(true)
    }
}
