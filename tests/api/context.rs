//! The context budget: each session knows its model's window (from the
//! provider, else the pricing table, else the server's flag), refuses a
//! turn that cannot fit before sending anything, and maps every provider's
//! own overflow answer to `context-full` without harming the context.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::MockAnthropic;
use crate::mock_openai::{MockOpenAi, Server, Style};

const KEY: &str = "sk-ant-test-context-SECRET";

async fn create_with(app: &TestApp, body: Value) -> String {
    let (status, body) = app.post("/api/sessions", body).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn window_of(app: &TestApp, id: &str, want: Option<u64>) -> Value {
    let want = want.map_or(Value::Null, Value::from);
    app.detail_until(id, "the window", |b| b["context"]["window"] == want).await
}

#[actix_web::test]
async fn the_window_comes_from_each_providers_own_endpoint() {
    // Anthropic: GET /v1/models/{id} → max_input_tokens (here unlike the pricing table's).
    let mock = MockAnthropic::start(KEY, 1024).await;
    mock.set_listed_window(123_456);
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    window_of(&app, &id, Some(123_456)).await;

    // llama.cpp: GET /props → default_generation_settings.n_ctx (not meta.n_ctx_train).
    let llama = MockOpenAi::start_as(Server::LlamaCpp { n_ctx: 8192 }).await;
    let app = spawn_with(Options { provider: openai_at(&llama.url), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    window_of(&app, &id, Some(8192)).await;

    // vLLM: GET /v1/models → max_model_len.
    let vllm =
        MockOpenAi::start_as(Server::Vllm { max_model_len: 16_384, version: "0.11.0".into(), flat_errors: false })
            .await;
    let app = spawn_with(Options { provider: openai_at(&vllm.url), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let detail = window_of(&app, &id, Some(16_384)).await;
    assert!(detail["context"]["tokens"].as_u64().unwrap() > 0, "{detail}");
}

#[actix_web::test]
async fn without_the_providers_word_the_window_falls_back_to_the_pricing_table_then_the_flag() {
    // A Claude model the mock does not list (404): the pricing table's context_tokens.
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = create_with(&app, json!({ "cast": ["ada"], "model": "claude-opus-4-5" })).await;
    window_of(&app, &id, Some(200_000)).await;

    // A server that states nothing, a model no table prices: --context-tokens.
    let plain = MockOpenAi::start().await;
    let options = Options { provider: openai_at(&plain.url), context_tokens: Some(32_768), ..Options::default() };
    let app = spawn_with(options).await;
    let id = app.create(&["ada"]).await;
    window_of(&app, &id, Some(32_768)).await;

    // …and without the flag, no window: nothing is refused for size.
    let app = spawn_with(Options { provider: openai_at(&plain.url), ..Options::default() }).await;
    let id = app.create(&["ada"]).await;
    let detail = window_of(&app, &id, None).await;
    assert_eq!(detail["context"]["share"], Value::Null);
}

#[actix_web::test]
async fn a_turn_that_cannot_fit_is_refused_before_anything_is_sent() {
    let app = spawn_with(Options { rehearsal_window: Some(3_000), ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    let mut answered = 0;
    let refusal = loop {
        let text = format!("Question {answered}: what should we weigh next, and why does it matter?");
        let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": text })).await;
        if status != 202 {
            break (status, body);
        }
        let events = sse.until("turn-end").await;
        assert!(events.iter().all(|e| e.event != "turn-aborted"), "each accepted turn fits: {events:?}");
        answered += 1;
        assert!(answered < 20, "a 3,000-token window fills within 20 turns");
    };
    assert!(answered >= 1, "the first turns fit");
    let (status, body) = refusal;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("context-full")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("continue it fresh"), "{body}");

    // Nothing was sent or logged for it; the meter says the window is nearly full.
    let detail = app.detail_until(&id, "the session", |b| b["turns"] == answered).await;
    assert!(detail["context"]["share"].as_f64().unwrap() > 0.5, "{detail}");
    assert_eq!(detail["live"]["queued_input"], 0, "nothing waits to be sent");

    // Over the WebSocket, the same refusal is the ack's error.
    let (_res, mut ws) = app.client.ws(app.url(&format!("/api/sessions/{id}/ws?events=none"))).connect().await.unwrap();
    use futures_util::{SinkExt as _, StreamExt as _};
    // (The same line: a shorter one might just fit.)
    let text = format!("Question {answered}: what should we weigh next, and why does it matter?");
    let say = json!({ "type": "say", "text": text, "id": 7 }).to_string();
    ws.send(awc::ws::Message::Text(say.into())).await.unwrap();
    let answer = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap() {
            awc::ws::Frame::Text(t) => break serde_json::from_slice::<Value>(&t).unwrap(),
            _ => continue,
        }
    };
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str(), answer["id"].as_u64()),
        (Some("error"), Some("context-full"), Some(7))
    );
    let (_, after) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(after["turns"], answered, "still nothing sent");
}

/// Runs one turn through `app`; returns its logged events.
async fn turn(app: &TestApp, sse: &mut Sse, id: &str, text: &str, until: &str) -> Vec<SseEvent> {
    app.say(id, text).await;
    logged(&sse.until(until).await)
}

fn has_error(events: &[SseEvent], code: &str) -> bool {
    events.iter().any(|e| e.event == "error" && e.json()["code"] == code)
}

#[actix_web::test]
async fn anthropics_prompt_is_too_long_is_context_full_and_the_context_is_unharmed() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?", "turn-end").await;
    let before = app.prefix_hash(&id).await;
    let sent = mock.requests().len();
    // The API now counts more than panel estimated: it refuses the next prompt.
    let first = mock.reported()[0].blocks.iter().sum::<u64>();
    mock.set_window(first + 5);

    let events = turn(&app, &mut sse, &id, "And then what?", "turn-aborted").await;
    assert!(has_error(&events, "context-full"), "{events:?}");
    assert_eq!(app.prefix_hash(&id).await, before, "the refused turn left the context as it was");
    assert_eq!(mock.requests().len(), sent + 1);

    // As long a turn is now refused here, before sending.
    let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "And then what?" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("context-full")), "{body}");
    assert_eq!(mock.requests().len(), sent + 1, "nothing more was sent");
    assert!(!format!("{events:?}{body}").contains(KEY));

    // The way out: continue fresh (the aborted turn's line and directions are not carried).
    let (status, child) = app.post(&format!("/api/sessions/{id}/continue"), json!({})).await;
    assert_eq!(status, 201, "{child}");
    mock.set_window(1_000_000);
    let child = child["id"].as_str().unwrap().to_owned();
    let mut sse = app.sse(&child, None).await;
    let events = turn(&app, &mut sse, &child, "Where were we?", "turn-end").await;
    assert!(events.iter().any(|e| e.event == "speak"), "the continued session answers: {events:?}");
}

#[actix_web::test]
async fn llama_cpp_and_vllm_overflow_answers_are_context_full() {
    let servers = [
        Server::LlamaCpp { n_ctx: 100_000 },
        Server::Vllm { max_model_len: 100_000, version: "0.11.0".into(), flat_errors: false },
        Server::Vllm { max_model_len: 100_000, version: "0.9.2".into(), flat_errors: true },
    ];
    for server in servers {
        let mock = MockOpenAi::start_as(server.clone()).await;
        let app = spawn_with(Options { provider: openai_at(&mock.url), ..Options::default() }).await;
        let id = app.create(&["ada", "byron"]).await;
        let mut sse = app.sse(&id, Some(0)).await;
        turn(&app, &mut sse, &id, "What fails first?", "turn-end").await;
        let before = app.prefix_hash(&id).await;
        mock.set_refusal(10);
        let events = turn(&app, &mut sse, &id, "And then?", "turn-aborted").await;
        assert!(has_error(&events, "context-full"), "{server:?}: {events:?}");
        assert_eq!(app.prefix_hash(&id).await, before, "{server:?}: the context is unharmed");
    }
}

#[actix_web::test]
async fn an_answer_cut_short_by_the_window_ends_the_turn_with_what_was_parsed_and_says_why() {
    // Anthropic: stop_reason model_context_window_exceeded.
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    mock.push_output("<speak who=\"Ada\">Whole.</speak>\n<speak who=\"Byron\">Cut off mid-");
    mock.push_stop_reason("model_context_window_exceeded");
    app.say(&id, "Go on.").await;
    let events = logged(&sse.until("error").await);
    let seen = kinds(&events);
    assert!(seen.contains(&"turn-end") && !seen.contains(&"turn-aborted"), "{seen:?}");
    assert!(events.iter().any(|e| e.event == "speak" && e.json()["text"] == "Whole."));
    assert_eq!(events.last().unwrap().json()["code"], "context-full");

    // llama.cpp: finish_reason length with truncated: true.
    let llama = MockOpenAi::start_as(Server::LlamaCpp { n_ctx: 100_000 }).await;
    let app = spawn_with(Options { provider: openai_at(&llama.url), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    llama.push_style(Style::Truncated);
    app.say(&id, "Go on.").await;
    let events = logged(&sse.until("error").await);
    assert!(kinds(&events).contains(&"turn-end"), "{events:?}");
    assert_eq!(events.last().unwrap().json()["code"], "context-full");
    let (status, body) = app.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Go on." })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("context-full")), "{body}");
}
