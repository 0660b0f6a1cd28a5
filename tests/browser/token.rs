//! A server behind `--token`, used from a browser the way its banner says:
//! open the printed URL once, and from then on the app, its stream, its
//! socket and the viewer all work by the session cookie, with the token gone
//! from the address bar. A wrong token opens nothing.

use serde_json::json;

use crate::helpers::*;

const TOKEN: &str = "s3cret-browser-token-0123456789";

fn token_app() -> Options {
    Options { token: Some(TOKEN.into()), pace_ms: 2, ..Options::default() }
}

#[actix_web::test]
async fn behind_a_token_the_app_and_the_viewer_load_and_a_session_is_created_spoken_to_and_viewed() {
    let app = spawn_with(token_app()).await;
    let b = Browser::launch("token-app").await;
    b.goto(&app.url(&format!("/?token={TOKEN}#/"))).await;
    b.until("the roster to load", "document.querySelectorAll('.pick').length >= 6").await;
    let href = b.js("return location.href;").await;
    assert!(!href.as_str().unwrap().contains("token"), "the token left the address bar: {href}");
    b.until(
        "the stylesheet to load",
        "[...document.styleSheets].some((s) => (s.href || '').endsWith('/app.css') && s.cssRules.length > 0)",
    )
    .await;
    let cookie = b.js("return document.cookie;").await;
    assert_eq!(cookie, json!(""), "the session cookie is HttpOnly: no script can read it");

    for id in ["ada", "byron"] {
        b.click(&format!(".pick input[value={id}]")).await;
    }
    b.type_into(".new-session input[name=title]", "Behind a token").await;
    b.click(".new-session button[type=submit]").await;
    b.until("the chat to open", "location.hash.startsWith('#/s/')").await;
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    let id = b.js("return location.hash.slice(4);").await.as_str().unwrap().to_owned();
    b.type_into(".composer textarea", "Who should decide what a hospital automates?").await;
    b.type_into(".composer textarea", ENTER).await;
    b.until(
        "turn 1 to end",
        "document.querySelector('#turn-1') && !document.querySelector('#turn-1').classList.contains('in-flight') && document.querySelector('#turn-1 .cost')?.textContent.startsWith('$')",
    )
    .await;
    assert_eq!(b.count("#turn-1 .replies .msg").await + b.count("#turn-1 .replies .pass").await, 2);

    // A state-changing request from the app's own page gets in by the cookie.
    let closed = b
        .js(&format!("const r = await fetch('/api/sessions/{id}/close', {{ method: 'POST' }}); return r.status;"))
        .await;
    assert_eq!(closed, json!(200));

    // The viewer, opened without the token, reads the closed session's files.
    b.goto(&app.url(&format!("/viewer.html#/s/{id}"))).await;
    b.until("the recorded turn", "document.querySelectorAll('.chat .turn').length === 1").await;
    assert_eq!(b.text("#turn-1 .floor-text").await, "Who should decide what a hospital automates?");
    b.js("document.activeElement.blur();").await;
    b.type_into("body", "\u{E011}").await; // Home: an empty stage
    b.type_into("body", "\u{E014}").await; // ArrowRight: the first line
    b.until("the first step", "document.querySelector('.position')?.textContent.includes('line 1 of')").await;
    b.finish().await;
}

#[actix_web::test]
async fn behind_a_token_a_browser_with_a_wrong_token_or_none_is_refused_and_never_sees_it_echoed() {
    let app = spawn_with(token_app()).await;
    let b = Browser::launch("token-wrong").await;
    b.goto(&app.url("/?token=not-the-token#/")).await;
    let body = b.until("the refusal", "document.body && document.body.textContent").await;
    let body = body.as_str().unwrap();
    assert!(body.contains("token-required"), "{body}");
    assert!(!body.contains("not-the-token"), "the token given is not echoed: {body}");
    let status = b.js("const r = await fetch('/app.css'); return r.status;").await;
    assert_eq!(status, json!(401), "no asset without the cookie");
    b.goto(&app.url("/viewer.html")).await;
    let body = b.until("the refusal", "document.body && document.body.textContent").await;
    assert!(body.as_str().unwrap().contains("token-required"), "the viewer too needs the token: {body}");
    assert_eq!(b.count(".pick").await, 0);
    b.finish().await;
}
