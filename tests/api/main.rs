//! Integration tests: the real server on a free port, real HTTP, SSE and
//! WebSocket clients.

mod helpers;

mod actor;
mod guard;
mod sessions;
mod sse;
mod ws;
