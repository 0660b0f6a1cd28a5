//! `Continue`: a fresh session carrying a session's conversation, from its
//! last turn (continue) or an earlier one (branch). See
//! [`crate::continuation`] for what is carried and how.
//!
//! The parent's log is read (never opened for writing: it may be running,
//! and stays as it was); the carry is rendered — or, for a recap, written
//! by the parent's model in one extra request — and only then is the new
//! session created, so a failed recap creates nothing. The recap's price is
//! the new session's first `cost` (turn 0), counted in its totals.

use actix::prelude::*;

use super::{Continued, Create, Registry, RegistryError};
use crate::continuation::{Carried, CarryError, collect};
use crate::event::{Carry, Cost, Parent, TurnMode};
use crate::event_log;
use crate::id::SessionId;
use crate::model_client::WindowOf;
use crate::prefix_cache::estimate_tokens;
use crate::provider::{Brief, CompletionRequest, Task};
use crate::session::SessionInfo;

/// Most tokens a recap may take (less if the server's `max_tokens` is lower).
const RECAP_TOKENS: u32 = 2048;

/// Continue session `id` fresh from `at_turn` (default: its last), carrying
/// the conversation as `carry`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SessionInfo, RegistryError>")]
pub struct Continue {
    pub id: SessionId,
    pub at_turn: Option<u32>,
    pub carry: Carry,
}

impl Handler<Continue> for Registry {
    type Result = ResponseFuture<Result<SessionInfo, RegistryError>>;

    fn handle(&mut self, msg: Continue, ctx: &mut Self::Context) -> Self::Result {
        let (logs, renderer, pricing) = (self.deps.logs.clone(), self.deps.renderer.clone(), self.deps.pricing.clone());
        let (default_window, max_tokens) = (self.deps.default_window, self.deps.max_tokens);
        let providers = self.deps.providers.clone();
        let model_client = self.lanes.get(0).model.clone();
        let me = ctx.address();
        Box::pin(async move {
            let Continue { id, at_turn, carry } = msg;
            let reading = (logs, id.clone());
            let events = tokio::task::spawn_blocking(move || event_log::read(&reading.0, &reading.1))
                .await
                .map_err(|_| RegistryError::Unavailable(id.clone()))??;
            let carried = Carried::from_events(&events, at_turn)?;
            let provider = carried.config.provider.clone();
            let window = model_client
                .send(WindowOf { provider: provider.clone(), model: carried.model.clone() })
                .await
                .ok()
                .flatten()
                .or_else(|| pricing.context_tokens(&carried.model))
                .or(default_window);

            let (text, opening_cost) = match carry {
                Carry::Transcript => {
                    let head = renderer.head(carried.config.depth, &carried.cast).map_err(CarryError::from)?;
                    (carried.transcript(&renderer, window.map(|w| transcript_budget(w, estimate_tokens(&head))))?, None)
                }
                Carry::Recap => {
                    let room = RECAP_TOKENS.min(max_tokens);
                    let budget = window.map(|w| w.saturating_sub(u64::from(room) + 1024));
                    let request = CompletionRequest {
                        prompt: carried.recap_prompt(&renderer, budget)?,
                        brief: Brief {
                            session: id.clone(),
                            turn: carried.turn,
                            mode: TurnMode::Panel,
                            cast: carried.cast.clone(),
                            to: None,
                            floor: String::new(),
                            depth: carried.config.depth,
                            task: Task::Recap(carried.turns.clone()),
                            seed: carried.config.seed.unwrap_or_default(),
                        },
                        model: carried.model.clone(),
                        max_tokens: room,
                        cache_ttl: carried.config.cache_ttl.unwrap_or_default(),
                        constraint: None,
                    };
                    let (notes, usage, meta) = collect::complete(&model_client, provider.clone(), request)
                        .await
                        .map_err(RegistryError::Recap)?;
                    let mut cost = Cost {
                        model: meta.model.unwrap_or_else(|| carried.model.clone()),
                        input: usage.input,
                        cache_write: usage.cache_write,
                        cache_write_1h: usage.cache_write_1h,
                        cache_read: usage.cache_read,
                        output: usage.output,
                        context_tokens: Some(usage.input + usage.cache_read + usage.cache_write),
                        simulated: providers.iter().any(|p| p.name == provider && p.offline),
                        ..Cost::default()
                    };
                    cost.usd = pricing.usd(&cost);
                    (carried.recap(&renderer, &notes)?, Some(cost))
                }
            };

            let last = carried.turn;
            let branch = at_turn.is_some_and(|n| n < last_finished(&events));
            let config = &carried.config;
            let title = if branch {
                format!("{} (branch at turn {last})", config.title)
            } else {
                format!("{} (continued)", config.title)
            };
            let create = Create {
                title: Some(title),
                depth: Some(config.depth),
                provider: Some(provider),
                model: Some(carried.model.clone()),
                cache_ttl: config.cache_ttl,
                keep_warm: config.cache_ttl.map(|_| config.keep_warm),
                continued: Some(Continued {
                    cast: carried.cast,
                    parent: Parent { id: id.clone(), turn: last, carry },
                    carry: text,
                    opening_cost,
                }),
                ..Create::new(Vec::new())
            };
            me.send(create).await.map_err(|_| RegistryError::Unavailable(id))?
        })
    }
}

fn last_finished(events: &[std::sync::Arc<crate::event::Logged>]) -> u32 {
    events
        .iter()
        .rev()
        .find(|l| matches!(l.event.body, crate::event::EventBody::TurnEnd { .. }))
        .map_or(0, |l| l.event.turn)
}

/// The tokens a carried transcript may take in a fresh session of `window`
/// tokens whose head takes `head`: at most half the window, and never so
/// much that the head, the transcript and a quarter of the window for the
/// conversation to go on exceed it — else the continuation would refuse its
/// own first turn.
fn transcript_budget(window: u64, head: u64) -> u64 {
    (window / 2).min(window.saturating_sub(head + window / 4))
}

#[cfg(test)]
mod tests {
    use super::transcript_budget;

    #[test]
    fn a_carried_transcript_leaves_a_quarter_of_the_window_beside_the_head() {
        assert_eq!(transcript_budget(200_000, 3_000), 100_000, "a roomy window: half of it");
        assert_eq!(transcript_budget(9_000, 4_000), 2_750, "a tight one: what the head and the quarter leave");
        assert_eq!(transcript_budget(4_000, 5_000), 0, "a head past the window: nothing carried");
    }
}
