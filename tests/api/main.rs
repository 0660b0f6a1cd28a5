//! Integration tests: the real server on a free port, real HTTP, SSE and
//! WebSocket clients.

mod helpers;
mod mock_anthropic;
mod mock_openai;

mod actor;
mod guard;
mod providers;
mod record;
mod sessions;
mod sse;
mod ws;
