//! A replay's requests, built from its session's log alone.
//!
//! The turn's context is rebuilt by [`crate::replay::replay`] from the log
//! up to and including that turn's `human-speak` — the very calls the live
//! session made, so the rebuilt request is byte-identical to the one the
//! turn sent (same head, tail, stage directions and cache marks). Another
//! confer depth re-renders the head from the log's own templates and cast,
//! exactly as a session opened with that depth would have it.

use std::sync::Arc;

use super::{MAX_SAMPLES, Offer, ReplayError, ReplayRequest};
use crate::event::{EventBody, Logged, ReplayMode, ReplayOf, SampleSpec, TurnMode};
use crate::id::{CharacterId, SessionId};
use crate::provider::{Brief, CompletionRequest, Task};
use crate::templates::Renderer;

/// One request of a replay, and how to read its answer.
#[derive(Debug, Clone)]
pub struct Sample {
    pub spec: SampleSpec,
    pub request: CompletionRequest,
    pub prefix_hash: String,
    pub mode: TurnMode,
    /// Who may answer (the parser's cast), and who is known but not asked.
    pub on_stage: Vec<(CharacterId, String)>,
    pub off_stage: Vec<(CharacterId, String)>,
}

/// Everything a replay will send, and what its `replay-open` records.
#[derive(Debug, Clone)]
pub struct Plan {
    pub of: ReplayOf,
    pub mode: ReplayMode,
    pub n: u32,
    pub provider: String,
    pub model: String,
    pub depth: u8,
    pub same_settings: bool,
    pub offline: bool,
    /// The rebuilt turn context's prefix hash.
    pub prefix_hash: String,
    pub stop_sequences: Vec<String>,
    pub solo_template: Option<String>,
    pub samples: Vec<Sample>,
}

impl Plan {
    /// The `replay-open` event of this plan, for the replay `id`.
    pub fn open_event(&self, id: &str) -> EventBody {
        EventBody::ReplayOpen {
            id: id.to_owned(),
            of: self.of.clone(),
            mode: self.mode,
            n: self.n,
            provider: self.provider.clone(),
            model: self.model.clone(),
            depth: self.depth,
            same_settings: self.same_settings,
            prefix_hash: self.prefix_hash.clone(),
            samples: self.samples.iter().map(|s| s.spec.clone()).collect(),
            solo_template: self.solo_template.clone(),
        }
    }
}

/// Plans `ask` against `session`'s `events`. `offers` are the providers
/// the server has; `solo_template` is the solo instruction's source now;
/// `max_tokens` what a turn may write when the session did not say.
pub fn plan(
    session: &SessionId,
    events: &[Arc<Logged>],
    ask: &ReplayRequest,
    offers: &[Offer],
    solo_template: &str,
    max_tokens: u32,
) -> Result<Plan, ReplayError> {
    if !(1..=MAX_SAMPLES).contains(&ask.n) {
        return Err(ReplayError::BadN);
    }
    if ask.depth.is_some_and(|d| !(1..=12).contains(&d)) {
        return Err(ReplayError::BadDepth);
    }
    let Some(EventBody::SessionOpen { config, model, templates, participants, .. }) =
        events.first().map(|l| &l.event.body)
    else {
        return Err(ReplayError::Rebuild("the log does not start with session-open".into()));
    };
    let turn = ask.turn;
    let spoke =
        events.iter().position(|l| l.event.turn == turn && matches!(l.event.body, EventBody::HumanSpeak { .. }));
    let Some(spoke) = spoke.filter(|_| turn > 0) else {
        let last = events
            .iter()
            .filter(|l| matches!(l.event.body, EventBody::HumanSpeak { .. }))
            .map(|l| l.event.turn)
            .max()
            .unwrap_or(0);
        return Err(ReplayError::NoSuchTurn { asked: turn, last });
    };
    match events[spoke..].iter().find(|l| l.event.turn == turn && l.event.body.closes_turn()).map(|l| &l.event.body) {
        Some(EventBody::TurnEnd { .. }) => {}
        Some(_) => return Err(ReplayError::TurnAborted(turn)),
        None => return Err(ReplayError::TurnInFlight(turn)),
    }

    let provider = ask.provider.clone().unwrap_or_else(|| config.provider.clone());
    let offer =
        offers.iter().find(|o| o.name == provider).ok_or_else(|| ReplayError::UnknownProvider(provider.clone()))?;
    let own = provider == config.provider;
    let model = match &ask.model {
        Some(m) => m.clone(),
        None if own => model.clone(),
        None => offer.default_model.clone(),
    };
    // The session's own model stands even if its server no longer lists it.
    let session_model = own && model == *model_of(events);
    if !session_model && !offer.models.contains(&model) {
        let offered = offer.models.join(", ");
        return Err(ReplayError::UnknownModel { provider, model, offered });
    }
    let depth = ask.depth.unwrap_or(config.depth);
    let same_settings = session_model && depth == config.depth;

    let mut templates = (**templates).clone();
    templates.solo = solo_template.to_owned();
    let renderer = Arc::new(Renderer::new(templates).map_err(|e| ReplayError::Rebuild(e.to_string()))?);
    // The turn's floor lines: a room's several, heard together.
    let lines: Vec<&EventBody> = events[spoke..]
        .iter()
        .take_while(|l| l.event.turn == turn && matches!(l.event.body, EventBody::HumanSpeak { .. }))
        .map(|l| &l.event.body)
        .collect();
    let mut prefix: Vec<Arc<Logged>> = events[..spoke + lines.len()].to_vec();
    if depth != config.depth {
        prefix[0] = with_depth(&prefix[0], &renderer, depth, participants)?;
    }
    let rebuilt = crate::replay::replay(&prefix, Some(&renderer)).map_err(|e| ReplayError::Rebuild(e.to_string()))?;
    let context = rebuilt.context;
    if !context.turn_open() {
        return Err(ReplayError::Rebuild(format!("turn {turn}'s floor line did not open a turn")));
    }
    let heard = lines.iter().filter_map(|body| match body {
        EventBody::HumanSpeak { text, seat, .. } => Some((text.as_str(), seat.as_deref())),
        _ => None,
    });
    let floor = crate::floor::as_one(heard);
    let to = lines.iter().find_map(|body| match body {
        EventBody::HumanSpeak { to, .. } => to.clone(),
        _ => None,
    });
    let cast = context.cast();
    let mode = cast.mode(to.as_ref());
    if ask.mode == ReplayMode::Solo && mode == TurnMode::Addressed {
        return Err(ReplayError::SoloOfAddressed(turn));
    }
    let on_stage: Vec<_> = cast.on_stage_characters().cloned().collect();
    let known: Vec<(CharacterId, String)> = cast.known_characters().map(|c| (c.id.clone(), c.name.clone())).collect();
    let request = |prompt, brief| CompletionRequest {
        prompt,
        brief,
        model: model.clone(),
        max_tokens: config.max_tokens.unwrap_or(max_tokens),
        cache_ttl: config.cache_ttl.unwrap_or_default(),
        // A replay holds no grammar: it is a question asked of the model as it is.
        constraint: None,
    };
    // The turn's own draw; each sample mixes its number in (see the rehearsal engine).
    let seed = Brief::seed_for(Brief::session_seed(config.seed, session.as_str()), &context.prefix_hash());
    let brief = |mode, to: Option<CharacterId>, sample| Brief {
        session: session.clone(),
        turn,
        mode,
        cast: on_stage.clone(),
        to,
        floor: floor.clone(),
        depth,
        task: Task::Sample(sample),
        seed,
    };
    let mut samples = Vec::new();
    match ask.mode {
        ReplayMode::Reroll => {
            let answering: Vec<_> = known.iter().filter(|(id, _)| cast.is_on_stage(id)).cloned().collect();
            let others: Vec<_> = known.iter().filter(|(id, _)| !cast.is_on_stage(id)).cloned().collect();
            for sample in 1..=ask.n {
                samples.push(Sample {
                    spec: SampleSpec { sample, who: None },
                    request: request(context.prompt(), brief(mode, to.clone(), sample)),
                    prefix_hash: context.prefix_hash(),
                    mode,
                    on_stage: answering.clone(),
                    off_stage: others.clone(),
                });
            }
        }
        ReplayMode::Solo => {
            for who in &on_stage {
                let coda = renderer.solo(who).map_err(|e| ReplayError::Rebuild(e.to_string()))?;
                let others: Vec<_> = known.iter().filter(|(id, _)| *id != who.id).cloned().collect();
                for _ in 0..ask.n {
                    let sample = samples.len() as u32 + 1;
                    samples.push(Sample {
                        spec: SampleSpec { sample, who: Some(who.id.clone()) },
                        request: request(
                            context.prompt_with_coda(&coda),
                            brief(TurnMode::Addressed, Some(who.id.clone()), sample),
                        ),
                        prefix_hash: context.prefix_hash_with_coda(&coda),
                        mode: TurnMode::Addressed,
                        on_stage: vec![(who.id.clone(), who.name.clone())],
                        off_stage: others.clone(),
                    });
                }
            }
        }
    }
    Ok(Plan {
        of: ReplayOf { session: session.clone(), turn },
        mode: ask.mode,
        n: ask.n,
        provider,
        model,
        depth,
        same_settings,
        offline: offer.offline,
        prefix_hash: context.prefix_hash(),
        stop_sequences: renderer.templates().stop_sequences.clone(),
        solo_template: (ask.mode == ReplayMode::Solo).then(|| solo_template.to_owned()),
        samples,
    })
}

fn model_of(events: &[Arc<Logged>]) -> &String {
    match events.first().map(|l| &l.event.body) {
        Some(EventBody::SessionOpen { model, .. }) => model,
        _ => unreachable!("checked by the caller: the log starts with session-open"),
    }
}

/// The log's `session-open` with its head rendered for another confer depth.
fn with_depth(
    open: &Logged,
    renderer: &Renderer,
    depth: u8,
    participants: &[crate::roster::Character],
) -> Result<Arc<Logged>, ReplayError> {
    let mut event = open.event.clone();
    if let EventBody::SessionOpen { head, config, .. } = &mut event.body {
        *head = renderer.head(depth, participants).map_err(|e| ReplayError::Rebuild(e.to_string()))?;
        config.depth = depth;
    }
    // Only the value is replayed; the JSON is not read again.
    Ok(Arc::new(Logged { event, json: open.json.clone() }))
}
