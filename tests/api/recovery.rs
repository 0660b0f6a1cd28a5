//! A server killed mid-turn repairs the log at its next start, before it
//! accepts a connection: a tailer sees the turn closed without anyone
//! speaking, and nothing reading the log meets a torn line.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::{ProcessLimits, ServerProcess};

async fn create(client: &awc::Client, server: &ServerProcess) -> String {
    let mut res =
        client.post(server.url("/api/sessions")).send_json(&json!({ "cast": ["ada", "byron"] })).await.unwrap();
    let body = res.json::<Value>().await.unwrap();
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {body}; {:?}", server.stderr.lock().unwrap().last()))
        .to_owned()
}

#[actix_web::test]
async fn a_server_killed_mid_turn_closes_the_turn_at_its_next_start_with_nobody_speaking() {
    let logs = tempfile::tempdir().unwrap();
    let client = awc::Client::builder().timeout(WAIT).finish();
    let mut first = ServerProcess::start(logs.path(), &["--rehearsal-pace-ms", "40"], ProcessLimits::default());
    let id = create(&client, &first).await;
    let torn_id = create(&client, &first).await;
    let res = client.get(first.url(&format!("/api/sessions/{id}/events?since=0"))).send().await.unwrap();
    let mut sse = Sse::from_response(res);
    client
        .post(first.url(&format!("/api/sessions/{id}/say")))
        .send_json(&json!({ "text": "Tell me everything." }))
        .await
        .unwrap();
    sse.until("deliberation").await;
    first.kill();
    // And a crash mid-write in another session: half a line at the end.
    let torn = logs.path().join(&torn_id).join("events.jsonl");
    let mut bytes = std::fs::read(&torn).unwrap();
    bytes.extend_from_slice(b"{\"seq\":2,\"ts\":\"2026-11-");
    std::fs::write(&torn, bytes).unwrap();

    let second = ServerProcess::start(logs.path(), &["--rehearsal-pace-ms", "40"], ProcessLimits::default());
    // Before anyone touches either session, both logs are whole again.
    let text = std::fs::read_to_string(logs.path().join(&id).join("events.jsonl")).unwrap();
    assert!(text.ends_with('\n'));
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!((last["kind"].as_str(), last["reason"].as_str()), (Some("turn-aborted"), Some("recovery")));
    let torn_text = std::fs::read_to_string(&torn).unwrap();
    assert!(torn_text.ends_with('\n') && torn_text.contains("\"kind\":\"log-repair\""));

    // A tailer reconnecting with its last id sees the turn closed.
    let last_seen = 4;
    let res = client
        .get(second.url(&format!("/api/sessions/{id}/events")))
        .insert_header(("Last-Event-ID", last_seen.to_string()))
        .send()
        .await
        .unwrap();
    let mut sse = Sse::from_response(res);
    let after = logged(&sse.until("turn-aborted").await);
    assert_eq!(after.first().unwrap().id, Some(last_seen + 1));
    assert_eq!(after.last().unwrap().json()["reason"], "recovery");
    let detail: Value =
        client.get(second.url(&format!("/api/sessions/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(detail["actor"], "idle", "repaired without starting the session: {detail}");
    assert_eq!(second.logged("repaired at start-up"), 2);
}

#[actix_web::test]
async fn with_few_files_allowed_idle_actors_let_go_and_a_thousand_sessions_keep_working() {
    let logs = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        logs.path(),
        &["--rehearsal-pace-ms", "0", "--passivate-after", "1"],
        ProcessLimits { open_files: Some(256), ..ProcessLimits::default() },
    );
    let client = awc::Client::builder().timeout(WAIT).finish();
    let mut ids = Vec::new();
    for n in 0..1000 {
        let id = create(&client, &server).await;
        let said = client
            .post(server.url(&format!("/api/sessions/{id}/say")))
            .send_json(&json!({ "text": format!("Question {n}?") }))
            .await
            .unwrap();
        assert_eq!(said.status().as_u16(), 202, "session {n} could not be spoken to");
        ids.push(id);
    }
    // Every session answered its turn.
    for (n, id) in ids.iter().enumerate() {
        let res = client.get(server.url(&format!("/api/sessions/{id}/events?since=0"))).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "session {n}");
        let mut sse = Sse::from_response(res);
        let turn = logged(&sse.until("turn-end").await);
        assert_eq!(turn.last().unwrap().json()["turn"], 1);
    }
    // And the first ones, long passivated, start again when spoken to.
    for id in &ids[..3] {
        let res = client.get(server.url(&format!("/api/sessions/{id}/events?since=0"))).send().await.unwrap();
        let mut sse = Sse::from_response(res);
        sse.until("turn-end").await;
        let said = client
            .post(server.url(&format!("/api/sessions/{id}/say")))
            .send_json(&json!({ "text": "Still with us?" }))
            .await
            .unwrap();
        assert_eq!(said.status().as_u16(), 202);
        let turn = logged(&sse.until("turn-end").await);
        assert_eq!(turn.last().unwrap().json()["turn"], 2);
    }
    let health: Value = client.get(server.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert!(health["sessions_running"].as_u64().unwrap() < 200, "idle actors let go: {health}");
    assert_eq!(server.logged("Too many open files"), 0);
}

#[actix_web::test]
async fn a_session_closed_before_a_restart_answers_session_closed_and_is_listed_as_closed() {
    let logs = tempfile::tempdir().unwrap();
    let first = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let id = first.create(&["ada", "byron"]).await;
    assert_eq!(first.post_empty(&format!("/api/sessions/{id}/close")).await.0, 200);
    first.stopper.clone().stop().await;

    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let requests = [
        app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Are you still there?" })).await,
        app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "cleo" })).await,
        app.post_empty(&format!("/api/sessions/{id}/close")).await,
        app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "And now?" })).await,
    ];
    for (status, body) in requests {
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "session-closed", "{body}");
    }
    let (_, list) = app.get("/api/sessions").await;
    let listed = list.as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).expect("listed").clone();
    assert_eq!(listed["closed"], true, "{listed}");
    assert_ne!(listed["actor"], "failed", "{listed}");
}
