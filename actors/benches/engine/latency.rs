//! How soon each line is logged after the model byte that settles it.
//!
//! Rehearsal turns are streamed through a real session actor the way a model
//! streams: a piece of one to three words every 20 ms. The same text is also
//! parsed offline one character at a time, which gives, for every event, the
//! byte at which the parser could first know it — a confer line once its
//! successor's first characters settle that it ended, a speak at its closing
//! tag. The figure is the time from sending the piece that holds that byte to
//! the event coming out of the log writer (written, then published).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::StreamExt as _;
use futures_util::stream::{self, LocalBoxStream};
use panel_actors::event::{Outbound, Publish, TurnMode};
use panel_actors::event_log::LogWriter;
use panel_actors::id::SessionId;
use panel_actors::model_client::ModelClient;
use panel_actors::parser::{Parsed, Parser};
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::provider::{Brief, CompletionRequest, ModelError, ModelEvent, Provider, ProviderInfo, Task, Usage};
use panel_actors::roster::Roster;
use panel_actors::session::{NewSession, Say, Session, SessionDeps};
use panel_actors::templates::{Renderer, Templates};
use tokio::sync::mpsc;

use crate::{cid, ms};

const PACE: Duration = Duration::from_millis(20);
const TURNS: u32 = 6;

/// Streams prepared texts in pieces, noting when each piece left.
#[derive(Clone, Default)]
struct Paced {
    texts: Rc<RefCell<Vec<String>>>,
    /// For the turn in flight: (end byte of the piece, when it was sent).
    sent: Rc<RefCell<Vec<(usize, Instant)>>>,
}

impl Provider for Paced {
    fn info(&self) -> ProviderInfo {
        ProviderInfo { name: "paced".into(), model: "rehearsal".into(), offline: true, cache_expires: false }
    }

    fn stream(&self, _: CompletionRequest) -> LocalBoxStream<'static, Result<ModelEvent, ModelError>> {
        let text = self.texts.borrow_mut().remove(0);
        let sent = self.sent.clone();
        sent.borrow_mut().clear();
        let mut pieces = Vec::new();
        let mut end = 0;
        let mut words = text.split_inclusive([' ', '\n']).peekable();
        let mut n = 0usize;
        while words.peek().is_some() {
            n += 1;
            let piece: String = words.by_ref().take(1 + n % 3).collect();
            end += piece.len();
            pieces.push((piece, end));
        }
        stream::iter(pieces)
            .then(move |(piece, end)| {
                let sent = sent.clone();
                async move {
                    tokio::time::sleep(PACE).await;
                    sent.borrow_mut().push((end, Instant::now()));
                    Ok(ModelEvent::Text(piece))
                }
            })
            .chain(stream::once(async { Ok(ModelEvent::Usage(Usage::default())) }))
            .boxed_local()
    }
}

/// Notes when each logged event came out of the writer.
struct Arrivals(mpsc::UnboundedSender<(&'static str, Instant)>);

impl Actor for Arrivals {
    type Context = Context<Self>;
}

impl Handler<Publish> for Arrivals {
    type Result = ();
    fn handle(&mut self, Publish(item): Publish, _: &mut Self::Context) {
        if let Outbound::Event(l) = item {
            let _ = self.0.send((l.event.body.kind(), Instant::now()));
        }
    }
}

/// Where each logged event of `text` is first known: the byte offsets, in order.
fn settling_bytes(text: &str, cast: &[(&panel_actors::id::CharacterId, &str)]) -> Vec<(&'static str, usize)> {
    let mut parser = Parser::new(cast.iter().copied(), []);
    let mut out = Vec::new();
    let mut at = 0;
    for c in text.chars() {
        at += c.len_utf8();
        for e in parser.feed(c.encode_utf8(&mut [0; 4])) {
            if let Some(kind) = kind(&e) {
                out.push((kind, at));
            }
        }
    }
    out.extend(parser.finish().iter().filter_map(kind).map(|k| (k, text.len())));
    out
}

fn kind(e: &Parsed) -> Option<&'static str> {
    match e {
        Parsed::Deliberation { .. } => Some("deliberation"),
        Parsed::Speak { .. } => Some("speak"),
        Parsed::Pass { .. } => Some("pass"),
        Parsed::Unparsed { .. } => Some("unparsed"),
        Parsed::SpeakDelta { .. } => None,
    }
}

pub fn byte_to_log(roster: &Roster, templates: &Templates) {
    let dir = tempfile::tempdir().unwrap();
    let system = System::new();
    let ids = ["ada", "byron", "cleo", "otto"];
    let cast: Vec<_> = ids.iter().map(|c| roster.get(&cid(c)).unwrap().clone()).collect();
    let names: Vec<_> = cast.iter().map(|c| (&c.id, c.name.as_str())).collect();
    let rehearsal = Rehearsal::embedded(Duration::ZERO);
    let paced = Paced::default();
    let mut expected = Vec::new();
    for turn in 1..=TURNS {
        let brief = Brief {
            session: SessionId::parse("latency").unwrap(),
            turn,
            mode: TurnMode::Panel,
            cast: cast.clone(),
            to: None,
            floor: format!(
                "Question {turn}: what should a hospital automate first, and what should it never automate?"
            ),
            depth: 5,
            task: Task::Turn,
            seed: 7,
        };
        let text = rehearsal.compose(&brief);
        expected.push(settling_bytes(&text, &names));
        paced.texts.borrow_mut().push(text);
    }
    let mut latencies: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    system.block_on(async {
        let model = ModelClient::new(Box::new(paced.clone())).start();
        let renderer = Arc::new(Renderer::new(templates.clone()).unwrap());
        let deps = SessionDeps {
            max_tokens: 1024,
            ..SessionDeps::new(
                dir.path().to_owned(),
                panel_actors::roster::Library::fixed(roster.clone()),
                renderer,
                model,
                paced.info(),
                LogWriter::start(1, None),
            )
        };
        let (tx, mut arrivals) = mpsc::unbounded_channel();
        let sink = Arrivals(tx).start().recipient();
        let cast = ids.iter().map(|c| roster.get(&cid(c)).unwrap().clone()).collect();
        let new = NewSession {
            depth: Some(5),
            ..NewSession::new(SessionId::parse("latency").unwrap(), "latency".into(), cast)
        };
        let session = Session::create(deps, new, Some(sink)).unwrap().start();
        for expected in &expected {
            let text = "A question.".to_owned();
            session.send(Say { text, to: None, seat: None }).await.unwrap().unwrap();
            let mut got = Vec::new();
            loop {
                let (kind, at) = arrivals.recv().await.unwrap();
                if kind == "turn-end" {
                    break;
                }
                if matches!(kind, "deliberation" | "speak" | "pass" | "unparsed") {
                    got.push((kind, at));
                }
            }
            assert_eq!(got.len(), expected.len(), "the live run and the offline parse agree");
            let sent = paced.sent.borrow();
            for ((kind, at), (expected_kind, byte)) in got.into_iter().zip(expected) {
                assert_eq!(kind, *expected_kind);
                let (_, left) = sent.iter().find(|(end, _)| end >= byte).expect("a piece holds that byte");
                latencies.entry(kind).or_default().push(at - *left);
            }
        }
    });
    for (kind, mut times) in latencies {
        times.sort();
        println!(
            "byte to logged {kind:>12}: median {:.3} ms, max {:.3} ms over {} events (pieces every {} ms)",
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
            times.len(),
            PACE.as_millis()
        );
    }
}
