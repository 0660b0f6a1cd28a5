//! `GET /api/sessions/{id}/history`: a session's log in one response — the
//! same events, in the same order, as the stream replays, then `since=N`
//! for what came after; bad input is a JSON error.

use serde_json::{Value, json};

use crate::helpers::*;

fn seqs(body: &Value) -> Vec<u64> {
    body["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[actix_web::test]
async fn the_history_is_the_logged_events_the_stream_replays_in_order_with_the_last_seq() {
    let app = spawn_with(Options { pace_ms: 0, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "What fails first?").await;
    let streamed: Vec<Value> = logged(&sse.until("turn-end").await).iter().map(|e| e.json()).collect();
    let (status, body) = app.get(&format!("/api/sessions/{id}/history")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"], json!(id));
    assert_eq!(body["events"].as_array().unwrap(), &streamed, "the very events the stream sent, in order");
    assert_eq!(body["last_seq"], streamed.last().unwrap()["seq"]);

    app.say(&id, "And then?").await;
    let more: Vec<u64> = logged(&sse.until("turn-end").await).iter().map(|e| e.id.unwrap()).collect();
    let since = body["last_seq"].as_u64().unwrap();
    let (status, after) = app.get(&format!("/api/sessions/{id}/history?since={since}")).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(seqs(&after), more, "only what came after, with no gap and no duplicate");
    assert_eq!(after["last_seq"].as_u64(), more.last().copied());
    let (_, none) = app.get(&format!("/api/sessions/{id}/history?since=100000")).await;
    assert_eq!((seqs(&none), none["last_seq"].as_u64()), (vec![], more.last().copied()), "last_seq is the log's own");
}

#[actix_web::test]
async fn the_history_of_an_unknown_or_malformed_session_is_a_json_error() {
    let app = spawn_app().await;
    let id = app.create(&["ada"]).await;
    for (path, want) in [
        ("/api/sessions/no-such-session/history".to_owned(), (404, "session-not-found")),
        ("/api/sessions/NOT_AN_ID/history".to_owned(), (400, "bad-id")),
        (format!("/api/sessions/{id}/history?since=soon"), (400, "bad-query")),
        (format!("/api/sessions/{id}/history?from=1"), (400, "bad-query")),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!((status, body["error"]["code"].as_str().unwrap_or_default()), (want.0, want.1), "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().is_some_and(|m| !m.contains("/tmp")),
            "{path}: no machine path: {body}"
        );
    }
}
