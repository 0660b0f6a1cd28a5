//! Long sessions: the chat, the confer drawer and the viewer show a window
//! of turns, fetched in one request; scrolling up reaches the first turn in
//! order, a live turn does not move what the reader is reading, search
//! finds text the DOM does not hold, and a link to a turn lands on it.
//!
//! The long sessions are written straight to a log (the events a rehearsal
//! turn logs, in the log's own format), so a 1,000-turn session takes a
//! moment, not a minute of play; the live-turn test plays a real one.

use std::path::Path;

use panel_actors::event::{Cost, Event, EventBody, SessionConfig, Timestamp, Totals, TurnMode};
use panel_actors::id::{CharacterId, SessionId};
use panel_actors::roster::Roster;
use panel_actors::templates::Templates;
use serde_json::json;

use crate::helpers::*;

/// The line Ada speaks in turn 3, and the one Cleo confers in turn 3.
const NEEDLE: &str = "the lighthouse keeper's ledger";
const CONFER_NEEDLE: &str = "tide tables";

/// Writes a closed `turns`-turn session of Ada, Byron and Cleo into `logs`,
/// with its manifest and index entry, as a closed session has them.
fn write_session(logs: &Path, name: &str, turns: u32) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("roster");
    let roster = Roster::load(&root.join("characters")).unwrap();
    let ids: Vec<CharacterId> = ["ada", "byron", "cleo"].iter().map(|c| CharacterId::parse(c).unwrap()).collect();
    let mut bodies = vec![(
        0,
        EventBody::SessionOpen {
            config: SessionConfig::new(format!("{turns} turns"), 2, "rehearsal".into()),
            model: "rehearsal".into(),
            head: String::new(),
            participants: ids.iter().map(|c| roster.get(c).cloned().unwrap()).collect(),
            templates: Box::new(Templates::load(&root.join("prompts")).unwrap()),
            parent: None,
            carry: None,
            study: None,
        },
    )];
    let mut totals = Totals::default();
    for turn in 1..=turns {
        let [ada, byron, cleo] = [0, 1, 2].map(|k| ids[k].clone());
        let said = if turn == 3 { format!("Start from {NEEDLE}, Byron.") } else { format!("Ada on question {turn}.") };
        let conferred =
            if turn == 3 { format!("The {CONFER_NEEDLE} first.") } else { format!("Cleo confers on {turn}.") };
        let cost = Cost {
            model: "rehearsal".into(),
            input: 60,
            cache_read: 2_000,
            output: 40,
            usd: Some(0.001),
            ..Cost::default()
        };
        totals.add(&cost);
        totals.turns += 1;
        bodies.extend([
            (turn, EventBody::HumanSpeak { text: format!("Question {turn}: what now?"), to: None, seat: None }),
            (turn, EventBody::TurnStart { mode: TurnMode::Panel, cast: ids.clone() }),
            (turn, EventBody::Deliberation { speaker: cleo.clone(), text: conferred }),
            (turn, EventBody::Speak { speaker: ada.clone(), text: said }),
            (turn, EventBody::Speak { speaker: byron.clone(), text: format!("Byron answers {turn}.") }),
            (turn, EventBody::Pass { speaker: cleo.clone() }),
            (turn, EventBody::Cost(cost)),
            (turn, EventBody::TurnEnd { order: vec![ada, byron, cleo], output: String::new(), provenance: None }),
        ]);
    }
    bodies.push((turns, EventBody::SessionClose { totals }));
    let id = SessionId::parse(name).unwrap();
    let ts = Timestamp::now();
    let mut log = String::new();
    for (seq, (turn, body)) in bodies.into_iter().enumerate() {
        let event = Event { seq: seq as u64 + 1, ts, session: id.clone(), turn, sample: None, body };
        log.push_str(&serde_json::to_string(&event).unwrap());
        log.push('\n');
    }
    std::fs::create_dir_all(logs.join(name)).unwrap();
    std::fs::write(logs.join(name).join("events.jsonl"), log).unwrap();
    panel_actors::record::write_session(logs, &id).unwrap();
    name.to_owned()
}

/// The turn numbers in the chat's DOM, in document order.
async fn turns_shown(b: &Browser) -> Vec<u64> {
    serde_json::from_value(
        b.js("return [...document.querySelectorAll('.chat .turn')].map(t => Number(t.dataset.turn));").await,
    )
    .unwrap()
}

/// Whether `css` is on screen inside the scrolling list that holds it.
fn in_view(css: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({css:?}); if (!e) return false; \
         const s = e.closest('.chat, .drawer').getBoundingClientRect(), r = e.getBoundingClientRect(); \
         return r.height > 0 && r.top >= s.top - 1 && r.bottom <= s.bottom + 1; }})()"
    )
}

/// Scrolls the chat to its top until turn 1 is shown; every DOM seen on the
/// way holds consecutive turns, and together they hold every turn.
async fn scroll_up_to_turn_one(b: &Browser, turns: u64, what: &str) {
    let mut seen = std::collections::BTreeSet::new();
    let mut most = 0;
    loop {
        let shown = turns_shown(b).await;
        assert!(!shown.is_empty(), "{what}: no turns shown");
        assert!(shown.windows(2).all(|w| w[1] == w[0] + 1), "{what}: turns out of order or missing: {shown:?}");
        most = most.max(shown.len());
        seen.extend(shown.iter().copied());
        if shown[0] == 1 {
            break;
        }
        b.js("document.querySelector('.chat').scrollTop = 0;").await;
        b.until(
            &format!("{what}: turns above {}", shown[0]),
            &format!("Number(document.querySelector('.chat .turn').dataset.turn) < {}", shown[0]),
        )
        .await;
    }
    assert_eq!(seen, (1..=turns).collect(), "{what}: every turn was rendered");
    assert!(most <= 100, "{what}: the DOM holds a window of turns, not the session ({most})");
}

#[actix_web::test]
async fn scrolling_up_reaches_turn_one_with_every_turn_rendered_in_order_in_the_app_and_the_viewer() {
    let logs = tempfile::tempdir().unwrap();
    let id = write_session(logs.path(), "long-250", 250);
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let b = Browser::launch("window-scroll-up").await;
    for (what, url) in [("app", format!("/#/s/{id}")), ("viewer", format!("/viewer.html#/s/{id}"))] {
        b.goto(&app.url(&url)).await;
        b.until(&format!("{what}: the last turn on screen"), &in_view("#turn-250")).await;
        let shown = turns_shown(&b).await;
        assert!(!shown.contains(&1) && shown.len() < 250, "{what} opens on the newest turns only: {shown:?}");
        scroll_up_to_turn_one(&b, 250, what).await;
        // Turns added above kept the reader's place: the top is one more scroll away.
        b.js("document.querySelector('.chat').scrollTop = 0;").await;
        b.until(&format!("{what}: turn 1 on screen"), &in_view("#turn-1")).await;
        assert_eq!(b.text("#turn-1 .floor-text").await, "Question 1: what now?");
    }
    b.finish().await;
}

#[actix_web::test]
async fn a_live_turn_arriving_while_the_reader_is_scrolled_up_does_not_move_what_they_read() {
    let app = spawn_with(Options { pace_ms: 0, ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, Some(0)).await;
    for n in 1..=60 {
        app.say(&id, &format!("Question {n}: what fails first?")).await;
        sse.until("turn-end").await;
    }
    let b = Browser::launch("window-live-turn").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the stream to be live", "document.querySelector('#connection')?.dataset.state === 'live'").await;
    b.until("the newest turn on screen", &in_view("#turn-60")).await;
    assert_eq!(b.count("#turn-1").await, 0, "the oldest turns are not in the DOM");
    // The reader scrolls up to read turn 45.
    b.js("const c = document.querySelector('.chat'); c.scrollTop += document.querySelector('#turn-45').getBoundingClientRect().top - c.getBoundingClientRect().top;").await;
    b.until("turn 45 at the top", &in_view("#turn-45 .floor-row")).await;
    let place = "return Math.round(document.querySelector('#turn-45').getBoundingClientRect().top);";
    let before = b.js(place).await;
    app.say(&id, "Question 61, while the reader is elsewhere.").await;
    b.until("turn 61 to end", "document.querySelector('#turn-61:not(.in-flight) .cost')?.textContent.startsWith('$')")
        .await;
    assert_eq!(b.js(place).await, before, "what the reader reads has not moved");
    assert!(b.js(&format!("return {};", in_view("#turn-45 .floor-row"))).await.as_bool().unwrap());
    let shown = turns_shown(&b).await;
    assert!(shown.windows(2).all(|w| w[1] == w[0] + 1) && shown.last() == Some(&61), "no gap, no duplicate: {shown:?}");
    b.finish().await;
}

#[actix_web::test]
async fn search_finds_a_line_in_turn_three_of_a_thousand_and_shows_it() {
    let logs = tempfile::tempdir().unwrap();
    let id = write_session(logs.path(), "long-1000", 1000);
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let b = Browser::launch("window-search").await;
    b.goto(&app.url(&format!("/#/s/{id}"))).await;
    b.until("the last turn on screen", &in_view("#turn-1000")).await;
    assert_eq!(b.count("#turn-3").await, 0, "turn 3 is not in the DOM, so only a search of the history can find it");
    b.type_into(".search-input", "LIGHTHOUSE keeper").await;
    b.type_into(".search-input", ENTER).await;
    b.until("the match on screen, marked", &in_view("#turn-3 .msg.search-hit")).await;
    assert!(b.text("#turn-3 .msg.search-hit .text").await.contains(NEEDLE));
    assert_eq!(b.text(".search-count").await, "1 of 1");
    b.screenshot("window-search-hit").await;
    // A confer line opens the drawer at its turn.
    b.js("const i = document.querySelector('.search-input'); i.value = ''; i.focus();").await;
    b.type_into(".search-input", CONFER_NEEDLE).await;
    b.type_into(".search-input", ENTER).await;
    b.until("the confer match on screen", &in_view("#confer-3 .line.search-hit")).await;
    assert_eq!(b.js("return document.querySelector('#confer-drawer').hidden;").await, json!(false));
    b.finish().await;
}

#[actix_web::test]
async fn a_deep_link_to_turn_five_hundred_lands_there_in_the_app_and_the_viewer() {
    let logs = tempfile::tempdir().unwrap();
    let id = write_session(logs.path(), "long-600", 600);
    let app = spawn_with(Options { logs: Some(logs.path().to_owned()), ..Options::default() }).await;
    let b = Browser::launch("window-deep-link").await;
    b.goto(&app.url(&format!("/#/s/{id}/t/500"))).await;
    b.until("turn 500 on screen in the app", &in_view("#turn-500 .floor-row")).await;
    assert_eq!(b.text("#turn-500 .floor-text").await, "Question 500: what now?");
    assert_eq!(b.count("#turn-600").await, 0, "the window is around turn 500, not at the end");
    // The jump box goes elsewhere, and the link to turn 500 brings it back.
    b.type_into(".jump-input", "20").await;
    b.type_into(".jump-input", ENTER).await;
    b.until("turn 20 on screen", &in_view("#turn-20 .floor-row")).await;
    b.goto(&app.url(&format!("/viewer.html#/s/{id}/t/500"))).await;
    b.until("turn 500 on screen in the viewer", &in_view("#turn-500 .floor-row")).await;
    assert!(b.text(".position").await.starts_with("turn 500 of 600"));
    b.finish().await;
}
