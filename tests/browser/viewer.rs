//! The exported site, served by a plain static file server (not panel),
//! renders a recorded session, plays it back step by step, and deep-links
//! to a turn.

use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::helpers::*;

struct StaticServer(Child, u16);

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Python's `http.server`: about as plain as static hosting gets.
async fn serve(dir: &std::path::Path) -> StaticServer {
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

#[actix_web::test]
async fn an_exported_session_renders_plays_back_and_deep_links_from_a_plain_static_server() {
    let logs = tempfile::tempdir().unwrap();
    // Ada has an avatar: the export carries it, and the viewer shows it.
    let roster = roster_copy(logs.path());
    let ada = roster.join("characters/ada.md");
    let text = std::fs::read_to_string(&ada).unwrap().replacen("+++\n", "+++\navatar = \"ada.png\"\n", 1);
    std::fs::write(&ada, text).unwrap();
    let png = panel_actors::cards::png::generated_avatar("#2f7dd1");
    std::fs::write(roster.join("characters/ada.png"), png).unwrap();
    let app = spawn_with(Options {
        logs: Some(logs.path().join("logs")),
        roster: Some(roster.clone()),
        ..Options::default()
    })
    .await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    for text in
        ["What should a city automate first?", "And what should it never automate?", "@Cleo has this happened before?"]
    {
        app.say(&id, text).await;
        sse.until("turn-end").await;
    }
    app.post(&format!("/api/sessions/{id}/close"), json!(null)).await;

    let out = tempfile::tempdir().unwrap();
    let static_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let export = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["export", "--out"])
        .arg(out.path())
        .arg("--logs")
        .arg(logs.path().join("logs"))
        .arg("--static")
        .arg(&static_dir)
        .arg("--roster")
        .arg(&roster)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    assert!(out.path().join("avatars/ada.png").is_file(), "the avatar the session shows is exported");
    let server = serve(out.path()).await;
    let base = format!("http://127.0.0.1:{}", server.1);

    let b = Browser::launch("viewer-export").await;
    b.goto(&format!("{base}/")).await;
    b.until("the session list", "document.querySelectorAll('.session-row').length === 1").await;
    b.click(".session-link").await;
    b.until("the whole session", "document.querySelectorAll('.chat .turn').length === 3").await;
    assert_eq!(b.count("#turn-3 .msg").await, 1, "the addressed turn has one reply");
    assert!(b.count(".drawer .line").await >= 4, "the confer sits beside the chat");
    assert_eq!(b.count(".chat .line").await, 0);
    assert!(b.text(".totals").await.contains("3 turns"));
    assert_eq!(b.count(".branch:not([hidden])").await, 0, "no branching on a static host: there is no API");
    b.until(
        "Ada's face among the cast",
        "document.querySelector('.substrip .chip[data-id=ada] img.face')?.naturalWidth > 0",
    )
    .await;
    b.until(
        "Ada's face from the export",
        "[...document.querySelectorAll('.msg[data-speaker=ada] header img.face')].some((i) => i.complete && i.naturalWidth > 0)",
    )
    .await;
    b.screenshot("viewer-session").await;

    // Step through from the start, line by line, confer first.
    b.js("document.activeElement.blur();").await;
    b.type_into("body", "\u{E011}").await; // Home
    b.until("an empty stage", "document.querySelectorAll('.chat .turn').length === 0").await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        b.type_into("body", "\u{E014}").await; // ArrowRight
        seen.push(b.js("return document.querySelector('.position').textContent;").await);
    }
    for (i, position) in seen.iter().enumerate() {
        let text = position.as_str().unwrap();
        assert!(text.contains(&format!("line {} of", i + 1)), "one line per step: {seen:?}");
    }
    assert!(seen[5].as_str().unwrap().starts_with("turn 1 of 3"), "{seen:?}");
    let floor_then_confer = b.js("return [document.querySelectorAll('#turn-1 .floor-text').length, document.querySelectorAll('#confer-1 .line').length, document.querySelectorAll('#turn-1 .msg').length];").await;
    let counts: Vec<u64> = serde_json::from_value(floor_then_confer).unwrap();
    assert_eq!(counts[0], 1, "the floor's line is shown");
    assert!(counts[1] >= 2 && counts[2] == 0, "the confer comes before any reply: {counts:?}");
    b.screenshot("viewer-stepping").await;
    b.click("button[aria-label='Next turn']").await;
    b.until("turn 1 complete", "document.querySelector('.position').textContent.startsWith('turn 1') && document.querySelectorAll('#turn-1 .msg, #turn-1 .pass').length === 3").await;

    // A link to turn 2 shows the session as it stood when turn 2 ended.
    b.goto(&format!("{base}/index.html#/s/{id}/t/2")).await;
    b.until(
        "turn 2",
        "document.querySelector('#turn-2') && document.querySelectorAll('#turn-2 .msg, #turn-2 .pass').length === 3",
    )
    .await;
    assert_eq!(b.count("#turn-3").await, 0, "nothing after turn 2 yet");
    assert!(b.text(".position").await.starts_with("turn 2 of 3"));
    b.finish().await;
    drop(server);
}
