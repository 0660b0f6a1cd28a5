//! The real `panel` binary as a child process: for what only a process can
//! show — a crash, a signal, a limit on open files or file size — and for
//! timings that must not share threads with the test's own client.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// Limits the child runs under.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessLimits {
    /// Most bytes any file may grow to (writes past it fail, like a full disk).
    pub file_size: Option<u64>,
    /// Most open files.
    pub open_files: Option<u64>,
}

pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    /// Every line the server wrote to stderr (its log), as it arrives.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `panel serve` on a free port with the repository's roster and
    /// the offline rehearsal engine, plus `args`; returns once it listens.
    pub fn start(logs: &Path, args: &[&str], limits: ProcessLimits) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_at(port, logs, args, limits)
    }

    /// Like [`ServerProcess::start`], on `port` (to restart a server where clients expect it).
    pub fn start_at(port: u16, logs: &Path, args: &[&str], limits: ProcessLimits) -> Self {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_panel"));
        command
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--logs"])
            .arg(logs)
            .arg("--roster")
            .arg(repo.join("roster"))
            .arg("--static")
            .arg(repo.join("static"))
            .args(args)
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("PANEL_PROVIDER")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        apply(&mut command, limits);
        let mut child = command.spawn().expect("panel starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("[panel] {line}");
                }
                lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        // The banner is printed once the server listens.
        let mut banner = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut banner).unwrap();
        assert!(banner.contains(&format!("localhost:{port}")), "no banner; stderr: {:?}", stderr.lock().unwrap());
        Self { child, port, stderr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// stderr lines containing `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.stderr.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Resident memory, in bytes, from `/proc`.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb * 1024
    }

    /// Raises (or lowers) the running server's file-size limit.
    pub fn set_file_size_limit(&self, bytes: u64) {
        let pid = i32::try_from(self.child.id()).unwrap();
        rlimit::prlimit(pid, rlimit::Resource::FSIZE, Some((bytes, rlimit::INFINITY)), None).unwrap();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn apply(command: &mut Command, limits: ProcessLimits) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: between fork and exec only async-signal-safe calls are made:
    // setrlimit and signal.
    unsafe {
        command.pre_exec(move || {
            if let Some(bytes) = limits.file_size {
                // Only the soft limit, so it can be raised again without privileges.
                rlimit::setrlimit(rlimit::Resource::FSIZE, bytes, rlimit::INFINITY)?;
                // Writing past the limit raises SIGXFSZ, which would kill the
                // server; ignored, the write fails with EFBIG instead, as a
                // full disk fails with ENOSPC.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            if let Some(n) = limits.open_files {
                rlimit::setrlimit(rlimit::Resource::NOFILE, n, n)?;
            }
            Ok(())
        });
    }
}

/// A logs folder with one session whose log is `megabytes` long: a real
/// session-open and many whole turns, written directly (quickly, with no
/// fsync per turn) so a server can be made to open it.
/// The `session-open` of a session written straight to disk: the shipped
/// Ada and Byron at depth 4 on the rehearsal engine; and their ids.
pub fn opening(title: &str) -> (panel_actors::event::EventBody, Vec<panel_actors::id::CharacterId>) {
    use panel_actors::event::{EventBody, SessionConfig};
    use panel_actors::id::CharacterId;
    use panel_actors::roster::Roster;
    use panel_actors::templates::{Renderer, Templates};

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("roster");
    let roster = Roster::load(&repo.join("characters")).unwrap();
    let templates = Templates::load(&repo.join("prompts")).unwrap();
    let cast: Vec<_> =
        ["ada", "byron"].iter().map(|c| roster.get(&CharacterId::parse(c).unwrap()).unwrap().clone()).collect();
    let head = Renderer::new(templates.clone()).unwrap().head(4, &cast).unwrap();
    let ids = cast.iter().map(|c| c.id.clone()).collect();
    let open = EventBody::SessionOpen {
        config: SessionConfig::new(title.into(), 4, "rehearsal".into()),
        model: "rehearsal".into(),
        head,
        participants: cast,
        templates: Box::new(templates),
        parent: None,
        carry: None,
        study: None,
    };
    (open, ids)
}

pub fn write_big_session(logs: &Path, id: &str, megabytes: usize) -> PathBuf {
    use panel_actors::event::{EventBody, TurnMode};
    use panel_actors::id::SessionId;
    use std::io::Write as _;

    let sid = SessionId::parse(id).unwrap();
    let dir = logs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut seq = 0u64;
    let mut put = |turn: u32, body: EventBody| {
        seq += 1;
        let logged = panel_actors::event_log::encode(&sid, seq, turn, body).unwrap();
        out.write_all(logged.json.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
        logged.json.len() + 1
    };
    let (open, ids) = opening("a long one");
    let mut written = put(0, open);
    let output = format!("<speak who=\"Ada\">{}</speak>", "A considered answer, at some length. ".repeat(100));
    let mut turn = 0;
    while written < megabytes << 20 {
        turn += 1;
        written += put(turn, EventBody::HumanSpeak { text: format!("Question {turn}?"), to: None, seat: None });
        written += put(turn, EventBody::TurnStart { mode: TurnMode::Panel, cast: ids.clone() });
        written +=
            put(turn, EventBody::TurnEnd { order: vec![ids[0].clone()], output: output.clone(), provenance: None });
    }
    out.flush().unwrap();
    path
}
