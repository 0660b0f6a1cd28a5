//! The context budget: how much of the model's input window the session's
//! prompt fills, and whether the next turn still fits.
//!
//! The window comes from the provider (Anthropic's models endpoint,
//! llama.cpp's `/props`, vLLM's model list), else from `context_tokens` in
//! the pricing table, else from the server's default; the rehearsal engine
//! states the window it simulates.
//!
//! The estimate of the next prompt: the last turn's prompt as its usage
//! reported it (input, cache reads and writes), plus that turn's output
//! (appended verbatim), plus the new user message (the stage directions
//! waiting and the floor's line) at about four bytes a token. Without usage
//! (a server that sends none), the whole context's bytes stand in for it.
//!
//! The room the answer needs is judged from the session's recent answers —
//! the longest of the last few, with a quarter more — at least a small floor
//! and at most `max_tokens`: a local 8k window must not refuse turns merely
//! because `max_tokens` is 4,096 when the panel answers in 600.

use std::collections::VecDeque;

use actix::prelude::*;

use super::{ContextInfo, Session, SessionDeps, SessionError};
use crate::megaprompt::Megaprompt;
use crate::model_client::WindowOf;
use crate::prefix_cache::estimate_tokens;
use crate::replay::RECENT;

/// The least room left for an answer, whatever the recent ones were.
const MIN_ROOM: u64 = 256;

pub(super) struct Budget {
    window: Option<u64>,
    /// The prompt's size at the last turn, in tokens.
    tokens: u64,
    /// The last answer's size, which the next prompt carries.
    last_output: u64,
    outputs: VecDeque<u64>,
    /// What the last turn sent was estimated to need (prompt and room).
    last_needed: u64,
    /// The provider refused (or cut short) a turn needing this much: the
    /// window, as the provider counts it, is no larger. A shorter turn may
    /// still fit; one as long will not.
    ceiling: Option<u64>,
    max_tokens: u64,
}

impl Budget {
    pub(super) fn new(deps: &SessionDeps, model: &str, context: &Megaprompt) -> Self {
        Self {
            window: deps.pricing.context_tokens(model).or(deps.default_window),
            // What is already sent; the pending stage directions (a
            // continuation's carry among them) are counted with the next
            // floor line, in `estimate`, once.
            tokens: bytes_to_tokens(context.len_bytes() - context.pending_bytes()),
            last_output: 0,
            outputs: VecDeque::new(),
            last_needed: 0,
            ceiling: None,
            max_tokens: u64::from(deps.max_tokens),
        }
    }

    /// The state a log left: the last prompt's size and the recent answers.
    pub(super) fn restore(&mut self, tokens: Option<u64>, outputs: Vec<u64>) {
        if let Some(t) = tokens {
            self.tokens = t;
        }
        self.last_output = outputs.last().copied().unwrap_or(0);
        self.outputs = outputs.into();
    }

    /// The next prompt's size if the floor says `text` now.
    fn estimate(&self, context: &Megaprompt, text: &str) -> u64 {
        // The floor line's template and quotes: a few tokens more than the text.
        let message = bytes_to_tokens(context.pending_bytes() + text.len()) + 16;
        self.tokens + self.last_output + message
    }

    /// The room the next answer needs.
    fn room(&self) -> u64 {
        let recent = self.outputs.iter().copied().max().unwrap_or(0);
        (recent + recent / 4).max(MIN_ROOM).min(self.max_tokens.max(MIN_ROOM))
    }

    /// Whether a turn for `text` fits the window, before anything is sent.
    pub(super) fn check(&self, context: &Megaprompt, text: &str) -> Result<u64, SessionError> {
        let needed = self.estimate(context, text) + self.room();
        // The tighter of the window and what the provider has refused.
        let refused = self.ceiling.map(|c| c.saturating_sub(1));
        let Some(limit) = [self.window, refused].into_iter().flatten().min() else { return Ok(needed) };
        if needed > limit {
            return Err(SessionError::ContextFull { needed, window: self.window.unwrap_or(limit) });
        }
        Ok(needed)
    }

    /// A turn needing `needed` (from [`Budget::check`]) is being sent.
    pub(super) fn sending(&mut self, needed: u64) {
        self.last_needed = needed;
    }

    /// A turn ended: its prompt was `prompt_tokens` (0 when the provider did
    /// not say) and it wrote `output_tokens` (`output` when it did not say).
    pub(super) fn turn_ended(&mut self, prompt_tokens: u64, output_tokens: u64, output: &str) {
        let output_tokens = if output_tokens > 0 { output_tokens } else { estimate_tokens(output) };
        self.tokens = if prompt_tokens > 0 { prompt_tokens } else { self.tokens + self.last_output };
        self.last_output = output_tokens;
        self.outputs.push_back(output_tokens);
        if self.outputs.len() > RECENT {
            self.outputs.pop_front();
        }
    }

    /// The provider said the last turn's prompt does not fit (or cut its
    /// answer short): nothing needing as much is sent again.
    pub(super) fn mark_full(&mut self) {
        let at = self.last_needed.max(1);
        self.ceiling = Some(self.ceiling.map_or(at, |c| c.min(at)));
    }

    pub(super) fn set_window(&mut self, window: u64) {
        self.window = Some(window);
    }

    pub(super) fn info(&self) -> ContextInfo {
        let tokens = self.tokens + self.last_output;
        let share = self.window.filter(|w| *w > 0).map(|w| ((tokens as f64 / w as f64) * 1e4).round() / 1e4);
        ContextInfo { tokens, window: self.window, share }
    }
}

fn bytes_to_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

impl Session {
    /// Asks the provider for the model's window; its answer replaces the fallback.
    pub(super) fn ask_window(&self, ctx: &mut Context<Self>) {
        let asked =
            self.deps.model.send(WindowOf { provider: self.config.provider.clone(), model: self.model.clone() });
        asked
            .into_actor(self)
            .map(|window, act, _| {
                if let Ok(Some(window)) = window {
                    act.budget.set_window(window);
                }
            })
            .spawn(ctx);
    }
}
