//! The prompt templates (`roster/prompts/`) and their rendering.
//!
//! Every piece of text panel writes into the megaprompt comes from a template
//! file, so the output format, the confer depth and the stage directions are
//! prompt edits, not code changes. A session snapshots the templates it was
//! opened with into its `session-open` event; [`Renderer`] then renders from
//! that snapshot, which is what makes replay byte-identical even after the
//! files change.

use std::path::Path;

use anyhow::Context as _;
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};

use crate::roster::Character;

/// Template sources and format settings, as snapshotted into a log.
#[derive(Debug, Clone, Eq, Serialize, Deserialize)]
pub struct Templates {
    /// The format version (from `panel.toml`), recorded with each session.
    pub version: String,
    pub head: String,
    pub floor: String,
    pub floor_to: String,
    pub join: String,
    pub returns: String,
    pub leave: String,
    pub only_one_left: String,
    /// The stage direction given once, where a named seat first speaks:
    /// the floor is several people. Sessions recorded before seats had
    /// none, and take the shipped one if a seat ever speaks in them.
    #[serde(default = "room_shipped")]
    pub room: String,
    /// The parting line of a character whose roster entry has none.
    pub default_farewell: String,
    /// Keep the model from writing the floor's next line.
    pub stop_sequences: Vec<String>,
    /// The confer depth used when a session does not choose one.
    pub default_depth: u8,
    /// The output format's own words (sessions recorded before they were
    /// configurable used these defaults).
    #[serde(default)]
    pub format: FormatWords,
    /// How a conversation is carried into a fresh session. Used when one is
    /// created, whose `session-open` holds the rendered text; so these are
    /// not part of a session's snapshot.
    #[serde(skip)]
    pub carry: CarryTemplates,
    /// The last message of a solo replay, asking one character alone. Not
    /// part of a session's snapshot: a replay's `replay-open` holds it.
    #[serde(skip)]
    pub solo: String,
}

/// The tags of the output format, as `panel.toml`'s `[format]` gives them.
/// `{name}` in `speak_open` and `pass` stands for a character's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatWords {
    pub confer_open: String,
    pub confer_close: String,
    pub speak_open: String,
    pub speak_close: String,
    pub pass: String,
}

impl Default for FormatWords {
    fn default() -> Self {
        Self {
            confer_open: "<confer>".into(),
            confer_close: "</confer>".into(),
            speak_open: "<speak who=\"{name}\">".into(),
            speak_close: "</speak>".into(),
            pass: "<pass who=\"{name}\"/>".into(),
        }
    }
}

impl FormatWords {
    pub fn speak_open(&self, name: &str) -> String {
        self.speak_open.replace("{name}", name)
    }

    pub fn pass(&self, name: &str) -> String {
        self.pass.replace("{name}", name)
    }
}

/// Two snapshots are the same format when everything a session replays from
/// matches; the carry templates are not part of it.
impl PartialEq for Templates {
    fn eq(&self, o: &Self) -> bool {
        fn key(t: &Templates) -> impl PartialEq + '_ {
            (
                (&t.version, &t.head, &t.floor, &t.floor_to, &t.join, &t.returns, &t.leave, &t.only_one_left, &t.room),
                (&t.default_farewell, &t.stop_sequences, t.default_depth, &t.format),
            )
        }
        key(self) == key(o)
    }
}

/// The templates that carry a conversation into a fresh session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarryTemplates {
    /// The delivered lines, as the stage direction opening the new tail.
    pub transcript: String,
    /// The recap request: its system prompt, and its user message.
    pub recap_system: String,
    pub recap_request: String,
    /// The recap's notes, as the stage direction opening the new tail.
    pub recap: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    version: String,
    default_farewell: String,
    stop_sequences: Vec<String>,
    default_depth: u8,
    #[serde(default)]
    format: FormatWords,
}

const CARRY_FILES: [&str; 4] =
    ["carry-transcript.txt.j2", "recap-system.md.j2", "recap-request.txt.j2", "carry-recap.txt.j2"];

const SOLO_FILE: &str = "solo.txt.j2";
const ROOM_FILE: &str = "room.txt.j2";
const ROOM_SHIPPED: &str = include_str!("../../roster/prompts/room.txt.j2");

fn room_shipped() -> String {
    ROOM_SHIPPED.to_owned()
}
const SOLO_SHIPPED: &str = include_str!("../../roster/prompts/solo.txt.j2");

const FILES: [&str; 7] = [
    "head.md.j2",
    "floor.txt.j2",
    "floor-to.txt.j2",
    "join.txt.j2",
    "returns.txt.j2",
    "leave.txt.j2",
    "only-one-left.txt.j2",
];

impl Templates {
    /// Loads `panel.toml` and the template files from `dir`, and checks that
    /// every template compiles.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the prompt template {}", path.display()))
        };
        let settings_path = dir.join("panel.toml");
        let settings: Settings = toml::from_str(&read("panel.toml")?)
            .with_context(|| format!("bad settings in {}", settings_path.display()))?;
        let [head, floor, floor_to, join, returns, leave, only_one_left] = FILES.map(read);
        let [transcript, recap_system, recap_request, recap] = CARRY_FILES.map(read);
        // A prompts folder from before replays (or seats) lacks their
        // templates: use the shipped ones.
        let optional = |name: &str, shipped: &str| match std::fs::read_to_string(dir.join(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(shipped.to_owned()),
            other => other.with_context(|| format!("cannot read the prompt template {}", dir.join(name).display())),
        };
        let solo = optional(SOLO_FILE, SOLO_SHIPPED)?;
        let room = optional(ROOM_FILE, ROOM_SHIPPED)?;
        let carry = CarryTemplates {
            transcript: transcript?,
            recap_system: recap_system?,
            recap_request: recap_request?,
            recap: recap?,
        };
        let templates = Self {
            version: settings.version,
            head: head?,
            floor: floor?,
            floor_to: floor_to?,
            join: join?,
            returns: returns?,
            leave: leave?,
            only_one_left: only_one_left?,
            room,
            default_farewell: settings.default_farewell,
            stop_sequences: settings.stop_sequences,
            default_depth: settings.default_depth,
            format: settings.format,
            carry,
            solo,
        };
        Renderer::new(templates.clone()).with_context(|| format!("bad template in {}", dir.display()))?;
        Ok(templates)
    }

    /// These templates with some of their files replaced — a study
    /// condition's `prompts`. `files` maps a file name of `roster/prompts/`
    /// (`head.md.j2`, `panel.toml`, …) to its new text; every template must
    /// still compile. Errors name files, never where they were read from.
    pub fn with_files(&self, files: &std::collections::BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut t = self.clone();
        for (name, text) in files {
            let slot = match name.as_str() {
                "panel.toml" => {
                    let settings: Settings = toml::from_str(text).with_context(|| format!("bad settings in {name}"))?;
                    (t.version, t.default_farewell, t.stop_sequences, t.default_depth, t.format) = (
                        settings.version,
                        settings.default_farewell,
                        settings.stop_sequences,
                        settings.default_depth,
                        settings.format,
                    );
                    continue;
                }
                "head.md.j2" => &mut t.head,
                "floor.txt.j2" => &mut t.floor,
                "floor-to.txt.j2" => &mut t.floor_to,
                "join.txt.j2" => &mut t.join,
                "returns.txt.j2" => &mut t.returns,
                "leave.txt.j2" => &mut t.leave,
                "only-one-left.txt.j2" => &mut t.only_one_left,
                "room.txt.j2" => &mut t.room,
                "carry-transcript.txt.j2" => &mut t.carry.transcript,
                "recap-system.md.j2" => &mut t.carry.recap_system,
                "recap-request.txt.j2" => &mut t.carry.recap_request,
                "carry-recap.txt.j2" => &mut t.carry.recap,
                _ => anyhow::bail!(
                    "{name:?} is not a prompt file; these can be replaced: panel.toml, {}, {ROOM_FILE}, {}",
                    FILES.join(", "),
                    CARRY_FILES.join(", ")
                ),
            };
            *slot = text.clone();
        }
        Renderer::new(t.clone()).context("a replaced prompt template does not compile")?;
        Ok(t)
    }
}

/// Renders the megaprompt's pieces from one set of [`Templates`].
#[derive(Debug, Clone)]
pub struct Renderer {
    env: Environment<'static>,
    templates: Templates,
}

pub type RenderError = minijinja::Error;

#[derive(Serialize)]
struct CastMember<'a> {
    id: &'a str,
    name: &'a str,
    tagline: &'a str,
    materials: &'a str,
}

impl<'a> From<&'a Character> for CastMember<'a> {
    fn from(c: &'a Character) -> Self {
        Self { id: c.id.as_str(), name: &c.name, tagline: &c.tagline, materials: &c.materials }
    }
}

impl Renderer {
    pub fn new(templates: Templates) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        // Undefined variables are template bugs; fail loudly, not silently empty.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let sources = [
            ("head", &templates.head),
            ("floor", &templates.floor),
            ("floor_to", &templates.floor_to),
            ("join", &templates.join),
            ("returns", &templates.returns),
            ("leave", &templates.leave),
            ("only_one_left", &templates.only_one_left),
            ("room", &templates.room),
        ];
        let carry = [
            ("carry_transcript", &templates.carry.transcript),
            ("recap_system", &templates.carry.recap_system),
            ("recap_request", &templates.carry.recap_request),
            ("carry_recap", &templates.carry.recap),
        ];
        let solo = [("solo", &templates.solo)];
        for (name, source) in sources.into_iter().chain(carry).chain(solo) {
            env.add_template_owned(name, source.clone())?;
        }
        Ok(Self { env, templates })
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub(crate) fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, RenderError> {
        self.env.get_template(name)?.render(ctx)
    }

    /// The head: panel rules and the starting cast's materials.
    pub fn head(&self, depth: u8, cast: &[Character]) -> Result<String, RenderError> {
        let cast: Vec<CastMember> = cast.iter().map(CastMember::from).collect();
        let f = &self.templates.format;
        self.render("head", context! { depth, solo => cast.len() == 1, cast, f })
    }

    /// `From the floor: "…"`, or `From the floor, to Ada: "…"`; from a
    /// named seat, `From the floor (Maya): "…"`.
    pub fn floor(&self, text: &str, to: Option<&Character>, seat: Option<&str>) -> Result<String, RenderError> {
        match to {
            None => self.render("floor", context! { text, seat }),
            Some(c) => self.render("floor_to", context! { text, name => c.name, seat }),
        }
    }

    /// The stage direction that makes the floor a room, at `seat`'s first line.
    pub fn room(&self, seat: &str) -> Result<String, RenderError> {
        self.render("room", context! { seat })
    }

    /// Whether these templates can show a seat: a session opened with
    /// templates from before seats would silently drop the name.
    pub fn shows_seats(&self) -> bool {
        let t = &self.templates;
        t.floor.contains("seat") && t.floor_to.contains("seat")
    }

    pub fn join(&self, joiner: &Character) -> Result<String, RenderError> {
        self.render("join", context! { character => CastMember::from(joiner), name => joiner.name })
    }

    pub fn returns(&self, who: &Character) -> Result<String, RenderError> {
        self.render("returns", context! { name => who.name })
    }

    pub fn leave(&self, who: &Character, line: &str) -> Result<String, RenderError> {
        self.render("leave", context! { name => who.name, line })
    }

    pub fn only_one_left(&self, who: &Character) -> Result<String, RenderError> {
        self.render("only_one_left", context! { name => who.name })
    }

    /// A solo replay's instruction: `who` alone answers the floor's line.
    pub fn solo(&self, who: &Character) -> Result<String, RenderError> {
        let f = &self.templates.format;
        let (speak_open, pass) = (f.speak_open(&who.name), f.pass(&who.name));
        self.render("solo", context! { name => who.name, speak_open, pass, f })
    }

    /// The parting line a retiring character says.
    pub fn farewell<'a>(&'a self, who: &'a Character) -> &'a str {
        who.farewell.as_deref().unwrap_or(&self.templates.default_farewell)
    }
}
