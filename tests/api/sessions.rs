//! REST: creating, listing, inspecting, speaking, changing the cast, closing,
//! forking — and a session resumed after a server restart.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_session_is_created_listed_and_inspected() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let (status, list) = app.get("/api/sessions").await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["on_stage"].as_array().unwrap().len(), 2);
    let (status, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["actor"], "running");
    assert_eq!(detail["live"]["turn_in_flight"], false);
    assert_eq!(detail["live"]["queued_input"], 0);
    assert_eq!(detail["turns"], 0);
    let (status, roster) = app.get("/api/roster").await;
    assert_eq!(status, 200);
    assert!(roster["characters"].as_array().unwrap().len() >= 6);
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(health["provider"]["offline"], true);
}

#[actix_web::test]
async fn an_at_address_through_rest_gets_one_answer_and_no_confer() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    let (status, _) =
        app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "what do you hear?", "to": "Cleo" })).await;
    assert_eq!(status, 202);
    let events = logged(&sse.until("turn-end").await);
    assert!(!kinds(&events).contains(&"deliberation"));
    let speakers: Vec<_> = events.iter().filter(|e| e.event == "speak").map(|e| e.json()["speaker"].clone()).collect();
    assert_eq!(speakers, [json!("cleo")]);
}

#[actix_web::test]
async fn a_cast_change_sent_mid_turn_lands_at_the_boundary() {
    let app = spawn_with(Options { pace_ms: 15, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "Where should the evidence come from?").await;
    sse.until("turn-start").await;
    let (status, body) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "otto" })).await;
    assert_eq!((status, body["pending"].as_bool()), (202, Some(true)), "{body}");
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["live"]["pending_changes"], json!([{ "add": "otto" }]));
    assert_eq!(detail["live"]["turn_in_flight"], true);

    let rest = logged(&sse.until("join").await);
    let k = kinds(&rest);
    let end = k.iter().position(|k| *k == "turn-end").expect("the turn ends first");
    assert_eq!(k[end + 1..], ["join"], "{k:?}");
    assert_eq!(rest.last().unwrap().json()["turn"], 2);
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["on_stage"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn closing_and_forking_a_session() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.post(&format!("/api/sessions/{id}/cast"), json!({ "retire": "cleo" })).await;
    app.say(&id, "One question.").await;
    sse.until("turn-end").await;
    let (status, closed) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!((status, closed["closed"].as_bool()), (200, Some(true)), "{closed}");
    assert_eq!(sse.until("session-close").await.last().unwrap().json()["totals"]["turns"], 1);
    let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "more?" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("session-closed")));

    let (status, fork) = app.post_empty(&format!("/api/sessions/{id}/fork")).await;
    assert_eq!(status, 201, "{fork}");
    let cast: Vec<_> = fork["on_stage"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(cast, ["ada", "byron"]);
    let head = fork["prefix_hash"].as_str().unwrap();
    assert_ne!(fork["id"], id.as_str());
    assert!(!head.is_empty());
    // The fork's head holds only the current cast: the retired materials are gone.
    let fork_id = fork["id"].as_str().unwrap();
    let mut fork_sse = app.sse(fork_id, Some(0)).await;
    let open = fork_sse.next().await.unwrap().json();
    assert!(!open["head"].as_str().unwrap().contains("<character name=\"Cleo\">"));
}

#[actix_web::test]
async fn sessions_resume_after_a_server_restart() {
    let logs = tempfile::tempdir().unwrap();
    let first = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let id = first.create(&["ada", "byron"]).await;
    let mut sse = first.sse(&id, Some(0)).await;
    first.say(&id, "Before the restart.").await;
    sse.until("turn-end").await;
    let hash = first.prefix_hash(&id).await;
    first.stopper.clone().stop().await;

    let second = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let (_, list) = second.get("/api/sessions").await;
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["actor"], "idle");
    assert_eq!(list[0]["turns"], 1);
    let accepted = second.say(&id, "After the restart.").await;
    assert_eq!(accepted["turn"], 2);
    let mut sse = second.sse(&id, Some(0)).await;
    let all = logged(&sse.until("turn-end").await);
    let turn_ends = all.iter().filter(|e| e.event == "turn-end").count();
    assert_eq!(turn_ends, 1, "the first turn-end is turn 1's; we stopped at it");
    let mut rest = logged(&sse.until("turn-end").await);
    assert_eq!(rest.pop().unwrap().json()["turn"], 2);
    let seqs: Vec<u64> = all.iter().chain(&rest).map(|e| e.id.unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_ne!(second.prefix_hash(&id).await, hash, "the context grew by turn 2");
}

#[actix_web::test]
async fn sigterm_aborts_the_turn_in_flight_and_the_server_exits_cleanly() {
    let logs = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--rehearsal-pace-ms", "50", "--logs"])
        .arg(logs.path())
        .arg("--roster")
        .arg(repo.join("roster"))
        .arg("--static")
        .arg(repo.join("static"))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("PANEL_PROVIDER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The banner is printed once the server listens.
    let mut banner = String::new();
    {
        use std::io::BufRead as _;
        let stdout = server.stdout.as_mut().unwrap();
        std::io::BufReader::new(stdout).read_line(&mut banner).unwrap();
    }
    assert!(banner.contains(&format!("localhost:{port}")), "{banner}");
    let client = awc::Client::default();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let mut res = client.post(url("/api/sessions")).send_json(&json!({ "cast": ["ada", "byron"] })).await.unwrap();
    let id = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let res = client.get(url(&format!("/api/sessions/{id}/events?since=0"))).send().await.unwrap();
    let mut sse = Sse::from_response(res);
    client
        .post(url(&format!("/api/sessions/{id}/say")))
        .send_json(&json!({ "text": "Long answer, please." }))
        .await
        .unwrap();
    sse.until("deliberation").await;

    let killed = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let aborted = logged(&sse.until("turn-aborted").await);
    assert_eq!(aborted.last().unwrap().json()["reason"], "shutdown");
    assert!(sse.next().await.is_none(), "the stream is closed");
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(logs.path().join(&id).join("events.jsonl")).unwrap();
    assert!(text.ends_with('\n') && text.contains("\"reason\":\"shutdown\""));
}

/// Exit code 3: cannot start here (see `panel::exit`).
#[actix_web::test]
async fn a_port_already_in_use_says_so_in_one_line_and_exits_with_code_three() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let logs = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--logs"])
        .arg(logs.path())
        .arg("--roster")
        .arg(repo.join("roster"))
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("panel runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line, no panic and no backtrace: {stderr}");
    assert!(lines[0].contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(lines[0].contains("in use"), "{stderr}");
    drop(taken);
}
