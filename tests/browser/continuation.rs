//! The context meter, the "Continue fresh" offer when the window fills
//! (the refused line goes along), "Branch from here", and parent links
//! both ways in the viewer.

use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_full_window_offers_continue_fresh_and_the_refused_line_goes_along() {
    let app = spawn_with(Options { rehearsal_window: Some(4_000), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("continue-fresh").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    assert!(b.text(".context-text").await.ends_with(" / 4.0k"), "the meter states the window");

    // Speak until the window is full: the refusal keeps the line and offers a way on.
    let mut n = 0;
    loop {
        n += 1;
        assert!(n < 20, "a 4k window fills within 20 turns");
        send(&b, &format!("Line {n}: what do we weigh now, and why?")).await;
        b.until(
            "the turn to end or be refused",
            &format!("document.querySelectorAll('.chat .turn:not(.in-flight)').length === {n} || !document.querySelector('.context-full').hidden"),
        )
        .await;
        if b.js("return !document.querySelector('.context-full').hidden;").await == json!(true) {
            break;
        }
        b.until("the turn's cost", &format!("document.querySelector('#turn-{n} .cost').textContent.startsWith('$')"))
            .await;
    }
    let refused = format!("Line {n}: what do we weigh now, and why?");
    assert_eq!(b.js("return document.querySelector('.composer textarea').value;").await, json!(refused.clone()));
    assert_eq!(b.js("return document.querySelector('.context-meter').dataset.level;").await, "high");
    assert_eq!(b.js("return document.querySelector('.continue-fresh').hidden;").await, json!(false));
    b.screenshot("continue-fresh-offer").await;

    b.click(".context-full .primary").await;
    b.until("the new session", &format!("location.hash.startsWith('#/s/') && !location.hash.includes('{id}')")).await;
    b.until("the parent link", "document.querySelector('.parent-link') !== null").await;
    assert_eq!(
        b.js("return document.querySelector('.parent-link').getAttribute('href');").await,
        json!(format!("#/s/{id}"))
    );
    assert!(b.text(".marker").await.contains("carrying its transcript"));
    b.until(
        "the carried line in the composer",
        &format!("document.querySelector('.composer textarea').value === {refused:?}"),
    )
    .await;
    assert!(b.text(".context-text").await.starts_with("context "), "a fresh meter");
    assert_eq!(b.js("return document.querySelector('.context-meter').dataset.level;").await, "ok", "room again");
    b.finish().await;
}

#[actix_web::test]
async fn branch_from_here_opens_a_session_carrying_the_turns_up_to_it() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("branch").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    for (n, line) in ["First question?", "Second question?"].iter().enumerate() {
        send(&b, line).await;
        b.until(
            "the turn to end",
            &format!(
                "document.querySelector('#turn-{} .branch') && !document.querySelector('#turn-{} .branch').hidden",
                n + 1,
                n + 1
            ),
        )
        .await;
    }
    b.click("#turn-1 .branch").await;
    b.until("the branch", "document.querySelector('#session-title').textContent.endsWith('(branch at turn 1)')").await;
    b.until("the parent link", "document.querySelector('.parent-link') !== null").await;
    let branch_id = b.js("return location.hash.slice(4);").await;
    let mut sse = app.sse(branch_id.as_str().unwrap(), Some(0)).await;
    let open = sse.next().await.unwrap().json();
    let carry = open["carry"].as_str().unwrap();
    assert!(carry.contains("First question?") && !carry.contains("Second question?"), "{carry}");
    b.finish().await;
}

#[actix_web::test]
async fn the_viewer_links_parent_and_child_both_ways_and_offers_branching_only_when_panel_serves_it() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "What fails first?").await;
    sse.until("turn-end").await;
    let (status, child) = app.post(&format!("/api/sessions/{id}/continue"), json!({})).await;
    assert_eq!(status, 201);
    let child_id = child["id"].as_str().unwrap().to_owned();
    for s in [&child_id, &id] {
        let (status, _) = app.post_empty(&format!("/api/sessions/{s}/close")).await;
        assert_eq!(status, 200);
    }

    let b = Browser::launch("viewer-links").await;
    b.goto(&app.url(&format!("/viewer.html#/s/{id}"))).await;
    b.until("the continued-in link", "document.querySelector('.child-link') !== null").await;
    assert_eq!(
        b.js("return document.querySelector('.child-link').getAttribute('href');").await,
        json!(format!("#/s/{child_id}"))
    );
    b.until(
        "branching, served by panel",
        "document.querySelector('#turn-1 .branch') && !document.querySelector('#turn-1 .branch').hidden",
    )
    .await;
    b.click(".child-link").await;
    b.until("the child's parent link", "document.querySelector('.parent-link') !== null").await;
    assert_eq!(
        b.js("return document.querySelector('.parent-link').getAttribute('href');").await,
        json!(format!("#/s/{id}"))
    );
    b.finish().await;
}
