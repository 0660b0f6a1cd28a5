//! The runtime behind panel.
//!
//! # Layout
//!
//! Data flows one way: floor message → [`session`] actor (the context grows)
//! → [`model_client`] actor (a [`provider`] streams the completion) →
//! [`parser`] (inside the session) → [`event_log`] (append) → gateway
//! (fan-out) → subscribers.
//!
//! - [`id`]: validated session and character ids (they become paths).
//! - [`event`]: the one event vocabulary, as logged and as streamed.
//! - [`event_log`]: the append-only `events.jsonl`, with crash repair.
//! - [`roster`] and [`templates`]: the character library and the prompt
//!   templates, both files under `roster/`; [`cards`]: Character Cards in
//!   and out of the library.
//! - [`megaprompt`]: the megaprompt — an immutable head and a tail that only
//!   grows at its end, rendered with cache marks.
//! - [`parser`]: the incremental, lossless parser of the model's output;
//!   [`grammar`]: the per-turn GBNF that holds a local model to that format.
//! - [`replay`]: a session's state rebuilt from its log alone.
//! - [`dynamics`]: a deliberation's metrics (turns, characters, session) from its events alone.
//! - [`session`]: the session actor and its turn lifecycle.
//! - [`continuation`]: a session carried into a fresh one, or branched.
//! - [`model_client`] and [`provider`]: streaming completions; the offline
//!   [`provider::rehearsal`] engine is the default.
//! - [`prefix_cache`] and [`pricing`]: simulated prompt caching and prices;
//!   [`cache_clock`]: when a session's cached prefix goes cold.

pub mod audit;
pub mod cache_clock;
pub mod cards;
pub mod continuation;
pub mod dynamics;
pub mod event;
pub mod event_log;
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
