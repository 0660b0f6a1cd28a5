//! Integration tests: the real server on a free port, real HTTP, SSE and
//! WebSocket clients.

#[path = "../../actors/tests/support/gbnf.rs"]
mod gbnf;
mod helpers;
mod mock_anthropic;
mod mock_openai;
mod mock_stall;
#[allow(dead_code)]
mod process;

mod actor;
mod connections;
mod constraint;
mod context;
mod continuation;
mod guard;
mod history;
mod invites;
mod keep_warm;
mod multiplex;
mod providers;
mod record;
mod recovery;
mod replays;
mod research;
mod roster;
mod seats;
mod sessions;
mod sse;
mod supervision;
mod ws;
