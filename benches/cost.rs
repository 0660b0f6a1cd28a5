//! Cost benchmark: what panel's cache-aware layout bills for a scripted
//! 30-turn session with 2 joins and 1 retire, run for real through the
//! Anthropic mock (which simulates the provider's prefix cache), against:
//! - the theoretical optimum: every token seen in an earlier request billed
//!   as a cache read, every new token written once (it must be, to be read
//!   later), nothing else;
//! - no caching at all: every input token at the base price;
//! - a layout that edits the system block on every cast change (joiners'
//!   materials put into the head, retirees' removed).
//!
//! Run: `cargo bench --bench cost`. Goal: panel within 1.05× of the optimum.
//! Prices: Claude Sonnet 5 (USD per million tokens: input 2, 5-minute cache
//! write 2.5, cache read 0.2).

#[path = "support/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../tests/api/mock_anthropic.rs"]
mod mock_anthropic;
#[path = "support/optimum.rs"]
mod optimum;

use std::time::{Duration, Instant};

use mock_anthropic::MockAnthropic;
use panel_actors::prefix_cache::{CacheBlock, CacheCharge, PrefixCache, estimate_tokens};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-bench";
const INPUT: f64 = 2.0;
const WRITE: f64 = 2.5;
const READ: f64 = 0.2;

fn usd(c: &CacheCharge) -> f64 {
    (c.input as f64 * INPUT + c.cache_write as f64 * WRITE + c.cache_read as f64 * READ) / 1e6
}

fn main() {
    let system = actix::System::new();
    system.block_on(run());
}

async fn run() {
    let mock = MockAnthropic::start(KEY, 1024).await;
    let logs = tempfile::tempdir().unwrap();
    let (base, stopper) = app::start(&mock.url, KEY, logs.path(), |_| {}).await;
    let client = awc::Client::default();
    let post = |path: String, body: Value| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let mut res = client.post(url).send_json(&body).await.unwrap();
            res.json::<Value>().await.unwrap()
        }
    };
    let id =
        post("/api/sessions".into(), json!({ "cast": ["ada", "byron", "cleo"], "title": "cost bench" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let started = Instant::now();
    for turn in 1..=30u32 {
        match turn {
            8 => drop(post(format!("/api/sessions/{id}/cast"), json!({ "add": "otto" })).await),
            16 => drop(post(format!("/api/sessions/{id}/cast"), json!({ "retire": "cleo" })).await),
            22 => drop(post(format!("/api/sessions/{id}/cast"), json!({ "add": "maren" })).await),
            _ => {}
        }
        // A panel-sized answer, a few hundred tokens, varying per turn.
        let words = "The evidence here is thinner than it looks, and the failure modes compound. "
            .repeat(6 + (turn as usize % 5));
        mock.push_output(&format!("<confer>\nAda: {turn}: mine.\nByron: Go on.\n</confer>\n<speak who=\"Ada\">{words}</speak>\n<speak who=\"Byron\">{words}</speak>"));
        post(
            format!("/api/sessions/{id}/say"),
            json!({ "text": format!("Turn {turn}: what should we weigh next, and why?") }),
        )
        .await;
        // Wait for the turn to end: the mock has answered `turn` requests and the session is idle.
        loop {
            let mut res = client.get(format!("{base}/api/sessions/{id}")).send().await.unwrap();
            let detail: Value = res.json().limit(1 << 24).await.unwrap();
            if detail["live"]["turn_in_flight"] == false && detail["turns"].as_u64() == Some(turn as u64) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(mock.problems().is_empty(), "{:?}", mock.problems());
    let requests = mock.requests();
    let reported = mock.reported();

    let panel: f64 = reported
        .iter()
        .map(|r| usd(&CacheCharge { input: r.input, cache_write: r.cache_write, cache_read: r.cache_read }))
        .sum();
    let no_cache: f64 = reported.iter().map(|r| r.blocks.iter().sum::<u64>() as f64 * INPUT / 1e6).sum();
    let optimum = optimum(&requests);
    let system_edit = system_edit(&requests);
    let total_tokens: u64 = reported.iter().map(|r| r.blocks.iter().sum::<u64>()).sum();
    println!(
        "cost bench: 30 turns, 2 joins, 1 retire, {total_tokens} input tokens sent in all, recorded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("  billed input cost (Claude Sonnet 5 prices):");
    println!("    panel's layout            ${panel:.4}   {:.3}× optimum", panel / optimum);
    println!("    theoretical optimum       ${optimum:.4}");
    println!("    no caching                ${no_cache:.4}   {:.2}× optimum", no_cache / optimum);
    println!("    system block edited       ${system_edit:.4}   {:.2}× optimum", system_edit / optimum);
    println!("  goal: panel within 1.05× of the optimum: {}", if panel / optimum <= 1.05 { "met" } else { "NOT met" });
    continuing(&client, &base, &mock, &id).await;
    stopper.stop().await;
}

const OUTPUT: f64 = 10.0;

/// A turn's bill as the mock reported it, output included.
fn billed(r: &mock_anthropic::Reported) -> f64 {
    usd(&CacheCharge { input: r.input, cache_write: r.cache_write, cache_read: r.cache_read })
        + r.output as f64 * OUTPUT / 1e6
}

/// Says `text` in session `id` and waits for its turn `n` to end; returns what the mock billed for it.
async fn turn(client: &awc::Client, base: &str, mock: &MockAnthropic, id: &str, n: u64, text: &str) -> f64 {
    let words = "The evidence here is thinner than it looks, and the failure modes compound. ".repeat(8);
    mock.push_output(&format!("<confer>\nAda: {n}: mine.\nByron: Go on.\n</confer>\n<speak who=\"Ada\">{words}</speak>\n<speak who=\"Byron\">{words}</speak>"));
    let url = format!("{base}/api/sessions/{id}/say");
    client.post(url).send_json(&json!({ "text": text })).await.unwrap();
    loop {
        let mut res = client.get(format!("{base}/api/sessions/{id}")).send().await.unwrap();
        let detail: Value = res.json().limit(1 << 24).await.unwrap();
        if detail["live"]["turn_in_flight"] == false && detail["turns"].as_u64() == Some(n) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    billed(mock.reported().last().unwrap())
}

async fn continue_session(client: &awc::Client, base: &str, id: &str, carry: &str) -> String {
    let url = format!("{base}/api/sessions/{id}/continue");
    let mut res = client.post(url).send_json(&json!({ "carry": carry })).await.unwrap();
    let info: Value = res.json().await.unwrap();
    info["id"].as_str().expect("a continued session").to_owned()
}

/// What continuing fresh costs against carrying on: the first turns of a
/// continued session beside the next turns of the long one, at the same
/// prices, through the same mock.
async fn continuing(client: &awc::Client, base: &str, mock: &MockAnthropic, id: &str) {
    let prompt = |mock: &MockAnthropic| mock.reported().last().map_or(0, |r| r.blocks.iter().sum::<u64>());
    let long_31 = turn(client, base, mock, id, 31, "Turn 31: and what follows from that?").await;
    let long_prompt = prompt(mock);
    let long_32 = turn(client, base, mock, id, 32, "Turn 32: and after that?").await;

    let fresh = continue_session(client, base, id, "transcript").await;
    let fresh_1 = turn(client, base, mock, &fresh, 1, "Where were we? Go on.").await;
    let fresh_prompt = prompt(mock);
    let fresh_2 = turn(client, base, mock, &fresh, 2, "And after that?").await;

    mock.push_output(&"- Ada held that the failure modes compound; Byron that the evidence is thin.\n".repeat(12));
    let recapped = continue_session(client, base, id, "recap").await;
    let recap = billed(mock.reported().last().unwrap());
    let recap_1 = turn(client, base, mock, &recapped, 1, "Where were we? Go on.").await;
    let recap_prompt = prompt(mock);
    let recap_2 = turn(client, base, mock, &recapped, 2, "And after that?").await;

    println!("  continuing fresh after 32 turns (same prices, output included):");
    println!("    next turns of the long session         ${long_31:.4}, ${long_32:.4}   (prompt {long_prompt} tokens)");
    println!(
        "    first turns, transcript carried        ${fresh_1:.4}, ${fresh_2:.4}   (prompt {fresh_prompt} tokens)"
    );
    println!(
        "    first turns, recap carried             ${recap_1:.4}, ${recap_2:.4}   (prompt {recap_prompt} tokens; the recap itself ${recap:.4})"
    );
    println!(
        "  (the long session's turns are cache reads; a continued session writes its new head once, then reads a smaller prompt)"
    );
}

/// The perfect cache's bill.
fn optimum(requests: &[Value]) -> f64 {
    optimum::read_write(requests)
        .into_iter()
        .map(|(read, write)| usd(&CacheCharge { input: 0, cache_write: write, cache_read: read }))
        .sum()
}

/// The same conversation laid out the naive way: the cast's materials live
/// in the system block, which is rewritten at every cast change.
fn system_edit(requests: &[Value]) -> f64 {
    let mut cache = PrefixCache::new(1024);
    let now = Instant::now();
    let mut total = 0.0;
    for r in requests {
        let head = r["system"][0]["text"].as_str().unwrap_or_default();
        let (rules, _) = head.split_once("<character name=").unwrap_or((head, ""));
        let mut cast: Vec<(String, String)> = Vec::new();
        absorb(&mut cast, head);
        let mut messages = Vec::new();
        for m in r["messages"].as_array().into_iter().flatten() {
            let text = m["content"][0]["text"].as_str().unwrap_or_default();
            absorb(&mut cast, text);
            for leave in text.split("<stage>").filter(|s| s.contains(" leaves the panel")) {
                let name = leave.split(' ').next().unwrap_or_default();
                cast.retain(|(n, _)| n != name);
            }
            // Without the stage materials: they now live in the system block.
            messages.push(text.split("</stage>").last().unwrap_or(text).to_owned());
        }
        let system = format!(
            "{rules}{}",
            cast.iter().map(|(n, b)| format!("<character name=\"{n}{b}</character>\n")).collect::<String>()
        );
        let last = messages.len();
        let texts: Vec<(String, bool)> = std::iter::once((system, true))
            .chain(messages.into_iter().enumerate().map(|(i, t)| (t, i + 1 == last)))
            .collect();
        let blocks: Vec<CacheBlock> =
            texts.iter().map(|(t, m)| CacheBlock { text: t, tokens: estimate_tokens(t), breakpoint: *m }).collect();
        total += usd(&cache.charge(&blocks, now, Duration::from_secs(300)));
    }
    total
}

/// Adds (or replaces) the `<character>` blocks found in `text`.
fn absorb(cast: &mut Vec<(String, String)>, text: &str) {
    for block in text.split("<character name=\"").skip(1) {
        let name = block.split('"').next().unwrap_or_default().to_owned();
        let body = block[name.len()..].split("</character>").next().unwrap_or_default().to_owned();
        cast.retain(|(n, _)| *n != name);
        cast.push((name, body));
    }
}
