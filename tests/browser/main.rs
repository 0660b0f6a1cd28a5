//! Browser tests: the real server, driven in a real headless Chromium over
//! WebDriver (Debian's `chromium` and `chromium-driver`). Each test saves a
//! screenshot under `target/test-output/browser/`.

// The same real-server helpers as the API tests.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod app;
#[path = "../../actors/tests/support/gbnf.rs"]
mod gbnf;
mod helpers;
#[allow(dead_code)]
#[path = "../api/mock_anthropic.rs"]
mod mock_anthropic;
#[allow(dead_code)]
#[path = "../api/mock_openai.rs"]
mod mock_openai;

mod cache;
mod chat;
mod compare;
mod composer;
mod continuation;
mod dynamics;
mod invites;
mod library;
mod replays;
mod seats;
mod sessions;
mod study;
mod tabs;
mod token;
mod viewer;
mod window;
