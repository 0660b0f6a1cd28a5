//! `panel replay`: a turn of a recorded, closed session played again
//! in-process and offline, summarised, recorded beside the session and
//! never in it, and carried by an export.

use super::*;

const SCRIPT: &str = r#"
title = "Triage"
cast = ["ada", "byron", "cleo"]

[[turn]]
say = "What should a hospital automate first?"

[[turn]]
say = "And what would fail first?"
"#;

fn replay(logs: &Path, args: &[&str]) -> std::process::Output {
    replay_with(logs, args, &[])
}

fn replay_with(logs: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    panel()
        .envs(env.iter().copied())
        .arg("replay")
        .args(args)
        .args(["--rehearsal-pace-ms", "0", "--logs"])
        .arg(logs)
        .arg("--roster")
        .arg(repo("roster"))
        .arg("--static")
        .arg(repo("static"))
        .output()
        .unwrap()
}

#[actix_web::test]
async fn panel_replay_plays_a_closed_sessions_turn_again_and_summarises_it_leaving_the_log_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("triage.toml");
    std::fs::write(&script, SCRIPT).unwrap();
    let logs = dir.path().join("logs");
    let stdout = run_offline(&script, &logs, &["--seed", "11"]);
    let line = stdout.lines().find(|l| l.starts_with("recorded: ")).expect("the recorded id");
    let id = line["recorded: ".len()..].trim().to_owned();
    let log = logs.join(&id).join("events.jsonl");
    let before = std::fs::read(&log).unwrap();

    let out = replay(&logs, &[&id, "--turn", "2", "--n", "3", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let summary = &answer["summary"];
    assert_eq!(summary["turn"], 2);
    assert_eq!(summary["rerolls"], 3, "three reroll samples ended: {summary}");
    assert_eq!(summary["samples"].as_array().unwrap().len(), 3);
    let characters: Vec<&str> =
        summary["characters"].as_array().unwrap().iter().map(|c| c["character"].as_str().unwrap()).collect();
    assert_eq!(characters, ["ada", "byron", "cleo"]);
    for c in summary["characters"].as_array().unwrap() {
        let counted = c["spoke"].as_u64().unwrap() + c["passed"].as_u64().unwrap() + c["silent"].as_u64().unwrap();
        assert_eq!(counted, 3, "every reroll counted once per character: {c}");
    }
    assert!(answer["replay"]["totals"]["usd"].as_f64().is_some());

    let out = replay(&logs, &[&id, "--turn", "1", "--mode", "solo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("replay ") && text.contains("of turn 1 · solo ×1"), "{text}");
    for name in ["ada", "byron", "cleo"] {
        assert!(text.contains(&format!("({name} alone)")), "one solo sample per character: {text}");
    }
    assert!(text.contains("word overlap, alone vs with the others"), "{text}");

    // Another reroll of turn 2 is summarised alone, not with the earlier one,
    // and the environment's model is the server's, not asked of the replay.
    let out = replay_with(&logs, &[&id, "--turn", "2", "--n", "2", "--json"], &[("PANEL_MODEL", "claude-haiku-4-5")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(answer["summary"]["samples"].as_array().unwrap().len(), 2, "{answer}");
    assert_eq!(answer["summary"]["rerolls"], 2);
    assert_eq!(answer["replay"]["same_settings"], true, "a plain reroll keeps the session's settings: {answer}");

    assert_eq!(std::fs::read(&log).unwrap(), before, "the session's log is byte for byte as it was");
    let recorded: Vec<String> = std::fs::read_dir(logs.join(&id).join("replays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        recorded.iter().filter(|n| n.ends_with(".jsonl")).count(),
        3,
        "every replay recorded beside the session: {recorded:?}"
    );

    let site = dir.path().join("site");
    let export = panel()
        .args(["export", &id, "--out"])
        .arg(&site)
        .arg("--logs")
        .arg(&logs)
        .arg("--roster")
        .arg(repo("roster"))
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    for name in recorded.iter().filter(|n| n.ends_with(".jsonl") || *n == "index.json") {
        let copied = std::fs::read(site.join("logs").join(&id).join("replays").join(name)).unwrap();
        assert_eq!(copied, std::fs::read(logs.join(&id).join("replays").join(name)).unwrap(), "{name} exported");
    }

    let out = replay(&logs, &[&id, "--turn", "9"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("turn 9 is not a turn of this session"), "{err}");
    assert!(!err.contains(dir.path().to_str().unwrap()), "no machine path: {err}");
}
