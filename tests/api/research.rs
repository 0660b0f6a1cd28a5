//! Research workflows: a provider and model per session, `panel tail`
//! (JSON exact to the log across restarts; colour and plain), `panel run`
//! (offline and against a server), `panel report` (CSV back to the same
//! numbers), and each turn's provenance — recorded from every provider's
//! mock, and missed by `panel audit` when absent.

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
async fn tail_json_equals_the_log_across_a_server_restart_and_an_actor_restart() {
    let logs = tempfile::tempdir().unwrap();
    let args = ["--rehearsal-pace-ms", "0"];
    let server = ServerProcess::start(logs.path(), &args, ProcessLimits::default());
    let port = server.port;
    let base = format!("http://127.0.0.1:{port}");
    // A new client each time: a pooled connection dies with the server.
    let client = || awc::Client::builder().timeout(WAIT).finish();
    let post = |path: String, body: Value| {
        let client = client();
        let url = format!("{base}{path}");
        async move {
            let mut res = client.post(url).send_json(&body).await.expect("the server answers");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or_default())
        }
    };
    let (_, info) = post("/api/sessions".into(), json!({ "cast": ["ada", "byron"] })).await;
    let id = info["id"].as_str().unwrap().to_owned();
    post(format!("/api/sessions/{id}/say"), json!({ "text": "What fails first?" })).await;

    let (mut tail, lines) = collecting(panel().args(["tail", &id, "--url", &base, "--json"]));
    lines.until("turn 1", |l| ends_turn(l, 1)).await;

    // The server goes away and comes back on the same port.
    drop(server);
    let server = ServerProcess::start_at(port, logs.path(), &args, ProcessLimits::default());
    post(format!("/api/sessions/{id}/say"), json!({ "text": "And after a restart?" })).await;
    lines.until("turn 2", |l| ends_turn(l, 2)).await;

    // The session's actor is stopped and started.
    let (status, _) = {
        let mut res = client().delete(format!("{base}/api/sessions/{id}/actor")).send().await.unwrap();
        (res.status().as_u16(), res.body().await)
    };
    assert_eq!(status, 200);
    post(format!("/api/sessions/{id}/actor"), Value::Null).await;
    post(format!("/api/sessions/{id}/say"), json!({ "text": "And after the actor's?" })).await;
    lines.until("turn 3", |l| ends_turn(l, 3)).await;
    post(format!("/api/sessions/{id}/close"), Value::Null).await;
    assert!(wait_exit(&mut tail.0).await.success(), "tail ends when the session closes");
    lines.until("the last line", |l| l.last().is_some_and(|l| l.contains("session-close"))).await;

    let logged: Vec<String> = std::fs::read_to_string(logs.path().join(&id).join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.all(), logged, "every logged event once, in order, byte for byte");
    drop(server);
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
async fn tail_output(app: &TestApp, id: &str, env: &[(&str, &str)], extra: &[&str]) -> String {
    let (mut child, lines) =
        collecting(panel().args(["tail", id, "--url", &app.address]).args(extra).envs(env.iter().copied()));
    assert!(wait_exit(&mut child.0).await.success());
    lines.until("the end of the session", |l| l.iter().any(|l| l.contains("session closed"))).await;
    lines.all().join("\n")
}

#[actix_web::test]
async fn tail_shows_the_session_in_colour_or_plain_as_asked() {
    let app = spawn_app().await;
    let id = closed_session(&app).await;
    let coloured = tail_output(&app, &id, &[("CLICOLOR_FORCE", "1")], &[]).await;
    assert!(coloured.contains("\u{1b}[38;2;47;125;209mAda\u{1b}[0m: "), "Ada in her colour:\n{coloured}");
    assert!(coloured.contains("\u{1b}[2m"), "the confer dimmed");

    let plain = tail_output(&app, &id, &[("NO_COLOR", "1")], &[]).await;
    assert!(!plain.contains('\u{1b}'), "no escapes with NO_COLOR:\n{plain}");
    assert!(plain.contains("▶ floor: What fails first?"), "{plain}");
    assert!(plain.contains("▶ floor → Byron: and you?"), "{plain}");
    assert!(plain.contains("    · "), "the confer, indented:\n{plain}");
    assert!(plain.lines().any(|l| l.starts_with("  turn 1 · $")), "a cost line per turn:\n{plain}");
    assert!(plain.contains("session closed"), "{plain}");
    // Piped, without NO_COLOR: plain too.
    assert!(!tail_output(&app, &id, &[], &[]).await.contains('\u{1b}'));
    let quiet = tail_output(&app, &id, &[("NO_COLOR", "1")], &["--no-confer"]).await;
    assert!(!quiet.contains("    · "), "{quiet}");
}

const SCRIPT: &str = r#"
title = "Triage"
cast = ["ada", "byron", "cleo"]

[[turn]]
say = "What should a hospital automate first?"

[[turn]]
say = "And what would fail first?"
to = "Ada"

[[turn]]
say = "Who decides?"
add = ["otto"]
retire = ["cleo"]
"#;

fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let start = text.find("id,title,").expect("a CSV header");
    let mut reader = csv::Reader::from_reader(&text.as_bytes()[start..]);
    let header = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| header.iter().map(str::to_owned).zip(r.unwrap().iter().map(str::to_owned)).collect())
        .collect()
}

/// The figures a report must show, counted straight from a log.
fn from_log(logs: &Path, id: &str) -> (f64, u64, u64, usize, usize) {
    let text = std::fs::read_to_string(logs.join(id).join("events.jsonl")).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |kind: &'static str| events.iter().filter(move |e| e["kind"] == kind);
    let usd: f64 = of("cost").map(|c| c["usd"].as_f64().unwrap_or(0.0)).sum();
    let read: u64 = of("cost").map(|c| c["cache_read"].as_u64().unwrap()).sum();
    let output: u64 = of("cost").map(|c| c["output"].as_u64().unwrap()).sum();
    let ada = of("speak").filter(|e| e["speaker"] == "ada").count();
    (usd, read, output, ada, of("turn-start").count())
}

fn check_row(row: &std::collections::HashMap<String, String>, logs: &Path) {
    let (usd, read, output, ada, turns) = from_log(logs, &row["id"]);
    assert!((row["usd"].parse::<f64>().unwrap() - usd).abs() < 1e-6, "{row:?} vs {usd}");
    assert_eq!(row["cache_read"].parse::<u64>().unwrap(), read);
    assert_eq!(row["output"].parse::<u64>().unwrap(), output);
    assert_eq!(row["speaks:Ada"].parse::<usize>().unwrap(), ada);
    assert_eq!(row["turns"].parse::<usize>().unwrap(), turns);
}

#[actix_web::test]
async fn panel_run_offline_records_a_closed_audited_session_whose_report_matches_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("triage.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let logs = dir.path().join("logs");
    let stdout = run_offline(&script, &logs, &["--repeat", "2"]);
    assert!(stdout.contains("turn 3/3 · "), "progress as turns end:\n{stdout}");
    let rows = csv_rows(&stdout);
    assert_eq!(rows.len(), 2, "one row per repetition");
    for row in &rows {
        check_row(row, &logs);
        assert_eq!(row["turns"], "3");
        assert!(logs.join(&row["id"]).join("session.json").exists(), "closed, with its artefacts");
        let audit = panel().args(["audit", &row["id"], "--logs"]).arg(&logs).output().unwrap();
        assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stdout));
    }
    // `panel report` gives the same rows, and its CSV parses back to them.
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str()).collect();
    let report = panel().arg("report").args(&ids).args(["--csv", "--logs"]).arg(&logs).output().unwrap();
    assert!(report.status.success());
    assert_eq!(csv_rows(&String::from_utf8_lossy(&report.stdout)), rows);
    let table = panel().arg("report").args(&ids).arg("--logs").arg(&logs).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("speaks / passes / turns led") && table.contains(ids[0]), "{table}");
}

#[actix_web::test]
async fn a_scripted_pause_plays_on_the_scaled_clock_with_keep_warm_spanning_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pause.toml");
    // Fifteen minutes of thought: three 5-minute TTLs. At 300× it lasts 3 s.
    let text = "title = \"Pause\"\ncast = [\"ada\", \"byron\"]\n\n[[turn]]\nsay = \"What fails first?\"\n\n[[turn]]\nsay = \"And after that?\"\npause_s = 900\n";
    std::fs::write(&script, text).unwrap();
    let logs = dir.path().join("logs");
    let started = Instant::now();
    let stdout = run_offline(&script, &logs, &["--time-scale", "300"]);
    assert!(started.elapsed() < Duration::from_secs(60), "the pause was not scaled");
    let id = &csv_rows(&stdout)[0]["id"];
    let log = std::fs::read_to_string(logs.join(id).join("events.jsonl")).unwrap();
    let events: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let pings = events.iter().filter(|e| e["kind"] == "keep-warm").count();
    assert!(pings >= 2, "keep-warm spanned the pause ({pings} pings)");
    let second = events.iter().find(|e| e["kind"] == "cost" && e["turn"] == 2).unwrap();
    assert!(second["cache_read"].as_u64().unwrap() > 0, "the turn after the pause read the cache: {second}");
}

#[actix_web::test]
async fn panel_run_drives_a_running_server_through_its_api() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
    let script = dir.path().join("triage.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let (mut run, lines) = collecting(panel().arg("run").arg(&script).args(["--csv", "--url", &app.address]));
    let status = wait_exit(&mut run.0).await;
    lines.until("the report", |l| l.iter().any(|l| l.starts_with("id,title,"))).await;
    let stdout = lines.all().join("\n");
    assert!(status.success(), "{stdout}");
    assert!(stdout.contains("watch it at "), "{stdout}");
    let rows = csv_rows(&stdout);
    check_row(&rows[0], &logs);
    let (_, detail) = app.get(&format!("/api/sessions/{}", rows[0]["id"])).await;
    assert_eq!((detail["closed"].as_bool(), detail["turns"].as_u64()), (Some(true), Some(3)), "{detail}");
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

#[actix_web::test]
async fn tail_follows_several_sessions_on_one_connection_each_line_titled() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for title in ["Triage", "Archives"] {
        let (_, info) = app.post("/api/sessions", json!({ "cast": ["ada", "byron"], "title": title })).await;
        ids.push(info["id"].as_str().unwrap().to_owned());
    }
    let (mut child, lines) =
        collecting(panel().args(["tail", &ids[0], &ids[1], "--url", &app.address]).env("NO_COLOR", "1"));
    lines.until("both openings", |l| l.iter().filter(|l| l.contains(" · rehearsal · ")).count() == 2).await;
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["event_streams"], 1, "one connection for both: {health}");
    for id in &ids {
        let mut sse = app.sse(id, None).await;
        app.say(id, "What fails first?").await;
        sse.until("turn-end").await;
        let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
        assert_eq!(status, 200);
    }
    assert!(wait_exit(&mut child.0).await.success(), "tail ends once both sessions have closed");
    lines.until("both closings", |l| l.iter().filter(|l| l.contains("session closed")).count() == 2).await;
    let all = lines.all();
    for title in ["[Triage] ", "[Archives] "] {
        assert!(
            all.iter().any(|l| l.starts_with(title) && l.contains("▶ floor: What fails first?")),
            "{title}: {all:#?}"
        );
    }
    assert!(
        all.iter().filter(|l| !l.trim().is_empty()).all(|l| l.starts_with("[Triage] ") || l.starts_with("[Archives] ")),
        "{all:#?}"
    );
}
