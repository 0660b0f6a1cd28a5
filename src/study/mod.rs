//! `panel study FILE`: one script played under named conditions, each
//! repeated, and a report per condition.
//!
//! ```toml
//! title = "Depth and cast size"
//! script = "triage.toml"          # a `panel run` script; or cast/depth/[[turn]] inline
//! repeat = 3
//! seed = 7                        # shuffles the play order, and seeds the repeats
//!
//! [[condition]]
//! name = "shallow"
//! depth = 2
//!
//! [[condition]]
//! name = "terse format"
//! prompts = "variants/terse"      # files here replace those of roster/prompts
//! ```
//!
//! Invariants:
//! - Common random numbers: repeat *k* of every condition gets the same
//!   session seed, derived from the study's seed and *k*, so conditions
//!   differ only by the condition.
//! - The play order is the condition × repeat grid shuffled with the
//!   study's seed, and is recorded.
//! - `logs/studies/<id>/study.json` is rewritten (atomically) each time a
//!   session ends, so an interrupted study resumes (`--resume ID`) by
//!   playing only the sessions it does not yet record.
//! - Every session carries `study: {id, condition, repeat}` in its log.

mod plan;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::Api;
use crate::config::{OnFull, StudyArgs};
use crate::run::{self, PlayOptions, Script};
pub use plan::{Condition, StudyFile};
pub use report::{ConditionReport, Report};

/// `study.json`: what the study is and what it has played so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub title: String,
    pub created: String,
    pub seed: u64,
    pub repeat: u32,
    pub script: Script,
    /// The shuffled grid: (condition, repeat) in the order they are played.
    pub order: Vec<Slot>,
    pub conditions: Vec<ConditionRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub condition: String,
    pub repeat: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionRecord {
    pub name: String,
    /// The condition's settings as given (prompts: the folder and the files it replaced).
    pub settings: serde_json::Value,
    /// The sessions played so far, in play order.
    pub sessions: Vec<Played>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Played {
    pub repeat: u32,
    pub id: String,
    /// The session's seed (the same for one repeat across conditions).
    pub seed: u64,
}

/// Where a study's files live.
pub fn folder(logs: &Path, id: &str) -> PathBuf {
    logs.join("studies").join(id)
}

pub fn study(args: StudyArgs) -> anyhow::Result<ExitCode> {
    let file = StudyFile::load(&args.file)?;
    let logs = args.serve.logs.clone();
    let mut record = match &args.resume {
        Some(id) => resume(&logs, id, &file)?,
        None => file.record(plan::fresh_id()),
    };
    write(&logs, &record)?;
    let missing: Vec<Slot> = record.order.iter().filter(|s| !record.has(s)).cloned().collect();
    println!(
        "study {}: {} · {} conditions × {} repeats · seed {} · {} session(s) to play",
        record.id,
        record.title,
        record.conditions.len(),
        record.repeat,
        record.seed,
        missing.len()
    );
    actix_web::rt::System::new().block_on(async move {
        let (api, local) = run::connect(args.url.as_deref(), &args.serve).await?;
        let options =
            PlayOptions { on_full: OnFull::Stop, time_scale: args.serve.time_scale, verbose: false, watch: false };
        let total = missing.len();
        let study = Study { id: record.id.clone(), title: record.title.clone(), seed: record.seed };
        let mut plays = futures_util::stream::iter(missing.into_iter().map(|slot| {
            let (api, file, study) = (&api, &file, &study);
            async move {
                let played = play_one(api, file, study, &slot, &options).await;
                (slot, played)
            }
        }))
        .buffered(args.parallel as usize);
        let mut failure = None;
        let mut done = 0;
        while let Some((slot, played)) = plays.next().await {
            done += 1;
            match played {
                Ok((id, seed)) => {
                    println!("  [{done}/{total}] {} #{}: session {id}", slot.condition, slot.repeat);
                    record.add(&slot, Played { repeat: slot.repeat, id, seed });
                    write(&logs, &record)?;
                }
                Err(e) => {
                    eprintln!("  [{done}/{total}] {} #{}: {e:#}", slot.condition, slot.repeat);
                    failure.get_or_insert(e);
                }
            }
        }
        drop(plays);
        let events = |id: &str| -> anyhow::Result<Vec<panel_actors::event::Event>> {
            crate::compare::events_from_logs(&logs, &panel_actors::id::SessionId::parse(id)?)
        };
        let report = match &local {
            Some(_) => Report::of(&record, events)?,
            None => Report::of_remote(&record, &api).await?,
        };
        if let Some(local) = local {
            local.stop().await;
        }
        let dir = folder(&logs, &record.id);
        panel_actors::record::write_atomic(&dir.join("report.json"), &serde_json::to_string_pretty(&report)?)?;
        println!("\nstudy {} written to {}", record.id, dir.join("study.json").display());
        let mut out = std::io::stdout().lock();
        if args.csv {
            report.write_csv(&mut out)?;
        } else {
            report.print(&mut out)?;
        }
        match failure {
            Some(e) => Err(
                e.context(format!("study {} is incomplete; `--resume {}` plays what is missing", record.id, record.id))
            ),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}

/// What a play needs to know of its study.
struct Study {
    id: String,
    title: String,
    seed: u64,
}

/// Plays one condition's repeat; the session's id and seed.
async fn play_one(
    api: &Api,
    file: &StudyFile,
    record: &Study,
    slot: &Slot,
    options: &PlayOptions,
) -> anyhow::Result<(String, u64)> {
    let condition = file.condition(&slot.condition).context("a condition of the study is gone")?;
    let seed = plan::repeat_seed(record.seed, slot.repeat);
    let title = format!("{} · {} #{}", record.title, condition.name, slot.repeat);
    let mut create = condition.create_body(&file.script, &title)?;
    create["seed"] = json!(seed);
    create["study"] = json!({ "id": record.id, "condition": condition.name, "repeat": slot.repeat });
    let played = run::play(api, &file.script, &title, options, &create).await;
    if let Some(e) = played.stopped {
        return Err(e);
    }
    let id = played.chain.first().cloned().context("no session was opened")?;
    Ok((id, seed))
}

impl Record {
    fn has(&self, slot: &Slot) -> bool {
        self.conditions.iter().any(|c| c.name == slot.condition && c.sessions.iter().any(|p| p.repeat == slot.repeat))
    }

    fn add(&mut self, slot: &Slot, played: Played) {
        if let Some(c) = self.conditions.iter_mut().find(|c| c.name == slot.condition) {
            c.sessions.push(played);
        }
    }
}

/// The record of study `id`, checked against the study file it resumes.
fn resume(logs: &Path, id: &str, file: &StudyFile) -> anyhow::Result<Record> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        bail!("{id:?} is not a study id");
    }
    let path = folder(logs, id).join("study.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("no study {id} in the logs folder"))?;
    let mut record: Record = serde_json::from_str(&text).with_context(|| format!("study {id}'s study.json"))?;
    let names: Vec<&str> = file.conditions.iter().map(|c| c.name.as_str()).collect();
    let recorded: Vec<&str> = record.conditions.iter().map(|c| c.name.as_str()).collect();
    if names != recorded || file.repeat != record.repeat {
        bail!("study {id} was planned with other conditions or repeats than {}", file.title);
    }
    // A session is played only once it closed: one cut short is played again.
    for c in &mut record.conditions {
        c.sessions.retain(|p| {
            panel_actors::id::SessionId::parse(&p.id).is_ok_and(|sid| {
                panel_actors::event_log::events_path(logs, &sid).with_file_name("session.json").exists()
            })
        });
    }
    Ok(record)
}

fn write(logs: &Path, record: &Record) -> anyhow::Result<()> {
    let dir = folder(logs, &record.id);
    std::fs::create_dir_all(&dir).context("cannot create the study's folder")?;
    Ok(panel_actors::record::write_atomic(&dir.join("study.json"), &serde_json::to_string_pretty(record)?)?)
}
