//! Counterfactual turns through the Anthropic mock: a reroll sends the
//! turn's own request again (same prefix hash, read from the cache), solo
//! asks each character alone, the session is left byte for byte as it
//! was, and bad requests are refused.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::MockAnthropic;

const KEY: &str = "sk-ant-test-replay-SECRET";

async fn replay_events(app: &TestApp, id: &str, rid: &str, since: u64) -> Vec<Value> {
    let res = app.client.get(app.url(&format!("/api/sessions/{id}/replays/{rid}/events?since={since}"))).send().await;
    let mut sse = Sse::from_response(res.expect("SSE answered"));
    let seen = sse.until("replay-close").await;
    seen.iter().map(SseEvent::json).collect()
}

#[actix_web::test]
async fn a_reroll_sends_the_turns_own_request_again_and_solo_asks_each_voice_alone_leaving_the_session_untouched() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    mock.push_output("<confer>\nAda: Mine.\nByron: Go.\n</confer>\n<speak who=\"Ada\">Queues fail first.</speak>\n<speak who=\"Byron\">Words fail before that.</speak>");
    app.say(&id, "What fails first?").await;
    let turn = sse.until("turn-end").await;
    let original_hash = turn.last().unwrap().json()["provenance"]["prefix_hash"].as_str().unwrap().to_owned();
    let original_request = mock.requests().pop().unwrap();
    let log = app.get(&format!("/api/sessions/{id}")).await.1;
    let events_path = format!("/logs/{id}/events.jsonl");
    let before = app.client.get(app.url(&events_path)).send().await.unwrap().body().await.unwrap();

    let (status, reroll) = app.post(&format!("/api/sessions/{id}/replay"), json!({ "turn": 1, "n": 2 })).await;
    assert_eq!(status, 201, "{reroll}");
    let rid = reroll["id"].as_str().unwrap().to_owned();
    assert_eq!(reroll["prefix_hash"], original_hash.as_str(), "the rebuilt turn hashes as the original did");
    let events = replay_events(&app, &id, &rid, 0).await;
    assert_eq!(events[0]["kind"], "replay-open");
    assert_eq!(events[0]["of"], json!({ "session": id, "turn": 1 }));
    let ends: Vec<&Value> = events.iter().filter(|e| e["kind"] == "turn-end").collect();
    assert_eq!(ends.len(), 2, "one turn-end per sample");
    for (i, end) in ends.iter().enumerate() {
        assert_eq!(end["sample"], i as u64 + 1);
        assert_eq!(end["provenance"]["prefix_hash"], original_hash.as_str());
    }
    let requests = mock.requests();
    let resent = &requests[requests.len() - 2];
    assert_eq!(resent["system"], original_request["system"]);
    assert_eq!(resent["messages"], original_request["messages"], "the very request, cache marks included");
    let reported = mock.reported();
    let last = reported.last().unwrap();
    assert_eq!(last.cache_write, 0, "within the cache's lifetime nothing is written again: {last:?}");
    assert!(last.cache_read > 0 && last.input == 0, "the whole prompt is read from the cache: {last:?}");
    // Resume: only what came after seq 2.
    let resumed = replay_events(&app, &id, &rid, 2).await;
    assert_eq!(resumed.first().unwrap()["seq"], 3);

    mock.push_output("<speak who=\"Ada\">Alone, I would still say queues.</speak>");
    mock.push_output("<pass who=\"Byron\"/>");
    let (status, solo) = app.post(&format!("/api/sessions/{id}/replay"), json!({ "turn": 1, "mode": "solo" })).await;
    assert_eq!(status, 201, "{solo}");
    let sid = solo["id"].as_str().unwrap().to_owned();
    let events = replay_events(&app, &id, &sid, 0).await;
    assert!(!events.iter().any(|e| e["kind"] == "deliberation"), "no confer when alone");
    let speakers: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "speak" || e["kind"] == "pass")
        .map(|e| e["speaker"].as_str().unwrap())
        .collect();
    assert_eq!(speakers, ["ada", "byron"], "one reply per on-stage character");
    let requests = mock.requests();
    for (req, name) in requests[requests.len() - 2..].iter().zip(["Ada", "Byron"]) {
        let blocks = req["messages"].as_array().unwrap().last().unwrap()["content"].as_array().unwrap().clone();
        assert_eq!(blocks[0], original_request["messages"][0]["content"][0]["text"].clone().into_block(), "{blocks:?}");
        let instruction = blocks.last().unwrap()["text"].as_str().unwrap();
        assert!(instruction.contains(&format!("only {name} answers")), "{instruction}");
    }
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());

    // The session is as it was: its log's bytes, totals and cache clock.
    let after = app.client.get(app.url(&events_path)).send().await.unwrap().body().await.unwrap();
    assert_eq!(before, after, "the session's log is untouched");
    let now = app.get(&format!("/api/sessions/{id}")).await.1;
    assert_eq!(now["totals"], log["totals"]);
    assert_eq!(now["cache"]["warm_until"], log["cache"]["warm_until"]);
    let (_, listed) = app.get(&format!("/api/sessions/{id}/replays")).await;
    assert_eq!(listed["replays"].as_array().unwrap().len(), 2);
    assert!(listed["replays"][0]["totals"]["usd"].as_f64().unwrap() > 0.0, "priced, apart from the session");

    for (body, code) in [
        (json!({ "turn": 9 }), "bad-turn"),
        (json!({ "turn": 1, "n": 9 }), "bad-n"),
        (json!({ "turn": 1, "model": "no-such-model" }), "unknown-model"),
    ] {
        let (status, err) = app.post(&format!("/api/sessions/{id}/replay"), body).await;
        assert_eq!((status, err["error"]["code"].as_str()), (400, Some(code)), "{err}");
    }
}

trait IntoBlock {
    fn into_block(self) -> Value;
}

impl IntoBlock for Value {
    /// The turn's floor message as the first block of a solo request: the same text, no mark.
    fn into_block(self) -> Value {
        json!({ "type": "text", "text": self })
    }
}
