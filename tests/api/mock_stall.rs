//! A model server that goes silent: it answers a request with the headers
//! and the first event of an Anthropic stream, then sends nothing more —
//! what a laptop that slept, or a NAT that dropped the connection, looks
//! like from the client. It counts the connections it has open (one closes
//! when the client closes it), and can be switched to answer properly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    open: AtomicUsize,
    answer: AtomicBool,
}

pub struct StallServer {
    pub url: String,
    counts: Arc<Counts>,
}

impl StallServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        actix_web::rt::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                shared.open.fetch_add(1, Ordering::SeqCst);
                actix_web::rt::spawn(serve(stream, shared.clone()));
            }
        });
        Self { url, counts }
    }

    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    pub fn open(&self) -> usize {
        self.counts.open.load(Ordering::SeqCst)
    }

    /// From now on, answer each request with a whole, short stream.
    pub fn answer(&self) {
        self.counts.answer.store(true, Ordering::SeqCst);
    }

    /// Waits until `check` holds, or fails with `what`.
    pub async fn until(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} (accepted {}, open {})",
                self.accepted(),
                self.open()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn chunk(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes());
}

fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

const START: &str = r#"{"type":"message_start","message":{"model":"claude-sonnet-5","id":"msg_stall","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#;

async fn serve(mut stream: TcpStream, counts: Arc<Counts>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Read the whole request (headers, then a body of Content-Length).
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            counts.open.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0usize);
            if request.len() >= end + 4 + length {
                break;
            }
        }
    }
    let mut out =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    chunk(&mut out, &event("message_start", START));
    if counts.answer.load(Ordering::SeqCst) {
        let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"<speak who=\"Ada\">Here at last.</speak>"}}"#;
        chunk(&mut out, &event("content_block_delta", delta));
        let end = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}}"#;
        chunk(&mut out, &event("message_delta", end));
        chunk(&mut out, &event("message_stop", r#"{"type":"message_stop"}"#));
        out.extend_from_slice(b"0\r\n\r\n");
    }
    if stream.write_all(&out).await.is_err() {
        counts.open.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    // Silence, until the client lets go of the connection.
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
    counts.open.fetch_sub(1, Ordering::SeqCst);
}
