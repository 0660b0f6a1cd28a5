//! `panel study` (conditions × repeats, tagged sessions, a report equal to
//! the tables, resume) and `panel compare` (no divergence for one seed, the
//! first divergence where scripts part, a branch beside its parent).

use super::*;

const SCRIPT: &str = r#"
title = "Triage"
cast = ["ada", "byron", "cleo"]

[[turn]]
say = "What should a hospital automate first?"

[[turn]]
say = "And what would fail first?"

[[turn]]
say = "Who decides?"
"#;

const STUDY: &str = r#"
title = "Depth and format"
script = "triage.toml"
repeat = 2
seed = 7

[[condition]]
name = "shallow"
depth = 2

[[condition]]
name = "deep"
depth = 8

[[condition]]
name = "terse format"
prompts = "variants/terse"
"#;

/// A folder holding the script, the study and its prompts variant.
fn study_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("triage.toml"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("study.toml"), STUDY).unwrap();
    let variant = dir.path().join("variants/terse");
    std::fs::create_dir_all(&variant).unwrap();
    let head = std::fs::read_to_string(repo("roster/prompts/head.md.j2")).unwrap();
    std::fs::write(variant.join("head.md.j2"), format!("Answer tersely: TERSE-VARIANT.\n\n{head}")).unwrap();
    dir
}

fn panel_in(dir: &Path, args: &[&str]) -> std::process::Output {
    panel()
        .current_dir(dir)
        .args(args)
        .args(["--rehearsal-pace-ms", "0", "--logs", "logs"])
        .arg("--roster")
        .arg(repo("roster"))
        .arg("--static")
        .arg(repo("static"))
        .output()
        .unwrap()
}

fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn only_study(logs: &Path) -> (String, Value) {
    let dir = std::fs::read_dir(logs.join("studies")).unwrap().next().unwrap().unwrap();
    let record = std::fs::read_to_string(dir.path().join("study.json")).unwrap();
    (dir.file_name().to_string_lossy().into_owned(), serde_json::from_str(&record).unwrap())
}

fn session_open(logs: &Path, id: &str) -> Value {
    let text = std::fs::read_to_string(logs.join(id).join("events.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn sessions_of(record: &Value) -> Vec<(String, u64, String)> {
    record["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["sessions"].as_array().unwrap().iter().map(move |p| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    p["repeat"].as_u64().unwrap(),
                    p["id"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect()
}

#[actix_web::test]
async fn a_study_of_three_conditions_twice_tags_every_session_and_reports_what_the_tables_say() {
    let dir = study_folder();
    let logs = dir.path().join("logs");
    let stdout = succeeded(&panel_in(dir.path(), &["study", "study.toml", "--csv"]));
    let (study, record) = only_study(&logs);
    assert_eq!(record["id"], study.as_str());
    assert_eq!((record["title"].as_str(), record["seed"].as_u64()), (Some("Depth and format"), Some(7)));
    assert_eq!(record["script"]["turn"].as_array().unwrap().len(), 3, "the script is recorded: {record}");
    assert_eq!(record["order"].as_array().unwrap().len(), 6, "every condition × repeat, in play order");
    let sessions = sessions_of(&record);
    assert_eq!(sessions.len(), 6, "{record}");
    let index: Value = serde_json::from_str(&std::fs::read_to_string(logs.join("index.json")).unwrap()).unwrap();
    let mut seeds = std::collections::HashMap::new();
    for (condition, repeat, id) in &sessions {
        let tag = json!({ "id": study, "condition": condition, "repeat": repeat });
        let open = session_open(&logs, id);
        assert_eq!(open["study"], tag, "session-open of {id}");
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(logs.join(id).join("session.json")).unwrap()).unwrap();
        assert_eq!(manifest["study"], tag, "session.json of {id}");
        let listed = index["sessions"].as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap();
        assert_eq!(listed["study"], tag, "index.json of {id}");
        let seed = open["config"]["seed"].as_u64().expect("a recorded seed");
        assert_eq!(*seeds.entry(*repeat).or_insert(seed), seed, "repeat {repeat} shares one seed across conditions");
        let depth = open["config"]["depth"].as_u64().unwrap();
        let expected = match condition.as_str() {
            "shallow" => 2,
            "deep" => 8,
            _ => 4,
        };
        assert_eq!(depth, expected, "{condition}'s depth");
    }
    assert_ne!(seeds[&1], seeds[&2], "each repeat has its own seed");

    // The report's figures are the sessions table's, averaged per condition.
    let ids: Vec<&str> = sessions.iter().map(|s| s.2.as_str()).collect();
    let mut args = vec!["data"];
    args.extend(&ids);
    args.extend(["--out", "tables"]);
    let out = panel().current_dir(dir.path()).args(&args).args(["--logs", "logs"]).output().unwrap();
    succeeded(&out);
    let mut tables = csv::Reader::from_path(dir.path().join("tables/sessions.csv")).unwrap();
    let header = tables.headers().unwrap().clone();
    let rows: Vec<std::collections::HashMap<String, String>> = tables
        .records()
        .map(|r| header.iter().map(str::to_owned).zip(r.unwrap().iter().map(str::to_owned)).collect())
        .collect();
    let start = stdout.find("condition,n,").expect("the report as CSV");
    let mut report = csv::Reader::from_reader(&stdout.as_bytes()[start..]);
    let report_header = report.headers().unwrap().clone();
    let mut conditions = 0;
    for r in report.records() {
        let r: std::collections::HashMap<String, String> =
            report_header.iter().map(str::to_owned).zip(r.unwrap().iter().map(str::to_owned)).collect();
        conditions += 1;
        assert_eq!(r["n"], "2");
        let mine: Vec<_> = rows.iter().filter(|row| row["condition"] == r["condition"]).collect();
        assert_eq!(mine.len(), 2, "{} has two sessions in the table", r["condition"]);
        for metric in ["turns", "words_per_speak", "pass_rate", "gini", "lead_share", "confer_lines_per_turn", "usd"] {
            let values: Vec<f64> = mine.iter().map(|row| row[metric].parse().unwrap()).collect();
            let mean = values.iter().sum::<f64>() / 2.0;
            let reported: f64 = r[&format!("{metric}_mean")].parse().unwrap();
            assert!((reported - mean).abs() < 1e-5, "{} {metric}: {reported} vs the tables' {mean}", r["condition"]);
            let sd = ((values[0] - mean).powi(2) + (values[1] - mean).powi(2)).sqrt();
            let reported: f64 = r[&format!("{metric}_sd")].parse().unwrap();
            assert!((reported - sd).abs() < 1e-5, "{} {metric} sd: {reported} vs {sd}", r["condition"]);
        }
    }
    assert_eq!(conditions, 3);
    assert!(logs.join("studies").join(&study).join("report.json").is_file());
}

#[actix_web::test]
async fn a_prompts_variant_reaches_the_head_of_its_sessions_and_no_other() {
    let dir = study_folder();
    let logs = dir.path().join("logs");
    succeeded(&panel_in(dir.path(), &["study", "study.toml"]));
    let (_, record) = only_study(&logs);
    for (condition, _, id) in sessions_of(&record) {
        let open = session_open(&logs, &id);
        let head = open["head"].as_str().unwrap();
        assert_eq!(head.contains("TERSE-VARIANT"), condition == "terse format", "{condition}: {head:.80}");
        assert_eq!(open["templates"]["head"].as_str().unwrap().contains("TERSE-VARIANT"), condition == "terse format");
    }
}

#[actix_web::test]
async fn a_resumed_study_plays_only_what_is_missing() {
    let dir = study_folder();
    let logs = dir.path().join("logs");
    succeeded(&panel_in(dir.path(), &["study", "study.toml"]));
    let (study, mut record) = only_study(&logs);
    // As if the study had been stopped before "deep" #2 ended.
    let deep = record["conditions"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == "deep").unwrap();
    deep["sessions"].as_array_mut().unwrap().retain(|p| p["repeat"] != 2);
    let path = logs.join("studies").join(&study).join("study.json");
    std::fs::write(&path, serde_json::to_string(&record).unwrap()).unwrap();
    let before = std::fs::read_dir(&logs).unwrap().count();

    let stdout = succeeded(&panel_in(dir.path(), &["study", "study.toml", "--resume", &study]));
    assert!(stdout.contains("1 session(s) to play"), "{stdout}");
    assert_eq!(std::fs::read_dir(&logs).unwrap().count(), before + 1, "exactly one new session");
    let (_, record) = only_study(&logs);
    let sessions = sessions_of(&record);
    assert_eq!(sessions.len(), 6);
    assert!(sessions.iter().any(|(c, r, _)| c == "deep" && *r == 2));

    let wrong = panel_in(dir.path(), &["study", "study.toml", "--resume", "no-such-study"]);
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.starts_with("panel: ") && stderr.contains("no study no-such-study"), "{stderr}");
}

fn recorded(stdout: &str) -> Vec<String> {
    let line = stdout.lines().find(|l| l.starts_with("recorded: ")).expect("the recorded ids");
    line["recorded: ".len()..].split(' ').map(str::to_owned).collect()
}

fn compare_json(dir: &Path, ids: &[&str]) -> Value {
    let out = panel().current_dir(dir).arg("compare").args(ids).args(["--json", "--logs", "logs"]).output().unwrap();
    serde_json::from_str(&succeeded(&out)).unwrap()
}

#[actix_web::test]
async fn two_plays_of_one_script_with_one_seed_never_diverge() {
    let dir = study_folder();
    let a = recorded(&succeeded(&panel_in(dir.path(), &["run", "triage.toml", "--seed", "11"])));
    let b = recorded(&succeeded(&panel_in(dir.path(), &["run", "triage.toml", "--seed", "11"])));
    let c = compare_json(dir.path(), &[&a[0], &b[0]]);
    assert_eq!(c["first_divergence"], Value::Null, "{c:#}");
    assert_eq!(c["turns"].as_array().unwrap().len(), 3);
    for t in c["turns"].as_array().unwrap() {
        assert_eq!(t["differs"], json!([]));
        assert_eq!(t["by_session"][&a[0]]["acts"], t["by_session"][&b[0]]["acts"], "the same words");
    }
    let other = recorded(&succeeded(&panel_in(dir.path(), &["run", "triage.toml", "--seed", "12"])));
    let c = compare_json(dir.path(), &[&a[0], &other[0]]);
    assert_eq!(c["first_divergence"], json!(1), "another seed, other words from the first turn: {c:#}");
}

#[actix_web::test]
async fn scripts_that_part_at_their_third_floor_line_diverge_at_turn_three() {
    let dir = study_folder();
    let other = SCRIPT.replace("Who decides?", "Who pays?");
    std::fs::write(dir.path().join("other.toml"), other).unwrap();
    let a = recorded(&succeeded(&panel_in(dir.path(), &["run", "triage.toml", "--seed", "3"])));
    let b = recorded(&succeeded(&panel_in(dir.path(), &["run", "other.toml", "--seed", "3"])));
    let c = compare_json(dir.path(), &[&a[0], &b[0]]);
    assert_eq!(c["first_divergence"], json!(3), "{c:#}");
    let third = &c["turns"][2];
    assert!(third["differs"].as_array().unwrap().contains(&json!("floor")), "{third}");
    assert_eq!(c["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(c["sessions"][0]["metrics"]["seed"], json!(3));
    let text = panel().current_dir(dir.path()).args(["compare", &a[0], &b[0], "--logs", "logs"]).output().unwrap();
    let text = succeeded(&text);
    assert!(text.contains("first divergence: turn 3") && text.contains("← first divergence"), "{text}");
}

#[actix_web::test]
async fn a_branch_compared_with_its_parent_lines_up_from_the_turn_it_branched_at() {
    let logs = tempfile::tempdir().unwrap();
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let parent = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&parent, None).await;
    for line in ["What fails first?", "And then?", "Who notices?"] {
        app.say(&parent, line).await;
        sse.until("turn-end").await;
    }
    let (status, branch) = app.post(&format!("/api/sessions/{parent}/continue"), json!({ "at_turn": 1 })).await;
    assert_eq!(status, 201, "{branch}");
    let branch = branch["id"].as_str().unwrap().to_owned();
    let mut sse = app.sse(&branch, None).await;
    app.say(&branch, "And then?").await;
    sse.until("turn-end").await;
    for id in [&parent, &branch] {
        assert_eq!(app.post_empty(&format!("/api/sessions/{id}/close")).await.0, 200);
    }
    let out = panel().arg("compare").args([&parent, &branch]).arg("--json").arg("--logs").arg(logs.path()).output();
    let c: Value = serde_json::from_str(&succeeded(&out.unwrap())).unwrap();
    assert_eq!(c["folded"], json!({ "through": 1, "of": parent }), "turn 1 is shared: {c:#}");
    let turns = c["turns"].as_array().unwrap();
    assert_eq!(turns.first().unwrap()["turn"], json!(2), "the comparison starts after the shared turns");
    let beside = &turns[0]["by_session"];
    assert_eq!(beside[&branch]["own_turn"], json!(1), "the branch's first turn stands beside its parent's second");
    assert_eq!(beside[&parent]["floor"], beside[&branch]["floor"]);
    assert!(turns[1]["differs"].as_array().unwrap().contains(&json!("missing")), "the branch has no turn 3");
}

#[actix_web::test]
async fn a_create_request_with_a_bad_prompt_file_or_study_tag_is_refused_and_opens_nothing() {
    let app = spawn_app().await;
    let bad = [
        (json!({ "cast": ["ada"], "prompts": { "evil.sh": "x" } }), "bad-prompts"),
        (json!({ "cast": ["ada"], "prompts": { "head.md.j2": "{{ unclosed" } }), "bad-prompts"),
        (json!({ "cast": ["ada"], "study": { "id": "s", "condition": "c", "repeat": 0 } }), "bad-study"),
        (json!({ "cast": ["ada"], "study": { "id": "s\u{1b}]0;x", "condition": "c", "repeat": 1 } }), "bad-study"),
    ];
    for (body, code) in bad {
        let (status, answer) = app.post("/api/sessions", body.clone()).await;
        assert!((400..500).contains(&status), "{body} → {status} {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(!answer.to_string().contains("/tmp"), "no path of the machine: {answer}");
    }
    let (_, list) = app.get("/api/sessions").await;
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[actix_web::test]
async fn an_export_carries_the_study_folders_of_its_sessions_and_no_other() {
    let dir = study_folder();
    let logs = dir.path().join("logs");
    succeeded(&panel_in(dir.path(), &["study", "study.toml"]));
    let lone = recorded(&succeeded(&panel_in(dir.path(), &["run", "triage.toml", "--seed", "5"])));
    let (study, record) = only_study(&logs);
    let export = |out: &Path, ids: &[&str]| {
        let mut cmd = panel();
        cmd.current_dir(dir.path()).arg("export").args(ids).arg("--out").arg(out).args(["--logs", "logs"]);
        succeeded(&cmd.arg("--roster").arg(repo("roster")).arg("--static").arg(repo("static")).output().unwrap())
    };
    // One of the study's sessions is enough to carry its study.
    let one = sessions_of(&record)[0].2.clone();
    let out = tempfile::tempdir().unwrap();
    let said = export(out.path(), &[&one, &lone[0]]);
    assert!(said.contains("1 study folder(s)"), "{said}");
    let folder = out.path().join("logs/studies").join(&study);
    for file in ["study.json", "report.json"] {
        let copied = std::fs::read(folder.join(file)).unwrap();
        assert_eq!(copied, std::fs::read(logs.join("studies").join(&study).join(file)).unwrap(), "{file} as written");
    }
    for file in [
        "js/compare.js",
        "js/comparison.js",
        "js/study.js",
        "js/recorded.js",
        "vendor/diff.min.js",
        "vendor/LICENSE.diff",
    ] {
        assert!(out.path().join(file).is_file(), "the export carries {file}");
    }
    // A session outside any study carries none.
    let out = tempfile::tempdir().unwrap();
    export(out.path(), &[&lone[0]]);
    assert!(!out.path().join("logs/studies").exists(), "no study folder for a lone session");
}
