//! `panel run` (offline, against a server, pauses on the scaled clock) and
//! `panel report` (its CSV back to the same numbers as the log).

use super::*;

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

/// A two-character script of `n` turns, for filling a small window.
fn long_script(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut text = "title = \"Long\"\ncast = [\"ada\", \"byron\"]\n".to_owned();
    for i in 1..=n {
        text.push_str(&format!("\n[[turn]]\nsay = \"Question number {i}: what do we weigh now, and why?\"\n"));
    }
    let path = dir.join("long.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_long(script: &Path, logs: &Path, extra: &[&str]) -> std::process::Output {
    panel()
        .arg("run")
        .arg(script)
        .args(["--csv", "--rehearsal-pace-ms", "0", "--rehearsal-window", "9000"])
        .args(extra)
        .arg("--logs")
        .arg(logs)
        .arg("--roster")
        .arg(repo("roster"))
        .arg("--static")
        .arg(repo("static"))
        .output()
        .unwrap()
}

#[actix_web::test]
async fn a_run_that_fills_the_window_reports_what_it_recorded_and_says_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let script = long_script(dir.path(), 80);
    let logs = dir.path().join("logs");
    let out = run_long(&script, &logs, &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a run cut short fails:\n{stdout}");
    let rows = csv_rows(&stdout);
    assert_eq!(rows.len(), 1, "the recorded session is reported:\n{stdout}");
    check_row(&rows[0], &logs);
    let played: usize = rows[0]["turns"].parse().unwrap();
    assert!((1..80).contains(&played), "{played} turns");
    let said = format!("stopped at turn {} of 80: session {} refused it", played + 1, rows[0]["id"]);
    assert!(stderr.contains(&said), "{said:?} in:\n{stderr}");
    assert!(stderr.contains("outgrown the model's window") && stderr.contains("--on-full continue"), "{stderr}");
    assert!(logs.join(&rows[0]["id"]).join("session.json").exists(), "closed, with its artefacts");
}

#[actix_web::test]
async fn with_on_full_continue_a_run_carries_on_in_continuations_and_reports_the_chain_as_one() {
    for carry in ["recap", "transcript"] {
        carries_on_in_continuations(carry);
    }
}

/// The continuation's carry (a transcript as much as a recap) must leave
/// its own turns room: it was once counted twice against the window, so a
/// transcript continuation refused its very first turn.
fn carries_on_in_continuations(carry: &str) {
    let dir = tempfile::tempdir().unwrap();
    let script = long_script(dir.path(), 80);
    let logs = dir.path().join("logs");
    let out = run_long(&script, &logs, &["--on-full", &format!("continue={carry}")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("continued as "), "{stdout}");
    let rows = csv_rows(&stdout);
    assert_eq!(rows.len(), 1, "one run, one row:\n{stdout}");
    let chain: Vec<&str> = rows[0]["id"].split(' ').collect();
    assert!(chain.len() >= 2, "a chain of sessions: {chain:?}");
    assert_eq!(rows[0]["turns"], "80", "the chain's turns summed");
    let per_session: Vec<(f64, u64, u64, usize, usize)> = chain.iter().map(|id| from_log(&logs, id)).collect();
    assert_eq!(per_session.iter().map(|s| s.4).sum::<usize>(), 80, "every turn is in one of the logs");
    let output: u64 = per_session.iter().map(|s| s.2).sum();
    assert_eq!(rows[0]["output"].parse::<u64>().unwrap(), output);
    for (child, parent) in chain.iter().skip(1).zip(&chain) {
        let open = std::fs::read_to_string(logs.join(child).join("events.jsonl")).unwrap();
        let open: Value = serde_json::from_str(open.lines().next().unwrap()).unwrap();
        assert!(open.to_string().contains(parent), "{child} continues {parent}: {open}");
    }
    for id in &chain {
        assert!(logs.join(id).join("session.json").exists(), "{id} was closed");
    }
    let bad = run_long(&script, &logs, &["--on-full", "sometimes"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("continue=recap"));
}
