//! What `panel` does for a person at a terminal besides serving: opening
//! the app in their browser once the server listens (`--open`), and
//! printing shell completions (`panel completions SHELL`).
//!
//! Opening never fails the server: a machine without a browser (a
//! container, SSH) logs why and keeps serving. `PANEL_OPENER` names the
//! program to open the address with instead of the system's opener
//! (`xdg-open`, `open`, `start`) — its words split at spaces, like
//! `EDITOR`, the address added last — which is also how the tests watch it.

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::config::Cli;

/// The address a browser on this machine opens for a server on `port`,
/// with the token when one is required (its first visit trades it for a
/// cookie and drops it from the address bar).
pub fn app_url(port: u16, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("http://localhost:{port}/?token={}", encode(t)),
        None => format!("http://localhost:{port}/"),
    }
}

/// Opens `url` in the browser, without waiting for it.
pub fn open_browser(url: &str) {
    let opener = std::env::var("PANEL_OPENER").unwrap_or_default();
    let mut words = opener.split_whitespace();
    let opened = match words.next() {
        Some(program) => std::process::Command::new(program)
            .args(words)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            // Reaped when it ends, so no zombie lingers beside the server.
            .map(|mut child| drop(std::thread::spawn(move || child.wait()))),
        None => open::that_detached(url),
    };
    match opened {
        Ok(()) => log::info!("opened the app in the browser"),
        Err(e) => log::warn!("cannot open a browser ({e}); open the address above yourself"),
    }
}

/// Writes the completion script for `shell` to stdout. A reader that
/// stops early (`| head`) is no error.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "panel", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Percent-encodes everything but URL-safe characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_opened_address_is_local_and_carries_an_encoded_token() {
        assert_eq!(app_url(7878, None), "http://localhost:7878/");
        assert_eq!(app_url(80, Some("a b&c")), "http://localhost:80/?token=a%20b%26c");
    }
}
