//! Research workflows: a provider and model per session, and each turn's
//! provenance — recorded from every provider's mock, and missed by
//! `panel audit` when absent; `panel tail` and `panel run` / `panel report`
//! in their own files. The helpers here run `panel` as a child process.

mod data;
mod replay;
mod run;
mod study;
mod tail;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::MockAnthropic;
use crate::mock_openai::{MockOpenAi, Server};
use crate::process::{ProcessLimits, ServerProcess};

const KEY: &str = "sk-ant-test-research-SECRET";

fn panel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_panel"));
    c.env_remove("ANTHROPIC_API_KEY").env_remove("OPENAI_BASE_URL").env_remove("PANEL_PROVIDER");
    c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE").env_remove("CLICOLOR");
    c
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Lines a child prints, collected as they arrive.
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn of(child: &mut Child) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self(lines)
    }

    async fn until(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.0.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", self.0.lock().unwrap());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Starts `cmd` with its standard output collected line by line; the child
/// is killed when the first value is dropped.
fn collecting(cmd: &mut Command) -> (Reaped, Lines) {
    let mut child = Reaped(cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    let lines = Lines::of(&mut child.0);
    (child, lines)
}

/// `panel run SCRIPT --csv` in-process on `logs`, offline and unpaced, with
/// `extra` arguments; its standard output, once it has succeeded.
fn run_offline(script: &Path, logs: &Path, extra: &[&str]) -> String {
    let out = panel()
        .arg("run")
        .arg(script)
        .args(["--csv", "--rehearsal-pace-ms", "0"])
        .args(extra)
        .arg("--logs")
        .arg(logs)
        .arg("--roster")
        .arg(repo("roster"))
        .arg("--static")
        .arg(repo("static"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn ends_turn(lines: &[String], turn: u64) -> bool {
    lines.iter().any(|l| {
        let v: Value = serde_json::from_str(l).unwrap_or_default();
        v["kind"] == "turn-end" && v["turn"] == turn
    })
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the command did not finish");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn closed_session(app: &TestApp) -> String {
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    for line in ["What fails first?", "@Byron and you?"] {
        app.say(&id, line).await;
        sse.until("turn-end").await;
    }
    let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200);
    id
}

/// A child killed if the test ends before it does.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `panel tail` of a closed session, to its end. Waited for without
/// blocking: the server under test runs on this test's own runtime.
#[actix_web::test]
async fn two_providers_side_by_side_each_session_on_its_own() {
    let claude = MockAnthropic::start(KEY, 1024).await;
    let local = MockOpenAi::start().await;
    let options = Options {
        provider: anthropic_at(&claude.url, KEY),
        other_providers: vec![openai_at(&local.url)],
        ..Options::default()
    };
    let app = spawn_with(options).await;
    let (_, listing) = app.get("/api/providers").await;
    let names: Vec<&str> =
        listing["providers"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["anthropic", "openai", "rehearsal"], "{listing}");

    let mut ids = Vec::new();
    for (provider, model) in [("anthropic", "claude-haiku-4-5-20251001"), ("openai", "local")] {
        let body = json!({ "cast": ["ada", "byron"], "provider": provider, "model": model });
        let (status, info) = app.post("/api/sessions", body).await;
        assert_eq!(status, 201, "{info}");
        assert_eq!((info["config"]["provider"].as_str(), info["model"].as_str()), (Some(provider), Some(model)));
        ids.push(info["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let mut sse = app.sse(id, None).await;
        app.say(id, "What fails first?").await;
        sse.until("turn-end").await;
    }
    assert_eq!(claude.requests().len(), 1, "one turn went to Anthropic");
    assert_eq!(claude.requests()[0]["model"], "claude-haiku-4-5-20251001");
    assert_eq!(local.requests().len(), 1, "one to the local server");
    assert_eq!(local.requests()[0]["model"], "local");

    let (status, body) = app.post("/api/sessions", json!({ "cast": ["ada"], "provider": "gemini" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unknown-provider")), "{body}");
    let (status, body) =
        app.post("/api/sessions", json!({ "cast": ["ada"], "provider": "openai", "model": "gpt-9" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unknown-model")), "{body}");
}

#[actix_web::test]
async fn each_turn_records_what_produced_it_from_every_provider() {
    let claude = MockAnthropic::start(KEY, 1024).await;
    let local = MockOpenAi::start_as(Server::LlamaCpp { n_ctx: 100_000 }).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        logs: Some(dir.path().to_owned()),
        provider: anthropic_at(&claude.url, KEY),
        other_providers: vec![openai_at(&local.url)],
        ..Options::default()
    };
    let app = spawn_with(options).await;
    let expect = [
        ("anthropic", "req_011CSHoEeqs5C35K2UUqR7Fy", "claude-sonnet-5", "end_turn"),
        ("openai", "chatcmpl-abcdefghijklmnopqrstuvwx", "local", "stop"),
        ("rehearsal", "rehearsal-", "rehearsal", "end_turn"),
    ];
    for (provider, request_id, model, stop) in expect {
        let (_, info) = app.post("/api/sessions", json!({ "cast": ["ada", "byron"], "provider": provider })).await;
        let id = info["id"].as_str().unwrap().to_owned();
        let mut sse = app.sse(&id, None).await;
        let before = app.prefix_hash(&id).await;
        app.say(&id, "What fails first?").await;
        let end = sse.until("turn-end").await.pop().unwrap().json();
        let p = &end["provenance"];
        assert_eq!(p["provider"], provider, "{p}");
        assert!(p["request_id"].as_str().unwrap().starts_with(request_id), "{p}");
        assert_eq!((p["reported_model"].as_str(), p["stop_reason"].as_str()), (Some(model), Some(stop)), "{p}");
        assert_eq!(p["max_tokens"], 4096);
        assert_eq!(p["stop_sequences"], json!(["\nFrom the floor", "<stage>"]));
        let (ttfb, total) = (p["ttfb_ms"].as_f64().unwrap(), p["duration_ms"].as_f64().unwrap());
        assert!(ttfb > 0.0 && total >= ttfb, "{p}");
        assert!(p["output_tokens_per_s"].as_f64().unwrap() > 0.0, "{p}");
        // The prompt it was given: the context with the floor's line, before the answer.
        let given = p["prefix_hash"].as_str().unwrap();
        assert!(given.len() == 64 && given != before && given != app.prefix_hash(&id).await, "{p}");
        if provider == "openai" {
            assert_eq!(p["constraint"], "gbnf", "a llama.cpp turn says its format was held");
        }
        let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
        assert_eq!(status, 200);
        assert!(panel_actors::audit::audit(dir.path(), &panel_actors::id::SessionId::parse(&id).unwrap()).is_empty());

        if provider == "anthropic" {
            // The same log with its provenance taken out: the audit notices.
            let path = dir.path().join(&id).join("events.jsonl");
            let stripped: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(|l| {
                    let mut v: Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("provenance");
                    format!("{v}\n")
                })
                .collect();
            std::fs::write(&path, stripped).unwrap();
            let findings = panel_actors::audit::audit(dir.path(), &panel_actors::id::SessionId::parse(&id).unwrap());
            assert!(findings.iter().any(|f| f.to_string().contains("does not record its provenance")), "{findings:?}");
        }
    }
}
