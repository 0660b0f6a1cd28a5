//! The sessions page: opening a session from the roster.

use crate::helpers::*;

#[actix_web::test]
async fn a_session_is_created_from_the_sessions_page_and_its_chat_opens() {
    let app = spawn_app().await;
    let b = Browser::launch("sessions-create").await;
    b.goto(&app.url("/")).await;
    b.until("the roster to load", "document.querySelectorAll('.pick').length >= 6").await;
    assert!(b.text(".badge.rehearsal").await.contains("Rehearsal"), "the offline engine is badged");
    for id in ["ada", "byron", "cleo"] {
        b.click(&format!(".pick input[value={id}]")).await;
    }
    b.type_into(".new-session input[name=title]", "Triage ethics").await;
    // A 1-hour cache, never pinged.
    for (name, value) in [("cache_ttl", "1h"), ("keep_warm", "off")] {
        let select =
            b.client.find(fantoccini::Locator::Css(&format!(".new-session select[name={name}]"))).await.unwrap();
        select.select_by_value(value).await.unwrap();
    }
    b.screenshot("sessions-form").await;
    b.click(".new-session button[type=submit]").await;
    b.until("the chat to open", "location.hash.startsWith('#/s/')").await;
    b.until("the cast in the strip", "document.querySelectorAll('.strip .chip').length === 3").await;
    assert_eq!(b.text("#session-title").await, "Triage ethics");
    assert_eq!(b.text("#session-ttl").await, "cache TTL 1h", "the session's TTL is in its header");
    let id = b.js("return location.hash.slice(4);").await;
    let (_, detail) = app.get(&format!("/api/sessions/{}", id.as_str().unwrap())).await;
    assert_eq!((detail["cache_ttl"].as_str(), detail["keep_warm"].as_str()), (Some("1h"), Some("off")), "{detail}");
    b.until("the stream to be live", "document.querySelector('#connection').dataset.state === 'live'").await;

    // Back on the list, the new session is there with its cast.
    b.goto(&app.url("/#/")).await;
    b.until("the session list", "document.querySelectorAll('.session-row').length === 1").await;
    assert!(b.text(".session-row").await.contains("Triage ethics"));
    assert_eq!(b.count(".session-row .chip").await, 3);
    b.finish().await;
}
