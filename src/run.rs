//! `panel run SCRIPT.toml`: plays a scripted session and records it.
//!
//! ```toml
//! title = "Triage"
//! cast = ["ada", "byron", "cleo"]
//! depth = 4                      # optional
//!
//! [[turn]]
//! say = "What should a hospital automate first?"
//!
//! [[turn]]
//! say = "And what would fail first?"
//! to = "Ada"                     # optional: a name or an id
//! seat = "Maya"                  # optional: the named seat on the floor that says it
//! add = ["otto"]                 # optional: cast changes before this turn
//! retire = ["cleo"]
//! pause_s = 30                   # optional: the floor's pause before it (divided by --time-scale)
//! ```
//!
//! Either way it goes through panel's API — in-process on `--logs` (a
//! server on a free loopback port, offline with the rehearsal engine by
//! default), or a running server with `--url` so people can watch in the
//! browser — and each session is closed like any other (artefacts, index).
//! It prints progress as turns end, then the session ids and the report.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

use crate::client::{Api, Refused, Streamed};
use crate::config::{OnFull, RunArgs};
use crate::report::{self, Row};
use crate::startup::Application;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub title: String,
    pub cast: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<u8>,
    #[serde(rename = "turn", default)]
    pub turns: Vec<ScriptTurn>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptTurn {
    pub say: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The named seat that says it (a room's floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_s: Option<f64>,
}

impl Script {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let script: Self = toml::from_str(&text).with_context(|| format!("bad script {}", path.display()))?;
        script.check(&path.display().to_string())?;
        Ok(script)
    }

    /// Whether the script can be played; `origin` names it in errors.
    pub fn check(&self, origin: &str) -> anyhow::Result<()> {
        if self.cast.is_empty() {
            bail!("{origin}: the cast is empty");
        }
        if self.turns.is_empty() {
            bail!("{origin}: no [[turn]] to play");
        }
        for (i, t) in self.turns.iter().enumerate() {
            if t.say.trim().is_empty() {
                bail!("{origin}: turn {} says nothing", i + 1);
            }
            if t.pause_s.is_some_and(|p| !(0.0..=86_400.0).contains(&p)) {
                bail!("{origin}: turn {}'s pause_s is not between 0 and 86400", i + 1);
            }
        }
        Ok(())
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let script = Script::load(&args.script)?;
    actix_web::rt::System::new().block_on(async move {
        let (api, local) = connect(args.url.as_deref(), &args.serve).await?;
        let options = PlayOptions::of(&args);
        let mut chains = Vec::new();
        let mut failure = None;
        for n in 1..=args.repeat {
            let title = if args.repeat > 1 {
                format!("{} ({n} of {})", script.title, args.repeat)
            } else {
                script.title.clone()
            };
            let played = play(&api, &script, &title, &options, &create_body(&script, &title, &args)).await;
            if !played.chain.is_empty() {
                chains.push(played.chain);
            }
            if let Some(e) = played.stopped {
                failure = Some(e);
                break;
            }
        }
        // What was recorded is reported, however the run ended.
        let mut rows: Vec<Row> = Vec::new();
        for chain in &chains {
            let mut events = Vec::new();
            for id in chain {
                let text = match &local {
                    Some(_) => {
                        let path = args.serve.logs.join(id).join("events.jsonl");
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                    }
                    None => api.text(&format!("/logs/{id}/events.jsonl")).await?,
                };
                events.push(report::events_of(&text)?);
            }
            rows.push(chain_row(chain, events)?);
        }
        if let Some(local) = local {
            local.stop().await;
        }
        println!("\nrecorded: {}", chains.iter().map(|c| c.join(" ")).collect::<Vec<_>>().join(" "));
        let stdout = std::io::stdout();
        if args.csv {
            report::write_csv(&rows, stdout.lock())?;
        } else {
            report::print_table(&rows, &mut stdout.lock())?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}

/// The in-process server a command started, stopped when it is done.
pub struct Local {
    stopper: crate::startup::Stopper,
}

impl Local {
    pub async fn stop(self) {
        self.stopper.stop().await;
    }
}

/// The server to play on: `url`, or — in-process — the same server `panel
/// serve` runs, on a free loopback port, with `serve`'s settings.
pub async fn connect(url: Option<&str>, serve: &crate::config::ServeArgs) -> anyhow::Result<(Api, Option<Local>)> {
    if let Some(url) = url {
        return Ok((Api::new(url, serve.token.clone()), None));
    }
    let mut settings = serve.clone().settings(|k| std::env::var(k).ok())?;
    settings.addr = ([127, 0, 0, 1], 0).into();
    settings.workers = 1;
    settings.ready_folders()?;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let stopper = app.stopper();
    actix_web::rt::spawn(app.run_until_stopped());
    Ok((Api::new(&base, serve.token.clone()), Some(Local { stopper })))
}

/// How the turns of a play are driven.
#[derive(Debug, Clone, Copy)]
pub struct PlayOptions {
    pub on_full: OnFull,
    pub time_scale: f64,
    /// Print a line per turn (a study prints one per session instead).
    pub verbose: bool,
    /// Print where to watch each session (on a running server).
    pub watch: bool,
}

impl PlayOptions {
    fn of(args: &RunArgs) -> Self {
        Self { on_full: args.on_full, time_scale: args.serve.time_scale, verbose: true, watch: args.url.is_some() }
    }
}

/// The create request of `panel run`'s sessions.
fn create_body(script: &Script, title: &str, args: &RunArgs) -> serde_json::Value {
    let mut body = json!({ "cast": script.cast, "title": title });
    if let Some(d) = script.depth {
        body["depth"] = json!(d);
    }
    if let Some(seed) = args.seed {
        body["seed"] = json!(seed);
    }
    // With --url, --provider and --model choose the session's model; in-process they are the server's defaults.
    if args.url.is_some() {
        if let Some(p) = args.serve.provider {
            body["provider"] = json!(p.name());
        }
        if let Some(m) = &args.serve.model {
            body["model"] = json!(m);
        }
    }
    body
}

/// One row for a chain of continuations: their events read as one session
/// whose turns run on from each parent's last, under all the chain's ids.
pub fn chain_row(chain: &[String], logs: Vec<Vec<panel_actors::event::Event>>) -> anyhow::Result<Row> {
    let mut all = Vec::new();
    let mut offset = 0;
    for mut events in logs {
        let last = events.iter().map(|e| e.turn).max().unwrap_or(0);
        for e in &mut events {
            e.turn += offset;
        }
        offset += last;
        all.extend(events);
    }
    let mut row = report::row(&all)?;
    row.id = chain.join(" ");
    Ok(row)
}

/// How one play of the script went.
pub struct Played {
    /// The sessions it recorded, in order: one, or a chain of continuations.
    pub chain: Vec<String>,
    /// Why it stopped, if it did not play to the end.
    pub stopped: Option<anyhow::Error>,
}

/// Plays the script once on a session created with `create` (the create
/// request's body), closing every session it opens.
pub async fn play(
    api: &Api,
    script: &Script,
    title: &str,
    options: &PlayOptions,
    create: &serde_json::Value,
) -> Played {
    let mut chain = Vec::new();
    let mut stopped = play_turns(api, script, title, options, create, &mut chain).await.err();
    if let Some(last) = chain.last()
        && let Err(e) = api.post(&format!("/api/sessions/{last}/close"), &json!({})).await
    {
        stopped.get_or_insert(e);
    }
    Played { chain, stopped }
}

/// The script's turns, on a session it opens and pushes to `chain` (and its
/// continuations, with `--on-full continue`). The last of `chain` is left open.
async fn play_turns(
    api: &Api,
    script: &Script,
    title: &str,
    options: &PlayOptions,
    create: &serde_json::Value,
    chain: &mut Vec<String>,
) -> anyhow::Result<()> {
    let info = api.post("/api/sessions", create).await?;
    let mut id = info["id"].as_str().context("the server gave no session id")?.to_owned();
    chain.push(id.clone());
    if options.verbose {
        println!("session {id}: {} on {} ({} turns)", title, info["model"].as_str().unwrap_or("?"), script.turns.len());
    }
    if options.watch {
        println!("  watch it at {}/#/s/{id}", api.base());
    }
    let mut rx = follow(api, &id);

    let total = script.turns.len();
    let mut names = std::collections::HashMap::new();
    let mut i = 0;
    // Set when the turn about to be said again opens a fresh continuation.
    let mut continued = false;
    while i < total {
        let t = &script.turns[i];
        if !continued {
            if let Some(p) = t.pause_s.filter(|p| *p > 0.0) {
                // A pause is a cache duration like any other: on a scaled clock
                // (offline, or a server and mock run with the same --time-scale)
                // it shrinks with the TTLs it is there to test.
                let scale = panel_actors::cache_clock::TimeScale::new(options.time_scale);
                actix_web::rt::time::sleep(scale.shrink(Duration::from_secs_f64(p))).await;
            }
            for (kind, list) in [("add", &t.add), ("retire", &t.retire)] {
                for who in list {
                    api.post(&format!("/api/sessions/{id}/cast"), &json!({ kind: who })).await?;
                }
            }
        }
        let mut say = json!({ "text": t.say });
        if let Some(to) = &t.to {
            say["to"] = json!(to);
        }
        if let Some(seat) = &t.seat {
            say["seat"] = json!(seat);
        }
        let started = Instant::now();
        let ack = match api.post(&format!("/api/sessions/{id}/say"), &say).await {
            Ok(ack) => ack,
            Err(e) => {
                let full = e.downcast_ref::<Refused>().is_some_and(|r| r.code == "context-full");
                let carry = match options.on_full {
                    OnFull::Continue(carry) if full && !continued => carry,
                    _ => {
                        let hint = match options.on_full {
                            OnFull::Stop if full => "; --on-full continue carries on in a fresh continuation",
                            OnFull::Continue(_) if full => "; even its fresh continuation has no room for it",
                            _ => "",
                        };
                        return Err(e.context(format!(
                            "stopped at turn {} of {total}: session {id} refused it, after {i} turns played and \
                             recorded{hint}",
                            i + 1
                        )));
                    }
                };
                let child = api.post(&format!("/api/sessions/{id}/continue"), &json!({ "carry": carry })).await?;
                let child = child["id"].as_str().context("the continuation has no id")?.to_owned();
                api.post(&format!("/api/sessions/{id}/close"), &json!({})).await?;
                println!(
                    "  session {id} is full at turn {}/{total}: continued as {child}, carrying the {carry}",
                    i + 1
                );
                chain.push(child.clone());
                rx = follow(api, &child);
                id = child;
                continued = true;
                continue;
            }
        };
        continued = false;
        let turn = ack["turn"].as_u64().context("the say was not acknowledged with a turn")?;
        let summary = until_turn_ends(&mut rx, turn, &mut names).await?;
        if options.verbose {
            println!("  turn {}/{total} · {summary} · {:.1} s", i + 1, started.elapsed().as_secs_f64());
        }
        i += 1;
    }
    Ok(())
}

/// Follows session `id`'s events on a task of their own.
fn follow(api: &Api, id: &str) -> mpsc::UnboundedReceiver<Streamed> {
    let (tx, rx) = mpsc::unbounded_channel();
    let follower = api.clone();
    let id = id.to_owned();
    actix_web::rt::spawn(async move {
        let _ = follower.follow(&[id], 0, move |item| tx.send(item).is_ok()).await;
    });
    rx
}

/// Waits for turn `turn` to end; a one-line summary of it. `names` learns
/// the characters' display names as they open or join.
async fn until_turn_ends(
    rx: &mut mpsc::UnboundedReceiver<Streamed>,
    turn: u64,
    names: &mut std::collections::HashMap<String, String>,
) -> anyhow::Result<String> {
    let (mut spoke, mut passed, mut usd, mut errors) = (Vec::new(), Vec::new(), None, Vec::new());
    loop {
        let item = tokio::time::timeout(Duration::from_secs(900), rx.recv())
            .await
            .context("no word from the session for 15 minutes")?
            .context("the session's stream ended")?;
        let Streamed::Event { value, .. } = item else { continue };
        let people = value["participants"].as_array().into_iter().flatten().chain(value.get("materials"));
        for p in people {
            if let (Some(id), Some(name)) = (p["id"].as_str(), p["name"].as_str()) {
                names.insert(id.to_owned(), name.to_owned());
            }
        }
        if value["turn"].as_u64() != Some(turn) {
            continue;
        }
        let id = value["speaker"].as_str().unwrap_or("?");
        let who = || names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        match value["kind"].as_str().unwrap_or_default() {
            "speak" => spoke.push(who()),
            "pass" => passed.push(who()),
            "cost" => usd = value["usd"].as_f64(),
            "error" => errors.push(value["code"].as_str().unwrap_or("error").to_owned()),
            "turn-end" | "turn-aborted" => {
                let mut parts =
                    vec![if spoke.is_empty() { "nobody spoke".into() } else { format!("{} spoke", spoke.join(", ")) }];
                if !passed.is_empty() {
                    parts.push(format!("{} passed", passed.join(", ")));
                }
                parts.push(usd.map_or_else(|| "unpriced".into(), |u| format!("${u:.4}")));
                if value["kind"] == "turn-aborted" {
                    parts.push(format!("ABORTED ({})", value["reason"].as_str().unwrap_or("?")));
                }
                if !errors.is_empty() {
                    parts.push(format!("errors: {}", errors.join(", ")));
                }
                return Ok(parts.join(" · "));
            }
            _ => {}
        }
    }
}
