//! Two people on one floor, each in their own browser (separate profiles,
//! so separate storage): each names a seat, sees the other's lines
//! attributed and coloured, and sees who is here in the strip.

use serde_json::json;

use crate::helpers::*;

async fn open(app: &TestApp, name: &str, id: &str) -> Browser {
    let b = Browser::launch(name).await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    b
}

fn here(seats: &[&str]) -> String {
    let wanted = serde_json::to_string(seats).unwrap();
    format!(
        "JSON.stringify([...document.querySelectorAll('.presence .seat-dot')].map(e => e.dataset.seat)) === '{wanted}'"
    )
}

const FLOOR: &str = "return [...document.querySelectorAll('.chat .floor')].map(f => [f.dataset.seat || null, f.querySelector('.floor-text').textContent, f.style.getPropertyValue('--c') !== '']);";

#[actix_web::test]
async fn two_seats_in_two_browsers_see_each_others_lines_attributed_and_who_is_here() {
    let app = spawn_with(Options { pace_ms: 2, ..Options::default() }).await;
    let id = app.create(&["iris", "maren"]).await;
    let maya = open(&app, "seats-maya", &id).await;
    maya.click(".speaking-as").await;
    maya.type_into(".seat-ask input", "Maya").await;
    maya.type_into(".seat-ask input", ENTER).await;
    maya.until("Maya in the strip", &here(&["Maya"])).await;
    assert_eq!(maya.text(".speaking-as").await, "speaking as Maya");

    let theo = open(&app, "seats-theo", &id).await;
    theo.until("Maya seen from the other browser", &here(&["Maya"])).await;
    // The first line from a browser with no name, in a room, asks for one.
    send(&theo, "Should a nurse override the protocol?").await;
    theo.until("the name asked for", "document.querySelector('.seat-ask input') !== null").await;
    theo.type_into(".seat-ask input", "Theo").await;
    theo.type_into(".seat-ask input", ENTER).await;
    theo.until("turn 1 to end", &turn_done(1)).await;
    maya.until("turn 1 to end for Maya", &turn_done(1)).await;
    for b in [&maya, &theo] {
        b.until("both seats here", &here(&["Maya", "Theo"])).await;
    }
    send(&maya, "And if the protocol is new?").await;
    maya.until("turn 2 to end", &turn_done(2)).await;
    theo.until("turn 2 to end for Theo", &turn_done(2)).await;

    let expected =
        json!(
            [["Theo", "Should a nurse override the protocol?", true], ["Maya", "And if the protocol is new?", true],]
        );
    assert_eq!(maya.js(FLOOR).await, expected, "Maya sees both lines by their seats");
    assert_eq!(theo.js(FLOOR).await, expected, "and so does Theo");
    let seat_labels =
        theo.js("return [...document.querySelectorAll('.chat .floor .seat')].map(e => e.textContent);").await;
    assert_eq!(seat_labels, json!(["Theo", "Maya"]));
    let colours = maya
        .js("return [...document.querySelectorAll('.chat .floor')].map(f => f.style.getPropertyValue('--c'));")
        .await;
    assert_ne!(colours[0], colours[1], "each seat its own colour: {colours}");
    let logged = app.get(&format!("/api/sessions/{id}/history")).await.1;
    let seats: Vec<_> = logged["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "human-speak")
        .map(|e| e["seat"].clone())
        .collect();
    assert_eq!(seats, vec![json!("Theo"), json!("Maya")], "the log says who spoke");
    maya.until("both seats still here", &here(&["Maya", "Theo"])).await;
    maya.screenshot("seats-maya").await;
    theo.screenshot("seats-theo").await;

    // A browser that leaves leaves the room.
    theo.finish().await;
    maya.until("Theo gone from the strip", &here(&["Maya"])).await;

    // The viewer shows the recorded room the same way.
    assert_eq!(app.post_empty(&format!("/api/sessions/{id}/close")).await.0, 200);
    maya.goto(&app.url(&format!("/viewer.html#/s/{id}"))).await;
    maya.until("the recorded floor lines", "document.querySelectorAll('.chat .floor[data-seat]').length === 2").await;
    assert_eq!(maya.js(FLOOR).await, expected, "the viewer attributes them too");
    maya.finish().await;
}

#[actix_web::test]
async fn a_browser_with_a_name_speaks_without_it_where_the_sessions_templates_predate_seats() {
    let app = spawn_app().await;
    // The floor template as it was before seats: it has no place for a name.
    let (status, made) = app
        .post(
            "/api/sessions",
            json!({ "cast": ["ada", "byron"], "prompts": { "floor.txt.j2": "From the floor: \"{{ text }}\"" } }),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap();
    let b = Browser::launch("seats-older").await;
    b.goto(&app.url("/")).await;
    b.js("localStorage.setItem('panel.seat', 'Maya'); return true;").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    send(&b, "Heard without my name?").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    assert_eq!(b.js(FLOOR).await, json!([[null, "Heard without my name?", false]]), "said, without the seat");
    assert!(b.text("#toast").await.contains("predates seats"), "and the browser was told why");
    assert_eq!(b.text(".composer .speaking-as").await, "Name yourself");
    assert_eq!(b.js("return localStorage.getItem('panel.seat');").await, json!("Maya"), "kept for other sessions");
    b.finish().await;
}
