//! Continuing a session fresh and branching it from an earlier turn: what
//! the new head holds, what the carry carries (never the confer), the
//! transcript's budget, the recap through a mock, and the parent links in
//! every artefact.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::MockAnthropic;

const KEY: &str = "sk-ant-test-continue-SECRET";

async fn continue_from(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    app.post(&format!("/api/sessions/{id}/continue"), body).await
}

/// The new session's `session-open`, from its stream.
async fn opening(app: &TestApp, id: &str) -> Value {
    let mut sse = app.sse(id, Some(0)).await;
    let first = sse.next().await.expect("a session-open");
    assert_eq!(first.event, "session-open");
    first.json()
}

async fn turns(app: &TestApp, id: &str, lines: &[&str]) {
    let mut sse = app.sse(id, None).await;
    for line in lines {
        app.say(id, line).await;
        sse.until("turn-end").await;
    }
}

#[actix_web::test]
async fn a_continued_session_keeps_the_cast_on_stage_drops_the_retired_and_carries_no_confer() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    mock.push_output("<confer>\nAda: CONFER-SECRET, mine.\nByron: Go.\n</confer>\n<speak who=\"Ada\">Queues fail first.</speak>\n<speak who=\"Byron\">Words fail before that.</speak>\n<pass who=\"Cleo\"/>");
    turns(&app, &id, &["What fails first?"]).await;
    let (status, _) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "retire": "cleo" })).await;
    assert_eq!(status, 202);
    mock.push_output("<speak who=\"Ada\">Second answer.</speak>");
    turns(&app, &id, &["@Ada and then?"]).await;

    let (status, child) = continue_from(&app, &id, json!({})).await;
    assert_eq!(status, 201, "{child}");
    let child_id = child["id"].as_str().unwrap().to_owned();
    assert_eq!(child["parent"], json!({ "id": id, "turn": 2, "carry": "transcript" }));
    let open = opening(&app, &child_id).await;
    assert_eq!(open["parent"]["id"], id.as_str());
    let cast: Vec<&str> = open["participants"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(cast, ["ada", "byron"], "on stage at turn 2");

    mock.push_output("<speak who=\"Ada\">Fresh.</speak>");
    turns(&app, &child_id, &["Where were we?"]).await;
    let first = mock.requests().pop().unwrap();
    let head = first["system"][0]["text"].as_str().unwrap();
    assert!(head.contains("<character name=\"Ada\">") && head.contains("<character name=\"Byron\">"));
    assert!(!head.contains("<character name=\"Cleo\">"), "the retired character's materials are gone");
    let carried = first["messages"][0]["content"][0]["text"].as_str().unwrap();
    for delivered in [
        "What fails first?",
        "Queues fail first.",
        "Words fail before that.",
        "(Cleo passed.)",
        "Cleo left the panel",
        "From the floor, to Ada: \"and then?\"",
        "Second answer.",
        "Where were we?",
    ] {
        assert!(carried.contains(delivered), "{delivered:?} is carried:\n{carried}");
    }
    assert!(!carried.contains("CONFER-SECRET"), "the confer is never carried");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());

    // The parent is as it was, and still answers.
    let (_, parent) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!((parent["turns"].as_u64(), parent["closed"].as_bool()), (Some(2), Some(false)));
}

#[actix_web::test]
async fn a_transcript_over_its_budget_drops_the_oldest_turns_and_says_so() {
    // Fill a 9,000-token window one-to-one (no confer: nearly all of it is
    // delivered lines); half of it holds only the last several turns.
    let app = spawn_with(Options { rehearsal_window: Some(9_000), ..Options::default() }).await;
    let id = app.create(&["ada"]).await;
    let mut sse = app.sse(&id, None).await;
    let mut n = 0;
    loop {
        let text = format!("Question number {}: what do we weigh now?", n + 1);
        let (status, _) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": text })).await;
        if status == 409 {
            break;
        }
        sse.until("turn-end").await;
        n += 1;
    }

    let (status, child) = continue_from(&app, &id, json!({ "carry": "transcript" })).await;
    assert_eq!(status, 201, "{child}");
    let carry = opening(&app, child["id"].as_str().unwrap()).await["carry"].as_str().unwrap().to_owned();
    assert!(carry.contains("[Earlier turns omitted: the first "), "{carry}");
    assert!(carry.contains(&format!("Question number {n}:")), "the newest turn is kept");
    assert!(!carry.contains("Question number 1:"), "the oldest is dropped");
    assert!(carry.len() / 4 <= 4_500, "within half the window: {} bytes", carry.len());
}

#[actix_web::test]
async fn a_recap_is_written_by_the_model_in_one_priced_request() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    turns(&app, &id, &["What fails first?", "And who notices?"]).await;
    let sent = mock.requests().len();
    mock.push_output(
        "## Who said what\n- Ada: RECAP-MARK queues.\n## Where they disagree\n- none\n## Still open\n- who notices",
    );

    let (status, child) = continue_from(&app, &id, json!({ "carry": "recap" })).await;
    assert_eq!(status, 201, "{child}");
    let child_id = child["id"].as_str().unwrap();
    assert_eq!(child["parent"]["carry"], "recap");

    let requests = mock.requests();
    assert_eq!(requests.len(), sent + 1, "one extra request");
    let recap = &requests[sent];
    assert!(recap["system"][0]["text"].as_str().unwrap().starts_with("You are the note-taker"));
    assert!(recap["messages"][0]["content"][0]["text"].as_str().unwrap().contains("And who notices?"));
    assert!(!recap.to_string().contains("cache_control"), "a one-off is not cached");
    assert!(recap["max_tokens"].as_u64().unwrap() <= 2048);

    let mut sse = app.sse(child_id, Some(0)).await;
    let open = sse.next().await.unwrap().json();
    assert!(open["carry"].as_str().unwrap().contains("RECAP-MARK queues."), "{open}");
    let cost = sse.next().await.unwrap();
    assert_eq!((cost.event.as_str(), cost.json()["turn"].as_u64()), ("cost", Some(0)));
    let usd = cost.json()["usd"].as_f64().unwrap();
    assert!(usd > 0.0);
    let (_, detail) = app.get(&format!("/api/sessions/{child_id}")).await;
    assert!((detail["totals"]["usd"].as_f64().unwrap() - usd).abs() < 1e-9, "counted in the totals: {detail}");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[actix_web::test]
async fn the_rehearsal_engine_writes_a_recap_offline() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    turns(&app, &id, &["What fails first in a hospital?", "So who decides?"]).await;
    let (status, child) = continue_from(&app, &id, json!({ "carry": "recap" })).await;
    assert_eq!(status, 201, "{child}");
    let carry = opening(&app, child["id"].as_str().unwrap()).await["carry"].as_str().unwrap().to_owned();
    for part in ["## Who said what", "## Where they disagree", "## Still open", "So who decides?"] {
        assert!(carry.contains(part), "{part:?} in {carry}");
    }
}

#[actix_web::test]
async fn a_branch_from_turn_two_of_five_carries_two_turns_and_the_cast_of_then() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    turns(&app, &id, &["One?", "Two?", "Three?"]).await;
    let (status, _) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "otto" })).await;
    assert_eq!(status, 202);
    turns(&app, &id, &["Four?", "Five?"]).await;

    let (status, branch) = continue_from(&app, &id, json!({ "at_turn": 2 })).await;
    assert_eq!(status, 201, "{branch}");
    assert!(branch["config"]["title"].as_str().unwrap().ends_with("(branch at turn 2)"), "{branch}");
    assert_eq!(branch["parent"]["turn"], 2);
    let open = opening(&app, branch["id"].as_str().unwrap()).await;
    let carry = open["carry"].as_str().unwrap();
    assert!(carry.contains("\"One?\"") && carry.contains("\"Two?\""), "{carry}");
    assert!(!carry.contains("Three?") && !carry.contains("Otto"), "nothing after turn 2: {carry}");
    let cast: Vec<&str> = open["participants"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(cast, ["ada", "byron"]);
    let (_, parent) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(parent["turns"], 5, "the parent is untouched");
}

#[actix_web::test]
async fn continuing_what_cannot_be_continued_is_a_clear_error() {
    let app = spawn_app().await;
    let id = app.create(&["ada"]).await;
    let (status, body) = continue_from(&app, &id, json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("nothing-to-continue")), "{body}");
    turns(&app, &id, &["Hello?"]).await;
    for at in [0, 2, 99] {
        let (status, body) = continue_from(&app, &id, json!({ "at_turn": at })).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad-turn")), "{body}");
    }
    let (status, body) = continue_from(&app, &id, json!({ "carry": "summary" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad-json")), "{body}");
    let (status, body) = continue_from(&app, "20200101-000000-none", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("session-not-found")), "{body}");
    // An empty body takes the defaults.
    let mut res = app.client.post(app.url(&format!("/api/sessions/{id}/continue"))).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.body().await);
}

#[actix_web::test]
async fn the_parent_link_is_in_session_json_the_index_and_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(Options { logs: Some(dir.path().to_owned()), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    turns(&app, &id, &["What fails first?"]).await;
    let (_, child) = continue_from(&app, &id, json!({})).await;
    let child_id = child["id"].as_str().unwrap().to_owned();
    let parent = json!({ "id": id, "turn": 1, "carry": "transcript" });

    let (_, list) = app.get("/api/sessions").await;
    let listed = list.as_array().unwrap().iter().find(|s| s["id"] == child_id.as_str()).unwrap();
    assert_eq!(listed["parent"], parent);

    let (status, _) = app.post_empty(&format!("/api/sessions/{child_id}/close")).await;
    assert_eq!(status, 200);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(&child_id).join("session.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["parent"], parent);
    let index: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("index.json")).unwrap()).unwrap();
    let entry = index["sessions"].as_array().unwrap().iter().find(|s| s["id"] == child_id.as_str()).unwrap();
    assert_eq!(entry["parent"], parent);
    let transcript = std::fs::read_to_string(dir.path().join(&child_id).join("transcript.md")).unwrap();
    assert!(transcript.contains(&format!("Continued from session `{id}` at turn 1")), "{transcript}");
}
