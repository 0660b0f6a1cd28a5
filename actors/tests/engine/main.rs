//! The engine's tests: one binary, one module per part.

mod helpers;

mod event_log;
mod gateway;
mod megaprompt;
mod parser;
mod rehearsal;
mod session;
