//! Many tabs, one connection: ten tabs of ten sessions in one browser all
//! load and go live over a single event stream (a SharedWorker holds it),
//! and the sessions page stays live over it too.

use crate::helpers::*;

/// Waits until the server counts `n` open event streams. A stream the
/// browser replaced (its SharedWorker reconnects when a tab changes the set)
/// is counted until the server sees its connection close, a moment later.
async fn streams_settle_at(app: &TestApp, n: u64, what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, health) = app.get("/healthz").await;
        if health["event_streams"] == n {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {health}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn ten_tabs_of_ten_sessions_load_go_live_and_share_one_event_stream() {
    let app = spawn_with(Options { pace_ms: 1, ..Options::default() }).await;
    let casts: [&[&str]; 3] = [&["ada", "byron"], &["cleo", "otto", "iris"], &["maren", "ada"]];
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.create(casts[i % 3]).await);
    }
    let b = Browser::launch("tabs-ten").await;
    let mut tabs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            let tab = b.client.new_window(true).await.unwrap();
            b.client.switch_to_window(tab.handle).await.unwrap();
        }
        b.goto(&app.url(&format!("/#/s/{id}"))).await;
        b.until(
            &format!("tab {} to load and go live", i + 1),
            "document.querySelector('#connection')?.dataset.state === 'live' && document.querySelector('.strip .chip') !== null",
        )
        .await;
        tabs.push(b.client.window().await.unwrap());
    }
    streams_settle_at(&app, 1, "one event stream for the whole browser").await;

    // A turn in every session, each seen live in its own tab.
    for id in &ids {
        app.say(id, "What should we weigh first?").await;
    }
    for (i, tab) in tabs.iter().enumerate() {
        b.client.switch_to_window(tab.clone()).await.unwrap();
        b.until(
            &format!("turn 1 live in tab {}", i + 1),
            "document.querySelector('#turn-1:not(.in-flight) .cost')?.textContent.startsWith('$')",
        )
        .await;
        let title = b.js("return location.hash;").await;
        assert_eq!(title.as_str().unwrap(), format!("#/s/{}", ids[i]), "each tab shows its own session");
        assert_eq!(b.count(".chat .turn").await, 1, "and only its own turns");
    }
    streams_settle_at(&app, 1, "still one event stream").await;
    b.finish().await;
}

#[actix_web::test]
async fn the_sessions_page_stays_live_over_the_shared_stream() {
    let app = spawn_app().await;
    let b = Browser::launch("sessions-live").await;
    b.goto(&app.url("/")).await;
    b.until("the page", "document.querySelector('.new-session') !== null").await;
    b.type_into(".new-session input[name=title]", "kept while the list refreshes").await;
    let id = app.create(&["ada", "byron"]).await;
    b.until(
        "the new session listed",
        &format!("[...document.querySelectorAll('.session-link')].some(a => a.getAttribute('href') === '#/s/{id}')"),
    )
    .await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "Hello?").await;
    sse.until("turn-end").await;
    b.until("its turn counted", "document.querySelector('.session-row .session-meta')?.textContent.includes('1 turn')")
        .await;
    assert_eq!(
        b.js("return document.querySelector('.new-session input[name=title]').value;").await,
        "kept while the list refreshes",
        "the form is left alone"
    );
    b.finish().await;
}

#[actix_web::test]
async fn without_a_shared_worker_each_tab_streams_only_while_it_is_shown() {
    let app = spawn_with(Options { pace_ms: 1, ..Options::default() }).await;
    let (x, y) = (app.create(&["ada", "byron"]).await, app.create(&["cleo", "otto"]).await);
    let b = Browser::launch("tabs-fallback").await;
    b.goto(&app.url(&format!("/?no-shared-worker#/s/{x}"))).await;
    b.until("tab X live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    let first = b.client.window().await.unwrap();
    let tab = b.client.new_window(true).await.unwrap();
    b.client.switch_to_window(tab.handle.clone()).await.unwrap();
    b.goto(&app.url(&format!("/?no-shared-worker#/s/{y}"))).await;
    b.until("tab Y live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    // X is hidden now: its stream is let go.
    streams_settle_at(&app, 1, "the hidden tab's stream let go").await;
    app.say(&y, "You first?").await;
    b.until("Y's turn live", "document.querySelector('#turn-1:not(.in-flight) .cost')?.textContent.startsWith('$')")
        .await;

    // Back to X: it resumes, and catches up on what it missed while hidden.
    app.say(&x, "And now you?").await;
    b.client.switch_to_window(first).await.unwrap();
    b.until(
        "X's turn after it comes back",
        "document.querySelector('#turn-1:not(.in-flight) .cost')?.textContent.startsWith('$')",
    )
    .await;
    b.finish().await;
}
