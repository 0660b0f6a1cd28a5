//! `panel data` (tidy tables and their schema) and
//! `GET /api/sessions/{id}/dynamics`: read back with real readers, they give
//! the same numbers as each other and as `panel report`.

use std::collections::HashMap;

use super::*;

const SCRIPT: &str = r#"
title = "Dynamics"
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

type Rows = Vec<HashMap<String, String>>;

fn read_csv(path: &Path) -> (Vec<String>, Rows) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows =
        reader.records().map(|r| header.iter().cloned().zip(r.unwrap().iter().map(str::to_owned)).collect()).collect();
    (header, rows)
}

/// Two offline sessions of the script, closed; their ids.
fn recorded(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let script = dir.join("dynamics.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let logs = dir.join("logs");
    let stdout = run_offline(&script, &logs, &["--repeat", "2"]);
    let start = stdout.find("id,title,").expect("a CSV header");
    let mut reader = csv::Reader::from_reader(&stdout.as_bytes()[start..]);
    let ids = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    (logs, ids)
}

fn panel_data(logs: &Path, ids: &[String], out: &Path, extra: &[&str]) -> std::process::Output {
    panel().arg("data").args(ids).arg("--out").arg(out).args(extra).arg("--logs").arg(logs).output().unwrap()
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("a number: {s:?}"))
}

#[actix_web::test]
async fn the_tables_reproduce_the_api_and_the_report_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, ids) = recorded(dir.path());
    assert_eq!(ids.len(), 2);
    let out = dir.path().join("tables");
    let done = panel_data(&logs, &ids, &out, &[]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));

    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
    let report = panel().arg("report").args(&ids).args(["--csv", "--logs"]).arg(&logs).output().unwrap();
    let mut report_rows = csv::Reader::from_reader(&report.stdout[..]);
    let report_header = report_rows.headers().unwrap().clone();
    let report: Rows = report_rows
        .records()
        .map(|r| report_header.iter().map(str::to_owned).zip(r.unwrap().iter().map(str::to_owned)).collect())
        .collect();

    let (_, sessions) = read_csv(&out.join("sessions.csv"));
    let (_, characters) = read_csv(&out.join("characters.csv"));
    let (_, turns) = read_csv(&out.join("turns.csv"));
    let (_, acts) = read_csv(&out.join("acts.csv"));
    assert_eq!(sessions.len(), 2);
    for id in &ids {
        let (status, api) = app.get(&format!("/api/sessions/{id}/dynamics")).await;
        assert_eq!(status, 200, "{api}");
        let s = sessions.iter().find(|r| &r["session"] == id).unwrap();
        let r = report.iter().find(|r| &r["id"] == id).unwrap();
        for key in ["usd", "cache_read_share", "pass_rate", "gini"] {
            assert_eq!(num(&s[key]), api["session"][key].as_f64().unwrap(), "{key}");
        }
        assert_eq!((num(&s["turns"]), num(&r["turns"])), (3.0, 3.0));
        assert_eq!((num(&s["usd"]), num(&s["cache_read_share"])), (num(&r["usd"]), num(&r["cache_read_share"])));

        let mine: Vec<_> = characters.iter().filter(|c| &c["session"] == id).collect();
        let api_chars = api["characters"].as_array().unwrap();
        assert_eq!(mine.len(), api_chars.len());
        let words: f64 = mine.iter().map(|c| num(&c["words"])).sum();
        assert!(words > 0.0);
        for (row, c) in mine.iter().zip(api_chars) {
            assert_eq!(row["character"], c["character"].as_str().unwrap());
            for key in ["speaks", "passes", "words", "share", "leads", "addressed", "pickups_given", "mentions_in"] {
                assert_eq!(num(&row[key]), c[key].as_f64().unwrap(), "{key} of {}", row["character"]);
            }
            let name = c["name"].as_str().unwrap();
            if num(&row["speaks"]) + num(&row["passes"]) > 0.0 {
                assert_eq!(num(&r[&format!("speaks:{name}")]), num(&row["speaks"]), "{name}");
                assert_eq!(num(&r[&format!("passes:{name}")]), num(&row["passes"]), "{name}");
                assert_eq!(num(&r[&format!("led:{name}")]), num(&row["leads"]), "{name}");
            }
        }
        // The @-turn was Ada's alone, and the floor addressed her.
        let ada = mine.iter().find(|c| c["character"] == "ada").unwrap();
        assert!(num(&ada["addressed"]) >= 1.0 && num(&ada["leads"]) >= 1.0, "{ada:?}");

        let my_turns: Vec<_> = turns.iter().filter(|t| &t["session"] == id).collect();
        assert_eq!(my_turns.len(), 3);
        assert_eq!((my_turns[0]["mode"].as_str(), my_turns[1]["mode"].as_str()), ("panel", "addressed"));
        assert_eq!(my_turns[1]["order"], "ada");
        for (t, a) in my_turns.iter().zip(api["turns"].as_array().unwrap()) {
            assert_eq!(num(&t["usd"]), a["usd"].as_f64().unwrap());
            assert_eq!(num(&t["context_tokens"]), a["context_tokens"].as_f64().unwrap());
            let order: Vec<&str> = a["order"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
            assert_eq!(t["order"], order.join(";"));
        }
        // Speak words in the acts add up to the characters' words.
        let spoken: f64 =
            acts.iter().filter(|a| &a["session"] == id && a["kind"] == "speak").map(|a| num(&a["words"])).sum();
        assert_eq!(spoken, words);
        assert!(acts.iter().any(|a| &a["session"] == id && a["kind"] == "join" && a["speaker"] == "otto"));
        assert!(acts.iter().any(|a| &a["session"] == id && a["kind"] == "human-speak" && a["to"] == "ada"));
    }
}

#[actix_web::test]
async fn the_schema_lists_every_column_and_jsonl_parses_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, ids) = recorded(dir.path());
    let (csv_out, jsonl_out) = (dir.path().join("csv"), dir.path().join("jsonl"));
    assert!(panel_data(&logs, &ids[..1], &csv_out, &[]).status.success());
    assert!(panel_data(&logs, &ids[..1], &jsonl_out, &["--format", "jsonl"]).status.success());
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(csv_out.join("schema.json")).unwrap()).unwrap();
    assert_eq!(schema["version"], 1);
    for table in ["acts", "turns", "characters", "sessions"] {
        let listed: Vec<&str> =
            schema["tables"][table].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        for c in schema["tables"][table].as_array().unwrap() {
            assert!(!c["type"].as_str().unwrap().is_empty() && !c["meaning"].as_str().unwrap().is_empty(), "{c}");
        }
        let (header, rows) = read_csv(&csv_out.join(format!("{table}.csv")));
        assert_eq!(header, listed, "{table}");
        let text = std::fs::read_to_string(jsonl_out.join(format!("{table}.jsonl"))).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), rows.len(), "{table}");
        for line in &lines {
            let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
            let mut want = listed.clone();
            want.sort();
            let mut got = keys.clone();
            got.sort();
            assert_eq!(got, want, "{table}");
        }
    }
    // Nothing half-written is left beside the tables.
    let names: Vec<String> =
        std::fs::read_dir(&csv_out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
}

#[actix_web::test]
async fn a_live_session_answers_its_dynamics_and_an_unknown_one_is_refused() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "What fails first?").await;
    sse.until("turn-end").await;
    let (status, d) = app.get(&format!("/api/sessions/{id}/dynamics")).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["session"]["turns"], 1);
    let t = &d["turns"][0];
    assert_eq!(t["mode"], "panel");
    assert_eq!(t["speaks"].as_u64().unwrap() + t["passes"].as_u64().unwrap(), 2, "{t}");
    assert_eq!(d["turns"][0]["lead"], d["turns"][0]["order"][0], "{t}");

    let (status, body) = app.get("/api/sessions/no-such-session/dynamics").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["code"].is_string() && !body["error"]["message"].as_str().unwrap().contains('/'), "{body}");
}

#[test]
fn panel_data_of_an_unknown_session_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let done = panel_data(dir.path(), &["nobody".to_owned()], &out, &[]);
    assert!(!done.status.success());
    assert!(!out.exists());
}

#[actix_web::test]
async fn a_closed_session_carries_its_dynamics_beside_its_artefacts_and_into_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, ids) = recorded(dir.path());
    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
    let id = &ids[0];
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(logs.join(id).join("dynamics.json")).unwrap()).unwrap();
    let (status, api) = app.get(&format!("/api/sessions/{id}/dynamics")).await;
    assert_eq!(status, 200);
    assert_eq!(file, api, "the file and the API are the same numbers");
    let site = dir.path().join("site");
    let export = panel()
        .args(["export", id, "--out"])
        .arg(&site)
        .arg("--logs")
        .arg(&logs)
        .arg("--static")
        .arg(repo("static"))
        .arg("--roster")
        .arg(repo("roster"))
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let exported: Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("logs").join(id).join("dynamics.json")).unwrap())
            .unwrap();
    assert_eq!(exported, api);
}

const ROOM: &str = r#"
title = "A room"
cast = ["ada", "byron"]

[[turn]]
say = "What fails first?"
seat = "Maya"

[[turn]]
say = "And who notices?"
seat = "Theo"

[[turn]]
say = "Anyone else?"
"#;

#[actix_web::test]
async fn a_rooms_seats_reach_the_acts_table_the_sessions_table_the_report_and_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("room.toml");
    std::fs::write(&script, ROOM).unwrap();
    let logs = dir.path().join("logs");
    let stdout = run_offline(&script, &logs, &[]);
    let start = stdout.find("id,title,").expect("a CSV header");
    let mut reader = csv::Reader::from_reader(&stdout.as_bytes()[start..]);
    let header = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let seats = header.iter().position(|h| h == "seats").expect("a seats column");
    assert_eq!(&row[seats], "Maya;Theo", "the report names the seats in the order they spoke");
    let id = row[0].to_owned();

    let out = dir.path().join("tables");
    let done = panel_data(&logs, std::slice::from_ref(&id), &out, &[]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let (header, acts) = read_csv(&out.join("acts.csv"));
    assert!(header.contains(&"seat".to_owned()), "{header:?}");
    let floor: Vec<(&str, &str)> =
        acts.iter().filter(|a| a["kind"] == "human-speak").map(|a| (a["seat"].as_str(), a["text"].as_str())).collect();
    assert_eq!(floor, [("Maya", "What fails first?"), ("Theo", "And who notices?"), ("", "Anyone else?")]);
    let (_, sessions) = read_csv(&out.join("sessions.csv"));
    assert_eq!((sessions[0]["seats"].as_str(), sessions[0]["floor_lines"].as_str()), ("Maya;Theo", "3"));

    let transcript = std::fs::read_to_string(logs.join(&id).join("transcript.md")).unwrap();
    assert!(transcript.contains("**Floor** (Maya): What fails first?"), "{transcript}");
    assert!(transcript.contains("**Floor** (Theo): And who notices?"), "{transcript}");
    assert!(transcript.contains("**Floor**: Anyone else?"), "{transcript}");
}
