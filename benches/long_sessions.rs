//! Long sessions in the browser: what opening a 300- and a 1,000-turn
//! session costs, in the live app and in the viewer, in headless Chromium.
//!
//! Each session is made by `panel run` with the rehearsal engine (offline,
//! no pacing, a window large enough that it never fills), then served by
//! the real application on a free loopback port and opened in a fresh
//! Chromium (`--enable-precise-memory-info`, and `--expose-gc` so heap
//! figures are taken after a collection). Per page it prints:
//! - shown: milliseconds from navigation until the last turn is on screen
//!   (polled every frame, so at most a frame late);
//! - DOM: elements in the document once shown, and the most seen while
//!   scrolling up through every turn to turn 1;
//! - key: the composer's handling of a key (keydown + input + the style and
//!   layout they cause), median and worst of 60, timed with
//!   `performance.now()`; and `slow`: how many of 30 keys typed through
//!   WebDriver the Event Timing API reports taking 16 ms or more (a frame)
//!   from the key to the next paint;
//! - heap: `usedJSHeapSize` after a collection, once shown and after
//!   scrolling through all turns.
//!
//! Run: `cargo bench --bench long_sessions [-- TURNS,...]` (default
//! 300,1000), or `cargo test --bench long_sessions` for a debug server (the
//! page's own figures barely change: the work measured is the browser's).
//! `PANEL_BENCH_STATIC=DIR` serves another copy of the browser app (say, an
//! older checkout's `static/`) to compare. Goals: shown under 500 ms at 300
//! turns and under 1,000 ms at 1,000, in both pages; a key within 16 ms;
//! the DOM bounded by what is shown; the heap flat while scrolling.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use panel::config::{ProviderChoice, Settings};
use panel::startup::Application;
use serde_json::json;

fn script(turns: usize) -> String {
    let mut s = String::from("title = \"Long session\"\ncast = [\"ada\", \"byron\", \"cleo\"]\n");
    for n in 1..=turns {
        s.push_str(&format!("\n[[turn]]\nsay = \"Question {n}: what should a city automate next, and why?\"\n"));
    }
    s
}

/// Plays a `turns`-turn session with `panel run`; returns its id.
fn make_session(logs: &Path, turns: usize) -> String {
    let before: Vec<_> =
        std::fs::read_dir(logs).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    let path = logs.with_file_name(format!("script-{turns}.toml"));
    std::fs::write(&path, script(turns)).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .arg("run")
        .arg(&path)
        .arg("--logs")
        .arg(logs)
        .args(["--rehearsal-pace-ms", "0", "--rehearsal-window", "100000000", "--provider", "rehearsal"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "panel run failed: {}", String::from_utf8_lossy(&out.stderr));
    let id = std::fs::read_dir(logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .find(|n| !before.contains(n) && logs.join(n).join("events.jsonl").exists())
        .expect("a new session folder")
        .to_string_lossy()
        .into_owned();
    eprintln!("made a {turns}-turn session ({id}) in {:.1} s", started.elapsed().as_secs_f64());
    id
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn browser() -> (Client, Driver, tempfile::TempDir) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Driver(
        Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--window-size=1280,900", "--enable-precise-memory-info",
                "--js-flags=--expose-gc", format!("--user-data-dir={}", profile.path().display())],
        },
    });
    let caps: fantoccini::wd::Capabilities = caps.as_object().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return (c, driver, profile),
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no WebDriver session: {e}"),
        }
    }
}

/// Resolves (with `performance.now()`) once the last turn is in the chat's view.
const SHOWN: &str = r#"
const [last, done] = arguments;
const check = () => {
  const el = document.getElementById('turn-' + last);
  const chat = document.querySelector('.chat');
  if (el && chat) {
    const r = el.getBoundingClientRect(), c = chat.getBoundingClientRect();
    if (r.height > 0 && r.top < c.bottom && r.bottom > c.top) return done(performance.now());
  }
  requestAnimationFrame(check);
};
check();
"#;

/// Scrolls the chat up until turn 1 is shown; resolves with the most elements seen.
const SCROLL_UP: &str = r#"
const done = arguments[0];
const chat = document.querySelector('.chat');
let most = document.getElementsByTagName('*').length, frames = 0;
const step = () => {
  most = Math.max(most, document.getElementsByTagName('*').length);
  if (document.getElementById('turn-1') && chat.scrollTop === 0) return done(most);
  if (++frames > 20000) return done(-1);
  chat.scrollTop = 0;
  requestAnimationFrame(() => requestAnimationFrame(step));
};
step();
"#;

/// Times the composer's handling of 60 keys: median and worst, in ms.
const KEYS: &str = r#"
const input = document.querySelector('.composer textarea');
input.disabled = false;
input.focus();
const times = [];
for (let i = 0; i < 60; i++) {
  const t0 = performance.now();
  input.dispatchEvent(new KeyboardEvent('keydown', { key: 'a', bubbles: true, cancelable: true }));
  input.value += 'a';
  input.dispatchEvent(new InputEvent('input', { data: 'a', inputType: 'insertText', bubbles: true }));
  document.body.getBoundingClientRect();
  times.push(performance.now() - t0);
}
input.value = '';
times.sort((a, b) => a - b);
return [times[30], times[59]];
"#;

/// Resolves after two frames.
const FRAMES: &str = "const d = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => d(0)));";

const HEAP: &str = "gc(); gc(); return performance.memory.usedJSHeapSize;";

struct Row {
    turns: usize,
    events: usize,
    page: &'static str,
    shown_ms: f64,
    dom: u64,
    dom_most: i64,
    key: Option<(f64, f64, u64)>,
    heap: (f64, f64),
}

async fn measure(c: &Client, base: &str, id: &str, turns: usize, events: usize, page: &'static str) -> Row {
    c.goto("about:blank").await.unwrap();
    let url = if page == "app" { format!("{base}/#/s/{id}") } else { format!("{base}/viewer.html#/s/{id}") };
    c.goto(&url).await.unwrap();
    let shown = c.execute_async(SHOWN, vec![json!(turns)]).await.unwrap().as_f64().unwrap();
    let dom = c.execute("return document.getElementsByTagName('*').length;", vec![]).await.unwrap().as_u64().unwrap();
    if std::env::var("PANEL_BENCH_DEBUG").is_ok() {
        let t = c.execute("const n = performance.getEntriesByType('navigation')[0]; return [n.domContentLoadedEventEnd, n.loadEventEnd, performance.getEntriesByType('resource').map(r => [r.name.split('/').pop().slice(0, 40), Math.round(r.startTime), Math.round(r.responseEnd)])];", vec![]).await.unwrap();
        eprintln!("{page} {turns}: shown {shown:.0}; {t}");
    }
    let key = if page == "app" {
        let timed = c.execute(KEYS, vec![]).await.unwrap();
        c.execute(
            "window.slowKeys = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.name === 'keydown') window.slowKeys.push(e.duration); }).observe({ type: 'event', durationThreshold: 16 });",
            vec![],
        )
        .await
        .unwrap();
        let input = c.find(Locator::Css(".composer textarea")).await.unwrap();
        // One key at a time, each after the last one's frame, as a person types.
        for ch in "the quick brown fox jumps over".chars() {
            input.send_keys(&ch.to_string()).await.unwrap();
            c.execute_async(FRAMES, vec![]).await.unwrap();
        }
        // Event Timing reports an event after the frame it was handled in.
        c.execute_async("const d = arguments[0]; setTimeout(() => d(0), 200);", vec![]).await.unwrap();
        let slow = c.execute("return window.slowKeys.length;", vec![]).await.unwrap().as_u64().unwrap();
        if std::env::var("PANEL_BENCH_DEBUG").is_ok() {
            eprintln!("slow keydowns (ms): {}", c.execute("return window.slowKeys;", vec![]).await.unwrap());
        }
        c.execute("document.querySelector('.composer textarea').value = '';", vec![]).await.unwrap();
        Some((timed[0].as_f64().unwrap(), timed[1].as_f64().unwrap(), slow))
    } else {
        None
    };
    let before = c.execute(HEAP, vec![]).await.unwrap().as_f64().unwrap();
    let most = c.execute_async(SCROLL_UP, vec![]).await.unwrap().as_i64().unwrap();
    let after = c.execute(HEAP, vec![]).await.unwrap().as_f64().unwrap();
    Row { turns, events, page, shown_ms: shown, dom, dom_most: most, key, heap: (before / 1e6, after / 1e6) }
}

fn main() {
    let turns: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|a| a.split(',').filter_map(|s| s.parse().ok()).collect())
        .unwrap_or_else(|| vec![300, 1000]);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let static_dir = std::env::var("PANEL_BENCH_STATIC").map(PathBuf::from).unwrap_or_else(|_| repo.join("static"));
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sessions: Vec<(usize, String)> = turns.iter().map(|&t| (t, make_session(&logs, t))).collect();
    actix::System::new().block_on(async move {
        let settings = Settings {
            workers: 1,
            passivate_after: None,
            ..Settings::local(logs.clone(), repo.join("roster"), static_dir.clone(), ProviderChoice::Rehearsal)
        };
        let app = Application::build(settings).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let stopper = app.stopper();
        actix_web::rt::spawn(app.run_until_stopped());
        let (client, _driver, _profile) = browser().await;
        let mut rows = Vec::new();
        for (t, id) in &sessions {
            let events = std::fs::read_to_string(logs.join(id).join("events.jsonl")).unwrap().lines().count();
            for page in ["app", "viewer"] {
                // The first open of a page warms Chromium's caches; the second is measured.
                measure(&client, &base, id, *t, events, page).await;
                rows.push(measure(&client, &base, id, *t, events, page).await);
            }
        }
        let _ = client.close().await;
        stopper.stop().await;
        print(&rows, &static_dir);
    });
}

fn print(rows: &[Row], static_dir: &Path) {
    println!("long sessions in headless Chromium (app from {})", static_dir.display());
    println!(
        "{:>6} {:>7} {:<7} {:>9} {:>7} {:>9} {:>16} {:>6} {:>17}",
        "turns", "events", "page", "shown ms", "DOM", "DOM most", "key ms p50/max", "slow", "heap MB shown→up"
    );
    for r in rows {
        let key = r.key.map_or("—".to_string(), |(p50, max, _)| format!("{p50:.2} / {max:.2}"));
        let slow = r.key.map_or("—".to_string(), |(_, _, s)| format!("{s}/30"));
        println!(
            "{:>6} {:>7} {:<7} {:>9.0} {:>7} {:>9} {:>16} {:>6} {:>8.1} → {:<6.1}",
            r.turns, r.events, r.page, r.shown_ms, r.dom, r.dom_most, key, slow, r.heap.0, r.heap.1
        );
    }
}
