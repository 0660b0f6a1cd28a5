//! The character library in the browser: a card imported through the file
//! picker appears in ⊕ with its avatar, joins a running session at the next
//! turn, and speaks.

use fantoccini::Locator;

use crate::helpers::*;

#[actix_web::test]
async fn a_card_imported_through_the_picker_appears_with_its_avatar_joins_and_speaks() {
    let dir = tempfile::tempdir().unwrap();
    let roster = roster_copy(dir.path());
    let app = spawn_with(Options { roster: Some(roster), pace_ms: 1, ..Options::default() }).await;
    // A card the way card sites ship them: a PNG avatar with the card inside.
    let card = serde_json::json!({ "spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Zed <i>the</i> Keeper", "description": "{{char}} keeps the lighthouse and counts the ships.",
        "personality": "Taciturn.", "scenario": "", "first_mes": "Two ships, both late.", "mes_example": "",
        "creator_notes": "", "system_prompt": "", "post_history_instructions": "", "alternate_greetings": [],
        "tags": [], "creator": "kit", "character_version": "1", "extensions": {} } });
    let png = panel_actors::cards::png::with_card(
        &panel_actors::cards::png::generated_avatar("#117755"),
        &card.to_string(),
        &card.to_string(),
    )
    .unwrap();
    let file = dir.path().join("zed-the-keeper.png");
    std::fs::write(&file, png).unwrap();

    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("library-import").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    b.click(".strip .add").await;
    let picker = b.client.wait().at_most(WAIT).for_element(Locator::Css(".card-picker")).await.unwrap();
    picker.send_keys(file.to_str().unwrap()).await.unwrap();
    b.until("the toast", "document.querySelector('#toast').textContent.startsWith('Imported Zed the Keeper')").await;

    b.click(".strip .add").await;
    b.until("Zed in the library", "document.querySelector('.library-item[data-id=zed-the-keeper]') !== null").await;
    b.until("with its avatar", "document.querySelector('.library-item[data-id=zed-the-keeper] img.face')?.complete && document.querySelector('.library-item[data-id=zed-the-keeper] img.face').naturalWidth > 0").await;
    assert_eq!(b.count(".library i").await, 0, "the card's HTML is never rendered");
    b.screenshot("library-menu").await;
    b.click(".library-item[data-id=zed-the-keeper]").await;
    b.until("Zed on stage", "document.querySelector('.strip .chip[data-id=zed-the-keeper]') !== null").await;

    // Its first name is enough to address it.
    b.type_into(".composer textarea", "@Zed any ships tonight?").await;
    b.click(".composer button[type=submit]").await;
    b.until(
        "Zed to answer",
        "document.querySelector('#turn-1:not(.in-flight) .msg[data-speaker=zed-the-keeper]') !== null",
    )
    .await;
    b.until(
        "Zed's face in the chat",
        "document.querySelector('#turn-1 .msg[data-speaker=zed-the-keeper] header img.face') !== null",
    )
    .await;
    b.finish().await;
}

#[actix_web::test]
async fn a_card_dropped_on_the_chat_joins_the_library_and_a_bad_file_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let roster = roster_copy(dir.path());
    let app = spawn_with(Options { roster: Some(roster), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let b = Browser::launch("library-drop").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the chat", "document.querySelector('.chat-view') !== null").await;
    // What a file dragged from the desktop delivers: a drop with its File.
    let drop = |name: &str, kind: &str, body: &str| {
        format!(
            "const dt = new DataTransfer();
             dt.items.add(new File([{body:?}], {name:?}, {{ type: {kind:?} }}));
             const target = document.querySelector('.chat-view');
             for (const type of ['dragover', 'drop'])
               target.dispatchEvent(new DragEvent(type, {{ dataTransfer: dt, bubbles: true, cancelable: true }}));"
        )
    };
    let card = serde_json::json!({ "name": "Quill", "description": "{{char}} edits every sentence twice." });
    b.js(&drop("quill.json", "application/json", &card.to_string())).await;
    b.until("the import's toast", "document.querySelector('#toast').textContent.startsWith('Imported Quill')").await;
    b.click(".strip .add").await;
    b.until("Quill in the library", "document.querySelector('.library-item[data-id=quill]') !== null").await;

    b.js(&drop("broken.png", "image/png", "not a png at all")).await;
    let said = b
        .until(
            "the refusal",
            "document.querySelector('#toast').textContent.startsWith('broken.png: ') && document.querySelector('#toast').textContent",
        )
        .await;
    assert!(said.as_str().unwrap().contains("card"), "says why: {said}");
    b.finish().await;
}
