//! Counterfactual turns through the Anthropic mock: a reroll sends the
//! turn's own request again (same prefix hash, read from the cache), solo
//! asks each character alone, the session is left byte for byte as it
//! was, and bad requests are refused.

use std::path::Path;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::MockAnthropic;

const KEY: &str = "sk-ant-test-replay-SECRET";
const ADA_LEADS: &str = "<confer>\nAda: Mine.\n</confer>\n<speak who=\"Ada\">Queues.</speak>\n<pass who=\"Byron\"/>";

async fn replay_events(app: &TestApp, id: &str, rid: &str, since: u64) -> Vec<Value> {
    let res = app.client.get(app.url(&format!("/api/sessions/{id}/replays/{rid}/events?since={since}"))).send().await;
    let mut sse = Sse::from_response(res.expect("SSE answered"));
    let seen = sse.until("replay-close").await;
    seen.iter().map(SseEvent::json).collect()
}

/// A session of Ada and Byron through the mock, its first turn played with
/// `output`: the mock, the app, the session, its stream and that turn's events.
async fn first_turn(output: &str) -> (MockAnthropic, TestApp, String, Sse, Vec<SseEvent>) {
    first_turn_in(None, output).await
}

/// [`first_turn`], with the logs kept in `logs` (to be read after a stop).
async fn first_turn_in(logs: Option<&Path>, output: &str) -> (MockAnthropic, TestApp, String, Sse, Vec<SseEvent>) {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let logs = logs.map(Path::to_owned);
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), logs, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    mock.push_output(output);
    app.say(&id, "What fails first?").await;
    let turn = sse.until("turn-end").await;
    (mock, app, id, sse, turn)
}

/// Starts `n` rerolls of turn 1 of `id`: the replay's id and its stream from the start.
async fn start_replay(app: &TestApp, id: &str, n: u32) -> (String, Sse) {
    let (status, started) = app.post(&format!("/api/sessions/{id}/replay"), json!({ "turn": 1, "n": n })).await;
    assert_eq!(status, 201, "{started}");
    let rid = started["id"].as_str().unwrap().to_owned();
    let res = app.client.get(app.url(&format!("/api/sessions/{id}/replays/{rid}/events?since=0"))).send().await;
    (rid, Sse::from_response(res.expect("the replay's stream")))
}

#[actix_web::test]
async fn a_reroll_sends_the_turns_own_request_again_and_solo_asks_each_voice_alone_leaving_the_session_untouched() {
    let (mock, app, id, _sse, turn) = first_turn("<confer>\nAda: Mine.\nByron: Go.\n</confer>\n<speak who=\"Ada\">Queues fail first.</speak>\n<speak who=\"Byron\">Words fail before that.</speak>").await;
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

#[actix_web::test]
async fn a_turn_replays_under_another_model_and_depth_an_at_turn_rerolls_its_one_voice_and_a_closed_session_still_replays()
 {
    let (mock, app, id, mut sse, turn) = first_turn(ADA_LEADS).await;
    let hash = turn.last().unwrap().json()["provenance"]["prefix_hash"].clone();
    let original = mock.requests().pop().unwrap();

    // Another model and another depth: the same history, asked of something else.
    mock.push_output("<confer>\nByron: Me.\n</confer>\n<speak who=\"Byron\">Words.</speak>");
    let path = format!("/api/sessions/{id}/replay");
    let (status, other) = app.post(&path, json!({ "turn": 1, "model": "claude-haiku-4-5", "depth": 2 })).await;
    assert_eq!(status, 201, "{other}");
    assert_eq!(other["model"], "claude-haiku-4-5");
    assert_eq!(other["same_settings"], false);
    assert_ne!(other["prefix_hash"], hash, "another depth is another head");
    let events = replay_events(&app, &id, other["id"].as_str().unwrap(), 0).await;
    assert!(events.iter().any(|e| e["kind"] == "speak" && e["speaker"] == "byron"), "{events:?}");
    let sent = mock.requests().pop().unwrap();
    assert_eq!(sent["model"], "claude-haiku-4-5");
    assert_ne!(sent["system"], original["system"], "the head carries the other depth");
    assert_eq!(sent["messages"], original["messages"], "the conversation so far is the same");

    // An @-turn rerolls as one: only the addressed character is asked.
    mock.push_output("<speak who=\"Byron\">Only I answer.</speak>");
    let (status, _) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "And you?", "to": "Byron" })).await;
    assert_eq!(status, 202);
    sse.until("turn-end").await;
    let addressed = mock.requests().pop().unwrap();
    mock.push_output("<speak who=\"Byron\">Still only I.</speak>");
    let (status, at) = app.post(&path, json!({ "turn": 2 })).await;
    assert_eq!(status, 201, "{at}");
    let events = replay_events(&app, &id, at["id"].as_str().unwrap(), 0).await;
    let speakers: Vec<&str> =
        events.iter().filter(|e| e["kind"] == "speak").map(|e| e["speaker"].as_str().unwrap()).collect();
    assert_eq!(speakers, ["byron"]);
    assert_eq!(mock.requests().pop().unwrap()["messages"], addressed["messages"], "the @-turn's own request");
    let (status, err) = app.post(&path, json!({ "turn": 2, "mode": "solo" })).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("solo-of-addressed-turn")), "{err}");

    // A turn in flight cannot be replayed yet.
    mock.push_fault(crate::mock_anthropic::Fault::Stall);
    app.say(&id, "And then?").await;
    sse.until("turn-start").await;
    let (status, err) = app.post(&path, json!({ "turn": 3 })).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("turn-in-flight")), "{err}");
    let (status, err) = app.post(&path, json!({ "turn": 1, "provider": "nobody" })).await;
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("unknown-provider")), "{err}");

    // Closed, it still replays, from its log alone.
    let (status, _) = app.post(&format!("/api/sessions/{id}/close"), json!({})).await;
    assert_eq!(status, 200);
    mock.push_output(
        "<confer>\nAda: Again.\n</confer>\n<speak who=\"Ada\">Queues, again.</speak>\n<pass who=\"Byron\"/>",
    );
    let (status, closed) = app.post(&path, json!({ "turn": 1 })).await;
    assert_eq!(status, 201, "{closed}");
    assert_eq!(closed["prefix_hash"], hash);
    let events = replay_events(&app, &id, closed["id"].as_str().unwrap(), 0).await;
    assert_eq!(events.iter().filter(|e| e["kind"] == "turn-end").count(), 1);
    let (_, listed) = app.get(&format!("/api/sessions/{id}/replays")).await;
    assert_eq!(listed["replays"].as_array().unwrap().len(), 3);
}

#[actix_web::test]
async fn the_replay_index_holds_each_sample_before_the_next_begins_and_the_end_before_the_close() {
    let (mock, app, id, _sse, _) = first_turn(ADA_LEADS).await;

    // What the index says of replay `rid`: whether it is playing, and which samples have ended.
    let index = |rid: String| {
        let (app, id) = (&app, id.clone());
        async move {
            let (status, index) = app.get(&format!("/logs/{id}/replays/index.json")).await;
            assert_eq!(status, 200);
            let listing =
                index["replays"].as_array().unwrap().iter().find(|l| l["id"] == rid.as_str()).unwrap().clone();
            let finished: Vec<u64> = index["turns"][0]["samples"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["replay"] == rid.as_str() && s["finished"] == true)
                .map(|s| s["sample"].as_u64().unwrap())
                .collect();
            (listing["running"].clone(), finished)
        }
    };

    // `replay-close` is streamed only once the index says the replay has ended.
    mock.push_output(
        "<confer>\nAda: Again.\n</confer>\n<speak who=\"Ada\">Queues again.</speak>\n<pass who=\"Byron\"/>",
    );
    mock.push_output("<confer>\nByron: Mine.\n</confer>\n<speak who=\"Byron\">Words.</speak>\n<pass who=\"Ada\"/>");
    let (rid, mut stream) = start_replay(&app, &id, 2).await;
    stream.until("replay-close").await;
    assert_eq!(index(rid).await, (json!(false), vec![1, 2]), "the index says it ended before its close is streamed");

    // The second sample's turn-start is published only once the index holds
    // the first; the provider holds the second, so the replay is playing still.
    mock.push_output(
        "<confer>\nAda: Once more.\n</confer>\n<speak who=\"Ada\">Still queues.</speak>\n<pass who=\"Byron\"/>",
    );
    mock.push_fault(crate::mock_anthropic::Fault::Stall);
    let (rid, mut stream) = start_replay(&app, &id, 2).await;
    stream.until("turn-start").await;
    let second = stream.until("turn-start").await;
    assert_eq!(second.last().unwrap().json()["sample"], 2);
    assert_eq!(index(rid).await, (json!(true), vec![1]), "sample 1 is in the index before sample 2 begins");
}

#[actix_web::test]
async fn a_replay_a_crash_cut_short_is_closed_when_the_server_starts_again_and_shown_as_ended() {
    let logs = tempfile::tempdir().unwrap();
    let (mock, first, id, _sse, _) = first_turn_in(Some(logs.path()), ADA_LEADS).await;
    mock.push_output(ADA_LEADS);
    mock.push_output(ADA_LEADS);
    let (rid, mut replay) = start_replay(&first, &id, 2).await;
    replay.until("replay-close").await;
    first.stopper.clone().stop().await;

    // As a crash leaves it: cut after sample 2's first confer line, mid-line,
    // with the index still saying it plays.
    let dir = logs.path().join(&id).join("replays");
    let path = dir.join(format!("{rid}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.iter().position(|l| l.contains("\"deliberation\"") && l.contains("\"sample\":2")).unwrap();
    let spent: f64 = lines[..cut]
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "cost")
        .map(|e| e["usd"].as_f64().unwrap())
        .sum();
    std::fs::write(&path, format!("{}\n{{\"seq\":", lines[..=cut].join("\n"))).unwrap();
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    std::fs::write(dir.join("index.json"), index.replace("\"running\": false", "\"running\": true")).unwrap();

    let options =
        Options { provider: anthropic_at(&mock.url, KEY), logs: Some(logs.path().to_owned()), ..Options::default() };
    let second = spawn_with(options).await;
    let events = replay_events(&second, &id, &rid, 0).await;
    let tail: Vec<(&str, Option<u64>)> =
        events[cut + 1..].iter().map(|e| (e["kind"].as_str().unwrap(), e["sample"].as_u64())).collect();
    assert_eq!(
        tail,
        [("log-repair", None), ("error", Some(2)), ("turn-aborted", Some(2)), ("replay-close", None)],
        "the torn line cut, the open sample aborted, the replay closed"
    );
    assert_eq!(events[events.len() - 2]["reason"], "interrupted");
    let close = events.last().unwrap();
    assert_eq!(close["totals"]["turns"], 1, "one sample had ended: {close}");
    assert!((close["totals"]["usd"].as_f64().unwrap() - spent).abs() < 1e-9, "what the log says was spent: {close}");

    let (_, listed) = second.get(&format!("/api/sessions/{id}/replays")).await;
    let listing = &listed["replays"][0];
    assert_eq!((listing["closed"].clone(), listing["running"].clone()), (json!(true), json!(false)), "{listed}");
    let (_, index) = second.get(&format!("/logs/{id}/replays/index.json")).await;
    assert_eq!(index["replays"][0]["running"], false, "the chat and the viewer no longer show it playing: {index}");
}

#[actix_web::test]
async fn a_stop_ends_a_replays_sample_in_flight_as_interrupted_and_closes_its_log() {
    let logs = tempfile::tempdir().unwrap();
    let (mock, app, id, _sse, _) = first_turn_in(Some(logs.path()), ADA_LEADS).await;
    mock.push_output(ADA_LEADS);
    mock.push_fault(crate::mock_anthropic::Fault::Stall);
    let (rid, mut replay) = start_replay(&app, &id, 2).await;
    replay.until("turn-start").await;
    replay.until("turn-start").await;

    // Held by the provider mid-sample when the server stops.
    app.stopper.clone().stop().await;
    let dir = logs.path().join(&id).join("replays");
    let text = std::fs::read_to_string(dir.join(format!("{rid}.jsonl"))).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tail: Vec<(&str, Option<u64>)> =
        events.iter().rev().take(3).rev().map(|e| (e["kind"].as_str().unwrap(), e["sample"].as_u64())).collect();
    assert_eq!(tail, [("error", Some(2)), ("turn-aborted", Some(2)), ("replay-close", None)], "{text}");
    assert_eq!(events[events.len() - 2]["reason"], "interrupted");
    assert_eq!(events.last().unwrap()["totals"]["turns"], 1, "the sample that ended is counted");
    let index: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["replays"][0]["running"], false, "{index}");
}
