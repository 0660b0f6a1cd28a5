//! panel's edge: the command line, configuration and the HTTP server (REST,
//! WebSocket in, SSE out, static files) in front of the runtime in
//! `panel-actors`.
//!
//! The modules stand in layers, top to bottom; a module imports only from
//! layers below its own. [`LAYERS`] writes the order once, and the
//! architecture test (`tests/architecture`) holds every `use crate::…` to it.
//!
//! 1. [`study`]: `panel study`, one script under several conditions, each
//!    repeated, played through [`run`]; [`replay`]: one turn played again
//!    (on a server [`run`] connects to), and its summary; [`launch`]: opening the browser,
//!    printing shell completions.
//! 2. [`run`]: `panel run`, playing a script against a server it starts.
//! 3. [`startup`]: [`startup::Application`], built the same way by `main`
//!    and by the tests; [`tail`]: following a session live; [`export`]: a
//!    static site of recorded sessions; [`compare`]: sessions lined up turn
//!    by turn.
//! 4. [`guard`]: the localhost guard (Host allow-list, Origin check, token);
//!    [`routes`]: one module per surface; [`client`]: the HTTP client of the
//!    research commands; [`commands`], [`report`], [`data`], [`library`]:
//!    the commands on recorded sessions (reports and tidy tables) and the
//!    character library.
//! 5. [`config`]: the command line and its environment variables;
//!    [`error`]: every error as `{"error":{"code":…,"message":…}}`;
//!    [`invite`]: invites to one session, and the grant a request carries
//!    (shared by the guard, which admits with them, and the routes).
//! 6. [`assets`]: the browser app and the default roster, built into the
//!    binary; [`exit`]: exit codes and one-line errors.

/// The layers of this crate, top to bottom (see the crate's opening comment).
pub const LAYERS: &[&[&str]] = &[
    &["study", "replay", "launch"],
    &["run"],
    &["startup", "tail", "export", "compare"],
    &["guard", "routes", "client", "commands", "report", "data", "library"],
    &["config", "error", "invite"],
    &["assets", "exit"],
];

pub mod assets;
pub mod client;
pub mod commands;
pub mod compare;
pub mod config;
pub mod data;
pub mod error;
pub mod exit;
pub mod export;
pub mod guard;
pub mod invite;
pub mod launch;
pub mod library;
pub mod replay;
pub mod report;
pub mod routes;
pub mod run;
pub mod startup;
pub mod study;
pub mod tail;
