//! Recorded sessions: artefacts on close, rebuild to the same bytes, and an
//! audit that passes a clean session and catches each kind of damage.

use std::path::{Path, PathBuf};
use std::process::Command;

use panel_actors::audit::audit;
use panel_actors::id::SessionId;
use panel_actors::record;
use serde_json::{Value, json};

use crate::helpers::*;

/// A closed session with a join, a retire, an @-address and a few turns.
async fn recorded(logs: &Path) -> String {
    let app = spawn_with(Options { logs: Some(logs.to_owned()), ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "What should a city automate first?").await;
    sse.until("turn-end").await;
    app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "otto" })).await;
    app.post(&format!("/api/sessions/{id}/cast"), json!({ "retire": "cleo" })).await;
    app.say(&id, "@Otto is there evidence?").await;
    sse.until("turn-end").await;
    app.say(&id, "And the rest of you?").await;
    sse.until("turn-end").await;
    let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200);
    app.stopper.clone().stop().await;
    id
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[actix_web::test]
async fn closing_writes_the_artefacts_and_rebuild_gives_the_same_bytes() {
    let logs = tempfile::tempdir().unwrap();
    let id = recorded(logs.path()).await;
    let dir = logs.path().join(&id);
    let manifest: Value = serde_json::from_str(&read(&dir.join("session.json"))).unwrap();
    assert_eq!(manifest["id"], id.as_str());
    assert_eq!(manifest["totals"]["turns"], 3);
    assert!(manifest["closed"].is_string());
    let parts = manifest["participants"].as_array().unwrap();
    let cleo = parts.iter().find(|p| p["id"] == "cleo").unwrap();
    assert_eq!((cleo["joined"].clone(), cleo["left"].clone()), (json!([0]), json!([2])));
    let otto = parts.iter().find(|p| p["id"] == "otto").unwrap();
    assert_eq!(otto["joined"], json!([2]));
    let transcript = read(&dir.join("transcript.md"));
    assert!(
        transcript.contains("## Turn 1")
            && transcript.contains("<summary>Confer</summary>")
            && transcript.contains("**Floor** (to Otto)")
    );
    assert!(transcript.contains("*Otto joins the panel.*") && transcript.contains("*Cleo leaves the panel:"));
    let index: Value = serde_json::from_str(&read(&logs.path().join("index.json"))).unwrap();
    assert_eq!(index["sessions"][0]["id"], id.as_str());

    let before: Vec<String> = [dir.join("session.json"), dir.join("transcript.md"), logs.path().join("index.json")]
        .iter()
        .map(|p| read(p))
        .collect();
    std::fs::remove_file(dir.join("transcript.md")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_panel")).args(["rebuild", "--logs"]).arg(logs.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after: Vec<String> = [dir.join("session.json"), dir.join("transcript.md"), logs.path().join("index.json")]
        .iter()
        .map(|p| read(p))
        .collect();
    assert_eq!(before, after, "rebuild gives the same bytes");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of `logs` with `damage` applied, and the audit's findings for it.
fn damaged(logs: &Path, id: &str, damage: impl FnOnce(&Path)) -> Vec<String> {
    let copy = tempfile::tempdir().unwrap().keep();
    copy_dir(logs, &copy);
    damage(&copy.join(id));
    let findings = audit(&copy, &SessionId::parse(id).unwrap()).iter().map(|f| f.to_string()).collect();
    let _ = std::fs::remove_dir_all(&copy);
    findings
}

fn edit(path: PathBuf, f: impl FnOnce(String) -> String) {
    let text = read(&path);
    std::fs::write(&path, f(text)).unwrap();
}

fn edit_lines(path: PathBuf, f: impl Fn(usize, &str) -> Option<String>) {
    edit(path, |text| {
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(l) = f(i, line) {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    });
}

fn has(findings: &[String], needle: &str) -> bool {
    findings.iter().any(|f| f.contains(needle))
}

#[actix_web::test]
async fn the_audit_passes_a_clean_session_and_catches_each_violation() {
    let logs = tempfile::tempdir().unwrap();
    let id = recorded(logs.path()).await;
    let clean = audit(logs.path(), &SessionId::parse(&id).unwrap());
    assert!(clean.is_empty(), "{clean:?}");
    let ok =
        Command::new(env!("CARGO_BIN_EXE_panel")).args(["audit", "--all", "--logs"]).arg(logs.path()).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    let events = |d: &Path| d.join("events.jsonl");
    let kind_line = |kind: &str| {
        let text = read(&events(&logs.path().join(&id)));
        text.lines().position(|l| l.contains(&format!("\"kind\":\"{kind}\""))).unwrap()
    };

    let gap = kind_line("turn-start");
    let f = damaged(logs.path(), &id, |d| edit_lines(events(d), |i, l| (i != gap + 2).then(|| l.to_owned())));
    assert!(has(&f, "where"), "seq gap: {f:?}");

    let end = kind_line("turn-end");
    let f = damaged(logs.path(), &id, |d| {
        edit_lines(events(d), |i, l| {
            Some(if i == end {
                l.replace("\"kind\":\"turn-end\"", "\"kind\":\"turn-aborted\",\"reason\":\"x\",\"kind2\":\"turn-end\"")
            } else {
                l.to_owned()
            })
        })
    });
    assert!(f.iter().all(|x| !x.contains("never closed")), "a turn-aborted closes a turn too: {f:?}");
    let f = damaged(logs.path(), &id, |d| edit_lines(events(d), |i, l| (i != end).then(|| l.to_owned())));
    assert!(has(&f, "still open") || has(&f, "never closed"), "unclosed turn: {f:?}");

    let speak = kind_line("speak");
    let f = damaged(logs.path(), &id, |d| {
        edit_lines(events(d), |i, l| {
            Some(if i == speak {
                l.replace("\"speaker\":\"", "\"speaker\":\"maren\",\"was\":\"")
            } else {
                l.to_owned()
            })
        })
    });
    assert!(has(&f, "maren speak but is not on stage"), "speaker off stage: {f:?}");

    let f = damaged(logs.path(), &id, |d| {
        edit(d.join("session.json"), |t| {
            t.replacen("\"joined\": [\n        2\n      ]", "\"joined\": [\n        1\n      ]", 1)
        })
    });
    assert!(has(&f, "participants[] disagree"), "participants: {f:?}");

    let f = damaged(logs.path(), &id, |d| {
        let mut v: Value = serde_json::from_str(&read(&d.join("session.json"))).unwrap();
        v["totals"]["usd"] = json!(123.0);
        std::fs::write(d.join("session.json"), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    });
    assert!(has(&f, "totals differ from the sum of the cost events"), "totals: {f:?}");

    let f = damaged(logs.path(), &id, |d| edit(d.join("transcript.md"), |t| t.replacen("## Turn 2", "## Turn 7", 1)));
    assert!(has(&f, "transcript.md"), "transcript: {f:?}");

    let f = damaged(logs.path(), &id, |d| {
        edit(d.parent().unwrap().join("index.json"), |t| t.replacen("\"turns\": 3", "\"turns\": 4", 1))
    });
    assert!(has(&f, "index.json"), "index: {f:?}");

    let f = damaged(logs.path(), &id, |d| {
        edit(d.join("transcript.md"), |t| t + "\nleaked: sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345\n")
    });
    assert!(has(&f, "looks like an API key"), "key: {f:?}");

    // Nobody on stage: the starting cast is only Cleo, no one joins, and she leaves.
    let f = damaged(logs.path(), &id, |d| {
        edit_lines(events(d), |i, l| {
            if l.contains("\"kind\":\"join\"") {
                return None;
            }
            if i != 0 {
                return Some(l.to_owned());
            }
            let mut open: Value = serde_json::from_str(l).unwrap();
            let parts =
                open["participants"].as_array().unwrap().iter().filter(|p| p["id"] == "cleo").cloned().collect();
            open["participants"] = Value::Array(parts);
            Some(open.to_string())
        })
    });
    assert!(has(&f, "nobody is left on stage"), "empty stage: {f:?}");

    // And the command says so with its exit code.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(logs.path(), copy.path());
    edit(copy.path().join(&id).join("session.json"), |t| t.replacen("\"turns\": 3", "\"turns\": 9", 1));
    let bad =
        Command::new(env!("CARGO_BIN_EXE_panel")).args(["audit", &id, "--logs"]).arg(copy.path()).output().unwrap();
    assert!(!bad.status.success());
    let report = String::from_utf8_lossy(&bad.stdout);
    assert!(report.contains("FAIL") && report.contains("session.json"), "{report}");
}

#[actix_web::test]
async fn a_rebuild_of_logs_with_no_closed_sessions_writes_an_empty_index() {
    let logs = tempfile::tempdir().unwrap();
    let done = record::rebuild(logs.path()).unwrap();
    assert!(done.sessions.is_empty() && done.problems.is_empty());
    assert_eq!(read(&logs.path().join("index.json")), "{\n  \"sessions\": []\n}\n");
}

#[actix_web::test]
async fn panel_close_closes_a_session_no_server_is_serving() {
    let logs = tempfile::tempdir().unwrap();
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let id = app.create(&["iris", "maren"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "Should we tell her?").await;
    sse.until("turn-end").await;

    let roster = Path::new(env!("CARGO_MANIFEST_DIR")).join("roster");
    let close = |id: &str| {
        Command::new(env!("CARGO_BIN_EXE_panel"))
            .args(["close", id, "--logs"])
            .arg(logs.path())
            .arg("--roster")
            .arg(&roster)
            .output()
            .unwrap()
    };
    // While the server serves it, its log has a writer: a second one is refused.
    let busy = close(&id);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("another writer"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    app.stopper.clone().stop().await;
    let out = close(&id);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("closed after 1 turns"));
    let manifest: Value = serde_json::from_str(&read(&logs.path().join(&id).join("session.json"))).unwrap();
    assert!(manifest["closed"].is_string());
    assert!(audit(logs.path(), &SessionId::parse(&id).unwrap()).is_empty());
    assert!(String::from_utf8_lossy(&close(&id).stdout).contains("already closed"));
    let bad = close("no-such-session");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-session"));
}

#[actix_web::test]
async fn a_log_that_cannot_be_read_does_not_stop_closing_or_rebuilding_the_others() {
    let logs = tempfile::tempdir().unwrap();
    let first = recorded(logs.path()).await;
    // A session whose log is damaged beyond reading.
    let broken = logs.path().join("20200101-000000-bad1");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("events.jsonl"), "this is not an event\n").unwrap();

    // Closing another session updates the index with its own entry, leaving
    // the entries there as they were, without reading the other logs.
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "A short one.").await;
    sse.until("turn-end").await;
    let (status, body) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200, "{body}");
    let index: Value = serde_json::from_str(&read(&logs.path().join("index.json"))).unwrap();
    let ids: Vec<&str> = index["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str(), first.as_str()]);
    let (status, list) = app.get("/api/sessions").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2, "the unreadable one is left out of the list, not fatal: {list}");
    app.stopper.clone().stop().await;

    // A full rebuild skips it, says so, and still rebuilds the rest.
    std::fs::remove_file(logs.path().join("index.json")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_panel")).args(["rebuild", "--logs"]).arg(logs.path()).output().unwrap();
    assert!(!out.status.success(), "a skipped log is worth a non-zero exit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 20200101-000000-bad1"), "{stderr}");
    let rebuilt: Value = serde_json::from_str(&read(&logs.path().join("index.json"))).unwrap();
    assert_eq!(rebuilt["sessions"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn hostile_text_reaches_the_transcript_escaped_and_cannot_leave_its_block() {
    let logs = tempfile::tempdir().unwrap();
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "<img src=x onerror=alert(1)> </details> ``` [x](javascript:alert(1))").await;
    sse.until("turn-end").await;
    assert_eq!(app.post_empty(&format!("/api/sessions/{id}/close")).await.0, 200);
    let transcript = std::fs::read_to_string(logs.path().join(&id).join("transcript.md")).unwrap();
    let floor = transcript.lines().find(|l| l.starts_with("**Floor**")).expect("the floor line is there");
    assert!(!floor.contains('<') && !floor.contains("```") && !floor.contains("[x]("), "{floor}");
    assert!(floor.contains("&lt;img src=x onerror=alert(1)&gt;"), "{floor}");
    assert_eq!(transcript.matches("</details>").count(), transcript.matches("<details>").count());
}
