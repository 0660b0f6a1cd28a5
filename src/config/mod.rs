//! The command line. Every option also reads an environment variable, so a
//! `.env`-style setup and scripts work the same way. The roster and logs
//! folders default to where [`home`] finds them, so `panel` runs from any
//! folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub mod home;
mod providers;
mod research;

use panel_actors::cache_clock::TimeScale;
use panel_actors::event_log::Durability;
use panel_actors::provider::CacheTtl;
use panel_actors::registry::Constrain;
pub use providers::{ProviderArg, ProviderChoice};
pub use research::{
    CardFormat, CompareArgs, DataArgs, DataFormat, OnFull, ReplayArgs, ReportArgs, RosterAction, RosterArgs, RunArgs,
    StudyArgs, TailArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "panel",
    version,
    about = "A live conversation with a panel of AI characters, voiced by one model.",
    after_help = "Exit codes: 0 done · 1 failed (or a check found problems) · 2 usage (a wrong command line or \
                  settings refused together) · 3 cannot start here (address taken, data folder not writable)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The command line of this process, with what only its matches know
    /// (which settings were given rather than taken from the environment).
    pub fn from_env() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let matches = Self::command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Some(Command::Replay(args)), Some(("replay", sub))) = (&mut cli.command, matches.subcommand()) {
            args.note_asked(sub);
        }
        cli
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Close sessions that are not being served, and write their artefacts.
    Close(CloseArgs),
    /// Regenerate every closed session's artefacts and the index from the logs.
    Rebuild(LogsArg),
    /// Check recorded sessions; exits non-zero with a report if anything is off.
    Audit(AuditArgs),
    /// Write a self-contained static site: the viewer and the chosen sessions.
    Export(ExportArgs),
    /// Follow one session live in the terminal.
    Tail(TailArgs),
    /// Play a scripted session (in-process, or on a running server) and report on it.
    Run(RunArgs),
    /// One comparable row per session: tokens, cost, who spoke and led, time to first byte.
    Report(ReportArgs),
    /// Long-format tables (acts, turns, characters, sessions) and their schema, for notebooks.
    Data(DataArgs),
    /// Play a script under several conditions, each repeated, and report per condition.
    Study(StudyArgs),
    /// Line sessions up turn by turn and mark where they differ.
    Compare(CompareArgs),
    /// Play one turn again with its history held fixed: rerolls, other settings, or each voice alone.
    Replay(ReplayArgs),
    /// The character library: import and export Character Cards.
    Roster(RosterArgs),
    /// Print a shell completion script: `panel completions bash > …` (also zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args)]
pub struct LogsArg {
    /// Folder of session logs and artefacts (default: ./logs if it exists,
    /// else under PANEL_HOME, else the data folder).
    #[arg(long, env = "PANEL_LOGS", default_value_os_t = home::default_logs())]
    pub logs: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CloseArgs {
    /// The sessions to close.
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub logs: LogsArg,
    /// Folder holding characters/ and prompts/ (default: ./roster if it
    /// exists, else under PANEL_HOME, else the data folder, written out there
    /// from the built-in roster on first run).
    #[arg(long, env = "PANEL_ROSTER", default_value_os_t = home::default_roster())]
    pub roster: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The sessions to audit.
    pub ids: Vec<String>,
    /// Audit every session in the logs folder.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    #[command(flatten)]
    pub logs: LogsArg,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Where to write the site (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The sessions to include (default: every closed session).
    pub ids: Vec<String>,
    #[command(flatten)]
    pub logs: LogsArg,
    /// Copy the viewer from this folder instead of the one built in.
    #[arg(long = "static", env = "PANEL_STATIC")]
    pub static_dir: Option<PathBuf>,
    /// Folder holding characters/, whose avatars the sessions show.
    #[arg(long, env = "PANEL_ROSTER", default_value_os_t = home::default_roster())]
    pub roster: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --token.
    #[arg(long, env = "PANEL_ADDR", default_value = "127.0.0.1:7878")]
    pub addr: SocketAddr,
    /// Folder of session logs and artefacts (default: ./logs if it exists,
    /// else under PANEL_HOME, else the data folder).
    #[arg(long, env = "PANEL_LOGS", default_value_os_t = home::default_logs())]
    pub logs: PathBuf,
    /// Folder holding characters/ and prompts/ (default: ./roster if it
    /// exists, else under PANEL_HOME, else the data folder, written out there
    /// from the built-in roster on first run).
    #[arg(long, env = "PANEL_ROSTER", default_value_os_t = home::default_roster())]
    pub roster: PathBuf,
    /// Serve the browser app from this folder instead of the one built in
    /// (for working on the app: edits show on reload).
    #[arg(long = "static", env = "PANEL_STATIC")]
    pub static_dir: Option<PathBuf>,
    /// Open the app in the browser once the server listens (PANEL_OPENER:
    /// a command to open it with instead of the system's; the address is
    /// added as its last argument).
    #[arg(long, env = "PANEL_OPEN")]
    pub open: bool,
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
    /// Who voices the panel. Default: anthropic when ANTHROPIC_API_KEY is
    /// set, else openai when OPENAI_BASE_URL is set, else the rehearsal engine.
    #[arg(long, env = "PANEL_PROVIDER", value_enum)]
    pub provider: Option<ProviderArg>,
    /// The model id (default: claude-sonnet-5 for anthropic).
    #[arg(long, env = "PANEL_MODEL")]
    pub model: Option<String>,
    /// Most tokens one turn may write.
    #[arg(long, env = "PANEL_MAX_TOKENS", default_value_t = 4096)]
    pub max_tokens: u32,
    /// Prompt-cache lifetime for Anthropic: 5m, or 1h (dearer writes, survives pauses).
    #[arg(long, env = "PANEL_CACHE_TTL", default_value = "5m", value_parser = ["5m", "1h"])]
    pub cache_ttl: String,
    /// Seconds without activity after which an idle session's actor lets go
    /// of its log and memory (it starts again from its log when needed); 0: never.
    #[arg(long, env = "PANEL_PASSIVATE_AFTER", default_value_t = 600)]
    pub passivate_after: u64,
    /// Keep-warm pings stop once the floor has been silent this many seconds.
    #[arg(long, env = "PANEL_KEEP_WARM_CAP", default_value_t = 1800)]
    pub keep_warm_cap: u64,
    /// The input window, in tokens, of a model whose provider and pricing
    /// table do not say.
    #[arg(long, env = "PANEL_CONTEXT_TOKENS")]
    pub context_tokens: Option<u64>,
    /// How an OpenAI-compatible server holds turns to panel's format:
    /// auto (llama.cpp's grammar or vLLM's structured outputs, when the
    /// server identifies itself), gbnf, vllm, or off.
    #[arg(long, env = "PANEL_CONSTRAIN", value_enum, default_value = "auto")]
    pub constrain: ConstrainArg,
    /// The input window the rehearsal engine simulates, in tokens.
    #[arg(long, env = "PANEL_REHEARSAL_WINDOW", default_value_t = 200_000)]
    pub rehearsal_window: u64,
    /// Testing aid: divide every cache duration (TTLs, the keep-warm lead and
    /// cap) by this factor, so a 5-minute TTL plays out in seconds against a
    /// mock scaled the same way. Never use it against a real provider.
    #[arg(long, env = "PANEL_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConstrainArg {
    Auto,
    Gbnf,
    Vllm,
    Off,
}

impl From<ConstrainArg> for Constrain {
    fn from(c: ConstrainArg) -> Self {
        match c {
            ConstrainArg::Auto => Constrain::Auto,
            ConstrainArg::Gbnf => Constrain::Gbnf,
            ConstrainArg::Vllm => Constrain::Vllm,
            ConstrainArg::Off => Constrain::Off,
        }
    }
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
    /// Why these two folders, for the banner (`None`: not said).
    pub roster_why: Option<String>,
    pub logs_why: Option<String>,
    /// The browser app's folder; `None`: the one built into the binary.
    pub static_dir: Option<PathBuf>,
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
    /// Arbiters that run sessions and gateways (0: one per core).
    pub lanes: usize,
    /// Threads that write and sync the logs.
    pub log_writers: usize,
    /// The provider sessions get unless they choose another.
    pub provider: ProviderChoice,
    /// The others on offer (the rehearsal engine is added when missing).
    pub other_providers: Vec<ProviderChoice>,
    pub retry: panel_actors::model_client::RetryPolicy,
    /// Most tokens one turn may write.
    pub max_tokens: u32,
    /// The prompt-cache lifetime sessions ask for.
    pub cache_ttl: CacheTtl,
    /// Idle time after which a session's actor lets go (`None`: never).
    pub passivate_after: Option<Duration>,
    /// Most session actors running at once (0: from the open-file limit).
    pub max_running: usize,
    /// Keep-warm stops once the floor has been silent this long.
    pub keep_warm_cap: Duration,
    /// The window of a model nobody states one for.
    pub context_tokens: Option<u64>,
    pub constrain: Constrain,
    pub rehearsal_window: u64,
    pub time_scale: TimeScale,
}

impl Settings {
    /// A server on a free loopback port with the defaults `panel serve` has,
    /// for tools, tests and benchmarks that set a few fields on top.
    pub fn local(
        logs: PathBuf,
        roster: PathBuf,
        static_dir: impl Into<Option<PathBuf>>,
        provider: ProviderChoice,
    ) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs,
            roster,
            roster_why: None,
            logs_why: None,
            static_dir: static_dir.into(),
            token: None,
            durability: Durability::PerTurn,
            rehearsal_pace: Duration::from_millis(40),
            debug_routes: false,
            keep_alive: Duration::from_secs(15),
            subscriber_queue: 1024,
            workers: 0,
            lanes: 0,
            log_writers: 2,
            provider,
            other_providers: Vec::new(),
            retry: Default::default(),
            max_tokens: 4096,
            cache_ttl: CacheTtl::FiveMinutes,
            passivate_after: Some(Duration::from_secs(600)),
            max_running: 0,
            keep_warm_cap: Duration::from_secs(1800),
            context_tokens: None,
            constrain: Constrain::Auto,
            rehearsal_window: panel_actors::provider::rehearsal::WINDOW,
            time_scale: TimeScale::REAL,
        }
    }
}

impl Settings {
    /// Makes the roster folder ready to load: a home roster missing on
    /// first run is written out ([`home::ready_roster`]), and the banner
    /// will say so.
    pub fn ready_folders(&mut self) -> anyhow::Result<()> {
        let done = match home::ready_roster(&self.roster)? {
            home::Seeded::Untouched => return Ok(()),
            home::Seeded::Created => "written out from the built-in roster just now".to_owned(),
            home::Seeded::Completed(n) => format!("added {n} prompt template(s) it lacked"),
        };
        self.roster_why = Some(match self.roster_why.take() {
            Some(why) => format!("{why}; {done}"),
            None => done,
        });
        Ok(())
    }
}

impl ServeArgs {
    /// The settings these arguments and `env` describe.
    pub fn settings(self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let (provider, other_providers) = self.providers(env)?;
        // What the flags do not set stays as `local` has it: one list of defaults.
        Ok(Settings {
            addr: self.addr,
            roster_why: Some(home::why(&self.roster, home::Folder::Roster)),
            logs_why: Some(home::why(&self.logs, home::Folder::Logs)),
            token: self.token.filter(|t| !t.is_empty()),
            durability: self.durability.into(),
            rehearsal_pace: Duration::from_millis(self.rehearsal_pace_ms),
            debug_routes: self.debug_routes,
            other_providers,
            max_tokens: self.max_tokens,
            cache_ttl: if self.cache_ttl == "1h" { CacheTtl::OneHour } else { CacheTtl::FiveMinutes },
            passivate_after: (self.passivate_after > 0).then(|| Duration::from_secs(self.passivate_after)),
            keep_warm_cap: Duration::from_secs(self.keep_warm_cap),
            context_tokens: self.context_tokens,
            constrain: self.constrain.into(),
            rehearsal_window: self.rehearsal_window,
            time_scale: TimeScale::new(self.time_scale),
            ..Settings::local(self.logs, self.roster, self.static_dir, provider)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["panel"];
        argv.extend(extra);
        Cli::parse_from(argv).serve
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn with_no_key_the_rehearsal_engine_is_the_default() {
        assert!(matches!(args(&[]).provider(env(&[])).unwrap(), ProviderChoice::Rehearsal));
    }

    #[test]
    fn an_anthropic_key_chooses_anthropic_and_an_openai_base_url_chooses_openai() {
        let a = args(&[])
            .provider(env(&[("ANTHROPIC_API_KEY", "sk-ant-test"), ("OPENAI_BASE_URL", "http://x/v1")]))
            .unwrap();
        assert!(
            matches!(a, ProviderChoice::Anthropic(c) if c.model == "claude-sonnet-5" && c.base_url == "https://api.anthropic.com")
        );
        let o = args(&["--model", "qwen"]).provider(env(&[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")])).unwrap();
        assert!(matches!(o, ProviderChoice::OpenAi(c) if c.api_key.is_none() && c.model == "qwen"));
    }

    #[test]
    fn a_chosen_provider_without_its_key_is_a_clear_error() {
        let err = args(&["--provider", "anthropic"]).provider(env(&[])).unwrap_err().to_string();
        assert!(err.contains("ANTHROPIC_API_KEY"), "{err}");
        let err = args(&["--provider", "openai", "--model", "gpt"]).provider(env(&[])).unwrap_err().to_string();
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let a = args(&[]).provider(env(&[("ANTHROPIC_API_KEY", "sk-ant-secret-123")])).unwrap();
        assert!(!format!("{a:?}").contains("secret-123"));
    }
}
