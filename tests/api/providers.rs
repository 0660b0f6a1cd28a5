//! Real providers against wire-faithful mocks: the prompt cache warming up,
//! a join that writes only what is new, every injected fault, and an API key
//! that appears nowhere.

use std::path::Path;

use panel::config::ProviderChoice;
use panel_actors::provider::CacheTtl;
use panel_actors::provider::anthropic::AnthropicConfig;
use panel_actors::provider::http::ApiKey;
use panel_actors::provider::openai::OpenAiConfig;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::{Fault, MockAnthropic};
use crate::mock_openai::{MockOpenAi, Style};

const KEY: &str = "sk-ant-test-0123456789-SECRET";

fn anthropic(mock: &MockAnthropic) -> ProviderChoice {
    ProviderChoice::Anthropic(AnthropicConfig {
        base_url: mock.url.clone(),
        api_key: ApiKey::new(KEY.into()),
        model: "claude-sonnet-5".into(),
        head_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(2),
    })
}

async fn app_with(provider: ProviderChoice, logs: Option<&Path>) -> TestApp {
    spawn_with(Options { provider, logs: logs.map(Path::to_owned), ..Options::default() }).await
}

/// Runs one turn and returns its logged events.
async fn turn(app: &TestApp, sse: &mut Sse, id: &str, text: &str) -> Vec<SseEvent> {
    app.say(id, text).await;
    logged(&sse.until("turn-end").await)
}

fn cost(events: &[SseEvent]) -> Value {
    events.iter().find(|e| e.event == "cost").expect("a cost event").json()
}

#[actix_web::test]
async fn a_multi_turn_session_writes_the_head_to_the_cache_once_then_reads_it() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = app_with(anthropic(&mock), None).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    mock.push_output("<confer>\nAda: Mine.\nByron: Then go.\n</confer>\n<speak who=\"Ada\">First.</speak>\n<speak who=\"Byron\">Second.</speak>\n<pass who=\"Cleo\"/>");
    let one = turn(&app, &mut sse, &id, "What fails first?").await;
    let two = turn(&app, &mut sse, &id, "And then?").await;
    let three = turn(&app, &mut sse, &id, "And after that?").await;
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
    assert_eq!(logged(&one).iter().filter(|e| e.event == "speak").count(), 2);

    let (c1, c2, c3) = (cost(&one), cost(&two), cost(&three));
    let r = mock.reported();
    assert_eq!(c1["cache_read"], 0);
    assert_eq!((c1["cache_hit"].as_bool(), c2["cache_hit"].as_bool()), (Some(false), Some(true)));
    assert!(c1["cache_write"].as_u64().unwrap() > 1024, "turn 1 writes the head: {c1}");
    assert_eq!(c1["cache_write"].as_u64().unwrap(), r[0].blocks.iter().sum::<u64>(), "all of turn 1 is written");
    assert!(
        c2["cache_read"].as_u64().unwrap() >= c1["cache_write"].as_u64().unwrap(),
        "turn 2 reads what turn 1 wrote: {c2}"
    );
    let new_in_two: u64 = r[1].blocks[r[1].blocks.len() - 2..].iter().sum();
    assert_eq!(c2["cache_write"].as_u64().unwrap(), new_in_two, "turn 2 writes only its new messages");
    assert!(c3["cache_read"].as_u64().unwrap() > c2["cache_read"].as_u64().unwrap());
    for c in [&c1, &c2, &c3] {
        assert_eq!(c["model"], "claude-sonnet-5");
        assert!(c["usd"].as_f64().unwrap() > 0.0);
        assert!(c.get("simulated").is_none());
    }
    // Exactly two breakpoints: the end of the head, the newest message.
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.to_string().matches("cache_control").count(), 2);
    assert_eq!(last["system"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn a_join_writes_only_the_joiners_materials_and_the_new_turn_whatever_the_history() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = app_with(anthropic(&mock), None).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    for n in 0..6 {
        turn(&app, &mut sse, &id, &format!("Question {n} about systems and fear.")).await;
    }
    let (status, _) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "otto" })).await;
    assert_eq!(status, 202);
    let joined = turn(&app, &mut sse, &id, "Otto, welcome. Compared to what?").await;
    let c = cost(&joined);
    let r = mock.reported().pop().unwrap();
    let history: u64 = r.blocks.iter().sum();
    let new: u64 = r.blocks[r.blocks.len() - 2..].iter().sum();
    assert_eq!(
        c["cache_write"].as_u64().unwrap(),
        new,
        "the write is the previous answer plus the joiner's materials and floor line"
    );
    assert_eq!(c["cache_read"].as_u64().unwrap(), history - new, "everything before is read from the cache");
    let stage = mock.requests().pop().unwrap()["messages"].as_array().unwrap().last().unwrap()["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(stage.starts_with("<stage>Otto joins the panel."), "{stage}");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[actix_web::test]
async fn faults_before_anything_streams_are_retried_and_the_turn_completes() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = app_with(anthropic(&mock), None).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    for fault in [
        Fault::RateLimited,
        Fault::Overloaded,
        Fault::ServerError,
        Fault::OverloadedMidStream,
        Fault::Drop,
        Fault::Stall,
    ] {
        let before = mock.requests().len();
        mock.push_fault(fault.clone());
        let events = turn(&app, &mut sse, &id, &format!("Despite {fault:?}?")).await;
        assert!(!events.iter().any(|e| e.event == "error" || e.event == "turn-aborted"), "{fault:?}: {events:?}");
        assert_eq!(mock.requests().len() - before, 2, "{fault:?} was retried once");
        assert_eq!(events.iter().filter(|e| e.event == "speak").count(), 1, "{fault:?}");
    }
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[actix_web::test]
async fn a_failure_after_text_has_streamed_aborts_the_turn_and_keeps_the_context() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = app_with(anthropic(&mock), None).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "A first, whole turn.").await;
    let hash = app.prefix_hash(&id).await;
    let before = mock.requests().len();
    mock.push_output(
        "<speak who=\"Ada\">This answer is long enough to be cut off half way through, as a real one might be.</speak>",
    );
    mock.push_fault(Fault::OverloadedAfterText);
    app.say(&id, "This one breaks mid-answer.").await;
    let events = logged(&sse.until("turn-aborted").await);
    let error = events.iter().find(|e| e.event == "error").expect("an error event").json();
    assert_eq!(error["code"], "overloaded");
    assert!(error["message"].as_str().unwrap().contains("overloaded_error"));
    assert_eq!(mock.requests().len() - before, 1, "not retried: text had been shown");
    assert_eq!(app.prefix_hash(&id).await, hash, "the context is as it was before the turn");
    let again = turn(&app, &mut sse, &id, "Again, please.").await;
    assert!(again.iter().any(|e| e.event == "speak"));
}

#[actix_web::test]
async fn a_rejected_key_is_not_retried_and_its_message_reaches_the_user_without_the_key() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let logs = tempfile::tempdir().unwrap();
    let app = app_with(anthropic(&mock), Some(logs.path())).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "Hello.").await;
    mock.push_fault(Fault::Unauthorized);
    let before = mock.requests().len();
    app.say(&id, "Once more.").await;
    let events = logged(&sse.until("turn-aborted").await);
    let error = events.iter().find(|e| e.event == "error").unwrap().json();
    assert_eq!(error["code"], "unauthorized");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("authentication_error") && message.contains("[redacted]"), "{message}");
    assert_eq!(mock.requests().len() - before, 1, "a 401 is not retried");

    // The key appears in no event, artefact, API answer or log line.
    let (_, close) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    let (_, list) = app.get("/api/sessions").await;
    let (_, health) = app.get("/healthz").await;
    for text in [close.to_string(), list.to_string(), health.to_string()] {
        assert!(!text.contains(KEY), "{text}");
    }
    for entry in walk(logs.path()) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains(KEY) && !text.contains("SECRET"), "{} holds the key", entry.display());
    }
    let lines = log_lines();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| !l.contains(KEY)), "a log line holds the key");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

fn openai(mock: &MockOpenAi) -> ProviderChoice {
    ProviderChoice::OpenAi(OpenAiConfig {
        base_url: mock.url.clone(),
        api_key: None,
        model: "local".into(),
        head_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(2),
    })
}

#[actix_web::test]
async fn an_openai_compatible_server_streams_reports_cached_tokens_and_may_omit_usage() {
    let mock = MockOpenAi::start().await;
    let app = app_with(openai(&mock), None).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    mock.push_style(Style::WithUsage { cached: 0 });
    let one = turn(&app, &mut sse, &id, "First.").await;
    mock.push_style(Style::WithUsage { cached: 640 });
    let two = turn(&app, &mut sse, &id, "Second.").await;
    mock.push_style(Style::NoUsage);
    let three = turn(&app, &mut sse, &id, "Third.").await;
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
    assert_eq!(one.iter().filter(|e| e.event == "speak").count(), 1);
    assert_eq!(cost(&one)["cache_read"], 0);
    assert_eq!(cost(&two)["cache_read"], 640);
    assert_eq!(cost(&two)["output"], 12);
    let c3 = cost(&three);
    assert_eq!(
        (c3["input"].as_u64(), c3["output"].as_u64()),
        (Some(0), Some(0)),
        "no usage: recorded as zero, not a failure"
    );
    assert!(c3["usd"].is_null(), "an unknown model is left unpriced");
    let request = mock.requests().pop().unwrap();
    assert_eq!(request["messages"][0]["role"], "system");
    assert_eq!(request["messages"].as_array().unwrap().len(), 6);
}

#[actix_web::test]
async fn errors_mid_stream_from_an_openai_compatible_server_are_surfaced() {
    let mock = MockOpenAi::start().await;
    let app = app_with(openai(&mock), None).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    for (style, expect) in [(Style::ErrorMidStream, "the model crashed"), (Style::LegacyError, "context too long")] {
        mock.push_style(style);
        app.say(&id, "Go on.").await;
        let events = logged(&sse.until("turn-aborted").await);
        let error = events.iter().find(|e| e.event == "error").unwrap().json();
        assert!(error["message"].as_str().unwrap().contains(expect), "{error}");
    }
    let ok = turn(&app, &mut sse, &id, "Now properly.").await;
    assert!(ok.iter().any(|e| e.event == "speak"));
}

#[actix_web::test]
async fn a_one_hour_ttl_marks_both_breakpoints_and_reports_its_writes_apart() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app =
        spawn_with(Options { provider: anthropic(&mock), cache_ttl: CacheTtl::OneHour, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    let events = turn(&app, &mut sse, &id, "Take your time.").await;
    let c = cost(&events);
    assert!(c["cache_write"].as_u64().unwrap() > 0);
    assert_eq!(c["cache_write_1h"], c["cache_write"], "every write is a 1-hour write");
    let request = mock.requests().pop().unwrap().to_string();
    assert_eq!(request.matches("\"ttl\":\"1h\"").count(), 2);
    // Priced at the 1-hour rate (2× input), not the 5-minute one.
    let tokens = c["cache_write"].as_f64().unwrap();
    let expected = (tokens * 4.0 + c["output"].as_f64().unwrap() * 10.0) / 1e6;
    assert!((c["usd"].as_f64().unwrap() - expected).abs() < 1e-9, "{c}");
}
