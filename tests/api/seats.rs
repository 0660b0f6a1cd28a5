//! Several humans on the floor, through the Anthropic mock: seats are
//! validated, a room's lines that wait for one boundary are answered in one
//! turn, and a session where nobody names a seat sends exactly the bytes it
//! sent before seats existed.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::MockAnthropic;

const KEY: &str = "sk-ant-test-seats-SECRET";

/// The request bodies of a seatless script, recorded before seats existed.
/// Regenerate (only for a deliberate format change) with `PANEL_BLESS=1`.
const SEATLESS: &str = "tests/api/fixtures/seatless-requests.jsonl";

async fn anthropic_app() -> (MockAnthropic, TestApp) {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let app = spawn_with(Options { provider: anthropic_at(&mock.url, KEY), ..Options::default() }).await;
    (mock, app)
}

async fn open(app: &TestApp, cast: &[&str]) -> String {
    let body = json!({ "cast": cast, "title": "room", "keep_warm": "off", "seed": 11 });
    let (status, body) = app.post("/api/sessions", body).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_session_in_which_nobody_names_a_seat_sends_the_very_bytes_it_sent_before_seats() {
    let (mock, app) = anthropic_app().await;
    let id = open(&app, &["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    let script: [(&str, &str, Option<Value>); 3] = [
        (
            "What fails first?",
            "<confer>\nAda: Mine.\nByron: Go.\n</confer>\n<speak who=\"Ada\">Queues.</speak>\n<pass who=\"Byron\"/>",
            Some(json!({ "add": "cleo" })),
        ),
        ("@Byron and you?", "<speak who=\"Byron\">Words, before queues.</speak>", Some(json!({ "retire": "ada" }))),
        ("And now?", "<confer>\nCleo: Me.\n</confer>\n<speak who=\"Cleo\">Now the maps.</speak>", None),
    ];
    for (line, output, change) in script {
        mock.push_output(output);
        app.say(&id, line).await;
        sse.until("turn-end").await;
        if let Some(change) = change {
            let (status, body) = app.post(&format!("/api/sessions/{id}/cast"), change).await;
            assert_eq!(status, 202, "{body}");
        }
    }
    let sent: Vec<String> =
        mock.raw_turn_requests().iter().map(|b| String::from_utf8(b.to_vec()).expect("a JSON body")).collect();
    assert_eq!(sent.len(), 3);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SEATLESS);
    if std::env::var_os("PANEL_BLESS").is_some() {
        std::fs::write(&path, sent.join("\n") + "\n").unwrap();
    }
    let recorded = std::fs::read_to_string(&path).expect("the recorded requests");
    let recorded: Vec<&str> = recorded.lines().collect();
    assert_eq!(recorded.len(), sent.len());
    for (turn, (now, then)) in sent.iter().zip(recorded).enumerate() {
        assert!(
            now == then,
            "turn {}'s request differs from the one recorded before seats:\n{now}\n---\n{then}",
            turn + 1
        );
    }
}

async fn say_from(app: &TestApp, id: &str, text: &str, seat: &str) -> (u16, Value) {
    app.post(&format!("/api/sessions/{id}/say"), json!({ "text": text, "seat": seat })).await
}

fn user_text(request: &Value) -> String {
    let last = request["messages"].as_array().unwrap().last().unwrap();
    last["content"].as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn lines_from_two_seats_during_a_turn_are_answered_in_one_turn_with_both_in_the_request() {
    let (mock, app) = anthropic_app().await;
    let id = open(&app, &["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    let release = mock.hold_next_turn();
    mock.push_output("<speak who=\"Ada\">First, the opening.</speak>");
    mock.push_output("<speak who=\"Byron\">Maya, Theo: queues and words both.</speak>");
    mock.push_output("<speak who=\"Ada\">Again, Maya.</speak>");
    app.say(&id, "An opening question.").await;
    sse.until("turn-start").await;

    let (status, maya) = say_from(&app, &id, "Why do queues fail?", "Maya").await;
    assert_eq!((status, maya["turn"].clone()), (202, json!(2)), "{maya}");
    let (status, theo) = say_from(&app, &id, "@Byron and words?", " Theo ").await;
    assert_eq!((status, theo["turn"].clone()), (202, json!(2)), "heard in the same turn: {theo}");
    release.send(()).unwrap();
    sse.until("turn-end").await;
    let second = logged(&sse.until("turn-end").await);
    let floor: Vec<Value> = second.iter().map(SseEvent::json).filter(|e| e["kind"] == "human-speak").collect();
    assert_eq!(floor.len(), 2, "each line its own human-speak");
    assert_eq!((floor[0]["seat"].clone(), floor[0]["text"].clone()), (json!("Maya"), json!("Why do queues fail?")));
    assert_eq!((floor[1]["seat"].clone(), floor[1]["to"].clone()), (json!("Theo"), json!("byron")));
    assert!(floor.iter().all(|e| e["turn"] == 2));
    let start = second.iter().map(SseEvent::json).find(|e| e["kind"] == "turn-start").unwrap();
    assert_eq!(start["mode"], "addressed", "an @ in any line addresses the turn");

    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "two lines, one request");
    let heard = user_text(&requests[1]);
    let maya_at = heard.find("From the floor (Maya): \"Why do queues fail?\"").expect(&heard);
    let theo_at = heard.find("From the floor (Theo), to Byron: \"and words?\"").expect(&heard);
    let room_at = heard.find("<stage>The floor is now several people").expect("the room's direction");
    assert!(room_at < maya_at && maya_at < theo_at, "in arrival order, the room told first: {heard}");

    say_from(&app, &id, "And once more?", "Maya").await;
    sse.until("turn-end").await;
    let all: String = mock.requests().last().unwrap()["messages"].to_string();
    assert_eq!(all.matches("The floor is now several people").count(), 1, "the room is told once");

    // The log rebuilds the very context: a restarted actor hashes as the live one.
    let live = app.prefix_hash(&id).await;
    assert_eq!(app.delete(&format!("/api/sessions/{id}/actor")).await.0, 200);
    assert_eq!(app.post_empty(&format!("/api/sessions/{id}/actor")).await.0, 200);
    assert_eq!(app.prefix_hash(&id).await, live);
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[actix_web::test]
async fn a_seat_with_control_characters_or_a_cast_members_name_is_refused_and_nothing_is_logged() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    for seat in [
        "Ma\u{7}ya",
        "Maya\u{1b}]52;c;x\u{7}",
        "Ada",
        "byron",
        "A\u{200b}da",
        "\u{ff22}yron",
        "",
        "   ",
        &"m".repeat(33),
    ] {
        let (status, body) = say_from(&app, &id, "Hello?", seat).await;
        assert_eq!((status, body["error"]["code"].clone()), (422, json!("bad-seat")), "{seat:?}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.contains('/')), "{body}");
    }
    let mut ws = crate::ws::connect(&app, &id, "?seat=Ada&events=none").await;
    crate::ws::send(&mut ws, json!({ "type": "say", "text": "Hello?", "id": 1 })).await;
    let answer = crate::ws::next_json(&mut ws).await;
    assert_eq!((answer["type"].clone(), answer["code"].clone()), (json!("error"), json!("bad-seat")), "{answer}");
    let detail = app.get(&format!("/api/sessions/{id}")).await.1;
    assert_eq!(detail["turns"], 0, "nothing was heard: {detail}");
    let history = app.get(&format!("/api/sessions/{id}/history")).await.1;
    assert!(!history.to_string().contains("human-speak"), "{history}");
}

#[actix_web::test]
async fn a_character_cannot_join_under_the_name_of_a_seat_that_has_spoken() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    let (status, body) = say_from(&app, &id, "Hello, panel.", "Cleo").await;
    assert_eq!(status, 202, "{body}");
    sse.until("turn-end").await;
    let (status, body) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "cleo" })).await;
    assert_eq!((status, body["error"]["code"].clone()), (422, json!("seat-taken")), "{body}");
    let detail = app.get(&format!("/api/sessions/{id}")).await.1;
    let on_stage: Vec<&str> =
        detail["on_stage"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(on_stage, ["ada", "byron"], "nobody joined: {detail}");
    // Anyone else still may.
    let (status, body) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "iris" })).await;
    assert_eq!(status, 202, "{body}");
}

/// One seat's client: sends its lines one at a time over its WebSocket,
/// each after the last was taken; a full queue is waited out, not lost.
async fn speak_all(mut ws: crate::ws::Conn, seat: &str, lines: usize) {
    for i in 1..=lines {
        loop {
            crate::ws::send(&mut ws, json!({ "type": "say", "text": format!("{seat} {i}"), "id": i })).await;
            let answer = loop {
                let frame = crate::ws::next_json(&mut ws).await;
                if frame["id"] == i && (frame["type"] == "ack" || frame["type"] == "error") {
                    break frame;
                }
            };
            if answer["type"] == "ack" {
                break;
            }
            assert_eq!(answer["code"], "queue-full", "{answer}");
            while crate::ws::next_json(&mut ws).await["kind"] != "turn-end" {}
        }
    }
}

#[actix_web::test]
async fn two_seats_sending_a_hundred_interleaved_lines_have_every_line_logged_once_with_its_seat() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    let maya = crate::ws::connect(&app, &id, "?seat=Maya").await;
    let theo = crate::ws::connect(&app, &id, "?seat=Theo").await;
    futures_util::join!(speak_all(maya, "Maya", 50), speak_all(theo, "Theo", 50));

    let mut heard: Vec<Value> = Vec::new();
    while heard.len() < 100 {
        let event = tokio::time::timeout(WAIT, sse.next()).await.expect("every line in time").expect("open");
        let event = event.json();
        if event["kind"] == "human-speak" {
            heard.push(event);
        }
    }
    for seat in ["Maya", "Theo"] {
        let texts: Vec<String> =
            heard.iter().filter(|e| e["seat"] == seat).map(|e| e["text"].as_str().unwrap().to_owned()).collect();
        let sent: Vec<String> = (1..=50).map(|i| format!("{seat} {i}")).collect();
        assert_eq!(texts, sent, "every line of {seat} once, in its order");
    }
    let detail = app
        .detail_until(&id, "all turns ended", |d| {
            d["live"]["turn_in_flight"] == false && d["live"]["queued_input"] == 0
        })
        .await;
    assert!(detail["turns"].as_u64().unwrap() <= 100, "{detail}");
}

/// A stream of the session that asks to be told who is here.
async fn watch(app: &TestApp, id: &str) -> Sse {
    app.sse_with(id, "?presence=1".into(), None).await
}

/// The next `presence` frame on `sse` that `wanted` accepts.
async fn presence_until(sse: &mut Sse, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let event = tokio::time::timeout(WAIT, sse.next()).await.expect("presence in time").expect("open");
        if event.event == "presence" {
            assert!(event.id.is_none(), "presence is ephemeral: no id");
            let presence = event.json();
            if wanted(&presence) {
                return presence;
            }
        }
    }
}

#[actix_web::test]
async fn presence_tells_every_watcher_who_is_here_and_is_never_logged() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut first = watch(&app, &id).await;
    let alone = presence_until(&mut first, |_| true).await;
    assert_eq!((alone["seats"].clone(), alone["watchers"].clone()), (json!([]), json!(1)), "{alone}");

    let maya = crate::ws::connect(&app, &id, "?seat=Maya&events=none").await;
    let theo = crate::ws::connect(&app, &id, "?seat=Theo&events=none").await;
    let mut second = watch(&app, &id).await;
    let mut third = app.sse(&id, None).await;
    let room = presence_until(&mut first, |p| p["seats"] == json!(["Maya", "Theo"]) && p["watchers"] == 1).await;
    assert_eq!(room["session"], id.as_str());
    // Every new watcher is told at once, even when it changed nothing.
    presence_until(&mut second, |p| p["seats"] == json!(["Maya", "Theo"])).await;
    // A stream that did not ask is not told: all such streams see the same frames.
    app.say(&id, "Who is here?").await;
    let quiet = third.until("turn-end").await;
    assert!(quiet.iter().all(|e| e.event != "presence"), "{quiet:?}");

    // A second tab of Maya's (its socket; the tabs share one stream) is
    // still one seat watching through one stream.
    let maya_again = crate::ws::connect(&app, &id, "?seat=Maya&events=none").await;
    drop(theo);
    let one_seat = presence_until(&mut first, |p| p["seats"] == json!(["Maya"])).await;
    assert_eq!(one_seat["watchers"], 2, "three streams, one of them Maya's: {one_seat}");
    drop(maya_again);
    drop(maya);
    let after = presence_until(&mut first, |p| p["seats"] == json!([])).await;
    assert_eq!(after["watchers"], 3, "three streams, no seats: {after}");

    let (status, refused) = app.get(&format!("/api/sessions/{id}/ws?seat=Ma%07ya")).await;
    assert_eq!((status, refused["error"]["code"].clone()), (422, json!("bad-seat")), "{refused}");
    let history = app.get(&format!("/api/sessions/{id}/history")).await.1;
    assert!(!history.to_string().contains("presence"), "{history}");
}
