//! Grammar-constrained turns on OpenAI-compatible servers: the grammar goes
//! in the field the server reads (llama.cpp, vLLM new and old), never to a
//! server that did not identify itself; the mock checks it is well-formed
//! and admits a right answer to the turn. A server that refuses it costs no
//! turn: the session says so once and goes on unconstrained.

use panel_actors::registry::Constrain;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_openai::{MockOpenAi, Server};

async fn app_for(mock: &MockOpenAi, constrain: Constrain) -> TestApp {
    spawn_with(Options { provider: openai_at(&mock.url), constrain, ..Options::default() }).await
}

async fn turn(app: &TestApp, sse: &mut Sse, id: &str, text: &str) -> Vec<SseEvent> {
    app.say(id, text).await;
    logged(&sse.until("turn-end").await)
}

fn count(events: &[SseEvent], kind: &str) -> usize {
    events.iter().filter(|e| e.event == kind).count()
}

async fn constraint_of(app: &TestApp, id: &str) -> Value {
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    detail["live"]["config"]["constraint"].clone()
}

#[actix_web::test]
async fn each_identified_server_gets_the_grammar_in_its_own_field() {
    let servers = [
        (Server::LlamaCpp { n_ctx: 100_000 }, "gbnf"),
        (Server::Vllm { max_model_len: 100_000, version: "0.11.0".into(), flat_errors: false }, "vllm"),
        (Server::Vllm { max_model_len: 100_000, version: "0.9.2".into(), flat_errors: true }, "vllm-legacy"),
    ];
    for (server, dialect) in servers {
        let mock = MockOpenAi::start_as(server.clone()).await;
        let app = app_for(&mock, Constrain::Auto).await;
        let id = app.create(&["ada", "byron", "cleo"]).await;
        let mut sse = app.sse(&id, Some(0)).await;
        let open = sse.next().await.unwrap().json();
        assert_eq!(open["config"]["constraint"], dialect, "session-open says how: {open}");
        assert_eq!(constraint_of(&app, &id).await, dialect);

        let panel = turn(&app, &mut sse, &id, "What fails first?").await;
        assert!(count(&panel, "deliberation") >= 1 && count(&panel, "speak") == 1, "{server:?}: {panel:?}");
        let addressed = turn(&app, &mut sse, &id, "@Byron and you?").await;
        assert_eq!(count(&addressed, "speak"), 1, "{addressed:?}");
        assert_eq!(mock.grammars().len(), 2, "{server:?}: one grammar per turn");
        assert!(
            mock.grammars()[1].contains("Byron") && !mock.grammars()[1].contains("confer"),
            "the @-turn's own grammar"
        );
        assert!(mock.problems().is_empty(), "{server:?}: {:?}", mock.problems());
    }
}

#[actix_web::test]
async fn an_unidentified_server_and_constrain_off_get_no_grammar() {
    let plain = MockOpenAi::start().await;
    let app = app_for(&plain, Constrain::Auto).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    assert_eq!(constraint_of(&app, &id).await, Value::Null);
    assert!(plain.grammars().is_empty() && plain.problems().is_empty(), "{:?}", plain.problems());

    let llama = MockOpenAi::start_as(Server::LlamaCpp { n_ctx: 100_000 }).await;
    let app = app_for(&llama, Constrain::Off).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    assert!(llama.grammars().is_empty(), "off means off");
    let (_, providers) = app.get("/api/providers").await;
    let openai = providers["providers"].as_array().unwrap().iter().find(|p| p["name"] == "openai").unwrap();
    assert!(openai.get("constraint").is_none(), "{openai}");
}

#[actix_web::test]
async fn a_server_that_refuses_the_grammar_costs_no_turn_and_is_not_asked_again() {
    let mock = MockOpenAi::start_as(Server::LlamaCpp { n_ctx: 100_000 }).await;
    mock.refuse_grammar();
    let app = app_for(&mock, Constrain::Auto).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    let first = turn(&app, &mut sse, &id, "What fails first?").await;
    let errors: Vec<Value> = first.iter().filter(|e| e.event == "error").map(SseEvent::json).collect();
    assert_eq!(errors.len(), 1, "{first:?}");
    assert_eq!(errors[0]["code"], "constraint-unsupported");
    assert_eq!(count(&first, "speak"), 1, "the turn was answered unconstrained");
    assert_eq!(count(&first, "turn-aborted"), 0);

    let second = turn(&app, &mut sse, &id, "And then?").await;
    assert_eq!(count(&second, "error"), 0, "said once");
    assert_eq!(mock.grammars().len(), 1, "not asked again");
    assert_eq!(constraint_of(&app, &id).await, Value::Null);

    // A restarted actor remembers, from its log.
    let (status, _) = app.delete(&format!("/api/sessions/{id}/actor")).await;
    assert_eq!(status, 200);
    let (status, _) = app.post(&format!("/api/sessions/{id}/actor"), json!(null)).await;
    assert_eq!(status, 200);
    let mut sse = app.sse(&id, None).await;
    turn(&app, &mut sse, &id, "Still there?").await;
    assert_eq!(mock.grammars().len(), 1);
}
