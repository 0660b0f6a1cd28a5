//! A panel server for the benchmarks: the real application on a free port,
//! voiced by the Anthropic mock at `mock_url` (Claude Sonnet 5), with the
//! settings a benchmark changes on top.

use std::path::Path;
use std::time::Duration;

use panel::config::{ProviderChoice, Settings};
use panel::startup::{Application, Stopper};
use panel_actors::provider::anthropic::AnthropicConfig;
use panel_actors::provider::http::ApiKey;

/// Starts the server; returns its base URL and its stopper. `logs` must
/// outlive it.
pub async fn start(mock_url: &str, key: &str, logs: &Path, tune: impl FnOnce(&mut Settings)) -> (String, Stopper) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let provider = ProviderChoice::Anthropic(AnthropicConfig {
        base_url: mock_url.to_owned(),
        api_key: ApiKey::new(key.into()),
        model: "claude-sonnet-5".into(),
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
    });
    let mut settings = Settings {
        rehearsal_pace: Duration::ZERO,
        workers: 1,
        max_tokens: 1024,
        ..Settings::local(logs.to_owned(), repo.join("roster"), repo.join("static"), provider)
    };
    tune(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let stopper = app.stopper();
    actix_web::rt::spawn(app.run_until_stopped());
    (base, stopper)
}
