//! panel's edge: the command line, configuration and the HTTP server (REST,
//! WebSocket in, SSE out, static files) in front of the runtime in
//! `panel-actors`.
//!
//! - [`config`]: the command line and its environment variables.
//! - [`startup`]: [`startup::Application`], built the same way by `main` and
//!   by the tests.
//! - [`guard`]: the localhost guard (Host allow-list, Origin check, token).
//! - [`error`]: every error as `{"error":{"code":…,"message":…}}`.
//! - [`routes`]: one module per surface.
//! - [`client`], [`tail`], [`run`], [`report`]: the research commands —
//!   following a session, playing a script, comparing sessions;
//!   [`library`]: `panel roster import / export` of Character Cards.

pub mod client;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod export;
pub mod guard;
pub mod library;
pub mod report;
pub mod routes;
pub mod run;
pub mod startup;
pub mod tail;
