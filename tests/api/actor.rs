//! Killing, restarting and crashing one session's actor while tailers stay
//! connected and other sessions keep working.

use crate::helpers::*;

#[actix_web::test]
async fn a_killed_actor_aborts_its_turn_refuses_requests_and_restarts_with_the_same_prefix() {
    let app = spawn_with(Options { pace_ms: 10, ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let other = app.create(&["otto", "maren"]).await;
    let mut tail = app.sse(&id, Some(0)).await;
    app.say(&id, "First, a full turn.").await;
    tail.until("turn-end").await;
    let before = app.prefix_hash(&id).await;

    app.say(&id, "This one is interrupted.").await;
    tail.until("deliberation").await;
    let (status, body) = app.delete(&format!("/api/sessions/{id}/actor")).await;
    assert_eq!((status, body["actor"].as_str()), (200, Some("stopped")));
    let aborted = tail.until("turn-aborted").await;
    assert_eq!(aborted.last().unwrap().json()["reason"], "actor-stopped");

    let (status, body) = app.post(&format!("/api/sessions/{id}/say"), serde_json::json!({ "text": "hello?" })).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "actor-stopped");
    assert!(body["error"]["message"].as_str().unwrap().contains(&format!("POST /api/sessions/{id}/actor")));
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["actor"], "stopped");

    // Another session is untouched.
    let mut other_tail = app.sse(&other, None).await;
    app.say(&other, "Meanwhile, over here.").await;
    other_tail.until("turn-end").await;

    let (status, info) = app.post_empty(&format!("/api/sessions/{id}/actor")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["prefix_hash"].as_str(), Some(before.as_str()), "the aborted turn left nothing behind");
    let restart = tail.next().await.unwrap();
    assert_eq!(restart.event, "actor-restart", "the same tailer, still connected, sees the restart");
    app.say(&id, "Back again.").await;
    let turn = logged(&tail.until("turn-end").await);
    assert_eq!(turn.last().unwrap().json()["turn"], 3);
}

#[actix_web::test]
async fn a_panicking_actor_is_restarted_from_its_log_automatically() {
    let app = spawn_with(Options { pace_ms: 10, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut tail = app.sse(&id, Some(0)).await;
    app.say(&id, "A turn that a panic interrupts.").await;
    tail.until("deliberation").await;
    let (status, _) = app.post_empty(&format!("/api/sessions/{id}/actor/panic")).await;
    assert_eq!(status, 202);
    let after = logged(&tail.until("actor-restart").await);
    let k = kinds(&after);
    assert_eq!(k[k.len() - 2..], ["turn-aborted", "actor-restart"], "{k:?}");
    assert_eq!(after[after.len() - 2].json()["reason"], "recovery");
    app.say(&id, "Carry on.").await;
    let turn = logged(&tail.until("turn-end").await);
    assert_eq!(turn.last().unwrap().json()["turn"], 2);
}

#[actix_web::test]
async fn a_tailer_stays_connected_while_its_idle_session_is_passivated_and_started_again() {
    let app =
        spawn_with(Options { passivate_after: Some(std::time::Duration::from_millis(300)), ..Options::default() })
            .await;
    // Keep-warm off: a session keeping its cache warm stays up for its pings.
    let (status, body) =
        app.post("/api/sessions", serde_json::json!({ "cast": ["ada", "byron"], "keep_warm": "off" })).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let mut tail = app.sse(&id, Some(0)).await;
    app.say(&id, "Before the rest.").await;
    tail.until("turn-end").await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
        if detail["actor"] == "idle" {
            assert!(detail.get("live").is_none(), "no actor holds it: {detail}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never passivated: {detail}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.say(&id, "After the rest.").await;
    let turn = logged(&tail.until("turn-end").await);
    assert_eq!(turn.last().unwrap().json()["turn"], 2, "the same tailer sees the next turn");
    assert!(turn.iter().all(|e| e.event != "actor-restart"), "a passivated actor resumes quietly");
}
