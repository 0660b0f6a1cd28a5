//! Shared fixtures: the real roster and templates, a harness that runs
//! session actors against a chosen provider and collects what they publish.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt as _;
use futures_util::stream::LocalBoxStream;
use panel_actors::event::{EventBody, Logged, Outbound, Publish};
use panel_actors::event_log::LogWriter;
use panel_actors::id::{CharacterId, SessionId};
use panel_actors::model_client::ModelClient;
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::provider::{CompletionRequest, ModelError, ModelEvent, Provider, ProviderInfo};
use panel_actors::roster::{Character, Roster};
use panel_actors::session::{NewSession, Session, SessionDeps};
use panel_actors::templates::{Renderer, Templates};
use tokio::sync::mpsc;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn roster_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../roster")
}

pub fn roster() -> Roster {
    Roster::load(&roster_dir().join("characters")).expect("the shipped roster loads")
}

pub fn templates() -> Templates {
    Templates::load(&roster_dir().join("prompts")).expect("the shipped templates load")
}

pub fn character(id: &str) -> Character {
    roster().get(&cid(id)).cloned().expect("a shipped character")
}

pub fn cid(id: &str) -> CharacterId {
    CharacterId::parse(id).unwrap()
}

/// Gathers what sessions publish.
struct Collector(mpsc::UnboundedSender<Outbound>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Publish> for Collector {
    type Result = ();
    fn handle(&mut self, Publish(item): Publish, _: &mut Self::Context) {
        let _ = self.0.send(item);
    }
}

pub struct Harness {
    pub deps: SessionDeps,
    pub publisher: Recipient<Publish>,
    pub published: mpsc::UnboundedReceiver<Outbound>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn rehearsal() -> Self {
        Self::with(Box::new(Rehearsal::embedded(Duration::ZERO)))
    }

    pub fn with(provider: Box<dyn Provider>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let info = provider.info();
        let model = ModelClient::new(provider).start();
        let renderer = Arc::new(Renderer::new(templates()).unwrap());
        let deps = SessionDeps {
            max_tokens: 1024,
            ..SessionDeps::new(
                dir.path().to_owned(),
                panel_actors::roster::Library::fixed(roster()),
                renderer,
                model,
                info,
                LogWriter::start(1, None),
            )
        };
        let (tx, published) = mpsc::unbounded_channel();
        let publisher = Collector(tx).start().recipient();
        Self { deps, publisher, published, _dir: dir }
    }

    pub fn create(&self, id: &str, cast: &[&str]) -> Addr<Session> {
        let cast: Vec<_> = cast.iter().map(|c| cid(c)).collect();
        let cast = self.deps.cast(&cast).expect("characters of the roster");
        let new = NewSession::new(SessionId::parse(id).unwrap(), format!("test {id}"), cast);
        Session::create(self.deps.clone(), new, Some(self.publisher.clone())).expect("session opens").start()
    }

    pub fn reopen(&self, id: &str) -> Session {
        Session::open(self.deps.clone(), SessionId::parse(id).unwrap(), Some(self.publisher.clone()))
            .expect("session reopens")
    }

    /// The next logged event (typing deltas are skipped), within [`WAIT`].
    pub async fn next(&mut self) -> Arc<Logged> {
        loop {
            let item = tokio::time::timeout(WAIT, self.published.recv())
                .await
                .expect("an event within the timeout")
                .expect("the publisher is alive");
            if let Outbound::Event(logged) = item {
                return logged;
            }
        }
    }

    /// Every logged event up to and including the next one of `kind`.
    pub async fn until(&mut self, kind: &str) -> Vec<Arc<Logged>> {
        let mut seen = Vec::new();
        loop {
            let logged = self.next().await;
            let done = logged.event.body.kind() == kind;
            seen.push(logged);
            if done {
                return seen;
            }
        }
    }

    /// Everything published up to the next event of `kind`, deltas included.
    pub async fn until_with_deltas(&mut self, kind: &str) -> Vec<Outbound> {
        let mut seen = Vec::new();
        loop {
            let item = tokio::time::timeout(WAIT, self.published.recv()).await.unwrap().unwrap();
            let done = matches!(&item, Outbound::Event(l) if l.event.body.kind() == kind);
            seen.push(item);
            if done {
                return seen;
            }
        }
    }
}

pub fn kinds(events: &[Arc<Logged>]) -> Vec<&'static str> {
    events.iter().map(|l| l.event.body.kind()).collect()
}

pub fn speakers(events: &[Arc<Logged>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|l| match &l.event.body {
            EventBody::Speak { speaker, .. } | EventBody::Pass { speaker } => Some(speaker.to_string()),
            _ => None,
        })
        .collect()
}

/// A provider whose streams the test feeds by hand, one channel per call.
#[derive(Clone, Default)]
pub struct Scripted {
    streams: Rc<RefCell<VecDeque<mpsc::UnboundedReceiver<Piece>>>>,
    pub requests: Rc<RefCell<Vec<CompletionRequest>>>,
}

/// One item of a scripted stream.
pub type Piece = Result<ModelEvent, ModelError>;
pub type Feed = mpsc::UnboundedSender<Piece>;

impl Scripted {
    /// Prepares the stream for the next completion and returns its feed.
    pub fn next_stream(&self) -> Feed {
        let (tx, rx) = mpsc::unbounded_channel();
        self.streams.borrow_mut().push_back(rx);
        tx
    }
}

impl Provider for Scripted {
    fn info(&self) -> ProviderInfo {
        ProviderInfo { name: "scripted".into(), model: "claude-sonnet-5".into(), offline: false, cache_expires: true }
    }

    fn stream(&self, request: CompletionRequest) -> LocalBoxStream<'static, Result<ModelEvent, ModelError>> {
        self.requests.borrow_mut().push(request);
        match self.streams.borrow_mut().pop_front() {
            Some(rx) => tokio_stream(rx).boxed_local(),
            None => futures_util::stream::iter([Err(ModelError::new("no-script", "no stream prepared", false))])
                .boxed_local(),
        }
    }
}

fn tokio_stream<T: 'static>(mut rx: mpsc::UnboundedReceiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub fn text(s: &str) -> Result<ModelEvent, ModelError> {
    Ok(ModelEvent::Text(s.to_owned()))
}
