//! Nothing one session does stalls another's stream.
//!
//! Each test runs a real server as a child process (so the measuring client
//! shares no thread with it), keeps one session streaming at a steady pace
//! (one character answering alone, so a typing delta comes every piece),
//! and records the gaps between the pieces its tailer receives while
//! something heavy happens elsewhere: fifteen actors stopped and started at
//! once, a 50 MB log opened, thousands of tailers coming and going. A gap
//! more than 50 ms longer than the pace is a stall.
//!
//! This binary holds only these tests, and runs them one at a time.

#[allow(dead_code)]
#[path = "../api/process.rs"]
mod process;

use std::time::{Duration, Instant};

use process::{ProcessLimits, ServerProcess, write_big_session};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Milliseconds between the rehearsal engine's pieces.
const PACE: u64 = 10;
/// How much longer than the pace a gap may be.
const STALL: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(30);

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Api {
    client: awc::Client,
    port: u16,
}

impl Api {
    fn new(server: &ServerProcess) -> Self {
        Self { client: awc::Client::builder().timeout(WAIT).finish(), port: server.port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = match method {
            "POST" => self.client.post(self.url(path)),
            "DELETE" => self.client.delete(self.url(path)),
            _ => self.client.get(self.url(path)),
        };
        let mut res = match body {
            Some(b) => req.send_json(&b).await.unwrap(),
            None => req.send().await.unwrap(),
        };
        (res.status().as_u16(), res.json().limit(1 << 24).await.unwrap_or(Value::Null))
    }

    async fn create(&self) -> String {
        let (status, body) =
            self.send("POST", "/api/sessions", Some(json!({ "cast": ["ada", "byron", "cleo"] }))).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn say(&self, id: &str, text: &str) {
        let (status, body) = self.send("POST", &format!("/api/sessions/{id}/say"), Some(json!({ "text": text }))).await;
        assert_eq!(status, 202, "{body}");
    }
}

/// Tails a session over raw TCP and reports when each chunk arrived.
async fn tail(port: u16, id: &str) -> mpsc::UnboundedReceiver<(Instant, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!("GET /api/sessions/{id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    actix_web::rt::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    rx
}

/// A session kept talking for a while, tailed: the stream whose gaps the
/// tests measure.
async fn watched_stream(api: &Api, port: u16) -> mpsc::UnboundedReceiver<(Instant, Vec<u8>)> {
    let watched = api.create().await;
    let chunks = tail(port, &watched).await;
    let mut ends = tail(port, &watched).await;
    // Addressed to one character: one long speak, a typing delta every piece
    // — a steady stream (a confer sends nothing until a line ends).
    let line = |n: u32| json!({ "text": format!("@Ada A long question, number {n}, to keep you talking.") });
    for n in 0..9 {
        api.say(&watched, line(n)["text"].as_str().unwrap()).await;
    }
    // However slow the machine, the session keeps talking until the test
    // ends: the queue starts full and is topped up each time a turn ends.
    let keeper = Api { client: awc::Client::builder().timeout(WAIT).finish(), port };
    actix_web::rt::spawn(async move {
        let mut n = 9;
        while let Some((_, chunk)) = ends.recv().await {
            if String::from_utf8_lossy(&chunk).contains("event: turn-end") {
                n += 1;
                keeper.send("POST", &format!("/api/sessions/{watched}/say"), Some(line(n))).await;
            }
        }
    });
    chunks
}

/// Waits for the first typing delta: the session is streaming.
async fn streaming(chunks: &mut mpsc::UnboundedReceiver<(Instant, Vec<u8>)>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, chunk) = tokio::time::timeout_at(deadline.into(), chunks.recv()).await.unwrap().unwrap();
        if String::from_utf8_lossy(&chunk).contains("speak-delta") {
            return;
        }
    }
}

/// The longest gap between chunks received while `work` runs.
async fn longest_gap_during<F: std::future::Future>(
    chunks: &mut mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    work: F,
) -> (Duration, F::Output, usize) {
    while chunks.try_recv().is_ok() {}
    let started = Instant::now();
    let output = work.await;
    let ended = Instant::now();
    let mut last = started;
    let mut longest = Duration::ZERO;
    let mut count = 0;
    let mut worst_at = Duration::ZERO;
    // Chunks that arrived meanwhile, and one after, to measure the gap the work ended in.
    loop {
        let (at, _) = tokio::time::timeout(WAIT, chunks.recv()).await.unwrap().unwrap();
        if at - last > longest {
            longest = at - last;
            worst_at = last - started;
        }
        last = at;
        count += 1;
        if at > ended {
            break;
        }
    }
    if std::env::var_os("STALL_DEBUG").is_some() {
        println!("worst gap began {worst_at:?} into the work, which lasted {:?}", ended - started);
    }
    (longest, output, count)
}

fn start(logs: &std::path::Path) -> ServerProcess {
    ServerProcess::start(logs, &["--rehearsal-pace-ms", &PACE.to_string()], ProcessLimits::default())
}

#[actix_web::test]
async fn stopping_and_starting_fifteen_actors_at_once_does_not_stall_another_sessions_stream() {
    let _one = ONE_AT_A_TIME.lock().await;
    let logs = tempfile::tempdir().unwrap();
    let server = start(logs.path());
    let api = Api::new(&server);
    let mut chunks = watched_stream(&api, server.port).await;
    let mut others = Vec::new();
    for _ in 0..15 {
        let id = api.create().await;
        api.say(&id, "Talk among yourselves.").await;
        others.push(id);
    }
    streaming(&mut chunks).await;
    let storm = futures_util::future::join_all(others.iter().map(|id| {
        let api = &api;
        async move {
            let stop = api.send("DELETE", &format!("/api/sessions/{id}/actor"), None).await;
            let start = api.send("POST", &format!("/api/sessions/{id}/actor"), None).await;
            (stop, start)
        }
    }));
    let (gap, results, chunks_seen) = longest_gap_during(&mut chunks, storm).await;
    for ((stop, stop_body), (start, start_body)) in results {
        assert_eq!(stop, 200, "{stop_body}");
        assert_eq!(start, 200, "{start_body}");
    }
    println!("15 stop+start pairs: longest gap {gap:?} over {chunks_seen} chunks (pace {PACE} ms)");
    assert!(gap < Duration::from_millis(PACE) + STALL, "the watched stream stalled for {gap:?}");
}

#[actix_web::test]
async fn opening_a_fifty_megabyte_log_does_not_stall_another_sessions_stream() {
    let _one = ONE_AT_A_TIME.lock().await;
    let logs = tempfile::tempdir().unwrap();
    let big = "20200101-000000-big0";
    let path = write_big_session(logs.path(), big, 50);
    let size = std::fs::metadata(&path).unwrap().len();
    let server = start(logs.path());
    let api = Api::new(&server);
    let mut chunks = watched_stream(&api, server.port).await;
    streaming(&mut chunks).await;
    let opening = async {
        let started = Instant::now();
        // Starting its actor reads and replays the whole log. (Speaking to it
        // now would be refused: the conversation outgrew the model's window.)
        let (status, body) = api.send("POST", &format!("/api/sessions/{big}/actor"), None).await;
        assert_eq!(status, 200, "{body}");
        started.elapsed()
    };
    let (gap, took, chunks_seen) = longest_gap_during(&mut chunks, opening).await;
    println!(
        "opening a {:.0} MB log took {took:?}; longest gap meanwhile {gap:?} over {chunks_seen} chunks (pace {PACE} ms)",
        size as f64 / 1e6
    );
    assert!(size >= 50 << 20);
    assert!(gap < Duration::from_millis(PACE) + STALL, "the watched stream stalled for {gap:?}");
}

#[actix_web::test]
async fn thousands_of_tailers_coming_and_going_leave_memory_flat() {
    let _one = ONE_AT_A_TIME.lock().await;
    let logs = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(logs.path(), &["--rehearsal-pace-ms", "0"], ProcessLimits::default());
    let api = Api::new(&server);
    let id = api.create().await;
    let mut chunks = tail(server.port, &id).await;
    api.say(&id, "One turn, then we close.").await;
    loop {
        let (_, chunk) = tokio::time::timeout(WAIT, chunks.recv()).await.unwrap().unwrap();
        if String::from_utf8_lossy(&chunk).contains("turn-end") {
            break;
        }
    }
    drop(chunks);
    let (status, _) = api.send("POST", &format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    let churn = |n: usize| {
        let id = id.clone();
        async move {
            for _ in 0..n {
                let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
                let req = format!("GET /api/sessions/{id}/events?since=0 HTTP/1.1\r\nHost: localhost\r\n\r\n");
                stream.write_all(req.as_bytes()).await.unwrap();
                let mut seen = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                while !String::from_utf8_lossy(&seen).contains("session-close") {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the stream ended early: {}", String::from_utf8_lossy(&seen));
                    seen.extend_from_slice(&buf[..n]);
                }
            }
        }
    };
    churn(1000).await;
    let before = server.rss();
    churn(5000).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, health) = api.send("GET", "/healthz", None).await;
        if health["subscribers"] == 0 && health["gateways"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still held: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = server.rss();
    let grew = after.saturating_sub(before) as f64 / 1e6;
    println!("5,000 tailers came and went: RSS {:.1} MB → {:.1} MB", before as f64 / 1e6, after as f64 / 1e6);
    assert!(grew < 8.0, "memory grew by {grew:.1} MB");
}
