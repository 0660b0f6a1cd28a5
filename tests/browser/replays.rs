//! A turn's counterfactual replays in the chat and in the viewer: the turn
//! says how many ("2 rerolls · solo") and opens them beside the original,
//! per character, with each sample's lead.

use serde_json::json;

use crate::helpers::*;

/// Starts a replay of `turn` and waits for its `replay-close`.
async fn replayed(app: &TestApp, id: &str, body: serde_json::Value) {
    let (status, started) = app.post(&format!("/api/sessions/{id}/replay"), body).await;
    assert_eq!(status, 201, "{started}");
    let rid = started["id"].as_str().unwrap();
    let res = app.client.get(app.url(&format!("/api/sessions/{id}/replays/{rid}/events?since=0"))).send().await;
    Sse::from_response(res.expect("the replay's stream")).until("replay-close").await;
}

const TABLE: &str = "document.querySelector('#turn-1 details.replays')";

async fn check_table(b: &Browser) {
    b.until("the turn to say it has replays", &format!("{TABLE} !== null")).await;
    assert_eq!(b.text("#turn-1 details.replays > summary").await, "2 rerolls · solo");
    assert_eq!(b.count("#turn-2 details.replays").await, 0, "a turn without replays says nothing");
    b.click("#turn-1 details.replays > summary").await;
    let heads = b.js(&format!("return [...{TABLE}.querySelectorAll('thead th')].map((t) => t.textContent);")).await;
    assert_eq!(heads, json!(["", "Original", "Reroll 1", "Reroll 2", "Alone"]));
    let rows = b
        .js(&format!(
            "return [...{TABLE}.querySelectorAll('tbody tr[data-character]')].map((r) => r.dataset.character);"
        ))
        .await;
    assert_eq!(rows, json!(["ada", "byron"]), "one row per character on stage");
    let lead = b.js(&format!("return [...{TABLE}.querySelectorAll('.lead-row td')].map((t) => t.textContent);")).await;
    let lead = lead.as_array().unwrap();
    assert_eq!(lead.len(), 4);
    assert!(lead[..3].iter().all(|l| l == "Ada" || l == "Byron"), "every sample's lead named: {lead:?}");
    // Each character's answer alone sits in the last column: a speak or a pass.
    let alone = b
        .js(&format!(
            "return [...{TABLE}.querySelectorAll('tbody tr[data-character] td:last-child')].map((t) => t.textContent);"
        ))
        .await;
    assert!(alone.as_array().unwrap().iter().all(|t| t.as_str().is_some_and(|s| !s.is_empty() && s != "—")), "{alone}");
}

#[actix_web::test]
async fn a_turns_replays_open_beside_the_original_in_the_chat_and_in_the_viewer() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "What should a hospital automate first?").await;
    sse.until("turn-end").await;
    app.say(&id, "And what would fail first?").await;
    sse.until("turn-end").await;
    replayed(&app, &id, json!({ "turn": 1, "n": 2 })).await;
    replayed(&app, &id, json!({ "turn": 1, "mode": "solo" })).await;

    let b = Browser::launch("replays").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    check_table(&b).await;
    b.screenshot("replays-chat").await;

    let (status, _) = app.post(&format!("/api/sessions/{id}/close"), json!({})).await;
    assert_eq!(status, 200);
    b.goto(&app.url(&format!("/viewer.html#/s/{id}/t/2"))).await;
    check_table(&b).await;
    b.screenshot("replays-viewer").await;
    b.finish().await;
}
