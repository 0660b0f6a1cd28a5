//! The engine's tests: one binary, one module per part.

#[path = "../support/gbnf.rs"]
mod gbnf;
mod helpers;

mod cards;
mod dynamics;
mod event_log;
mod gateway;
mod grammar;
mod megaprompt;
mod parser;
mod rehearsal;
mod session;
