//! Provider connections are let go of as soon as nobody needs them: a turn
//! cancelled mid-stream — here, by closing its session while the model has
//! gone silent — closes its connection at once, so the connection pool
//! never fills with dead streams and later turns still reach the model.

use std::time::Duration;

use panel::config::ProviderChoice;
use panel_actors::model_client::RetryPolicy;
use panel_actors::provider::anthropic::AnthropicConfig;
use panel_actors::provider::http::ApiKey;

use crate::helpers::*;
use crate::mock_stall::StallServer;

#[actix_web::test]
async fn sessions_closed_while_the_model_is_silent_free_their_connections_and_later_turns_get_through() {
    let stall = StallServer::start().await;
    // Nothing but the cancel may end these streams: no idle timeout fires
    // during the test, and nothing is retried.
    let patient = Duration::from_secs(120);
    let provider = ProviderChoice::Anthropic(AnthropicConfig {
        base_url: stall.url.clone(),
        api_key: ApiKey::new("sk-ant-stall-test".into()),
        model: "claude-sonnet-5".into(),
        head_timeout: patient,
        idle_timeout: patient,
    });
    let retry = RetryPolicy { max_retries: 0, idle_timeout: patient, ..RetryPolicy::default() };
    let app = spawn_with(Options { provider, retry, ..Options::default() }).await;
    for n in 1..=105 {
        let id = app.create(&["ada", "byron"]).await;
        app.say(&id, "Are you there?").await;
        stall.until("the request to reach the model", |s| s.accepted() >= n).await;
        let (status, body) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
        assert_eq!(status, 200, "{body}");
    }
    stall.until("the closed sessions' connections to be let go", |s| s.open() <= 3).await;

    stall.answer();
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    app.say(&id, "Now?").await;
    let events = logged(&sse.until("turn-end").await);
    let speak = events.iter().find(|e| e.event == "speak").expect("the model answered");
    assert_eq!(speak.json()["text"], "Here at last.");
}
