//! Housekeeping that must not grow with the number of sessions: closing a
//! session (its artefacts and its entry in `index.json`) with 10 and with 500
//! closed sessions beside it, and start-up (repairing what a crash left,
//! reading only each log's tail) with 1,000 logs.
//!
//! Run: `cargo bench --bench registry`. Prints its figures.

#[allow(dead_code)]
#[path = "../tests/api/process.rs"]
mod process;

use std::path::Path;
use std::time::{Duration, Instant};

use panel::config::{ProviderChoice, Settings};
use panel::startup::Application;
use panel_actors::event::{EventBody, Totals, TurnMode};
use panel_actors::event_log::recovery::recover_all;
use panel_actors::event_log::{Durability, EventLog};
use panel_actors::id::SessionId;

fn main() {
    for closed in [10, 500] {
        close_time(closed);
    }
    startup(1000);
}

/// Writes `n` small sessions (one turn each); closed ones end with `session-close`.
fn populate(logs: &Path, n: usize, closed: bool, torn: usize) {
    for i in 0..n {
        let id = SessionId::parse(&format!("20200101-000000-{i:04}")).unwrap();
        let mut log = EventLog::create(logs, &id, Durability::PerTurn).unwrap();
        let (open, ids) = process::opening(&format!("old {i}"));
        log.append(0, open).unwrap();
        log.append(1, EventBody::HumanSpeak { text: "Hello?".into(), to: None, seat: None }).unwrap();
        log.append(1, EventBody::TurnStart { mode: TurnMode::Panel, cast: ids.clone() }).unwrap();
        let output = "<speak who=\"Ada\">Hello.</speak>".to_owned();
        log.append(1, EventBody::TurnEnd { order: vec![ids[0].clone()], output, provenance: None }).unwrap();
        if closed {
            log.append(1, EventBody::SessionClose { totals: Totals { turns: 1, ..Totals::default() } }).unwrap();
        }
        if i < torn {
            // A crash mid-write: half a line at the end.
            drop(log);
            let path = panel_actors::event_log::events_path(logs, &id);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(b"{\"seq\":9,\"ts\"");
            std::fs::write(&path, bytes).unwrap();
        }
    }
    panel_actors::record::rebuild(logs).unwrap();
}

fn settings(logs: &Path) -> Settings {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    Settings {
        rehearsal_pace: Duration::ZERO,
        workers: 1,
        ..Settings::local(logs.to_owned(), repo.join("roster"), repo.join("static"), ProviderChoice::Rehearsal)
    }
}

/// Median time of the close request for a fresh one-turn session, with
/// `closed` recorded sessions already in the folder.
fn close_time(closed: usize) {
    let logs = tempfile::tempdir().unwrap();
    populate(logs.path(), closed, true, 0);
    let system = actix_web::rt::System::new();
    let times = system.block_on(async {
        let app = Application::build(settings(logs.path())).await.unwrap();
        let port = app.port();
        let stopper = app.stopper();
        actix_web::rt::spawn(app.run_until_stopped());
        let client = awc::Client::default();
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        let mut times = Vec::new();
        for _ in 0..15 {
            let mut res = client
                .post(url("/api/sessions"))
                .send_json(&serde_json::json!({ "cast": ["ada", "byron"] }))
                .await
                .unwrap();
            let id = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
            let start = Instant::now();
            let res = client.post(url(&format!("/api/sessions/{id}/close"))).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            times.push(start.elapsed());
        }
        stopper.stop().await;
        times
    });
    let mut times = times;
    times.sort();
    println!(
        "close: with {closed:>3} closed sessions recorded, median {:.2} ms, max {:.2} ms over {} closes",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

/// Start-up recovery over `n` logs that need nothing, then with some torn.
fn startup(n: usize) {
    for torn in [0, 20] {
        let logs = tempfile::tempdir().unwrap();
        populate(logs.path(), n, false, torn);
        let start = Instant::now();
        let recovered = recover_all(logs.path(), Durability::PerTurn);
        let scan = start.elapsed();
        assert_eq!((recovered.sessions.len(), recovered.repaired.len()), (n, torn));
        let system = actix_web::rt::System::new();
        let build = system.block_on(async {
            let start = Instant::now();
            let app = Application::build(settings(logs.path())).await.unwrap();
            let took = start.elapsed();
            let stopper = app.stopper();
            actix_web::rt::spawn(app.run_until_stopped());
            stopper.stop().await;
            took
        });
        println!(
            "start-up: {n} logs, {torn:>2} of them torn: recovery scan {:.1} ms, whole build {:.1} ms",
            ms(scan),
            ms(build)
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
