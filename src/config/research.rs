//! The commands for research workflows: following a session from a
//! terminal, playing a scripted session, and reporting on sessions.

use std::path::PathBuf;

use clap::Args;

use super::{LogsArg, ServeArgs};

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// The sessions to follow (several share one connection; each line is
    /// prefixed with its session's title).
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// The panel server.
    #[arg(long, env = "PANEL_URL", default_value = "http://127.0.0.1:7878")]
    pub url: String,
    /// The server's token, if it requires one.
    #[arg(long, env = "PANEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Show only events after this seq (0: the whole session so far).
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// Print each logged event's JSON, exactly as logged, one per line.
    #[arg(long)]
    pub json: bool,
    /// Leave out the confer.
    #[arg(long)]
    pub no_confer: bool,
    /// Speak from this seat: each line typed on standard input is a floor
    /// line of the (one) session followed, under this name.
    #[arg(long, value_name = "NAME")]
    pub seat: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The script: `title`, `cast`, optional `depth`, and `[[turn]]` entries
    /// with `say`, optional `to`, `add`, `retire`, `pause_s`.
    pub script: PathBuf,
    /// Drive this running server through its API (watch it in the browser);
    /// without it, the session runs in-process on --logs.
    #[arg(long)]
    pub url: Option<String>,
    /// Play the script this many times, one session each.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Print the closing report as CSV.
    #[arg(long)]
    pub csv: bool,
    /// When a session outgrows the model's window: `stop` (report what was
    /// recorded, exit non-zero), or `continue[=transcript|recap]` — carry on
    /// in a fresh continuation carrying the transcript (default) or a recap,
    /// and report the chain as one run.
    #[arg(long, default_value = "stop", value_parser = on_full, value_name = "stop|continue[=transcript|recap]")]
    pub on_full: OnFull,
    /// The sessions' sampling seed: two plays of one script with one seed and
    /// the same settings are identical on the rehearsal engine (default: a
    /// fresh seed per session, recorded in its log).
    #[arg(long)]
    pub seed: Option<u64>,
    /// In-process: the server settings (--logs, --provider, --model, …).
    /// With --url: --provider and --model choose the sessions' model, and
    /// --token is sent to the server.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What `panel run` does when a session's window is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    Stop,
    /// Continue fresh, carrying this (`transcript` or `recap`, as the
    /// continue route names them).
    Continue(&'static str),
}

fn on_full(value: &str) -> Result<OnFull, String> {
    match value {
        "stop" => Ok(OnFull::Stop),
        "continue" | "continue=transcript" => Ok(OnFull::Continue("transcript")),
        "continue=recap" => Ok(OnFull::Continue("recap")),
        other => Err(format!("{other:?}: use stop, continue, continue=transcript or continue=recap")),
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The sessions to report on.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    #[command(flatten)]
    pub logs: LogsArg,
}

#[derive(Debug, Clone, Args)]
pub struct RosterArgs {
    #[command(subcommand)]
    pub action: RosterAction,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum RosterAction {
    /// Add Character Cards (PNG, JSON or CHARX) to the roster.
    Import {
        /// The card files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Folder holding characters/ and prompts/ (default as for `serve`).
        #[arg(long, env = "PANEL_ROSTER", default_value_os_t = super::home::default_roster())]
        roster: PathBuf,
    },
    /// Write a character out as a V3 Character Card.
    Export {
        /// The character's id.
        id: String,
        #[arg(long, value_enum, default_value = "png")]
        format: CardFormat,
        /// Where to write the card.
        #[arg(long)]
        out: PathBuf,
        /// Folder holding characters/ and prompts/ (default as for `serve`).
        #[arg(long, env = "PANEL_ROSTER", default_value_os_t = super::home::default_roster())]
        roster: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CardFormat {
    Png,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The sessions to tabulate.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Folder to write the tables and schema.json into (created if need be).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: DataFormat,
    #[command(flatten)]
    pub logs: LogsArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Args)]
pub struct StudyArgs {
    /// The study: `title`, `script` (or `cast`/`depth`/`[[turn]]` inline),
    /// `repeat`, `seed` and `[[condition]]` entries.
    pub file: PathBuf,
    /// Drive this running server through its API (each session can be
    /// watched live); without it, the study runs in-process on --logs.
    #[arg(long)]
    pub url: Option<String>,
    /// Sessions played at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub parallel: u32,
    /// Print the report as CSV.
    #[arg(long)]
    pub csv: bool,
    /// Resume study ID: play only the sessions it is missing.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The session whose turn is played again.
    pub id: String,
    /// The turn to play again, its history held fixed.
    #[arg(long)]
    pub turn: u32,
    /// `reroll`: the turn's own request again; `solo`: each character alone.
    #[arg(long, default_value = "reroll", value_parser = ["reroll", "solo"])]
    pub mode: String,
    /// Samples (per character, for solo): 1–8.
    #[arg(long, default_value_t = 1)]
    pub n: u32,
    /// Another confer depth for the samples.
    #[arg(long)]
    pub depth: Option<u8>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// A running panel to replay on; without it, in-process on --logs.
    #[arg(long)]
    pub url: Option<String>,
    /// `--provider P --model M` play the samples on another model (in
    /// process, that provider is also the server's).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Which of `--provider` and `--model` the command line gave: only those
    /// are asked of the replay, so the server's environment (`PANEL_MODEL`)
    /// never turns a plain reroll into one on another model.
    #[arg(skip)]
    pub asked: AskedSettings,
}

/// The replay settings given on the command line, not by the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct AskedSettings {
    pub provider: bool,
    pub model: bool,
}

impl ReplayArgs {
    /// Notes which settings `matches` (this subcommand's) took from the command line.
    pub fn note_asked(&mut self, matches: &clap::ArgMatches) {
        let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        self.asked = AskedSettings { provider: given("provider"), model: given("model") };
    }
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The sessions to line up, turn by turn (two or more).
    #[arg(required = true, num_args = 2..)]
    pub ids: Vec<String>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub logs: LogsArg,
}
