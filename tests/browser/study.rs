//! A study in the browser: its sessions grouped under it on the viewer's
//! list and the app's sessions page, compared in one click or picked with
//! checkboxes, and its own page (`#/study/<id>`) with the per-condition
//! report side by side — served by panel and from an export on a plain
//! static server.

use serde_json::{Value, json};

use crate::compare::{SCRIPT, export, panel_in, serve};
use crate::helpers::*;

const STUDY: &str = r#"
title = "Depth"
script = "triage.toml"
repeat = 2
seed = 7

[[condition]]
name = "shallow"
depth = 2

[[condition]]
name = "deep"
depth = 8
"#;

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The list page at `base`: the study grouped, the lone session apart.
async fn grouped(b: &Browser, page: &str, study: &str, lone: &str) {
    b.goto(page).await;
    let group = format!(".study-group[data-study='{study}']");
    b.until("the study's group", &format!("document.querySelector(\"{group}\")")).await;
    assert!(b.text(&format!("{group} h2")).await.contains("Depth"), "titled from study.json");
    assert_eq!(b.count(&format!("{group} tr[data-condition]")).await, 2, "one row per condition");
    assert_eq!(b.count(&format!("{group} input.pick-session")).await, 4, "every session can be picked");
    assert_eq!(
        b.count(&format!("{group} .compare-repeat")).await,
        2,
        "each repeat compared across conditions in one click"
    );
    assert_eq!(
        b.count(&format!("{group} tr[data-condition=deep] .vs-link")).await,
        2,
        "deep's repeats against shallow's"
    );
    assert_eq!(b.count(&format!(".session-list input[data-id='{lone}']")).await, 1, "the lone session stands apart");
    assert_eq!(b.count(".session-list .session-row").await, 1, "the study's sessions are not listed twice");
}

/// The study page at `base`: the conditions side by side, as report.json says.
async fn study_page(b: &Browser, base: &str, study: &str, report: &Value) {
    b.goto(&format!("{base}/viewer.html#/study/{study}")).await;
    b.until("the report", "document.querySelector('.study-report tr[data-row=words_per_speak]')").await;
    assert_eq!(b.text(".study-page h1").await, "Depth");
    let heads =
        b.js("return [...document.querySelectorAll('.study-report thead th')].map((t) => t.textContent);").await;
    assert_eq!(heads, json!(["", "shallow", "deep"]), "conditions side by side");
    let cells = b.js("return [...document.querySelectorAll('.study-report tr[data-row=words_per_speak] td')].map((t) => t.textContent);").await;
    for (i, c) in report["conditions"].as_array().unwrap().iter().enumerate() {
        let m = &c["metrics"]["words_per_speak"];
        let shown = format!("{:.3} ± {:.3}", m["mean"].as_f64().unwrap(), m["sd"].as_f64().unwrap());
        assert_eq!(cells[i].as_str().unwrap(), shown, "report.json's mean ± sd for {}", c["name"]);
    }
    assert_eq!(b.count(".study-report a.study-session").await, 4, "its sessions linked");
    assert!(b.text(".study-script").await.contains("Who decides?"), "the script is shown");
    assert_eq!(b.count(".study-page .compare-repeat").await, 2);
}

#[actix_web::test]
async fn a_study_groups_its_sessions_compares_them_in_one_click_and_shows_its_report_in_panel_and_in_an_export() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("triage.toml"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("study.toml"), STUDY).unwrap();
    panel_in(dir.path(), &["study", "study.toml"]);
    let lone = panel_in(dir.path(), &["run", "triage.toml", "--seed", "5"]);
    let lone = lone.lines().find_map(|l| l.strip_prefix("recorded: ")).unwrap().trim().to_owned();
    let logs = dir.path().join("logs");
    let study = std::fs::read_dir(logs.join("studies")).unwrap().next().unwrap().unwrap();
    let study = study.file_name().to_string_lossy().into_owned();
    let record = read(&logs.join("studies").join(&study).join("study.json"));
    let report = read(&logs.join("studies").join(&study).join("report.json"));
    let first = |condition: usize| record["conditions"][condition]["sessions"][0]["id"].as_str().unwrap().to_owned();
    let repeat1 = |condition: usize| {
        let sessions = record["conditions"][condition]["sessions"].as_array().unwrap();
        sessions.iter().find(|p| p["repeat"] == 1).unwrap()["id"].as_str().unwrap().to_owned()
    };

    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
    let b = Browser::launch("study").await;
    grouped(&b, &app.url("/viewer.html#/"), &study, &lone).await;
    b.screenshot("study-grouped").await;
    // One click: every condition's repeat 1, side by side.
    b.click(&format!(".study-group[data-study='{study}'] thead .compare-repeat")).await;
    b.until("the compare page", "document.querySelectorAll('#cmp-turn-1 .cmp-cell').length === 2").await;
    let hash = b.js("return location.hash;").await;
    assert_eq!(hash, json!(format!("#/compare/{},{}", repeat1(0), repeat1(1))));
    assert_eq!(b.count(".cmp-header tr[data-row=depth].differs").await, 1, "the condition's setting is marked");
    assert_eq!(b.count(".cmp-header tr[data-row=seed].differs").await, 0, "one repeat, one seed");
    assert!(b.text(".cmp-header tr[data-row=study]").await.contains("deep · repeat 1"));
    // Any two, picked by hand.
    b.goto(&app.url("/viewer.html#/")).await;
    b.click(&format!(".session-list input[data-id='{lone}']")).await;
    b.click(&format!("input[data-id='{}']", first(1))).await;
    b.click(".compare-selected").await;
    b.until("the picked pair", &format!("location.hash === '#/compare/{lone},{}'", first(1))).await;
    b.until("two columns", "document.querySelectorAll('#cmp-turn-1 .cmp-cell').length === 2").await;
    study_page(&b, &app.address, &study, &report).await;
    b.screenshot("study-page").await;

    // The live app's sessions page groups them too, and compares in the viewer.
    b.goto(&app.url("/")).await;
    let group = format!(".study-group[data-study='{study}']");
    b.until(
        "the app's study group",
        &format!("document.querySelectorAll(\"{group} input.pick-session\").length === 4"),
    )
    .await;
    let href = b.js(&format!("return document.querySelector(\"{group} .compare-repeat\").getAttribute('href');")).await;
    assert!(href.as_str().unwrap().starts_with("viewer.html#/compare/"), "{href}");

    let out = tempfile::tempdir().unwrap();
    export(&logs, out.path());
    for file in ["study.json", "report.json"] {
        assert!(out.path().join("logs/studies").join(&study).join(file).is_file(), "the export carries {file}");
    }
    let server = serve(out.path()).await;
    let base = format!("http://127.0.0.1:{}", server.1);
    grouped(&b, &format!("{base}/"), &study, &lone).await;
    study_page(&b, &base, &study, &report).await;
    b.finish().await;
    drop(server);
}
