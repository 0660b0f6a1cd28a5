//! Supervision: stop and start are ordered however fast they follow each
//! other; an actor whose log cannot be written is rebuilt with backoff, then
//! given up on with its reason shown, and tried again when someone acts.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::{ProcessLimits, ServerProcess};

#[actix_web::test]
async fn a_start_right_after_a_stop_waits_for_the_log_to_be_released() {
    let app = spawn_with(Options { pace_ms: 5, ..Options::default() }).await;
    let mut ids = Vec::new();
    for _ in 0..15 {
        let id = app.create(&["ada", "byron"]).await;
        app.say(&id, "Keep talking while we restart you.").await;
        ids.push(id);
    }
    let pairs = ids.iter().map(|id| {
        let app = &app;
        async move {
            let (stop, stop_body) = app.delete(&format!("/api/sessions/{id}/actor")).await;
            let (start, start_body) = app.post_empty(&format!("/api/sessions/{id}/actor")).await;
            (stop, stop_body, start, start_body)
        }
    });
    for (stop, stop_body, start, start_body) in futures_util::future::join_all(pairs).await {
        assert_eq!(stop, 200, "{stop_body}");
        assert_eq!(start, 200, "{start_body}");
    }
    for id in &ids {
        let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
        assert_eq!(detail["actor"], "running", "{detail}");
        let mut sse = app.sse(id, Some(0)).await;
        let events = logged(&sse.until("actor-restart").await);
        assert_eq!(events.last().unwrap().json()["reason"], "started on request");
    }
}

async fn get(client: &awc::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json::<Value>().limit(1 << 20).await.unwrap()
}

#[actix_web::test]
async fn an_actor_whose_log_cannot_be_written_backs_off_gives_up_and_tries_again_when_someone_acts() {
    let logs = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        logs.path(),
        &["--rehearsal-pace-ms", "0"],
        ProcessLimits { file_size: Some(48 * 1024), ..ProcessLimits::default() },
    );
    let client = awc::Client::builder().timeout(WAIT).finish();
    let mut res =
        client.post(server.url("/api/sessions")).send_json(&json!({ "cast": ["ada", "byron"] })).await.unwrap();
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let detail = format!("/api/sessions/{id}");

    // Speak until the log reaches the limit and a write fails, as on a full disk.
    let deadline = Instant::now() + WAIT * 2;
    loop {
        assert!(Instant::now() < deadline, "the log never filled up");
        let said = client
            .post(server.url(&format!("{detail}/say")))
            .send_json(&json!({ "text": "More, please." }))
            .await
            .unwrap();
        let status = said.status().as_u16();
        let d = get(&client, server.url(&detail)).await;
        if d["actor"] == "failed" || status >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // It is rebuilt a few times, backing off, then given up on.
    let deadline = Instant::now() + WAIT * 2;
    while server.logged("not rebuilding it until someone acts") == 0 {
        assert!(Instant::now() < deadline, "the supervisor never gave up: {:?}", server.stderr.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = server.logged("cannot start") + server.logged("its actor died");
    assert!((2..=8).contains(&attempts), "a bounded number of rebuilds, not four a second forever: {attempts}");
    let d = get(&client, server.url(&detail)).await;
    assert_eq!(d["actor"], "failed", "{d}");
    assert!(d["failure"].as_str().unwrap().contains("too large"), "the reason is shown: {d}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = server.logged("cannot start") + server.logged("its actor died");
    assert_eq!(later, attempts, "nothing more is tried until someone acts");

    // Room again (the disk was cleared); the next request brings it back.
    server.set_file_size_limit(rlimit::INFINITY);
    let said =
        client.post(server.url(&format!("{detail}/say"))).send_json(&json!({ "text": "Still there?" })).await.unwrap();
    assert_eq!(said.status().as_u16(), 202);
    let res = client.get(server.url(&format!("{detail}/events?since=0"))).send().await.unwrap();
    let mut sse = Sse::from_response(res);
    // An earlier rebuild may have fitted its own note under the limit; the
    // one that matters is the restart once there is room.
    let restart = loop {
        let restart = logged(&sse.until("actor-restart").await).pop().unwrap();
        if restart.json()["reason"] == "restarted after a failure" {
            break restart;
        }
    };
    let turn = logged(&sse.until("turn-end").await).pop().unwrap();
    assert_eq!(turn.json()["turn"], restart.json()["turn"].as_u64().unwrap() + 1, "the floor's line was answered");
    let d = get(&client, server.url(&detail)).await;
    assert_eq!(d["actor"], "running", "{d}");
}

#[actix_web::test]
async fn thousands_of_tailers_coming_and_going_leave_no_gateway_or_subscriber_behind() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    app.say(&id, "One turn, then close.").await;
    let mut sse = app.sse(&id, Some(0)).await;
    sse.until("turn-end").await;
    drop(sse);
    let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200);
    for _ in 0..2000 {
        let mut sse = app.sse(&id, Some(0)).await;
        sse.until("session-close").await;
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, health) = app.get("/healthz").await;
        if health["subscribers"] == 0 && health["gateways"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn fifteen_stop_start_pairs_at_once_on_one_session_each_succeed_or_answer_a_clear_conflict() {
    let app = spawn_with(Options { pace_ms: 5, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    // A few rounds, each with the session mid-turn: the races are narrow.
    for round in 0..6 {
        let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Keep talking." })).await;
        assert_eq!(status, 202, "{body}");
        let pairs = (0..15).map(|_| {
            let (app, id) = (&app, &id);
            async move {
                let stop = app.delete(&format!("/api/sessions/{id}/actor")).await;
                let start = app.post_empty(&format!("/api/sessions/{id}/actor")).await;
                (stop, start)
            }
        });
        let mut started = 0;
        for ((stop, stop_body), (start, start_body)) in futures_util::future::join_all(pairs).await {
            assert_eq!(stop, 200, "round {round}: {stop_body}");
            match start {
                200 => started += 1,
                409 => assert!(
                    ["actor-running", "actor-stopped"].contains(&start_body["error"]["code"].as_str().unwrap_or("")),
                    "round {round}: a conflict says which: {start_body}"
                ),
                _ => panic!("round {round}: a start answered {start}: {start_body}"),
            }
        }
        assert!(started > 0, "round {round}: at least one start ran the actor");
        // Whatever order they settled in, the session works afterwards.
        let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
        if detail["actor"] == "stopped" {
            assert_eq!(app.post_empty(&format!("/api/sessions/{id}/actor")).await.0, 200);
        }
        let mut sse = app.sse(&id, None).await;
        let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Still with us?" })).await;
        assert_eq!(status, 202, "round {round}: {body}");
        sse.until("turn-end").await;
    }
}
