//! The runtime behind panel.
//!
//! # Layout
//!
//! Data flows one way: floor message → [`session`] actor (the context grows)
//! → [`model_client`] actor (a [`provider`] streams the completion) →
//! [`parser`] (inside the session) → [`event_log`] (append) → [`gateway`]
//! (fan-out) → subscribers.
//!
//! The modules stand in layers, top to bottom. A module imports only from
//! layers below its own (never beside it, never above): a word used by a
//! lower layer lives in that layer, and data crosses a layer as plain
//! values. [`LAYERS`] writes the same order once, and the architecture test
//! (`tests/architecture`) holds every `use crate::…` to it.
//!
//! 1. [`registry`]: every session's actor — creation, lookup, supervision,
//!    passivation, continuation and branching.
//! 2. [`session`]: the session actor and its turn lifecycle (keep-warm,
//!    budget, constraint); [`counterfactual`]: one turn played again with
//!    its history held fixed (rerolls, other settings, each voice alone),
//!    rebuilt by [`replay`] and recorded beside the session, never in it.
//! 3. [`continuation`]: a session carried into a fresh one, or branched;
//!    [`replay`]: a session's state rebuilt from its log alone; [`audit`]:
//!    a recorded session checked against its log.
//! 4. [`model_client`]: the actor that streams completions; [`record`]: the
//!    artefacts of a closed session.
//! 5. [`provider`]: Anthropic, OpenAI-compatible servers and the offline
//!    [`provider::rehearsal`] engine; [`event_log`]: the append-only
//!    `events.jsonl`, with crash repair; [`pricing`]: prices per model;
//!    [`comparison`]: sessions lined up turn by turn (from [`dynamics`]).
//! 6. [`megaprompt`]: the immutable head and the growing tail, with cache
//!    marks; [`gateway`]: fan-out to subscribers; [`grammar`]: the per-turn
//!    GBNF for local models; [`cache_clock`]: when a cached prefix goes cold;
//!    [`dynamics`]: a deliberation's metrics (turns, characters, session)
//!    from its events alone, the one place every view reads them from.
//! 7. [`event`]: the one event vocabulary, as logged and as streamed, with
//!    its plain value types (settings, costs, the delivered conversation).
//! 8. [`templates`]: the prompt templates; [`cards`]: Character Cards in
//!    and out of the library; [`floor`]: the humans' lines of a turn and
//!    their seats.
//! 9. [`roster`]: the character library.
//! 10. [`parser`]: the incremental, lossless parser of the model's output,
//!     and the one rule for what a name may be.
//! 11. [`id`]: validated session and character ids (they become paths);
//!     [`prefix_cache`]: simulated prompt caching.

/// The layers of [the layout](self#layout), top to bottom: the one place
/// the order is written. A module may import from any layer below its own.
pub const LAYERS: &[&[&str]] = &[
    &["registry"],
    &["session", "counterfactual"],
    &["continuation", "replay", "audit"],
    &["model_client", "record"],
    &["provider", "event_log", "pricing", "comparison"],
    &["megaprompt", "gateway", "grammar", "cache_clock", "dynamics"],
    &["event"],
    &["templates", "cards", "floor"],
    &["roster"],
    &["parser"],
    &["id", "prefix_cache"],
];

pub mod audit;
pub mod cache_clock;
pub mod cards;
pub mod comparison;
pub mod continuation;
pub mod counterfactual;
pub mod dynamics;
pub mod event;
pub mod event_log;
pub mod floor;
pub mod gateway;
pub mod grammar;
pub mod id;
pub mod megaprompt;
pub mod model_client;
pub mod parser;
pub mod prefix_cache;
pub mod pricing;
pub mod provider;
pub mod record;
pub mod registry;
pub mod replay;
pub mod roster;
pub mod session;
pub mod templates;
