//! The composer under pressure: messages sent while the panel speaks are
//! queued visibly, and a turn that fails mid-answer offers to send again.

use panel::config::ProviderChoice;
use panel_actors::provider::anthropic::AnthropicConfig;
use panel_actors::provider::http::ApiKey;

use crate::helpers::*;
use crate::mock_anthropic::{Fault, MockAnthropic};

#[actix_web::test]
async fn a_message_sent_while_the_panel_speaks_is_shown_as_queued_until_its_turn() {
    let app = spawn_with(Options { pace_ms: 25, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("composer-queued").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket", "document.body.dataset.socket === 'open'").await;
    b.type_into(".composer textarea", "First, a long question for the whole panel.").await;
    b.type_into(".composer textarea", ENTER).await;
    b.until("turn 1 in flight", "document.querySelector('#turn-1.in-flight')").await;
    b.type_into(".composer textarea", "Second, while they answer.").await;
    b.type_into(".composer textarea", ENTER).await;
    b.until("the queued badge", "document.querySelector('.queued .badge')?.textContent.startsWith('queued')").await;
    assert!(b.text(".queued").await.contains("Second, while they answer."));
    assert!(b.text(".composer .hint").await.contains("queued"), "the composer says it queues");
    b.screenshot("composer-queued").await;
    b.until("turn 2 to start", "document.querySelector('#turn-2 .floor-text')").await;
    assert_eq!(b.count(".queued").await, 0, "the placeholder gives way to the real turn");
    assert_eq!(b.text("#turn-2 .floor-text").await, "Second, while they answer.");
    b.finish().await;
}

#[actix_web::test]
async fn a_turn_that_fails_mid_answer_shows_why_and_offers_to_send_again() {
    let mock = MockAnthropic::start("sk-ant-browser-test", 1024).await;
    let provider = ProviderChoice::Anthropic(AnthropicConfig {
        base_url: mock.url.clone(),
        api_key: ApiKey::new("sk-ant-browser-test".into()),
        model: "claude-sonnet-5".into(),
        head_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(10),
    });
    let app = spawn_with(Options { provider, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("composer-retry").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket", "document.body.dataset.socket === 'open'").await;
    b.until("the stream to be live", "document.querySelector('#connection').dataset.state === 'live'").await;
    assert!(!b.text("#engine-badge").await.contains("Rehearsal"), "a real model is not badged as rehearsal");
    mock.push_output(
        "<speak who=\"Ada\">An answer long enough to be cut off half way through by an overloaded model.</speak>",
    );
    mock.push_fault(Fault::OverloadedAfterText);
    b.type_into(".composer textarea", "Will this survive?").await;
    b.type_into(".composer textarea", ENTER).await;
    b.until("the abort", "document.querySelector('#turn-1.aborted')").await;
    assert!(b.text(".chat .error").await.contains("overloaded"), "the error is shown");
    let state = b.js("return document.querySelector('#connection').dataset.state;").await;
    assert_eq!(state, serde_json::json!("live"), "the stream stayed up through the model's failure");
    b.screenshot("composer-aborted").await;
    b.click("#turn-1 .retry").await;
    assert_eq!(
        b.js("return document.querySelector('.composer textarea').value;").await,
        serde_json::json!("Will this survive?")
    );
    b.type_into(".composer textarea", ENTER).await;
    b.until("turn 2 to end", "document.querySelector('#turn-2') && !document.querySelector('#turn-2').classList.contains('in-flight') && document.querySelector('#turn-2 .cost').textContent.startsWith('$')").await;
    assert_eq!(b.count("#turn-2 .msg").await, 1);
    b.finish().await;
}
