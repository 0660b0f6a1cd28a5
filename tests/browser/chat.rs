//! The live chat: confer drawer, replies, @-address, the roster strip, the
//! cost meter, reloads and a second window.

use serde_json::json;

use crate::helpers::*;

async fn open_chat(app: &TestApp, name: &str, cast: &[&str]) -> (Browser, String) {
    let id = app.create(cast).await;
    let b = Browser::launch(name).await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the cast in the strip", "document.querySelector('.strip .chip') !== null").await;
    b.until("the socket to open", "document.body.dataset.socket === 'open'").await;
    (b, id)
}

#[actix_web::test]
async fn a_message_gets_a_confer_in_the_drawer_and_one_reply_per_character() {
    let app = spawn_with(Options { pace_ms: 2, ..Options::default() }).await;
    let (b, _) = open_chat(&app, "chat-confer", &["ada", "byron", "cleo"]).await;
    send(&b, "What should a hospital automate first?").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    let answers = b.count("#turn-1 .replies .msg").await + b.count("#turn-1 .replies .pass").await;
    assert_eq!(answers, 3, "one reply or pass per character");
    let speakers = b
        .js("return [...document.querySelectorAll('#turn-1 [data-speaker]')].map(e => e.dataset.speaker).sort();")
        .await;
    assert_eq!(speakers, json!(["ada", "byron", "cleo"]));
    assert_eq!(b.count(".chat .line").await, 0, "the confer never enters the main chat");
    assert_eq!(b.text("#turn-1 .floor").await, "What should a hospital automate first?");
    assert_eq!(b.count(".confer-turn.empty").await, 0, "the drawer knows the confer has lines");

    b.click("#turn-1 .confer-link").await;
    b.until("the drawer to open", "!document.querySelector('#confer-drawer').hidden").await;
    let lines = b.count("#confer-1 .line").await;
    assert!(lines >= 2, "the confer shows in the drawer: {lines} lines");
    b.screenshot("chat-confer-drawer").await;
    b.click("#confer-1 .turn-link").await;
    b.finish().await;
}

#[actix_web::test]
async fn an_at_address_autocompletes_and_gets_one_answer_with_no_confer() {
    let app = spawn_app().await;
    let (b, _) = open_chat(&app, "chat-address", &["ada", "byron", "cleo"]).await;
    b.type_into(".composer textarea", "@By").await;
    b.until("the mention menu", "!document.querySelector('.mentions').hidden").await;
    assert_eq!(b.text(".mentions li").await, "@Byron");
    b.type_into(".composer textarea", TAB).await;
    assert_eq!(b.js("return document.querySelector('.composer textarea').value;").await, json!("@Byron "));
    send(&b, "what do you hear in this?").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    assert_eq!(b.count("#turn-1 .msg").await, 1);
    assert_eq!(b.text("#turn-1 .msg header").await, "Byron");
    assert_eq!(b.text("#turn-1 .floor .to").await, "to Byron");
    assert_eq!(b.count("#confer-1").await, 0, "no confer for an addressed turn");
    b.finish().await;
}

#[actix_web::test]
async fn the_strip_retires_and_adds_and_a_change_mid_turn_waits_for_the_boundary() {
    let app = spawn_with(Options { pace_ms: 25, ..Options::default() }).await;
    let (b, _) = open_chat(&app, "chat-strip", &["ada", "byron", "cleo"]).await;
    b.click(".strip .chip[data-id=cleo] button").await;
    b.until("Cleo to leave", "document.querySelectorAll('.strip .chip').length === 2").await;
    assert!(b.text(".chat .marker").await.contains("Cleo left"));

    send(&b, "A question long enough to change the cast while it is answered.").await;
    b.until("the turn to be in flight", "document.querySelector('#turn-1.in-flight')").await;
    b.click(".add").await;
    b.click(".library-item[data-id=otto]").await;
    b.until("Otto pending", "document.querySelector('.strip .chip.pending[data-id=otto]')").await;
    assert!(b.text(".strip .chip.pending[data-id=otto]").await.contains("joins at the next turn"));
    assert!(
        b.js("return document.querySelector('#turn-1').classList.contains('in-flight');").await.as_bool().unwrap(),
        "still mid-turn"
    );
    b.screenshot("chat-strip-pending").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    b.until("Otto on stage", "document.querySelector('.strip .chip[data-id=otto]:not(.pending)')").await;
    let order = b.js("return [...document.querySelectorAll('.chat > li')].map(li => li.id || li.textContent);").await;
    let order: Vec<String> = serde_json::from_value(order).unwrap();
    let joined = order.iter().position(|t| t.contains("Otto joined")).expect("a join marker");
    let turn = order.iter().position(|t| t == "turn-1").unwrap();
    assert!(joined > turn, "the join lands after the turn: {order:?}");
    b.finish().await;
}

#[actix_web::test]
async fn retiring_the_last_character_is_refused_with_a_visible_reason() {
    let app = spawn_app().await;
    let (b, _) = open_chat(&app, "chat-last", &["maren"]).await;
    b.click(".strip .chip[data-id=maren] button").await;
    b.until("the refusal", "!document.querySelector('#toast').hidden").await;
    assert!(b.text("#toast").await.contains("last character"));
    assert_eq!(b.count(".strip .chip").await, 1);
    b.finish().await;
}

#[actix_web::test]
async fn the_cost_meter_and_the_session_total_update_each_turn() {
    let app = spawn_app().await;
    let (b, _) = open_chat(&app, "chat-cost", &["ada", "otto"]).await;
    let before = b.text(".totals").await;
    send(&b, "First: where do we start?").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    let after_one = b.text(".totals").await;
    assert_ne!(before, after_one);
    let split = b.js("return document.querySelector('#turn-1 .cost').title;").await;
    assert!(split.as_str().unwrap().contains("cache write"), "{split}");
    b.click("#turn-1 .cost").await;
    assert!(b.text("#turn-1 .cost-detail").await.contains("simulated"));
    send(&b, "Second: and then?").await;
    b.until("turn 2 to end", &turn_done(2)).await;
    let after_two = b.text(".totals").await;
    assert_ne!(after_one, after_two);
    let share: u32 = after_two.split(" · ").nth(1).unwrap().trim_end_matches("% cache reads").parse().unwrap();
    assert!(share > 0, "turn 2 reads the cache: {after_two}");
    b.finish().await;
}

#[actix_web::test]
async fn a_reload_mid_session_shows_the_same_history_without_duplicates() {
    let app = spawn_with(Options { pace_ms: 10, ..Options::default() }).await;
    let (b, _) = open_chat(&app, "chat-reload", &["ada", "byron", "cleo"]).await;
    send(&b, "First question.").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    send(&b, "Second question, interrupted by a reload.").await;
    b.until("turn 2 to be in flight", "document.querySelector('#turn-2.in-flight')").await;
    b.client.refresh().await.unwrap();
    b.until("turn 2 to end after the reload", &turn_done(2)).await;
    assert_eq!(b.count(".chat .turn").await, 2);
    let replies = b
        .js("return [...document.querySelectorAll('.turn')].map(t => t.querySelectorAll('.msg, .pass').length);")
        .await;
    assert_eq!(replies, json!([3, 3]), "each character once per turn, nothing twice");
    assert_eq!(b.count(".chat .floor").await, 2);
    b.finish().await;
}

#[actix_web::test]
async fn a_second_window_watches_the_same_session_in_step() {
    let app = spawn_with(Options { pace_ms: 2, ..Options::default() }).await;
    let (one, id) = open_chat(&app, "chat-window-one", &["iris", "maren"]).await;
    let two = Browser::launch("chat-window-two").await;
    two.goto(&app.url(&format!("/#/s/{id}"))).await;
    two.until("the second window to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    send(&one, "Is it ever right to withhold a diagnosis?").await;
    one.until("turn 1 to end in window one", &turn_done(1)).await;
    two.until("turn 1 to end in window two", &turn_done(1)).await;
    let texts = "return [...document.querySelectorAll('.chat .msg .text, .chat .pass')].map(e => e.textContent);";
    let first = one.js(texts).await;
    assert_eq!(first, two.js(texts).await);
    assert!(!first.as_array().unwrap().is_empty());
    one.finish().await;
    two.finish().await;
}

#[actix_web::test]
async fn the_chat_fits_a_narrow_window_in_dark_mode_and_works_from_the_keyboard() {
    let app = spawn_app().await;
    let id = app.create(&["iris", "maren", "otto"]).await;
    let b = Browser::launch_with("chat-narrow-dark", &["--force-dark-mode"]).await;
    b.client.set_window_size(420, 900).await.unwrap();
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the socket", "document.querySelector('.strip .chip') !== null").await;
    let dark = b.js("return matchMedia('(prefers-color-scheme: dark)').matches;").await;
    assert_eq!(dark, json!(true));
    let background = b.js("return getComputedStyle(document.documentElement).getPropertyValue('--bg').trim();").await;
    assert_eq!(background, json!("#151517"), "the dark palette is in use");
    send(&b, "Is it ever right to withhold a diagnosis from a frightened patient?").await;
    b.until("turn 1 to end", &turn_done(1)).await;
    let overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth;").await;
    let wide = b.js("return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '.' + e.className).slice(0, 8);").await;
    assert!(overflow.as_i64().unwrap() <= 0, "nothing overflows sideways: {overflow} {wide}");
    // The drawer opens from the keyboard and closes with Escape.
    b.js("document.querySelector('.drawer-toggle').focus();").await;
    b.type_into(".drawer-toggle", ENTER).await;
    b.until("the drawer", "!document.querySelector('#confer-drawer').hidden").await;
    let covers = b.js("const r = document.querySelector('#confer-drawer').getBoundingClientRect(); return r.right <= window.innerWidth + 1 && r.width > 300;").await;
    assert_eq!(covers, json!(true), "the drawer slides over the chat on a narrow screen");
    b.screenshot("chat-narrow-dark-drawer").await;
    b.type_into(".drawer-toggle", "\u{E00C}").await;
    b.until("the drawer to close", "document.querySelector('#confer-drawer').hidden").await;
    b.finish().await;
}

#[actix_web::test]
async fn a_session_on_a_llama_cpp_server_shows_the_format_is_enforced() {
    use crate::mock_openai::{MockOpenAi, Server};
    let llama = MockOpenAi::start_as(Server::LlamaCpp { n_ctx: 100_000 }).await;
    let app = spawn_with(Options { provider: openai_at(&llama.url), ..Options::default() }).await;
    let (b, _) = open_chat(&app, "chat-format-enforced", &["ada", "byron"]).await;
    b.until("the badge", "!document.querySelector('.format-badge').hidden").await;
    assert_eq!(b.text(".format-badge").await, "format enforced by the server");
    send(&b, "What fails first?").await;
    // An unpriced local model's cost shows as "—", so wait for the turn itself.
    b.until("turn 1 to end", "document.querySelector('#turn-1:not(.in-flight) .msg') !== null").await;
    assert_eq!(b.count("#turn-1 .msg").await, 1);
    assert!(llama.problems().is_empty(), "{:?}", llama.problems());
    b.finish().await;
}
