//! A study file, read and checked, and the plan it makes: conditions, the
//! shuffled play order, and each repeat's seed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use panel_actors::provider::Brief;
use serde::Deserialize;
use serde_json::json;

use super::{ConditionRecord, Record, Slot};
use crate::run::{Script, ScriptTurn};

/// The study file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    title: String,
    /// A `panel run` script, relative to the study file.
    script: Option<PathBuf>,
    cast: Option<Vec<String>>,
    depth: Option<u8>,
    #[serde(rename = "turn", default)]
    turns: Vec<ScriptTurn>,
    #[serde(default = "one")]
    repeat: u32,
    seed: Option<u64>,
    #[serde(rename = "condition", default)]
    conditions: Vec<RawCondition>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    name: String,
    cast: Option<Vec<String>>,
    depth: Option<u8>,
    provider: Option<String>,
    model: Option<String>,
    cache_ttl: Option<String>,
    keep_warm: Option<String>,
    /// A folder, relative to the study file, of files replacing roster/prompts/'s.
    prompts: Option<PathBuf>,
}

/// A study, ready to play.
#[derive(Debug, Clone)]
pub struct StudyFile {
    pub title: String,
    pub script: Script,
    pub repeat: u32,
    pub seed: u64,
    pub conditions: Vec<Condition>,
}

/// One condition: the settings it changes, and the prompt files it replaces.
#[derive(Debug, Clone)]
pub struct Condition {
    pub name: String,
    pub cast: Option<Vec<String>>,
    pub depth: Option<u8>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub cache_ttl: Option<String>,
    pub keep_warm: Option<String>,
    /// The folder as written, and its files by name.
    pub prompts: Option<(String, BTreeMap<String, String>)>,
}

impl StudyFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let raw: Raw = toml::from_str(&text).with_context(|| format!("bad study {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let script = match (&raw.script, &raw.cast) {
            (Some(_), Some(_)) => bail!("{}: give a script or an inline cast, not both", path.display()),
            (Some(file), None) => Script::load(&base.join(file))?,
            (None, cast) => {
                let script = Script {
                    title: raw.title.clone(),
                    cast: cast.clone().unwrap_or_default(),
                    depth: raw.depth,
                    turns: raw.turns.clone(),
                };
                script.check(&path.display().to_string())?;
                script
            }
        };
        if !(1..=100).contains(&raw.repeat) {
            bail!("{}: repeat is not between 1 and 100", path.display());
        }
        if raw.conditions.is_empty() {
            bail!("{}: no [[condition]] to play", path.display());
        }
        let mut conditions: Vec<Condition> = Vec::new();
        for c in raw.conditions {
            let printable =
                !c.name.trim().is_empty() && c.name.chars().count() <= 200 && !c.name.chars().any(char::is_control);
            if !printable {
                bail!("{}: a condition's name must be 1–200 printable characters", path.display());
            }
            if conditions.iter().any(|d| d.name == c.name) {
                bail!("{}: two conditions are named {:?}", path.display(), c.name);
            }
            let prompts = match &c.prompts {
                Some(dir) => Some((dir.display().to_string(), prompt_files(&base.join(dir))?)),
                None => None,
            };
            conditions.push(Condition {
                name: c.name,
                cast: c.cast,
                depth: c.depth,
                provider: c.provider,
                model: c.model,
                cache_ttl: c.cache_ttl,
                keep_warm: c.keep_warm,
                prompts,
            });
        }
        let seed = raw.seed.unwrap_or_else(|| fastrand::u64(..) >> 11);
        Ok(Self { title: raw.title, script, repeat: raw.repeat, seed, conditions })
    }

    pub fn condition(&self, name: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.name == name)
    }

    /// A fresh record: every condition × repeat, shuffled with the seed.
    pub fn record(&self, id: String) -> Record {
        let mut order: Vec<Slot> = (1..=self.repeat)
            .flat_map(|repeat| self.conditions.iter().map(move |c| Slot { condition: c.name.clone(), repeat }))
            .collect();
        fastrand::Rng::with_seed(self.seed).shuffle(&mut order);
        let conditions = self
            .conditions
            .iter()
            .map(|c| ConditionRecord { name: c.name.clone(), settings: c.settings(), sessions: Vec::new() })
            .collect();
        Record {
            id,
            title: self.title.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            seed: self.seed,
            repeat: self.repeat,
            script: self.script.clone(),
            order,
            conditions,
        }
    }
}

impl Condition {
    /// The settings as recorded in `study.json`.
    fn settings(&self) -> serde_json::Value {
        let mut s = json!({});
        let fields = [
            ("cast", self.cast.as_ref().map(|c| json!(c))),
            ("depth", self.depth.map(|d| json!(d))),
            ("provider", self.provider.as_ref().map(|p| json!(p))),
            ("model", self.model.as_ref().map(|m| json!(m))),
            ("cache_ttl", self.cache_ttl.as_ref().map(|t| json!(t))),
            ("keep_warm", self.keep_warm.as_ref().map(|k| json!(k))),
            (
                "prompts",
                self.prompts
                    .as_ref()
                    .map(|(dir, files)| json!({ "folder": dir, "files": files.keys().collect::<Vec<_>>() })),
            ),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                s[key] = v;
            }
        }
        s
    }

    /// The create request of this condition's sessions of `script`.
    pub fn create_body(&self, script: &Script, title: &str) -> anyhow::Result<serde_json::Value> {
        let mut body = json!({ "cast": self.cast.as_ref().unwrap_or(&script.cast), "title": title });
        if let Some(d) = self.depth.or(script.depth) {
            body["depth"] = json!(d);
        }
        for (key, value) in [
            ("provider", &self.provider),
            ("model", &self.model),
            ("cache_ttl", &self.cache_ttl),
            ("keep_warm", &self.keep_warm),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        if let Some((_, files)) = &self.prompts {
            body["prompts"] = json!(files);
        }
        Ok(body)
    }
}

/// The prompt files of a variant folder, by name (`*.j2` and `panel.toml`).
fn prompt_files(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read the prompts folder {}", dir.display()))?;
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if path.is_file() && (name.ends_with(".j2") || name == "panel.toml") {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.insert(name.to_owned(), text);
        }
    }
    if files.is_empty() {
        bail!("the prompts folder {} holds no prompt file", dir.display());
    }
    Ok(files)
}

/// A study's id: the time it was planned and a random suffix, like a session's.
pub fn fresh_id() -> String {
    panel_actors::id::SessionId::generate(chrono::Utc::now()).to_string()
}

/// The session seed of repeat `k`: one per repeat, shared by every condition.
/// Kept below 2⁵³ so that JSON readers (the viewer) hold it exactly.
pub fn repeat_seed(study_seed: u64, k: u32) -> u64 {
    Brief::seed_for(study_seed, &format!("repeat {k}")) >> 11
}
