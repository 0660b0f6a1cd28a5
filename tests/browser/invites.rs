//! An invite link opened in a browser: the chat of its one session loads
//! and works for the invitee (every request the app makes is one the
//! guard's table lets in), the secret leaves the address bar, and nothing
//! else opens.

use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "s3cret-inviting-token-0123456789";

async fn as_token_holder(app: &TestApp, path: &str, body: Value) -> Value {
    let client = awc::Client::builder().add_default_header(("Authorization", format!("Bearer {TOKEN}"))).finish();
    let mut res = client.post(app.url(path)).send_json(&body).await.unwrap();
    assert_eq!(res.status().as_u16(), 201);
    res.json().await.unwrap()
}

/// What an invitee's page must not offer once a turn has ended: branching,
/// replaying, the compare page, the keep-warm choice, continuing fresh.
async fn offers_nothing_it_may_not_do(b: &Browser) {
    for (what, selector) in [
        ("branch", "button.branch"),
        ("replay", "button.replay"),
        ("compare link", "a.compare-replays"),
        ("keep-warm choice", "select.keep-warm:not([hidden])"),
        ("continue fresh", "button.continue-fresh:not([hidden])"),
        ("retire buttons", ".strip .chip button"),
        ("add button", ".strip .library-button, .strip .add"),
        ("recorded sessions", ".topbar a[href='viewer.html']:not([hidden])"),
        ("sessions page", ".topbar a[href='#/']"),
    ] {
        assert_eq!(b.count(selector).await, 0, "an invitee is offered {what}");
    }
}

/// The resources the page asked for that the guard refused — with at least
/// one let in, so the browser does report statuses.
async fn refused_requests(b: &Browser) -> Value {
    let statuses = b.js("return performance.getEntriesByType('resource').map((e) => e.responseStatus);").await;
    assert!(statuses.as_array().unwrap().contains(&json!(200)), "this browser reports resource statuses: {statuses}");
    b.js("return performance.getEntriesByType('resource').filter((e) => e.responseStatus === 403 || e.responseStatus === 401).map((e) => e.name);")
        .await
}

#[actix_web::test]
async fn a_speaker_opening_an_invite_link_sees_its_session_speaks_in_it_and_reaches_nothing_else() {
    let app = spawn_with(Options { token: Some(TOKEN.into()), pace_ms: 2, ..Options::default() }).await;
    let session = as_token_holder(&app, "/api/sessions", json!({ "cast": ["ada", "byron"], "title": "Invited" })).await;
    let id = session["id"].as_str().unwrap();
    let other = as_token_holder(&app, "/api/sessions", json!({ "cast": ["cleo"], "title": "Private" })).await;
    let invite =
        as_token_holder(&app, &format!("/api/sessions/{id}/invites"), json!({ "role": "speaker", "seat": "Maya" }))
            .await;
    let url = invite["url"].as_str().unwrap();

    let b = Browser::launch("invite-speaker").await;
    b.goto(url).await;
    b.until("the chat to open", "document.querySelector('.composer textarea') !== null").await;
    let href = b.js("return location.href;").await;
    let href = href.as_str().unwrap();
    assert!(!href.contains("invite"), "the secret left the address bar: {href}");
    assert!(href.ends_with(&format!("#/s/{id}")), "the fragment still opens the session: {href}");
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    send(&b, "A question from the invited floor.").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    let seats = b.js("return [...document.querySelectorAll('.chat .floor')].map((f) => f.dataset.seat || null);").await;
    assert_eq!(seats, json!(["Maya"]), "the line is the invite's seat's");
    offers_nothing_it_may_not_do(&b).await;
    assert_eq!(refused_requests(&b).await, json!([]), "the app asked for something the invite may not reach");
    let other_id = other["id"].as_str().unwrap();
    let status = b.js(&format!("const r = await fetch('/api/sessions/{other_id}'); return r.status;")).await;
    assert_eq!(status, json!(403), "another session stays closed");
    let status = b
        .js(&format!("const r = await fetch('/api/sessions/{id}/close', {{ method: 'POST' }}); return r.status;"))
        .await;
    assert_eq!(status, json!(403), "and this one cannot be closed");
    b.finish().await;
}

#[actix_web::test]
async fn a_watcher_opening_an_invite_link_follows_the_session_with_nothing_offered_it_may_not_do() {
    let app = spawn_with(Options { token: Some(TOKEN.into()), pace_ms: 2, ..Options::default() }).await;
    let session = as_token_holder(&app, "/api/sessions", json!({ "cast": ["ada", "byron"], "title": "Watched" })).await;
    let id = session["id"].as_str().unwrap();
    let invite = as_token_holder(&app, &format!("/api/sessions/{id}/invites"), json!({ "role": "watcher" })).await;

    let b = Browser::launch("invite-watcher").await;
    b.goto(invite["url"].as_str().unwrap()).await;
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the composer closed to a watcher", "document.querySelector('.composer textarea').disabled").await;
    assert!(
        b.js("return document.querySelector('.composer textarea').placeholder;")
            .await
            .as_str()
            .unwrap()
            .contains("watching")
    );

    // It follows what the token holder's floor says.
    let client = awc::Client::builder().add_default_header(("Authorization", format!("Bearer {TOKEN}"))).finish();
    let res =
        client.post(app.url(&format!("/api/sessions/{id}/say"))).send_json(&json!({ "text": "Watched line." })).await;
    assert_eq!(res.unwrap().status().as_u16(), 202);
    b.until("turn 1 to end", &turn_done(1)).await;
    offers_nothing_it_may_not_do(&b).await;
    assert_eq!(refused_requests(&b).await, json!([]), "the page asked for nothing the invite may not reach");
    assert_eq!(b.js("return document.body.dataset.socket || null;").await, json!(null), "no socket tried");
    b.screenshot("invite-watcher").await;
    b.finish().await;
}
