//! The binary as a new user installs and runs it: one file, run from a
//! folder that has nothing of panel in it.
//!
//! Installing is copying: the test takes the `panel` binary cargo built for
//! this test run (`CARGO_BIN_EXE_panel`) and copies it into a temporary
//! root's `bin/`, which is what `cargo install --path . --root DIR` ends
//! with. Running `cargo install` here would build the whole dependency tree
//! again in release mode — many minutes on CI's two cores — to test the
//! same files. The copy runs from an empty temporary folder, with `HOME`
//! pointed at another and nothing else in its environment but `PATH`: no
//! `PANEL_HOME`, no key, no checkout to lean on (the binary embeds its app
//! in every profile, so the checkout's `static/` is never read).
//!
//! Needs Debian's `chromium` and `chromium-driver`, like `tests/browser`.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod app;
// Its `pub use` of the app helpers is for the browser tests.
#[allow(dead_code, unused_imports)]
#[path = "../browser/helpers.rs"]
mod browser;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use app::{Sse, WAIT};
use browser::{Browser, ENTER};
use serde_json::{Value, json};

/// The installed binary, in an install root under cargo's temporary
/// folder for tests (replaced each run, so copies do not pile up). Copied
/// once, before this process starts any child: a file being written while
/// another thread forks is inherited open for writing by that child, and
/// cannot be run until it execs ("text file busy").
fn installed() -> &'static Path {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-root/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let staging = bin.join(format!("panel.{}.tmp", std::process::id()));
        std::fs::copy(env!("CARGO_BIN_EXE_panel"), &staging).unwrap();
        std::fs::rename(&staging, bin.join("panel")).unwrap();
        bin.join("panel")
    })
}

/// The installed binary, a home and an empty working folder.
struct Install {
    bin: &'static Path,
    home: PathBuf,
    cwd: PathBuf,
    _dir: tempfile::TempDir,
}

impl Install {
    fn new() -> Self {
        let bin = installed();
        let dir = tempfile::tempdir().unwrap();
        let (home, cwd) = (dir.path().join("home"), dir.path().join("work"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        Self { bin, home, cwd, _dir: dir }
    }

    /// The installed `panel`, in the empty folder, with only `HOME` and `PATH` set.
    fn command(&self) -> Command {
        let mut c = Command::new(self.bin);
        c.current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Starts `panel` on a free port with `args`; returns once its banner is printed.
    fn serve(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let stderr = self.home.join(format!("stderr-{}.log", fastrand::u32(..)));
        let mut child = self
            .command()
            .args(["--addr", "127.0.0.1:0", "--rehearsal-pace-ms", "1"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut banner = Vec::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // The banner ends with its `app:` line (or `pace:` after it).
        while !banner.iter().any(|l: &String| l.starts_with("  app:")) {
            let mut line = String::new();
            let read = out.read_line(&mut line).unwrap();
            assert!(read > 0, "no banner; stderr: {}", std::fs::read_to_string(&stderr).unwrap_or_default());
            banner.push(line.trim_end().to_owned());
        }
        let url = banner[0].split_whitespace().last().unwrap().to_owned();
        let port = url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
        Server { child, banner, url, port, stderr, _stdout: out }
    }
}

struct Server {
    child: Child,
    banner: Vec<String>,
    /// The address the banner prints.
    url: String,
    port: u16,
    /// Where its log goes, shown when a test fails.
    stderr: PathBuf,
    /// Held open: a server whose stdout is closed would fail to print.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// The banner's line for `name` (`roster`, `logs`, `app`), without its label.
    fn line(&self, name: &str) -> &str {
        let label = format!("  {name}:");
        let line = self.banner.iter().find(|l| l.starts_with(&label)).unwrap_or_else(|| panic!("{:?}", self.banner));
        line[label.len()..].trim()
    }

    /// The folder the banner names for `name`.
    fn folder(&self, name: &str) -> PathBuf {
        PathBuf::from(self.line(name).split(" (").next().unwrap())
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("panel's log:\n{}", std::fs::read_to_string(&self.stderr).unwrap_or_default());
        }
    }
}

fn client() -> awc::Client {
    awc::Client::builder().timeout(WAIT).finish()
}

async fn get_json(url: &str) -> Value {
    let mut res = client().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.json().limit(1 << 22).await.unwrap()
}

async fn get_text(url: &str) -> (u16, String) {
    let mut res = client().get(url).send().await.unwrap();
    (res.status().as_u16(), String::from_utf8_lossy(&res.body().await.unwrap()).into_owned())
}

#[actix_web::test]
async fn the_installed_binary_run_from_an_empty_folder_serves_its_app_and_records_a_turn_in_the_data_folder() {
    let install = Install::new();
    let server = install.serve(&[], &[]);
    let data = install.home.join(".local/share/panel");
    assert_eq!(server.folder("roster"), data.join("roster"), "{:?}", server.banner);
    assert_eq!(server.folder("logs"), data.join("logs"));
    assert!(server.line("roster").contains("the data folder") && server.line("roster").contains("written out"));
    assert_eq!(server.line("app"), "built in");
    assert!(std::fs::read_dir(&install.cwd).unwrap().next().is_none(), "nothing is written where it runs");

    // The six default characters, through the API.
    let roster = get_json(&server.api("/api/roster")).await;
    let mut ids: Vec<&str> = roster["characters"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["ada", "byron", "cleo", "iris", "maren", "otto"], "{roster}");

    // The app, at the printed address: styled, its scripts run (they list the roster).
    let b = Browser::launch("install-app").await;
    b.goto(&server.url).await;
    b.until("the roster to load", "document.querySelectorAll('.pick').length === 6").await;
    let styled = "[...document.styleSheets].some(s => (s.href || '').endsWith('/app.css') && s.cssRules.length > 20)";
    assert_eq!(b.js(&format!("return {styled};")).await, json!(true), "app.css loaded");
    assert_eq!(b.js("return typeof vegaEmbed;").await, json!("function"), "the vendored scripts loaded");
    let failed = b
        .js("return performance.getEntriesByType('resource').filter(r => r.responseStatus >= 400).map(r => r.name);")
        .await;
    assert_eq!(failed, json!([]), "every file the page asked for was there");

    // One turn, spoken in the app.
    for id in ["ada", "byron", "cleo"] {
        b.click(&format!(".pick input[value={id}]")).await;
    }
    b.type_into(".new-session input[name=title]", "First run").await;
    b.click(".new-session button[type=submit]").await;
    b.until("the chat to open", "location.hash.startsWith('#/s/')").await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    let id = b.js("return location.hash.slice(4);").await.as_str().unwrap().to_owned();
    let mut events =
        Sse::from_response(client().get(server.api(&format!("/api/sessions/{id}/events"))).send().await.unwrap());
    b.type_into(".composer textarea", "What should we try first?").await;
    b.type_into(".composer textarea", ENTER).await;
    let turn = events.until("turn-end").await;
    assert!(turn.iter().any(|e| e.event == "speak"), "a character answered: {turn:?}");
    b.until("the reply in the chat", "document.querySelectorAll('#turn-1 .replies .msg').length >= 1").await;
    b.finish().await;

    // Its log is in the folder the banner named.
    let log = std::fs::read_to_string(server.folder("logs").join(&id).join("events.jsonl")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"turn-end\"")), "{log}");

    // Closed, it exports as a site that carries the built-in viewer.
    let closed = client().post(server.api(&format!("/api/sessions/{id}/close"))).send_json(&json!({})).await.unwrap();
    assert_eq!(closed.status(), 200);
    drop(server);
    let out = install.output(&["export", "--out", "site"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let site = install.cwd.join("site");
    let viewer = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("static/viewer.html")).unwrap();
    assert_eq!(std::fs::read(site.join("index.html")).unwrap(), viewer);
    assert!(site.join("js/viewer.js").is_file() && site.join(format!("logs/{id}/events.jsonl")).is_file());
}

#[test]
fn version_and_completions_print() {
    let install = Install::new();
    let version = install.output(&["--version"]);
    assert!(version.status.success());
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("panel {}", env!("CARGO_PKG_VERSION")));
    for (shell, mark) in [("bash", "complete -F _panel"), ("zsh", "#compdef panel"), ("fish", "complete -c panel")] {
        let out = install.output(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(mark) && script.contains("roster"), "{shell}: {script:.200}");
    }
}

#[actix_web::test]
async fn the_same_binary_with_static_serves_that_folder_instead() {
    let install = Install::new();
    let folder = install.home.join("my-app");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("static"), &folder);
    std::fs::write(folder.join("marker.txt"), "served from the folder").unwrap();
    let server = install.serve(&["--static", folder.to_str().unwrap()], &[]);
    assert!(server.line("app").contains("my-app"), "{:?}", server.banner);
    assert_eq!(get_text(&server.api("/marker.txt")).await, (200, "served from the folder".to_owned()));
    let (status, index) = get_text(&server.api("/")).await;
    assert!(status == 200 && index.contains("/js/main.js"), "{status} {index:.200}");
    drop(server);

    let built_in = install.serve(&[], &[]);
    assert_eq!(get_text(&built_in.api("/marker.txt")).await.0, 404, "the built-in app has no marker");
}

#[actix_web::test]
async fn the_built_in_app_answers_with_its_types_and_a_304_while_unchanged() {
    let install = Install::new();
    let server = install.serve(&[], &[]);
    let res = client().get(server.api("/js/main.js")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("content-type").unwrap().to_str().unwrap().contains("javascript"));
    let etag = res.headers().get("etag").unwrap().to_str().unwrap().to_owned();
    let again = client().get(server.api("/js/main.js")).insert_header(("If-None-Match", etag)).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let mut missing = client().get(server.api("/no-such.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not-found");
}

#[actix_web::test]
async fn a_second_run_keeps_the_users_roster_edits_and_panel_home_moves_the_data() {
    let install = Install::new();
    let first = install.serve(&[], &[]);
    let ada = first.folder("roster").join("characters/ada.md");
    drop(first);
    let edited = std::fs::read_to_string(&ada).unwrap().replacen("name = \"Ada\"", "name = \"Ada Edited\"", 1);
    assert!(edited.contains("Ada Edited"), "ada.md names Ada in its front matter");
    std::fs::write(&ada, &edited).unwrap();
    let second = install.serve(&[], &[]);
    assert!(!second.line("roster").contains("written out"), "{:?}", second.banner);
    let roster = get_json(&second.api("/api/roster")).await;
    assert!(roster["characters"].as_array().unwrap().iter().any(|c| c["name"] == "Ada Edited"), "{roster}");
    drop(second);

    let elsewhere = install.home.join("panel-home");
    let moved = install.serve(&[], &[("PANEL_HOME", elsewhere.to_str().unwrap())]);
    assert_eq!(moved.folder("roster"), elsewhere.join("roster"));
    assert_eq!(moved.folder("logs"), elsewhere.join("logs"));
    assert!(moved.line("logs").contains("PANEL_HOME"), "{:?}", moved.banner);
    assert!(elsewhere.join("roster/characters/ada.md").is_file());
}

#[test]
fn open_hands_the_apps_address_to_the_opener_once_listening() {
    let install = Install::new();
    let seen = install.home.join("opened.txt");
    let opener = install.home.join("opener.sh");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}.tmp' && mv '{0}.tmp' '{0}'\n", seen.display()),
    )
    .unwrap();
    // Run by `sh`, not executed itself: a script just written may still be
    // open in a child another test is forking ("text file busy").
    let command = format!("/bin/sh {}", opener.display());
    let server = install.serve(&["--open"], &[("PANEL_OPENER", &command)]);
    let deadline = Instant::now() + WAIT;
    while !seen.exists() {
        assert!(Instant::now() < deadline, "the opener was never run");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), format!("http://localhost:{}/", server.port));
}

#[test]
fn a_users_mistake_is_one_line_and_an_exit_code_that_says_which_kind() {
    let install = Install::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let missing = install.home.join("nowhere").to_string_lossy().into_owned();
    for (args, code) in [
        (vec!["--addr", addr.as_str()], 3),
        (vec!["--addr", "0.0.0.0:0"], 2),
        (vec!["--addr", "127.0.0.1:0", "--roster", missing.as_str()], 1),
        (vec!["--addr", "127.0.0.1:0", "--static", missing.as_str()], 1),
    ] {
        let out = install.output(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("panel: ")).collect();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(errors.len(), 1, "{args:?}: one error line: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{args:?}: {stderr}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
