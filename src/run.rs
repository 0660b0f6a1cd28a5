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
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::client::{Api, Streamed};
use crate::config::RunArgs;
use crate::report::{self, Row};
use crate::startup::Application;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub title: String,
    pub cast: Vec<String>,
    pub depth: Option<u8>,
    #[serde(rename = "turn", default)]
    pub turns: Vec<ScriptTurn>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptTurn {
    pub say: String,
    pub to: Option<String>,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub retire: Vec<String>,
    pub pause_s: Option<f64>,
}

impl Script {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let script: Self = toml::from_str(&text).with_context(|| format!("bad script {}", path.display()))?;
        if script.cast.is_empty() {
            bail!("{}: the cast is empty", path.display());
        }
        if script.turns.is_empty() {
            bail!("{}: no [[turn]] to play", path.display());
        }
        for (i, t) in script.turns.iter().enumerate() {
            if t.say.trim().is_empty() {
                bail!("{}: turn {} says nothing", path.display(), i + 1);
            }
            if t.pause_s.is_some_and(|p| !(0.0..=86_400.0).contains(&p)) {
                bail!("{}: turn {}'s pause_s is not between 0 and 86400", path.display(), i + 1);
            }
        }
        Ok(script)
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let script = Script::load(&args.script)?;
    actix_web::rt::System::new().block_on(async move {
        // In-process: the same server `panel serve` runs, on a free loopback port.
        let local = match &args.url {
            Some(_) => None,
            None => {
                let mut settings = args.serve.clone().settings(|k| std::env::var(k).ok())?;
                settings.addr = ([127, 0, 0, 1], 0).into();
                settings.workers = 1;
                let app = Application::build(settings).await?;
                let port = app.port();
                let stopper = app.stopper();
                actix_web::rt::spawn(app.run_until_stopped());
                Some((port, stopper))
            }
        };
        let base = match (&args.url, &local) {
            (Some(url), _) => url.clone(),
            (None, Some((port, _))) => format!("http://127.0.0.1:{port}"),
            (None, None) => unreachable!(),
        };
        let api = Api::new(&base, args.serve.token.clone());
        let mut ids = Vec::new();
        let mut failure = None;
        for n in 1..=args.repeat {
            let title = if args.repeat > 1 {
                format!("{} ({n} of {})", script.title, args.repeat)
            } else {
                script.title.clone()
            };
            match play(&api, &script, &title, &args).await {
                Ok(id) => ids.push(id),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut rows: Vec<Row> = Vec::new();
        for id in &ids {
            let events = match &local {
                Some(_) => {
                    let path = args.serve.logs.join(id).join("events.jsonl");
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
                }
                None => api.text(&format!("/logs/{id}/events.jsonl")).await?,
            };
            rows.push(report::row(&report::events_of(&events)?)?);
        }
        if let Some((_, stopper)) = local {
            stopper.stop().await;
        }
        println!("\nrecorded: {}", ids.join(" "));
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

/// Plays the script once; returns the closed session's id.
async fn play(api: &Api, script: &Script, title: &str, args: &RunArgs) -> anyhow::Result<String> {
    let mut body = json!({ "cast": script.cast, "title": title });
    if let Some(d) = script.depth {
        body["depth"] = json!(d);
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
    let info = api.post("/api/sessions", &body).await?;
    let id = info["id"].as_str().context("the server gave no session id")?.to_owned();
    println!("session {id}: {} on {} ({} turns)", title, info["model"].as_str().unwrap_or("?"), script.turns.len());
    if args.url.is_some() {
        println!("  watch it at {}/#/s/{id}", api.base());
    }

    // Events arrive on a follower task; turns wait for their end here.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let follower = api.clone();
    let follow_id = id.clone();
    actix_web::rt::spawn(async move {
        let _ = follower.follow(&[follow_id], 0, move |item| tx.send(item).is_ok()).await;
    });

    let total = script.turns.len();
    let mut names = std::collections::HashMap::new();
    let mut played = Ok(());
    for (i, t) in script.turns.iter().enumerate() {
        if let Some(p) = t.pause_s.filter(|p| *p > 0.0) {
            // A pause is a cache duration like any other: on a scaled clock
            // (offline, or a server and mock run with the same --time-scale)
            // it shrinks with the TTLs it is there to test.
            let scale = panel_actors::cache_clock::TimeScale::new(args.serve.time_scale);
            actix_web::rt::time::sleep(scale.shrink(Duration::from_secs_f64(p))).await;
        }
        for (kind, list) in [("add", &t.add), ("retire", &t.retire)] {
            for who in list {
                api.post(&format!("/api/sessions/{id}/cast"), &json!({ kind: who })).await?;
            }
        }
        let mut say = json!({ "text": t.say });
        if let Some(to) = &t.to {
            say["to"] = json!(to);
        }
        let started = Instant::now();
        let ack = match api.post(&format!("/api/sessions/{id}/say"), &say).await {
            Ok(ack) => ack,
            Err(e) => {
                played = Err(e.context(format!("turn {} of {total} was refused", i + 1)));
                break;
            }
        };
        let turn = ack["turn"].as_u64().context("the say was not acknowledged with a turn")?;
        let summary = until_turn_ends(&mut rx, turn, &mut names).await?;
        println!("  turn {}/{total} · {summary} · {:.1} s", i + 1, started.elapsed().as_secs_f64());
    }
    api.post(&format!("/api/sessions/{id}/close"), &json!({})).await?;
    played.map(|()| id)
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
