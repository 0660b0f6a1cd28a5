//! The command line. Every option also reads an environment variable, so a
//! `.env`-style setup and scripts work the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use panel_actors::event_log::Durability;

#[derive(Debug, Parser)]
#[command(name = "panel", version, about = "A live conversation with a panel of AI characters, voiced by one model.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, env = "PANEL_ADDR", default_value = "127.0.0.1:7878")]
    pub addr: SocketAddr,
    /// Folder of session logs and artefacts.
    #[arg(long, env = "PANEL_LOGS", default_value = "logs")]
    pub logs: PathBuf,
    /// Folder holding characters/ and prompts/.
    #[arg(long, env = "PANEL_ROSTER", default_value = "roster")]
    pub roster: PathBuf,
    /// Folder of the browser app.
    #[arg(long = "static", env = "PANEL_STATIC", default_value = "static")]
    pub static_dir: PathBuf,
    /// Require this token on every request (header `Authorization: Bearer …`
    /// or `?token=…`). Required to listen beyond loopback.
    #[arg(long, env = "PANEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// When the log fsyncs: after every event, or at each turn's end.
    #[arg(long, env = "PANEL_DURABILITY", value_enum, default_value = "per-turn")]
    pub durability: DurabilityArg,
    /// Milliseconds between the rehearsal engine's streamed pieces.
    #[arg(long, env = "PANEL_REHEARSAL_PACE_MS", default_value_t = 40)]
    pub rehearsal_pace_ms: u64,
    /// Enable debugging routes (e.g. make a session's actor panic).
    #[arg(long, env = "PANEL_DEBUG_ROUTES")]
    pub debug_routes: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DurabilityArg {
    PerEvent,
    PerTurn,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::PerEvent => Durability::PerEvent,
            DurabilityArg::PerTurn => Durability::PerTurn,
        }
    }
}

/// Everything [`crate::startup::Application::build`] needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub logs: PathBuf,
    pub roster: PathBuf,
    pub static_dir: PathBuf,
    pub token: Option<String>,
    pub durability: Durability,
    pub rehearsal_pace: Duration,
    pub debug_routes: bool,
    /// Interval of SSE keep-alive comments and WebSocket pings.
    pub keep_alive: Duration,
    /// Frames a subscriber may have queued before it is disconnected.
    pub subscriber_queue: usize,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
}

impl From<ServeArgs> for Settings {
    fn from(a: ServeArgs) -> Self {
        Self {
            addr: a.addr,
            logs: a.logs,
            roster: a.roster,
            static_dir: a.static_dir,
            token: a.token.filter(|t| !t.is_empty()),
            durability: a.durability.into(),
            rehearsal_pace: Duration::from_millis(a.rehearsal_pace_ms),
            debug_routes: a.debug_routes,
            keep_alive: Duration::from_secs(15),
            subscriber_queue: 1024,
            workers: 0,
        }
    }
}
