//! A turn's counterfactual replays in the chat and in the viewer: the turn
//! says how many ("2 rerolls · solo") and opens them beside the original,
//! per character, with each sample's lead.

use serde_json::{Value, json};

use crate::helpers::*;

/// Starts a replay of `turn` and waits for its `replay-close`.
async fn replayed(app: &TestApp, id: &str, body: serde_json::Value) {
    let (status, started) = app.post(&format!("/api/sessions/{id}/replay"), body).await;
    assert_eq!(status, 201, "{started}");
    let rid = started["id"].as_str().unwrap();
    let res = app.client.get(app.url(&format!("/api/sessions/{id}/replays/{rid}/events?since=0"))).send().await;
    Sse::from_response(res.expect("the replay's stream")).until("replay-close").await;
}

/// A session of two turns, the first replayed twice and then solo.
async fn two_turns_with_replays() -> (TestApp, String) {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "What should a hospital automate first?").await;
    sse.until("turn-end").await;
    app.say(&id, "And what would fail first?").await;
    sse.until("turn-end").await;
    replayed(&app, &id, json!({ "turn": 1, "n": 2 })).await;
    replayed(&app, &id, json!({ "turn": 1, "mode": "solo" })).await;
    (app, id)
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
    // Each sample is priced, and the replays apart from the session.
    let costs = b.js(&format!("return [...{TABLE}.querySelectorAll('.cost-row td')].map((t) => t.textContent);")).await;
    assert!(costs.as_array().unwrap().iter().all(|c| c.as_str().is_some_and(|c| c.starts_with('$'))), "{costs}");
    assert_eq!(costs.as_array().unwrap().len(), 4);
    assert!(b.text("#turn-1 details.replays .kept").await.contains("apart from the session’s totals"));
}

#[actix_web::test]
async fn a_turns_replays_open_beside_the_original_in_the_chat_and_in_the_viewer() {
    let (app, id) = two_turns_with_replays().await;

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

/// A script true once turn `n`'s replays are drawn and none is playing.
fn replays_settled(n: u32, label: &str) -> String {
    format!(
        "(() => {{ const d = document.querySelector('#turn-{n} details.replays'); return d !== null && !('running' in d.dataset) && d.querySelector('summary').textContent === {label:?}; }})()"
    )
}

#[actix_web::test]
async fn a_turn_replayed_from_the_chat_shows_its_samples_beside_the_original_as_they_end() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("replay-from-chat").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    send(&b, "What should a hospital automate first?").await;
    b.until("turn 1 to end", &turn_done(1)).await;

    b.click("#turn-1 button.replay").await;
    b.until("the replay dialog", "document.querySelector('dialog.replay-dialog[open]') !== null").await;
    b.js("const n = document.querySelector('dialog.replay-dialog input[name=n]'); n.value = '2'; return true;").await;
    b.screenshot("replay-dialog").await;
    b.click("dialog.replay-dialog button[type=submit]").await;
    b.until("two rerolls beside turn 1", &replays_settled(1, "2 rerolls")).await;
    assert!(
        b.js("return document.querySelector('#turn-1 details.replays').open;").await.as_bool().unwrap(),
        "the replays the reader asked for are opened for them"
    );
    let heads = b.js(&format!("return [...{TABLE}.querySelectorAll('thead th')].map((t) => t.textContent);")).await;
    assert_eq!(heads, json!(["", "Original", "Reroll 1", "Reroll 2"]));

    // Each voice alone: no count to choose, one answer per character.
    b.click("#turn-1 button.replay").await;
    b.until("the replay dialog", "document.querySelector('dialog.replay-dialog[open]') !== null").await;
    b.click("dialog.replay-dialog input[value=solo]").await;
    assert!(
        b.js("return document.querySelector('dialog.replay-dialog input[name=n]').closest('label').hidden;")
            .await
            .as_bool()
            .unwrap()
    );
    b.click("dialog.replay-dialog button[type=submit]").await;
    b.until("the solo answers beside turn 1", &replays_settled(1, "2 rerolls · solo")).await;

    let (status, listed) = app.get(&format!("/api/sessions/{id}/replays")).await;
    assert_eq!(status, 200);
    let replays = listed["replays"].as_array().unwrap();
    assert_eq!(replays.len(), 2, "{listed}");
    assert_eq!((replays[0]["mode"].as_str(), replays[0]["n"].as_u64()), (Some("reroll"), Some(2)));
    assert_eq!(replays[1]["mode"], "solo");
    assert!(replays.iter().all(|r| r["same_settings"] == true), "nothing changed was sent: {listed}");
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["turns"], 1, "the session itself did not change: {detail}");
    b.finish().await;
}

#[actix_web::test]
async fn a_replay_started_elsewhere_shows_in_an_open_chat_once_it_is_looked_at_again() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "What should a hospital automate first?").await;
    sse.until("turn-end").await;
    let b = Browser::launch("replay-elsewhere").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("turn 1 to show", &turn_done(1)).await;
    assert_eq!(b.count("#turn-1 details.replays").await, 0);

    replayed(&app, &id, json!({ "turn": 1, "n": 1 })).await;
    b.js("window.dispatchEvent(new Event('focus')); return true;").await;
    b.until("the replay started elsewhere to show", &replays_settled(1, "1 reroll")).await;
    b.finish().await;
}

#[actix_web::test]
async fn the_compare_page_stands_a_turns_replays_beside_it_as_columns_marked_against_their_original() {
    let (app, id) = two_turns_with_replays().await;

    // From the chat's replays, "Side by side" opens the compare page at the turn.
    let b = Browser::launch("replay-compare").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the turn's replays", &format!("{TABLE} !== null")).await;
    let href = b.js(&format!("return {TABLE}.querySelector('a.compare-replays').getAttribute('href');")).await;
    assert_eq!(href, json!(format!("viewer.html#/compare/{id}/t/1")));
    b.goto(&app.url(&format!("/{}", href.as_str().unwrap()))).await;
    b.until("the compare page", "document.querySelector('#cmp-turn-1 .cmp-cell') !== null").await;

    let labels = b.js("return [...document.querySelectorAll('#cmp-turn-1 .cmp-cell')].map((c) => c.querySelector('.cmp-label').textContent);").await;
    assert_eq!(labels, json!(["A", "A · reroll 1", "A · reroll 2", "A · Ada alone", "A · Byron alone"]));
    assert_eq!(b.count("#cmp-turn-2 .cmp-cell").await, 1, "a turn without replays has only its session's column");
    // Every sample stands on the turn's own floor line, with its answers.
    let floors = b
        .js("return [...document.querySelectorAll('#cmp-turn-1 .cmp-cell .floor-text')].map((f) => f.textContent);")
        .await;
    assert!(floors.as_array().unwrap().iter().all(|f| f == "What should a hospital automate first?"), "{floors}");
    let alone = b.js("return [...document.querySelectorAll('#cmp-turn-1 .cmp-cell.replay')].slice(2).map((c) => [...c.querySelectorAll('[data-speaker]')].map((a) => a.dataset.speaker));").await;
    assert_eq!(alone, json!([["ada"], ["byron"]]), "alone, each character answers by themselves");
    // The marks of a replay cell are against its own original: an answer is
    // outlined where the summary says it differs from the original's (or is
    // the lead where the lead changed), and nowhere else.
    let marked = b
        .js("return [...document.querySelectorAll('#cmp-turn-1 .cmp-cell')].map((c) => Object.fromEntries([...c.querySelectorAll('[data-speaker]')].map((a) => [a.dataset.speaker, a.classList.contains('mark')])));")
        .await;
    let (_, index) = app.get(&format!("/logs/{id}/replays/index.json")).await;
    let summary = &index["turns"][0];
    let original = &summary["original"];
    let samples = summary["samples"].as_array().unwrap();
    let (rerolls, solos): (Vec<&Value>, Vec<&Value>) = samples.iter().partition(|s| s["mode"] == "reroll");
    let mut expected = vec![original["said"].as_object().unwrap().keys().map(|k| (k.clone(), json!(false))).collect()];
    for sample in rerolls.iter().chain(&solos) {
        let lead_changed = sample["mode"] == "reroll" && sample["lead"] != original["lead"];
        let cell: serde_json::Map<String, Value> = sample["said"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(who, said)| {
                let differs = original["said"].get(who) != Some(said);
                (who.clone(), json!(differs || (lead_changed && sample["lead"] == who.as_str())))
            })
            .collect();
        expected.push(cell);
    }
    assert!(expected.iter().flat_map(|c| c.values()).any(|m| m == true), "some sample differs: {summary}");
    assert_eq!(marked, Value::Array(expected.into_iter().map(Value::Object).collect()), "marks: {summary}");
    assert!(b.text(".cmp-replay-note").await.starts_with("4 replay samples stand beside turn 1"));
    b.finish().await;
}
