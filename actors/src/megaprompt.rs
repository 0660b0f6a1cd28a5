//! The megaprompt: one running context per session, rendered into a
//! provider-neutral [`Prompt`].
//!
//! Shape: `system = head`, `messages = tail` (user/assistant alternating).
//!
//! Invariants, all in service of a warm prompt cache:
//! - The head never changes after the session opens.
//! - The tail only grows at its end. A join appends the joiner's materials as
//!   a stage direction; a retire appends a parting line and "stop voicing";
//!   nothing is ever removed from the middle. The one exception is an aborted
//!   turn, whose floor line is dropped again (it never reached a reply, so no
//!   cache entry depends on it); its stage directions are kept for the next turn.
//! - Stage directions wait in `pending` and go out in the same user message as
//!   the next floor line, so user and assistant messages always alternate.
//! - The live path and replay call the same methods with the same inputs, so
//!   a context rebuilt from a log is byte-identical ([`Megaprompt::prefix_hash`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::event::TurnMode;
use crate::floor::FloorLine;
use crate::id::CharacterId;
use crate::roster::Character;
use crate::templates::{RenderError, Renderer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One block of a prompt. `cache` marks a cache breakpoint after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Block {
    pub text: Arc<str>,
    pub cache: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: Role,
    pub text: Arc<str>,
    pub cache: bool,
    /// A second block closing the message (a solo replay's instruction),
    /// so `text` stays the very block an earlier request cached. When set,
    /// `cache` marks the coda, and the block before it is read from the
    /// cache by lookback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coda: Option<Arc<str>>,
}

/// A provider-neutral request body: what every provider turns into its own wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prompt {
    pub system: Vec<Block>,
    pub messages: Vec<Message>,
    pub stop_sequences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CastError {
    #[error("{0} is already on stage")]
    AlreadyOnStage(CharacterId),
    #[error("{0} is not on stage")]
    NotOnStage(CharacterId),
    #[error("{0} is the last character on stage; a panel needs at least one")]
    LastCharacter(CharacterId),
}

#[derive(Debug, thiserror::Error)]
pub enum MegapromptError {
    #[error(transparent)]
    Cast(#[from] CastError),
    #[error("a turn is already open")]
    TurnOpen,
    #[error("no turn is open")]
    NoTurnOpen,
    #[error("{0} is not on stage and cannot be addressed")]
    NotAddressable(CharacterId),
    #[error("the model's output is empty")]
    EmptyOutput,
    #[error("a prompt template failed: {0}")]
    Template(#[from] RenderError),
}

/// Who is on stage, and whose materials are in the context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cast {
    on_stage: Vec<CharacterId>,
    /// Shared, so cloning a cast (the session keeps a projected copy) is cheap.
    known: BTreeMap<CharacterId, Arc<Character>>,
}

impl Cast {
    pub fn on_stage(&self) -> &[CharacterId] {
        &self.on_stage
    }

    pub fn is_on_stage(&self, id: &CharacterId) -> bool {
        self.on_stage.contains(id)
    }

    /// A character whose materials are in the context (on stage or retired).
    pub fn known(&self, id: &CharacterId) -> Option<&Character> {
        self.known.get(id).map(|c| &**c)
    }

    /// Everyone whose materials are in the context, on stage or retired.
    pub fn known_characters(&self) -> impl Iterator<Item = &Character> {
        self.known.values().map(|c| &**c)
    }

    pub fn on_stage_characters(&self) -> impl Iterator<Item = &Character> {
        self.on_stage.iter().filter_map(|id| self.known.get(id).map(|c| &**c))
    }

    /// Checks an addition without making it.
    pub fn check_join(&self, id: &CharacterId) -> Result<(), CastError> {
        if self.is_on_stage(id) {
            return Err(CastError::AlreadyOnStage(id.clone()));
        }
        Ok(())
    }

    /// Checks a retirement without making it.
    pub fn check_retire(&self, id: &CharacterId) -> Result<(), CastError> {
        if !self.is_on_stage(id) {
            return Err(CastError::NotOnStage(id.clone()));
        }
        if self.on_stage.len() == 1 {
            return Err(CastError::LastCharacter(id.clone()));
        }
        Ok(())
    }

    /// Adds `c` (or brings them back). Returns whether they had been here before.
    pub fn join(&mut self, c: &Character) -> Result<bool, CastError> {
        self.check_join(&c.id)?;
        self.on_stage.push(c.id.clone());
        let returning = self.known.contains_key(&c.id);
        if !returning {
            self.known.insert(c.id.clone(), Arc::new(c.clone()));
        }
        Ok(returning)
    }

    pub fn retire(&mut self, id: &CharacterId) -> Result<(), CastError> {
        self.check_retire(id)?;
        self.on_stage.retain(|x| x != id);
        Ok(())
    }

    pub fn mode(&self, to: Option<&CharacterId>) -> TurnMode {
        match to {
            Some(_) => TurnMode::Addressed,
            None if self.on_stage.len() == 1 => TurnMode::OneToOne,
            None => TurnMode::Panel,
        }
    }
}

/// What an open turn's user message took from the context.
#[derive(Debug, Clone)]
struct OpenTurn {
    /// The stage directions it carries.
    stage: Vec<String>,
    /// Whether it gave the room's stage direction.
    opened_room: bool,
}

/// The running context of one session.
#[derive(Clone)]
pub struct Megaprompt {
    renderer: Arc<Renderer>,
    head: Arc<str>,
    tail: Vec<(Role, Arc<str>)>,
    /// Stage directions waiting for the next floor line.
    pending: Vec<String>,
    /// While a turn is open: what its user message carries, so an abort
    /// can put the context back as it was.
    open_turn: Option<OpenTurn>,
    /// Some named seat has spoken: the room's stage direction is given.
    room: bool,
    /// The named seats whose lines the context holds (no character may
    /// join under one of them).
    seats: Vec<String>,
    cast: Cast,
    /// The prefix hash's state over the head and every committed message,
    /// so hashing costs only what is new, however long the session.
    committed: Sha256,
}

impl std::fmt::Debug for Megaprompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Megaprompt")
            .field("head", &self.head.len())
            .field("tail", &self.tail.len())
            .field("pending", &self.pending.len())
            .field("open_turn", &self.open_turn.is_some())
            .field("cast", &self.cast)
            .finish()
    }
}

/// Feeds one piece of the context into a prefix hash: tagged and
/// length-prefixed, so no two different contexts hash alike.
fn put(h: &mut Sha256, tag: &[u8], text: &str) {
    h.update(tag);
    h.update((text.len() as u64).to_le_bytes());
    h.update(text.as_bytes());
}

fn role_tag(role: Role) -> &'static [u8] {
    if role == Role::User { b"user" } else { b"assistant" }
}

impl Megaprompt {
    /// A context whose head is `head`, opened with `cast` on stage and, for
    /// a continued session, `carry` as the stage direction that opens its tail.
    pub fn with_carry(renderer: Arc<Renderer>, head: String, cast: &[Character], carry: Option<&str>) -> Self {
        let mut context = Self::new(renderer, head, cast);
        context.pending.extend(carry.map(str::to_owned));
        context
    }

    /// A context whose head is `head`, opened with `cast` on stage.
    pub fn new(renderer: Arc<Renderer>, head: String, cast: &[Character]) -> Self {
        let mut c = Cast::default();
        for ch in cast {
            // A starting cast with a duplicate is simply de-duplicated.
            let _ = c.join(ch);
        }
        let mut committed = Sha256::new();
        put(&mut committed, b"system", &head);
        Self {
            renderer,
            head: head.into(),
            tail: Vec::new(),
            pending: Vec::new(),
            open_turn: None,
            room: false,
            seats: Vec::new(),
            cast: c,
            committed,
        }
    }

    pub fn cast(&self) -> &Cast {
        &self.cast
    }

    pub fn renderer(&self) -> &Renderer {
        &self.renderer
    }

    pub fn head(&self) -> &str {
        &self.head
    }

    pub fn turn_open(&self) -> bool {
        self.open_turn.is_some()
    }

    /// Brings `c` on stage: their materials are appended, or for a returning
    /// character only a short "returns". Returns whether they returned.
    pub fn join(&mut self, c: &Character) -> Result<bool, MegapromptError> {
        self.cast.check_join(&c.id)?;
        let known = self.cast.known(&c.id).cloned();
        let stage = match &known {
            Some(k) => self.renderer.returns(k)?,
            None => self.renderer.join(c)?,
        };
        let returning = self.cast.join(c)?;
        self.pending.push(stage);
        Ok(returning)
    }

    /// Retires `id`, who says `line`. Nothing is removed: their materials stay
    /// where they are, dormant.
    pub fn retire(&mut self, id: &CharacterId, line: &str) -> Result<(), MegapromptError> {
        self.cast.check_retire(id)?;
        let who = self.cast.known(id).cloned().ok_or_else(|| CastError::NotOnStage(id.clone()))?;
        let leave = self.renderer.leave(&who, line)?;
        self.cast.retire(id)?;
        self.pending.push(leave);
        if let [last] = self.cast.on_stage() {
            let last = self.cast.known(last).cloned().ok_or_else(|| CastError::NotOnStage(last.clone()))?;
            self.pending.push(self.renderer.only_one_left(&last)?);
        }
        Ok(())
    }

    /// Opens a turn: the pending stage directions and the floor's line become
    /// the next user message.
    pub fn begin_turn(&mut self, line: FloorLine<'_>) -> Result<(), MegapromptError> {
        if self.open_turn.is_some() {
            return Err(MegapromptError::TurnOpen);
        }
        let opens_room = self.opens_room(&line);
        let floor = self.render_line(&line, opens_room)?;
        let stage = std::mem::take(&mut self.pending);
        let mut message = String::new();
        for piece in &stage {
            message.push_str(piece);
            message.push_str("\n\n");
        }
        message.push_str(&floor);
        self.tail.push((Role::User, message.into()));
        self.room |= opens_room;
        self.seated(&line);
        self.open_turn = Some(OpenTurn { stage, opened_room: opens_room });
        Ok(())
    }

    /// Adds another floor line to the open turn's message: a room's lines
    /// that waited for the same boundary are heard, and answered, together.
    pub fn hear(&mut self, line: FloorLine<'_>) -> Result<(), MegapromptError> {
        if self.open_turn.is_none() {
            return Err(MegapromptError::NoTurnOpen);
        }
        let opens_room = self.opens_room(&line);
        let floor = self.render_line(&line, opens_room)?;
        if let (Some(open), Some((_, message))) = (&mut self.open_turn, self.tail.last_mut()) {
            *message = format!("{message}\n\n{floor}").into();
            open.opened_room |= opens_room;
        }
        self.room |= opens_room;
        self.seated(&line);
        Ok(())
    }

    fn seated(&mut self, line: &FloorLine<'_>) {
        if let Some(seat) = line.seat.filter(|seat| !self.seats.iter().any(|s| s == seat)) {
            self.seats.push(seat.to_owned());
        }
    }

    /// The named seats that have spoken, first come first.
    pub fn seats(&self) -> impl Iterator<Item = &str> {
        self.seats.iter().map(String::as_str)
    }

    /// Whether the floor is a room: some named seat has spoken.
    pub fn is_room(&self) -> bool {
        self.room
    }

    fn opens_room(&self, line: &FloorLine<'_>) -> bool {
        line.seat.is_some() && !self.room
    }

    /// One floor line through the floor template, after the room's stage
    /// direction when it is the first from a named seat.
    fn render_line(&self, line: &FloorLine<'_>, opens_room: bool) -> Result<String, MegapromptError> {
        let addressee = match line.to {
            Some(id) if self.cast.is_on_stage(id) => self.cast.known(id),
            Some(id) => return Err(MegapromptError::NotAddressable(id.clone())),
            None => None,
        };
        let floor = self.renderer.floor(line.text, addressee, line.seat)?;
        match line.seat.filter(|_| opens_room) {
            Some(seat) => Ok(format!("{}\n\n{floor}", self.renderer.room(seat)?)),
            None => Ok(floor),
        }
    }

    /// Closes the open turn with the model's output, appended verbatim.
    pub fn commit_turn(&mut self, output: &str) -> Result<(), MegapromptError> {
        if self.open_turn.is_none() {
            return Err(MegapromptError::NoTurnOpen);
        }
        // The Messages API refuses an empty assistant message; a turn that
        // produced nothing is aborted instead.
        if output.trim().is_empty() {
            return Err(MegapromptError::EmptyOutput);
        }
        self.open_turn = None;
        if let Some((role, text)) = self.tail.last() {
            put(&mut self.committed, role_tag(*role), text);
        }
        put(&mut self.committed, b"assistant", output);
        self.tail.push((Role::Assistant, output.into()));
        Ok(())
    }

    /// Drops the open turn's floor lines; its stage directions wait for the
    /// next one (the room's is given again with the next named seat).
    pub fn abort_turn(&mut self) -> Result<(), MegapromptError> {
        let OpenTurn { stage, opened_room } = self.open_turn.take().ok_or(MegapromptError::NoTurnOpen)?;
        self.room &= !opened_room;
        self.tail.pop();
        let later = std::mem::replace(&mut self.pending, stage);
        self.pending.extend(later);
        Ok(())
    }

    /// The request for the open turn: the head with a cache mark at its end,
    /// the tail with a cache mark on its newest message.
    pub fn prompt(&self) -> Prompt {
        let last = self.tail.len().saturating_sub(1);
        Prompt {
            system: vec![Block { text: self.head.clone(), cache: true }],
            messages: self
                .tail
                .iter()
                .enumerate()
                .map(|(i, (role, text))| Message { role: *role, text: text.clone(), cache: i == last, coda: None })
                .collect(),
            stop_sequences: self.renderer.templates().stop_sequences.clone(),
        }
    }

    /// The request a pre-warm sends: exactly the prefix the next turn will
    /// reuse — the head, and every message up to the newest floor message,
    /// which carries the second breakpoint as it did when that turn was
    /// sent. (A request must end with the floor's message, so the model's
    /// last answer, written fresh by the next turn, is left out.) `None`
    /// before the first turn: nothing is cached yet.
    pub fn warm_prompt(&self) -> Option<Prompt> {
        if self.open_turn.is_some() {
            return None;
        }
        let last_user = self.tail.iter().rposition(|(role, _)| *role == Role::User)?;
        let messages = self.tail[..=last_user]
            .iter()
            .enumerate()
            .map(|(i, (role, text))| Message { role: *role, text: text.clone(), cache: i == last_user, coda: None })
            .collect();
        Some(Prompt {
            system: vec![Block { text: self.head.clone(), cache: true }],
            messages,
            stop_sequences: self.renderer.templates().stop_sequences.clone(),
        })
    }

    /// The open turn's request with `coda` closing its last message: a
    /// solo replay's instruction after the floor's line, everything before
    /// it byte for byte as the turn sent it.
    pub fn prompt_with_coda(&self, coda: &str) -> Prompt {
        let mut prompt = self.prompt();
        if let Some(last) = prompt.messages.last_mut() {
            last.coda = Some(coda.into());
        }
        prompt
    }

    /// The prefix hash of [`Megaprompt::prompt_with_coda`]'s request.
    pub fn prefix_hash_with_coda(&self, coda: &str) -> String {
        let mut h = self.committed.clone();
        if self.open_turn.is_some()
            && let Some((role, text)) = self.tail.last()
        {
            put(&mut h, role_tag(*role), text);
        }
        for piece in &self.pending {
            put(&mut h, b"pending", piece);
        }
        put(&mut h, b"coda", coda);
        format!("{:x}", h.finalize())
    }

    /// Bytes of the stage directions waiting for the next floor line.
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().map(String::len).sum()
    }

    /// Total bytes of the rendered context (head, tail and pending directions).
    pub fn len_bytes(&self) -> usize {
        self.head.len()
            + self.tail.iter().map(|(_, t)| t.len()).sum::<usize>()
            + self.pending.iter().map(String::len).sum::<usize>()
    }

    /// A SHA-256 over everything the context would send, in order, with
    /// lengths so that no two different contexts hash alike. Equal hashes mean
    /// byte-identical prompts.
    pub fn prefix_hash(&self) -> String {
        let mut h = self.committed.clone();
        if self.open_turn.is_some()
            && let Some((role, text)) = self.tail.last()
        {
            put(&mut h, role_tag(*role), text);
        }
        for piece in &self.pending {
            put(&mut h, b"pending", piece);
        }
        format!("{:x}", h.finalize())
    }
}
