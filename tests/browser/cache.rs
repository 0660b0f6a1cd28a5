//! The prompt cache in the strip: the countdown runs, turns cold when the
//! (scaled) TTL passes, and the keep-warm control changes the setting.

use fantoccini::Locator;

use crate::helpers::*;

#[actix_web::test]
async fn the_cache_countdown_runs_turns_cold_and_the_keep_warm_control_changes_the_setting() {
    // At 100× a 5-minute TTL lasts three seconds.
    let app = spawn_with(Options { time_scale: 100.0, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("cache-countdown").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    assert_eq!(b.text(".cache-text").await, "cache empty");
    assert_eq!(b.text("#session-ttl").await, "cache TTL 5m");
    assert_eq!(b.js("return document.querySelector('.keep-warm').value;").await, "auto");

    b.type_into(".composer textarea", "What fails first?").await;
    b.type_into(".composer textarea", ENTER).await;
    b.until(
        "a warm cache after the turn",
        "/^cache warm · 0:0[23]$/.test(document.querySelector('.cache-text').textContent)",
    )
    .await;

    // Off: nothing keeps it warm now.
    let select = b.client.wait().at_most(WAIT).for_element(Locator::Css(".keep-warm")).await.unwrap();
    select.select_by_value("off").await.unwrap();
    let (_, detail) = wait_for_setting(&app, &id, "off").await;
    assert_eq!(detail["cache"]["keep_warm"], "off");

    b.until("the countdown to run", "document.querySelector('.cache-text').textContent === 'cache warm · 0:01'").await;
    let cold = b
        .until(
            "the cache to go cold",
            "document.querySelector('.cache-meter').dataset.state === 'cold' && document.querySelector('.cache-text').textContent",
        )
        .await;
    let cold = cold.as_str().unwrap();
    assert!(cold.starts_with("cache cold · next turn rewrites ~"), "{cold}");
    assert!(cold.contains("tokens, ~$"), "the rehearsal engine's simulated price: {cold}");

    // Always, from the control: the server has it, and so does a reload.
    let select = b.client.find(Locator::Css(".keep-warm")).await.unwrap();
    select.select_by_value("always").await.unwrap();
    wait_for_setting(&app, &id, "always").await;
    b.client.refresh().await.unwrap();
    b.until("the setting after a reload", "document.querySelector('.keep-warm')?.value === 'always'").await;
    b.until("the stream live again", "document.getElementById('connection').dataset.state === 'live'").await;
    b.finish().await;
}

async fn wait_for_setting(app: &TestApp, id: &str, want: &str) -> (u16, serde_json::Value) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, body) = app.get(&format!("/api/sessions/{id}")).await;
        if body["keep_warm"] == want {
            return (status, body);
        }
        assert!(std::time::Instant::now() < deadline, "keep_warm never became {want}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
