//! Rebuilding a session actor's state from a 200-turn log (goal: under
//! 100 ms on a 2-core machine).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use panel_actors::event::{EventBody, Outbound, Publish};
use panel_actors::event_log::LogWriter;
use panel_actors::id::SessionId;
use panel_actors::model_client::ModelClient;
use panel_actors::provider::Provider;
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::roster::Roster;
use panel_actors::session::{CastChange, ChangeCast, NewSession, Say, Session, SessionDeps, Stop};
use panel_actors::templates::{Renderer, Templates};
use tokio::sync::mpsc;

use crate::{cid, ms};

const TURNS: u32 = 200;

struct Sink(mpsc::UnboundedSender<()>);
impl Actor for Sink {
    type Context = Context<Self>;
}
impl Handler<Publish> for Sink {
    type Result = ();
    fn handle(&mut self, Publish(item): Publish, _: &mut Self::Context) {
        if matches!(&item, Outbound::Event(l) if matches!(l.event.body, EventBody::TurnEnd { .. })) {
            let _ = self.0.send(());
        }
    }
}

/// Records a real 200-turn session (joins and retires included) with the
/// rehearsal engine, then times rebuilding it from its log.
pub fn rebuild(roster: Roster, templates: Templates) {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().to_owned();
    let system = System::new();
    let id = SessionId::parse("bench-200").unwrap();
    let deps = system.block_on(async {
        let provider = Rehearsal::embedded(Duration::ZERO);
        let info = provider.info();
        let model = ModelClient::new(Box::new(provider)).start();
        let deps = SessionDeps {
            max_tokens: 1024,
            ..SessionDeps::new(
                logs.clone(),
                panel_actors::roster::Library::fixed(roster),
                Arc::new(Renderer::new(templates).unwrap()),
                model,
                info,
                LogWriter::start(1, None),
            )
        };
        let (tx, mut turn_ends) = mpsc::unbounded_channel();
        let sink = Sink(tx).start().recipient();
        let cast = deps.cast(&[cid("ada"), cid("byron"), cid("cleo")]).unwrap();
        let new = NewSession::new(id.clone(), "bench".into(), cast);
        let session = Session::create(deps.clone(), new, Some(sink)).unwrap().start();
        let changes = [
            (50, CastChange::Add(cid("otto"))),
            (100, CastChange::Retire(cid("cleo"))),
            (150, CastChange::Add(cid("maren"))),
        ];
        let start = Instant::now();
        for turn in 1..=TURNS {
            if let Some((_, change)) = changes.iter().find(|(at, _)| *at == turn) {
                session.send(ChangeCast(change.clone())).await.unwrap().unwrap();
            }
            let text = format!("Turn {turn}: what should we make of the evidence on question {}?", turn % 17);
            session.send(Say { text, to: None, seat: None }).await.unwrap().unwrap();
            turn_ends.recv().await.unwrap();
        }
        println!(
            "recorded: {TURNS} turns in {:.2} s with the rehearsal engine at pace 0",
            start.elapsed().as_secs_f64()
        );
        // Let the recording actor go (it answers once its log is released).
        session.send(Stop { reason: "benchmark".into() }).await.unwrap();
        deps
    });
    let path = Path::new(&logs).join(id.as_str()).join("events.jsonl");
    let bytes = std::fs::metadata(&path).unwrap().len();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    let mut times = Vec::new();
    let mut hash = String::new();
    for _ in 0..20 {
        let start = Instant::now();
        let session = Session::open(deps.clone(), id.clone(), None).unwrap();
        times.push(start.elapsed());
        hash = session.info().prefix_hash;
        system.block_on(session.release()).unwrap();
    }
    times.sort();
    println!(
        "rebuild: {TURNS}-turn log ({lines} events, {:.1} MB): median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs (goal < 100 ms); prefix {}…",
        bytes as f64 / 1e6,
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len(),
        &hash[..12]
    );
}
