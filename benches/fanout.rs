//! Fan-out benchmark: one session streaming at a fast model's pace to N SSE
//! subscribers on loopback, and the memory of idle session actors.
//!
//! Run: `cargo bench --bench fanout` (optionally `-- 100 500 2000` for the
//! subscriber counts, and `multi=1000` for the multiplexed run). Prints, per
//! N: events/s the session sustained, deliveries/s, and p50/p99/max delivery
//! latency measured from each event's `ts` to its arrival; then the same for
//! N multiplexed subscribers each following the same 5 busy sessions on one
//! connection (`/api/events`); then the resident memory of 1,000 idle session
//! actors.
//! The server is the `panel` binary, run as a child process.
//! Goals on a 2-core machine: 50 events/s at 2,000 subscribers with
//! p99 < 50 ms, and still at 10,000 with p99 < 250 ms; ≥ 10,000 idle session
//! actors per GiB.

#[allow(dead_code)]
#[path = "../tests/api/process.rs"]
mod process;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use process::{ProcessLimits, ServerProcess};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const MEASURE: Duration = Duration::from_secs(8);
/// 10 ms between pieces: a piece inside a speak is a typing delta; with the logged
/// events the session publishes well over 50 events/s.
const PACE_MS: u64 = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let multi: Vec<usize> = args.iter().filter_map(|a| a.strip_prefix("multi=")?.parse().ok()).collect();
    let (counts, multi) = match (counts.is_empty(), multi.is_empty()) {
        (true, true) => (vec![100, 500, 1000, 2000], vec![1000]),
        _ => (counts, multi),
    };
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    println!("fan-out bench: pace {PACE_MS} ms, {} s per run, fd limit {limit}", MEASURE.as_secs());
    // The server runs as its own process, as it does in use: it and the load
    // generator each have their own threads and their own open files.
    let logs = tempfile::tempdir().unwrap();
    let pace = PACE_MS.to_string();
    let server = ServerProcess::start(logs.path(), &["--rehearsal-pace-ms", &pace], ProcessLimits::default());
    let port = server.port;
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    client.block_on(async move {
        for n in counts {
            fan_out(port, n).await;
        }
        for n in multi {
            fan_out_multi(port, n, 5).await;
        }
        idle_actors(&server, 1000).await;
    });
}

/// A tiny HTTP/1.1 client: one request per connection, body returned whole.
async fn request(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

async fn create(port: u16, cast: &str) -> String {
    let res = request(port, "POST", "/api/sessions", &format!("{{\"cast\":{cast}}}")).await;
    let at = res.find("\"id\":\"").expect("a created session") + 6;
    res[at..at + res[at..].find('"').unwrap()].to_owned()
}

/// Keeps session `id` busy, one floor line after another, until `stop`.
fn drive(port: u16, id: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut turn = 0;
        while !stop.load(Ordering::Relaxed) {
            turn += 1;
            let body = format!("{{\"text\":\"Question {turn}: what would you measure first, and why?\"}}");
            let res = request(port, "POST", &format!("/api/sessions/{id}/say"), &body).await;
            if res.contains("429") {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}

/// Every how many subscribers one measures latency (all check completeness):
/// timing every delivery would make the load generator, not the server, the
/// bottleneck on a two-core machine.
const SAMPLE: usize = 10;

async fn fan_out(port: u16, n: usize) {
    let id = create(port, "[\"ada\",\"byron\",\"cleo\",\"otto\"]").await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers = subscribe(port, n, &format!("/api/sessions/{id}/events"), &stop, read_events).await;
    let driver = drive(port, id.clone(), stop.clone());
    let start = Instant::now();
    tokio::time::sleep(MEASURE).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let _ = driver.await;
    let mut latencies = Vec::new();
    let mut per_reader = Vec::new();
    let mut ranges = Vec::new();
    for r in readers {
        let read = r.await.unwrap();
        per_reader.push(read.count);
        latencies.extend(read.latencies);
        ranges.push((read.first_id, read.last_id, read.ids));
    }
    let top = ranges.iter().map(|r| r.1).max().unwrap_or(0);
    // Every subscriber saw every logged event from its first to the last one
    // the session wrote: no gap, no loss.
    let complete = ranges.iter().filter(|(first, last, ids)| *last == top && *ids == last - first + 1).count();
    let delivered: usize = per_reader.iter().sum();
    let events = per_reader.iter().copied().max().unwrap_or(0);
    println!(
        "N={n:>5}: session {:.0} events/s · {:.0} deliveries/s · {} · {complete}/{n} subscribers got every logged event, in order",
        events as f64 / elapsed,
        delivered as f64 / elapsed,
        latency(latencies),
    );
}

/// N subscribers, each following the same `k` sessions on one multiplexed
/// stream, while all `k` sessions are busy at once.
async fn fan_out_multi(port: u16, n: usize, k: usize) {
    let mut ids = Vec::new();
    for _ in 0..k {
        ids.push(create(port, "[\"ada\",\"byron\",\"cleo\",\"otto\"]").await);
    }
    let list = ids.join(",");
    let stop = Arc::new(AtomicBool::new(false));
    let readers = subscribe(port, n, &format!("/api/events?sessions={list}&deltas=all"), &stop, read_multi).await;
    let drivers: Vec<_> = ids.iter().map(|id| drive(port, id.clone(), stop.clone())).collect();
    let start = Instant::now();
    tokio::time::sleep(MEASURE).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for d in drivers {
        let _ = d.await;
    }
    let mut latencies = Vec::new();
    let (mut delivered, mut most, mut complete) = (0, 0, 0);
    let mut tops = std::collections::HashMap::new();
    let mut reads = Vec::new();
    for r in readers {
        let read = r.await.unwrap();
        delivered += read.count;
        most = most.max(read.count);
        latencies.extend(read.latencies.iter().copied());
        for (session, (_, last, _)) in &read.sessions {
            let top = tops.entry(session.clone()).or_insert(0u64);
            *top = (*top).max(*last);
        }
        reads.push(read);
    }
    for read in &reads {
        // Every session's logged events, each once, in order, up to the last one written.
        let whole = tops.iter().all(|(s, top)| {
            read.sessions.get(s).is_some_and(|(first, last, count)| last == top && *count == last - first + 1)
        });
        complete += usize::from(whole && read.sessions.len() == k);
    }
    println!(
        "N={n:>5} multiplexed × {k} sessions: {:.0} events/s per subscriber · {:.0} deliveries/s · {} · {complete}/{n} subscribers got every logged event of every session, in order",
        most as f64 / elapsed,
        delivered as f64 / elapsed,
        latency(latencies),
    );
}

struct MultiRead {
    count: usize,
    latencies: Vec<u32>,
    /// Per session: first seq, last seq, logged events received.
    sessions: std::collections::HashMap<String, (u64, u64, u64)>,
}

/// Reads a multiplexed stream: each `data:` line's `seq` and `session` (from
/// the event JSON), and its `ts` for latency.
async fn read_multi(mut stream: TcpStream, stop: Arc<AtomicBool>, timed: bool) -> MultiRead {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut read = MultiRead { count: 0, latencies: Vec::new(), sessions: Default::default() };
    let field = |line: &[u8], name: &[u8]| -> Option<(usize, usize)> {
        let at = find(line, name)? + name.len();
        let len = line[at..].iter().position(|b| *b == b'"' || *b == b',')?;
        Some((at, at + len))
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let n = match next_read(&mut stream, &mut chunk, stopping).await {
            Read::Bytes(n) => n,
            Read::Quiet => continue,
            Read::Done => break,
        };
        let now = micros_of_day_now();
        buf.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        while let Some(end) = memchr::memchr(b'\n', &buf[consumed..]) {
            let line = &buf[consumed..consumed + end];
            if let Some(data) = line.strip_prefix(b"data: ") {
                if !stopping {
                    read.count += 1;
                    if timed
                        && let Some((a, b)) = field(data, b"\"ts\":\"")
                        && let Some(ts) = micros_of_day(&data[a..b])
                    {
                        read.latencies.push((now - ts).rem_euclid(DAY_MICROS) as u32);
                    }
                }
                let seq = field(data, b"\"seq\":")
                    .and_then(|(a, b)| std::str::from_utf8(&data[a..b]).ok()?.parse::<u64>().ok());
                let session =
                    field(data, b"\"session\":\"").map(|(a, b)| String::from_utf8_lossy(&data[a..b]).into_owned());
                if let (Some(seq), Some(session)) = (seq, session) {
                    let entry = read.sessions.entry(session).or_insert((seq, seq, 0));
                    entry.1 = seq;
                    entry.2 += 1;
                }
            }
            consumed += end + 1;
        }
        buf.drain(..consumed);
    }
    read
}

struct Tail {
    /// Events (deltas included) that arrived during the measured window.
    count: usize,
    /// Their latencies in µs, from each event's `ts` to its arrival.
    latencies: Vec<u32>,
    first_id: u64,
    last_id: u64,
    /// How many logged events (with an `id:`) arrived in all.
    ids: u64,
}

/// Reads one SSE stream until told to stop, then drains it until the
/// session has gone quiet. `timed`: also measure each delivery's latency.
async fn read_events(mut stream: TcpStream, stop: Arc<AtomicBool>, timed: bool) -> Tail {
    const TS: &[u8] = b"\"ts\":\"";
    const ID: &[u8] = b"\nid: ";
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut read = Tail { count: 0, latencies: Vec::new(), first_id: 0, last_id: 0, ids: 0 };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let n = match next_read(&mut stream, &mut chunk, stopping).await {
            Read::Bytes(n) => n,
            Read::Quiet => continue,
            Read::Done => break,
        };
        let now = micros_of_day_now();

        buf.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        while let Some(at) = find(&buf[consumed..], TS) {
            let start = consumed + at + TS.len();
            let Some(len) = memchr::memchr(b'"', &buf[start..]) else { break };
            if !stopping {
                if timed && let Some(ts) = micros_of_day(&buf[start..start + len]) {
                    let micros = (now - ts).rem_euclid(DAY_MICROS);
                    read.latencies.push(micros as u32);
                }
                read.count += 1;
            }
            consumed = start + len;
        }
        // An event's `id:` comes before its `ts`, so every id before the last
        // parsed `ts` is whole.
        let mut at = 0;
        while let Some(i) = find(&buf[at..consumed], ID) {
            let start = at + i + ID.len();
            let end = buf[start..consumed].iter().position(|b| !b.is_ascii_digit()).map_or(consumed, |e| start + e);
            if let Some(id) = std::str::from_utf8(&buf[start..end]).ok().and_then(|s| s.parse::<u64>().ok()) {
                if read.ids == 0 {
                    read.first_id = id;
                }
                read.last_id = id;
                read.ids += 1;
            }
            at = end;
        }
        buf.drain(..consumed.min(buf.len()));
    }
    read
}

/// Opens `n` SSE streams on `path`, each read by its own task; every
/// `SAMPLE`th also times its deliveries. Returns once all are registered.
async fn subscribe<R, F>(
    port: u16,
    n: usize,
    path: &str,
    stop: &Arc<AtomicBool>,
    reader: impl Fn(TcpStream, Arc<AtomicBool>, bool) -> F,
) -> Vec<tokio::task::JoinHandle<R>>
where
    F: std::future::Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let mut readers = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        readers.push(tokio::spawn(reader(stream, stop.clone(), i % SAMPLE == 0)));
    }
    // Let every subscription register before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    readers
}

enum Read {
    Bytes(usize),
    /// Nothing for a moment while the session is still being driven.
    Quiet,
    /// The stream ended, or the session has gone quiet after the stop.
    Done,
}

async fn next_read(stream: &mut TcpStream, chunk: &mut [u8], stopping: bool) -> Read {
    let quiet = if stopping { Duration::from_millis(1500) } else { Duration::from_millis(200) };
    match tokio::time::timeout(quiet, stream.read(chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Read::Done,
        Ok(Ok(n)) => Read::Bytes(n),
        Err(_) if stopping => Read::Done,
        Err(_) => Read::Quiet,
    }
}

/// "latency p50 …, p99 …, max … ms" of latencies in µs.
fn latency(mut latencies: Vec<u32>) -> String {
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    format!("latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", pct(0.50), pct(0.99), pct(1.0))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

const DAY_MICROS: i64 = 86_400_000_000;

/// Microseconds since midnight UTC of an event's `ts`
/// (`2026-11-25T20:04:31.123456Z`), read straight from its digits.
fn micros_of_day(ts: &[u8]) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> { std::str::from_utf8(ts.get(range)?).ok()?.parse().ok() };
    Some(((num(11..13)? * 60 + num(14..16)?) * 60 + num(17..19)?) * 1_000_000 + num(20..26)?)
}

fn micros_of_day_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (since.as_micros() % DAY_MICROS as u128) as i64
}

async fn idle_actors(server: &ServerProcess, n: usize) {
    let before = server.rss();
    for _ in 0..n {
        create(server.port, "[\"ada\",\"byron\",\"cleo\"]").await;
    }
    let after = server.rss();
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "idle session actors: {n} created, RSS +{:.1} MiB, {:.1} KiB each → {:.0} per GiB",
        (after - before) as f64 / (1 << 20) as f64,
        per / 1024.0,
        (1u64 << 30) as f64 / per.max(1.0)
    );
}
