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
