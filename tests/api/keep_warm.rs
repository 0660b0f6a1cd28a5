//! The cache clock and keep-warm, against the Anthropic mock on a scaled
//! clock: at 300× a 5-minute TTL lasts one second, the ping lead a tenth of
//! that, and a 30-minute silence cap six seconds. Nothing here waits for
//! minutes, and nothing sleeps to synchronise: each test waits for the event
//! or the state it expects, with a timeout.

use std::time::{Duration, Instant};

use panel::config::ProviderChoice;
use panel_actors::provider::anthropic::AnthropicConfig;
use panel_actors::provider::http::ApiKey;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::mock_anthropic::{Fault, MockAnthropic};

const KEY: &str = "sk-ant-test-keepwarm-SECRET";
const SCALE: f64 = 300.0;

async fn scaled(cap: Duration) -> (MockAnthropic, TestApp) {
    let mock = MockAnthropic::start_scaled(KEY, 1024, SCALE).await;
    let provider = ProviderChoice::Anthropic(AnthropicConfig {
        base_url: mock.url.clone(),
        api_key: ApiKey::new(KEY.into()),
        model: "claude-sonnet-5".into(),
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(2),
    });
    let app = spawn_with(Options { provider, time_scale: SCALE, keep_warm_cap: cap, ..Options::default() }).await;
    (mock, app)
}

async fn create(app: &TestApp, keep_warm: &str) -> String {
    let body = json!({ "cast": ["ada", "byron", "cleo"], "title": "pauses", "keep_warm": keep_warm });
    let (status, body) = app.post("/api/sessions", body).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn turn(app: &TestApp, sse: &mut Sse, id: &str, text: &str) -> Value {
    app.say(id, text).await;
    let events = sse.until("turn-end").await;
    events.iter().find(|e| e.event == "cost").expect("a cost event").json()
}

fn cold(body: &Value) -> bool {
    body["cache"]["warm"] == false
}

#[actix_web::test]
async fn a_pause_past_the_ttl_without_keep_warm_rewrites_the_whole_prompt() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    let id = create(&app, "off").await;
    let mut sse = app.sse(&id, Some(0)).await;
    let first = turn(&app, &mut sse, &id, "What fails first?").await;
    assert!(first["warm_until"].is_string(), "every cost carries warm_until: {first}");

    let warm = app.detail_until(&id, "the cache clock", |b| b["cache"]["warm"] == true).await;
    assert_eq!(warm["cache"]["ttl_s"].as_f64(), Some(1.0), "300 s at 300×: {warm}");
    assert!(warm["cache"]["prefix_tokens"].as_u64().unwrap() > 1024);
    app.detail_until(&id, "the cache to go cold", cold).await;

    let second = turn(&app, &mut sse, &id, "And after the pause?").await;
    let r = mock.reported();
    assert_eq!(second["cache_read"], 0, "a cold cache reads nothing: {second}");
    assert_eq!(second["cache_write"].as_u64().unwrap(), r[1].blocks.iter().sum::<u64>(), "all of it is written again");
    assert!(mock.pings().is_empty(), "keep-warm off sends no pings");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[actix_web::test]
async fn with_auto_and_a_watcher_a_long_pause_ends_in_a_cache_read_and_every_ping_is_logged() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    let id = create(&app, "auto").await;
    let mut sse = app.sse(&id, Some(0)).await;
    let first = turn(&app, &mut sse, &id, "What fails first?").await;

    // Three pings: a pause of more than two TTLs.
    let mut pings = Vec::new();
    while pings.len() < 3 {
        let e = sse.next().await.expect("the stream stays open");
        assert_ne!(e.event, "error", "{e:?}");
        if e.event == "keep-warm" {
            pings.push(e.json());
        }
    }
    for p in &pings {
        assert!(p["cache_read"].as_u64().unwrap() >= first["cache_write"].as_u64().unwrap(), "a ping reads: {p}");
        assert_eq!(p["cache_write"], 0, "a ping of a warm prefix writes nothing: {p}");
        assert!(p["usd"].as_f64().unwrap() > 0.0 && p["warm_until"].is_string(), "{p}");
    }

    let second = turn(&app, &mut sse, &id, "Back again.").await;
    assert!(second["cache_read"].as_u64().unwrap() >= first["cache_write"].as_u64().unwrap(), "{second}");
    assert_eq!(second["cache_hit"], true);

    // Unstreamed, max_tokens 0; the mock compared each with the turn after it.
    for ping in mock.pings() {
        assert_eq!(ping["max_tokens"], 0);
        assert!(ping.get("stream").is_none_or(|s| s == false), "{ping}");
    }
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());

    // The totals count the pings.
    let (_, body) = app.get(&format!("/api/sessions/{id}")).await;
    let turns_usd = first["usd"].as_f64().unwrap() + second["usd"].as_f64().unwrap();
    let totals = &body["totals"];
    assert!(totals["usd"].as_f64().unwrap() > turns_usd + 1e-9, "pings are in the totals: {body}");
}

#[actix_web::test]
async fn the_pre_warm_has_the_same_prefix_and_breakpoints_as_the_turn_after_it() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    sse.until("keep-warm").await;
    turn(&app, &mut sse, &id, "Go on.").await;

    let requests = mock.requests();
    let ping = requests.iter().rfind(|r| r["max_tokens"] == 0).unwrap();
    let next = requests.last().unwrap();
    assert_eq!(ping["system"], next["system"], "same system blocks, marks included");
    let (pm, nm) = (ping["messages"].as_array().unwrap(), next["messages"].as_array().unwrap());
    assert_eq!(pm.len() + 2, nm.len(), "the turn adds the reply and the floor's new line");
    for (p, n) in pm.iter().zip(nm) {
        assert_eq!(p["content"][0]["text"], n["content"][0]["text"], "same prefix bytes");
    }
    assert!(!pm.last().unwrap()["content"][0]["cache_control"].is_null(), "the ping marks its newest message");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

#[actix_web::test]
async fn with_nobody_watching_auto_sends_nothing() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    let id = create(&app, "auto").await;
    app.say(&id, "Anyone there?").await;
    app.detail_until(&id, "the turn to end", |b| b["turns"] == 1 && b["cache"]["warm"] == true).await;
    app.detail_until(&id, "the cache to go cold", cold).await;
    assert!(mock.pings().is_empty(), "no watcher, no pings: {:?}", mock.pings());
}

#[actix_web::test]
async fn past_the_silence_cap_pings_stop_and_the_cache_goes_cold() {
    // A 15-minute cap: three seconds at 300×, so about three pings.
    let (mock, app) = scaled(Duration::from_secs(900)).await;
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    sse.until("keep-warm").await;
    // Going cold at all means the pings stopped.
    app.detail_until(&id, "the cache to go cold after the cap", cold).await;
    let pings = mock.pings().len();
    assert!((2..=5).contains(&pings), "about cap / ttl pings, then none: {pings}");
}

#[actix_web::test]
async fn a_ping_refused_with_529_is_an_error_that_harms_nothing() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    let first = turn(&app, &mut sse, &id, "What fails first?").await;
    mock.push_fault(Fault::Overloaded);
    let seen = sse.until("error").await;
    let error = seen.last().unwrap().json();
    assert_eq!(error["code"], "keep-warm-failed", "{error}");
    assert!(!error["message"].as_str().unwrap().contains(KEY));

    let second = turn(&app, &mut sse, &id, "Still there?").await;
    assert!(second["output"].as_u64().unwrap() > 0, "the next turn is answered: {second}");
    let (status, body) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!((status, body["turns"].as_u64()), (200, Some(2)), "{body}");
    assert!(first["cache_write"].as_u64().unwrap() > 0);
}

#[actix_web::test]
async fn a_turn_that_starts_during_a_ping_waits_no_longer_than_its_round_trip() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    let round_trip = Duration::from_millis(400);
    mock.set_ping_delay(round_trip);
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;

    // Speak as soon as the ping is on its way.
    let deadline = Instant::now() + WAIT;
    while !mock.arrivals().iter().any(|(_, ping)| *ping) {
        assert!(Instant::now() < deadline, "no ping was sent");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let spoke = Instant::now();
    let cost = turn(&app, &mut sse, &id, "Quick question.").await;
    let arrivals = mock.arrivals();
    let (ping_at, _) = arrivals.iter().find(|(_, ping)| *ping).unwrap();
    let (turn_at, _) = arrivals.iter().rfind(|(_, ping)| !*ping).unwrap();
    assert!(*turn_at >= *ping_at + round_trip, "the turn waited for the ping, not alongside it");
    let waited = turn_at.duration_since(spoke);
    assert!(waited < round_trip + Duration::from_millis(300), "waited {waited:?} for a {round_trip:?} ping");
    assert!(cost["cache_read"].as_u64().unwrap() > 0, "the ping's refreshed clock counts: {cost}");
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
}

/// Waits until the mock has received a pre-warm.
async fn until_a_ping_arrives(mock: &MockAnthropic) {
    let deadline = Instant::now() + WAIT;
    while !mock.arrivals().iter().any(|(_, ping)| *ping) {
        assert!(Instant::now() < deadline, "no ping was sent");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn a_ping_the_provider_holds_for_fifteen_seconds_does_not_hold_the_floors_turn() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    mock.set_ping_delay(Duration::from_secs(15));
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    until_a_ping_arrives(&mock).await;

    let spoke = Instant::now();
    app.say(&id, "Quick question.").await;
    sse.until("turn-start").await;
    let waited = spoke.elapsed();
    assert!(waited < Duration::from_secs(2), "the floor's turn began {waited:?} after its line");
    let events = sse.until("turn-end").await;
    assert!(events.iter().any(|e| e.event == "speak"), "the turn is answered");
}

#[actix_web::test]
async fn a_ping_answered_after_the_turn_went_ahead_is_still_logged_and_counted() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    mock.set_ping_delay(Duration::from_secs(3));
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    until_a_ping_arrives(&mock).await;
    app.say(&id, "Quick question.").await;
    sse.until("turn-end").await;
    let late = sse.until("keep-warm").await.pop().unwrap().json();
    let billed = late["cache_read"].as_u64().unwrap() + late["cache_write"].as_u64().unwrap();
    assert!(billed > 0, "the provider's usage for it, as reported: {late}");
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    let costs: Vec<Value> = logged(&app.sse(&id, Some(0)).await.until("keep-warm").await)
        .iter()
        .filter(|e| e.event == "cost" || e.event == "keep-warm")
        .map(SseEvent::json)
        .collect();
    for kind in ["cache_read", "cache_write"] {
        let sum: u64 = costs.iter().map(|c| c[kind].as_u64().unwrap()).sum();
        assert_eq!(detail["totals"][kind].as_u64(), Some(sum), "totals count the late ping's {kind}: {detail}");
    }
}

#[actix_web::test]
async fn the_floors_pace_is_learned_from_every_pause_between_its_lines() {
    let (_mock, app) = scaled(Duration::from_secs(1800)).await;
    let id = create(&app, "auto").await;
    let mut sse = app.sse(&id, Some(0)).await;
    for (n, text) in ["One?", "Two?", "Three?", "Four?", "Five?"].iter().enumerate() {
        turn(&app, &mut sse, &id, text).await;
        let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
        // The first pause runs from the opening to the first line.
        assert_eq!(detail["cache"]["floor_pauses"].as_u64(), Some(n as u64 + 1), "after turn {}: {detail}", n + 1);
        assert_eq!(detail["cache"]["floor_pause_s"].is_number(), n >= 2, "a median once three are seen: {detail}");
    }
}

#[actix_web::test]
async fn a_cast_change_during_a_ping_lands_at_once_as_its_answer_says() {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    mock.set_ping_delay(Duration::from_secs(3));
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    until_a_ping_arrives(&mock).await;
    let (status, answer) = app.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "otto" })).await;
    assert_eq!((status, answer["pending"].as_bool()), (202, Some(false)), "{answer}");
    let seen = sse.until("join").await;
    assert!(seen.iter().all(|e| e.event != "keep-warm"), "the join landed before the ping came back");
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert!(detail["on_stage"].as_array().unwrap().iter().any(|c| c["id"] == "otto"), "{detail}");
}

/// A session one turn in, with a ping the mock holds for 700 ms on its way.
async fn a_ping_in_flight() -> (MockAnthropic, TestApp, String) {
    let (mock, app) = scaled(Duration::from_secs(1800)).await;
    mock.set_ping_delay(Duration::from_millis(700));
    let id = create(&app, "always").await;
    let mut sse = app.sse(&id, Some(0)).await;
    turn(&app, &mut sse, &id, "What fails first?").await;
    until_a_ping_arrives(&mock).await;
    (mock, app, id)
}

/// The `cache_read` of every `cost` and `keep-warm` event in `events`.
fn billed_reads(events: &[SseEvent]) -> u64 {
    logged(events)
        .iter()
        .filter(|e| e.event == "cost" || e.event == "keep-warm")
        .map(|e| e.json()["cache_read"].as_u64().unwrap())
        .sum()
}

#[actix_web::test]
async fn a_ping_in_flight_when_the_session_closes_is_logged_and_counted_before_the_close() {
    let (_mock, app, id) = a_ping_in_flight().await;
    let (status, body) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200, "{body}");

    let events = app.sse(&id, Some(0)).await.until("session-close").await;
    let kinds = kinds(&events);
    let ping = kinds.iter().rposition(|k| *k == "keep-warm").expect("the ping the provider billed is logged");
    assert!(ping < kinds.len() - 1, "and logged before the close: {kinds:?}");
    let totals = &events.last().unwrap().json()["totals"];
    assert_eq!(totals["cache_read"].as_u64(), Some(billed_reads(&events)), "the totals count it: {totals}");
}

#[actix_web::test]
async fn a_ping_in_flight_when_the_actor_stops_is_logged_before_its_log_is_let_go() {
    let (_mock, app, id) = a_ping_in_flight().await;
    let (status, body) = app.delete(&format!("/api/sessions/{id}/actor")).await;
    assert_eq!(status, 200, "{body}");

    let events = app.sse(&id, Some(0)).await.until("keep-warm").await;
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["totals"]["cache_read"].as_u64(), Some(billed_reads(&events)), "{detail}");
}
