//! The compare page (`viewer.html#/compare/A,B…`): aligned turns, the first
//! divergence marked and jumped to, a word diff for a changed text — served
//! by panel and from an export on a plain static server — and its marks and
//! its JS comparison equal to `panel compare --json` on the same sessions
//! (two scripts, three sessions, a branch beside its parent).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::*;

pub const SCRIPT: &str = r#"
title = "Triage"
cast = ["ada", "byron", "cleo"]

[[turn]]
say = "What should a hospital automate first?"

[[turn]]
say = "And what would fail first?"

[[turn]]
say = "Who decides?"
"#;

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `panel ARGS` in `dir`, offline, unpaced, on `dir/logs`; its stdout once it succeeded.
pub fn panel_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("PANEL_PROVIDER")
        .current_dir(dir)
        .args(args)
        .args(["--rehearsal-pace-ms", "0", "--logs", "logs"])
        .arg("--roster")
        .arg(repo("roster"))
        .arg("--static")
        .arg(repo("static"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "panel {args:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// `panel run SCRIPT --seed N` in `dir`: the session it recorded.
fn play(dir: &Path, script: &str, seed: &str) -> String {
    let stdout = panel_in(dir, &["run", script, "--seed", seed]);
    let line = stdout.lines().find(|l| l.starts_with("recorded: ")).expect("the recorded id");
    line["recorded: ".len()..].trim().to_owned()
}

fn compare_json(logs: &Path, ids: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .arg("compare")
        .args(ids)
        .arg("--json")
        .arg("--logs")
        .arg(logs)
        .output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `panel export` of every closed session in `logs` into `out`.
pub fn export(logs: &Path, out: &Path) {
    let export = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["export", "--out"])
        .arg(out)
        .arg("--logs")
        .arg(logs)
        .arg("--static")
        .arg(repo("static"))
        .arg("--roster")
        .arg(repo("roster"))
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
}

pub struct StaticServer(Child, pub u16);

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Python's `http.server` on `dir`: about as plain as static hosting gets.
pub async fn serve(dir: &Path) -> StaticServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 serves the export");
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the static server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    StaticServer(child, port)
}

/// The page's own comparison (comparison.js on the files it reads) and the
/// marks it drew, beside what `panel compare --json` says of the same sessions.
async fn page_agrees_with_panel_compare(b: &Browser, ids: &[&str], rust: &Value) {
    let list = serde_json::to_string(ids).unwrap();
    b.js(&format!(
        "window.__cmp = null; Promise.all([import('./js/comparison.js'), import('./js/recorded.js')]).then(async ([c, r]) => {{ \
           const logs = await Promise.all({list}.map(r.fetchEvents)); window.__cmp = JSON.stringify(c.compare(logs)); }}) \
           .catch((e) => {{ window.__cmp = JSON.stringify({{ error: String(e) }}); }}); return true;"
    ))
    .await;
    let js = b.until("the page's comparison", "window.__cmp").await;
    let js: Value = serde_json::from_str(js.as_str().unwrap()).unwrap();
    assert_eq!(js["first_divergence"], rust["first_divergence"], "{js:#}");
    assert_eq!(js["turns"], rust["turns"], "aligned turns, sides and differs agree");
    assert_eq!(js["folded"], rust.get("folded").cloned().unwrap_or(Value::Null));
    let mut sessions = rust["sessions"].clone();
    for s in sessions.as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("metrics");
    }
    assert_eq!(js["sessions"], sessions, "headers, offsets and parents agree");
    // What the reader sees: one row per aligned turn, marked as panel marks it.
    let drawn = b.js("return [...document.querySelectorAll('.cmp-turn')].map((t) => [Number(t.dataset.turn), t.dataset.differs]);").await;
    let expected: Vec<Value> = rust["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let marks: Vec<&str> = t["differs"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
            json!([t["turn"], marks.join(" ")])
        })
        .collect();
    assert_eq!(drawn, Value::Array(expected), "the page's rows and marks");
    let first = b
        .js("const f = document.querySelector('.cmp-turn.first-divergence'); return f ? Number(f.dataset.turn) : null;")
        .await;
    assert_eq!(first, rust["first_divergence"]);
}

/// Two scripts parting at their third floor line, on one page at `base`.
async fn two_scripts_on(b: &Browser, base: &str, a: &str, c: &str, rust: &Value) {
    b.goto(&format!("{base}/viewer.html#/compare/{a},{c}")).await;
    b.until("three aligned turns", "document.querySelectorAll('.cmp-turn').length === 3").await;
    assert_eq!(b.count(".cmp-turn:first-child .cmp-cell").await, 2, "one cell per session");
    assert!(b.text("#cmp-turn-1 .cmp-turn-head").await.contains("all agree"));
    b.until("the first divergence focused", "document.activeElement && document.activeElement.id === 'cmp-turn-3'")
        .await;
    let seen = b.js("const r = document.getElementById('cmp-turn-3').getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight;").await;
    assert_eq!(seen, json!(true), "scrolled into view");
    assert!(b.text(".cmp-summary").await.contains("turn 3"), "the summary names it");
    assert_eq!(b.count("#cmp-turn-3.first-divergence .first-mark").await, 1);
    assert!(b.count("#cmp-turn-3 .floor.mark").await == 2, "different floor lines are marked");
    assert!(b.count("#cmp-turn-3 .word-diff ins").await > 0, "a changed text shows the words put in");
    assert!(b.count("#cmp-turn-3 .word-diff del").await > 0, "… and the words taken out");
    assert_eq!(b.count("#cmp-turn-1 .word-diff").await, 0, "agreeing turns show plain text");
    assert_eq!(b.count("#cmp-turn-3 details.cmp-confer[open]").await, 0, "the confer is folded");
    assert!(b.count("#cmp-turn-3 details.cmp-confer").await == 2);
    assert!(b.text(".cmp-header tr[data-row=seed]").await.contains('3'));
    assert_eq!(b.count(".cmp-header tr[data-row=seed].differs").await, 0, "one seed: no mark");
    assert_eq!(b.count(".cmp-header tr[data-row=words_per_speak] td").await, 2, "metrics from dynamics.json");
    assert_ne!(b.text(".cmp-header tr[data-row=usd] td").await, "—");
    page_agrees_with_panel_compare(b, &[a, c], rust).await;
    // A link to a turn lands on it; `[` goes back to the previous differing turn.
    b.goto(&format!("{base}/viewer.html#/compare/{a},{c}/t/2")).await;
    b.until("turn 2 focused", "document.activeElement && document.activeElement.id === 'cmp-turn-2'").await;
    b.type_into("#cmp-turn-2", "]").await;
    b.until("] moves to the next difference", "document.activeElement && document.activeElement.id === 'cmp-turn-3'")
        .await;
    assert!(b.js("return location.hash;").await.as_str().unwrap().ends_with("/t/3"));
}

#[actix_web::test]
async fn the_compare_page_marks_where_two_scripts_part_and_diffs_the_words_in_panel_and_in_an_export() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("triage.toml"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("other.toml"), SCRIPT.replace("Who decides?", "Who pays?")).unwrap();
    let a = play(dir.path(), "triage.toml", "3");
    let c = play(dir.path(), "other.toml", "3");
    let logs = dir.path().join("logs");
    let rust = compare_json(&logs, &[&a, &c]);
    assert_eq!(rust["first_divergence"], json!(3));

    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
    let b = Browser::launch("compare").await;
    two_scripts_on(&b, &app.address, &a, &c, &rust).await;
    b.screenshot("compare-in-panel").await;

    let out = tempfile::tempdir().unwrap();
    export(&logs, out.path());
    let server = serve(out.path()).await;
    two_scripts_on(&b, &format!("http://127.0.0.1:{}", server.1), &a, &c, &rust).await;
    b.finish().await;
    drop(server);
}

#[actix_web::test]
async fn three_sessions_stand_side_by_side_and_stack_on_a_narrow_window() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("triage.toml"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("other.toml"), SCRIPT.replace("Who decides?", "Who pays?")).unwrap();
    let ids = [
        play(dir.path(), "triage.toml", "3"),
        play(dir.path(), "other.toml", "3"),
        play(dir.path(), "triage.toml", "4"),
    ];
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let logs = dir.path().join("logs");
    let rust = compare_json(&logs, &ids);
    assert_eq!(rust["first_divergence"], json!(1), "another seed differs from the first turn");
    let app = spawn_with(Options { logs: Some(logs), ..Options::default() }).await;
    let b = Browser::launch("compare-three").await;
    b.goto(&app.url(&format!("/viewer.html#/compare/{}", ids.join(",")))).await;
    b.until("three columns", "document.querySelectorAll('#cmp-turn-1 .cmp-cell').length === 3").await;
    page_agrees_with_panel_compare(&b, &ids, &rust).await;
    assert_eq!(b.count(".cmp-header tr[data-row=seed].differs").await, 1, "a different seed is marked in the header");
    let layout = "(() => { const cells = [...document.querySelectorAll('#cmp-turn-1 .cmp-cell')].map((c) => c.getBoundingClientRect()); \
                  return { widths: cells.map((r) => Math.round(r.width)), tops: cells.map((r) => Math.round(r.top)), \
                  page: document.documentElement.scrollWidth <= innerWidth }; })()";
    let wide = b.js(&format!("return {layout};")).await;
    let tops = wide["tops"].as_array().unwrap();
    assert!(tops.iter().all(|t| t == &tops[0]), "side by side on a wide window: {wide}");
    assert!(wide["widths"].as_array().unwrap().iter().all(|w| w.as_u64().unwrap() >= 250), "readable columns: {wide}");
    assert_eq!(wide["page"], json!(true), "the page itself never scrolls sideways: {wide}");
    b.client.set_window_size(420, 900).await.unwrap();
    b.until(
        "stacked cells",
        "(() => { const c = [...document.querySelectorAll('#cmp-turn-1 .cmp-cell')].map((x) => x.getBoundingClientRect()); return c[1].top >= c[0].bottom && c[2].top >= c[1].bottom; })()",
    )
    .await;
    let narrow = b.js(&format!("return {layout};")).await;
    assert_eq!(narrow["page"], json!(true), "no sideways scroll on a narrow window: {narrow}");
    // A session the site does not have: said plainly, no machine path.
    b.goto(&app.url(&format!("/viewer.html#/compare/{},20990101-000000-none", ids[0]))).await;
    let said = b.until("a clear error", "document.querySelector('.error-text')?.textContent").await;
    let said = said.as_str().unwrap();
    assert!(said.contains("20990101-000000-none/events.jsonl: 404") && !said.contains("/tmp"), "{said}");
    b.finish().await;
}

#[actix_web::test]
async fn a_branch_beside_its_parent_folds_the_shared_turns_as_panel_compare_does() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let app = spawn_with(Options { logs: Some(logs.clone()), ..Options::default() }).await;
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
    let rust = compare_json(&logs, &[&parent, &branch]);
    assert_eq!(rust["folded"]["through"], json!(1));
    let b = Browser::launch("compare-branch").await;
    b.goto(&app.url(&format!("/viewer.html#/compare/{parent},{branch}"))).await;
    b.until("the turns after the branch", "document.querySelectorAll('.cmp-turn').length === 2").await;
    page_agrees_with_panel_compare(&b, &[&parent, &branch], &rust).await;
    assert!(b.text(".cmp-folded summary").await.contains("Turns 1–1 are shared"));
    assert_eq!(b.count(".cmp-folded[open]").await, 0, "the shared turns are folded");
    assert!(b.text("#cmp-turn-2").await.contains("its turn 1"), "the branch's own numbering is shown");
    assert_eq!(b.count("#cmp-turn-3 .cmp-cell.missing").await, 1, "the branch has no turn 3");
    assert!(b.text(".cmp-header tr[data-row=parent]").await.contains(&parent));
    b.finish().await;
}
