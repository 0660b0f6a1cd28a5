//! `panel tail`: JSON exact to the log across restarts, colour and plain,
//! several sessions on one connection, typing shown live on a terminal.

use super::*;

#[actix_web::test]
async fn tail_json_equals_the_log_across_a_server_restart_and_an_actor_restart() {
    let logs = tempfile::tempdir().unwrap();
    let args = ["--rehearsal-pace-ms", "0"];
    let server = ServerProcess::start(logs.path(), &args, ProcessLimits::default());
    let port = server.port;
    let base = format!("http://127.0.0.1:{port}");
    // A new client each time: a pooled connection dies with the server.
    let client = || awc::Client::builder().timeout(WAIT).finish();
    let post = |path: String, body: Value| {
        let client = client();
        let url = format!("{base}{path}");
        async move {
            let mut res = client.post(url).send_json(&body).await.expect("the server answers");
            (res.status().as_u16(), res.json::<Value>().await.unwrap_or_default())
        }
    };
    let (_, info) = post("/api/sessions".into(), json!({ "cast": ["ada", "byron"] })).await;
    let id = info["id"].as_str().unwrap().to_owned();
    post(format!("/api/sessions/{id}/say"), json!({ "text": "What fails first?" })).await;

    let (mut tail, lines) = collecting(panel().args(["tail", &id, "--url", &base, "--json"]));
    lines.until("turn 1", |l| ends_turn(l, 1)).await;

    // The server goes away and comes back on the same port.
    drop(server);
    let server = ServerProcess::start_at(port, logs.path(), &args, ProcessLimits::default());
    post(format!("/api/sessions/{id}/say"), json!({ "text": "And after a restart?" })).await;
    lines.until("turn 2", |l| ends_turn(l, 2)).await;

    // The session's actor is stopped and started.
    let (status, _) = {
        let mut res = client().delete(format!("{base}/api/sessions/{id}/actor")).send().await.unwrap();
        (res.status().as_u16(), res.body().await)
    };
    assert_eq!(status, 200);
    post(format!("/api/sessions/{id}/actor"), Value::Null).await;
    post(format!("/api/sessions/{id}/say"), json!({ "text": "And after the actor's?" })).await;
    lines.until("turn 3", |l| ends_turn(l, 3)).await;
    post(format!("/api/sessions/{id}/close"), Value::Null).await;
    assert!(wait_exit(&mut tail.0).await.success(), "tail ends when the session closes");
    lines.until("the last line", |l| l.last().is_some_and(|l| l.contains("session-close"))).await;

    let logged: Vec<String> = std::fs::read_to_string(logs.path().join(&id).join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.all(), logged, "every logged event once, in order, byte for byte");
    drop(server);
}

async fn tail_output(app: &TestApp, id: &str, env: &[(&str, &str)], extra: &[&str]) -> String {
    let (mut child, lines) =
        collecting(panel().args(["tail", id, "--url", &app.address]).args(extra).envs(env.iter().copied()));
    assert!(wait_exit(&mut child.0).await.success());
    lines.until("the end of the session", |l| l.iter().any(|l| l.contains("session closed"))).await;
    lines.all().join("\n")
}

#[actix_web::test]
async fn tail_shows_the_session_in_colour_or_plain_as_asked() {
    let app = spawn_app().await;
    let id = closed_session(&app).await;
    let coloured = tail_output(&app, &id, &[("CLICOLOR_FORCE", "1")], &[]).await;
    assert!(coloured.contains("\u{1b}[38;2;47;125;209mAda\u{1b}[0m: "), "Ada in her colour:\n{coloured}");
    assert!(coloured.contains("\u{1b}[2m"), "the confer dimmed");

    let plain = tail_output(&app, &id, &[("NO_COLOR", "1")], &[]).await;
    assert!(!plain.contains('\u{1b}'), "no escapes with NO_COLOR:\n{plain}");
    assert!(plain.contains("▶ floor: What fails first?"), "{plain}");
    assert!(plain.contains("▶ floor → Byron: and you?"), "{plain}");
    assert!(plain.contains("    · "), "the confer, indented:\n{plain}");
    assert!(plain.lines().any(|l| l.starts_with("  turn 1 · $")), "a cost line per turn:\n{plain}");
    assert!(plain.contains("session closed"), "{plain}");
    // Piped, without NO_COLOR: plain too.
    assert!(!tail_output(&app, &id, &[], &[]).await.contains('\u{1b}'));
    let quiet = tail_output(&app, &id, &[("NO_COLOR", "1")], &["--no-confer"]).await;
    assert!(!quiet.contains("    · "), "{quiet}");
}

#[actix_web::test]
async fn tail_follows_several_sessions_on_one_connection_each_line_titled() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for title in ["Triage", "Archives"] {
        let (_, info) = app.post("/api/sessions", json!({ "cast": ["ada", "byron"], "title": title })).await;
        ids.push(info["id"].as_str().unwrap().to_owned());
    }
    let (mut child, lines) =
        collecting(panel().args(["tail", &ids[0], &ids[1], "--url", &app.address]).env("NO_COLOR", "1"));
    lines.until("both openings", |l| l.iter().filter(|l| l.contains(" · rehearsal · ")).count() == 2).await;
    let (_, health) = app.get("/healthz").await;
    assert_eq!(health["event_streams"], 1, "one connection for both: {health}");
    for id in &ids {
        let mut sse = app.sse(id, None).await;
        app.say(id, "What fails first?").await;
        sse.until("turn-end").await;
        let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
        assert_eq!(status, 200);
    }
    assert!(wait_exit(&mut child.0).await.success(), "tail ends once both sessions have closed");
    lines.until("both closings", |l| l.iter().filter(|l| l.contains("session closed")).count() == 2).await;
    let all = lines.all();
    for title in ["[Triage] ", "[Archives] "] {
        assert!(
            all.iter().any(|l| l.starts_with(title) && l.contains("▶ floor: What fails first?")),
            "{title}: {all:#?}"
        );
    }
    assert!(
        all.iter().filter(|l| !l.trim().is_empty()).all(|l| l.starts_with("[Triage] ") || l.starts_with("[Archives] ")),
        "{all:#?}"
    );
}

/// `command` run with a pseudo-terminal (util-linux's `script`), as a
/// person's shell would run it, with `env`; and what it prints, as it comes.
fn on_a_terminal(command: &str, env: &[(&str, &str)]) -> (Reaped, Arc<Mutex<Vec<u8>>>) {
    let child = Command::new("script")
        .args(["-qfec", command, "/dev/null"])
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux's script runs");
    let mut child = Reaped(child);
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut out = child.0.stdout.take().unwrap();
    let sink = shown.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut out, &mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (child, shown)
}

#[actix_web::test]
async fn tail_on_a_terminal_types_each_speak_as_it_streams() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let app = spawn_with(Options { pace_ms: 30, logs: Some(logs.clone()), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let tail = format!("{} tail {id} --url {}", env!("CARGO_BIN_EXE_panel"), app.address);
    let (_child, shown) = on_a_terminal(&tail, &[("NO_COLOR", "1")]);
    let text = || String::from_utf8_lossy(&shown.lock().unwrap()).replace("\r\n", "\n");
    let deadline = Instant::now() + WAIT;
    while !text().contains(" · rehearsal · ") {
        assert!(Instant::now() < deadline, "the tail did not start: {}", text());
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    app.say(&id, "@Ada what fails first, and how would we know?").await;
    // Ada's words appear while she is still speaking.
    let typing_seen = loop {
        // Her line, not the floor's "→ Ada: …".
        if let Some(at) = text().find("\nAda: ")
            && text()[at + 6..].trim().len() > 3
        {
            break chrono::Utc::now();
        }
        assert!(Instant::now() < deadline, "no typing shown: {}", text());
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    };
    let mut sse = app.sse(&id, Some(0)).await;
    let seen = sse.until("speak").await;
    let speak: Value = serde_json::from_str(&seen.last().unwrap().data).unwrap();
    sse.until("turn-end").await;
    let logged: chrono::DateTime<chrono::Utc> = speak["ts"].as_str().unwrap().parse().unwrap();
    assert!(typing_seen < logged, "typed at {typing_seen}, before the speak was logged at {logged}");
    // And the finished speak is not printed again after its typing.
    let said = speak["text"].as_str().unwrap();
    while text().matches(said.trim()).count() == 0 {
        assert!(Instant::now() < deadline, "the speak never completed on screen: {}", text());
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(text().matches(said.trim()).count(), 1, "{}", text());
}

#[actix_web::test]
async fn tail_on_a_terminal_prints_no_escape_sequence_from_a_card_or_a_character_file() {
    let dir = tempfile::tempdir().unwrap();
    let roster = roster_copy(dir.path());
    // A window title, an OSC 52 clipboard write, a screen clear, a C1 CSI.
    let hostile = "\u{1b}]0;pwned\u{7}Hello\u{1b}]52;c;ZXZpbA==\u{7} there\u{1b}[2J\u{1b}[H\u{9b}31m.";
    // Written by hand, a file keeps what it holds: tail alone must clean it.
    let wren = format!(
        "+++\nname = \"Wren\"\ntagline = \"Ornithologist\"\ncolour = \"#228844\"\n+++\n\n# Wren\n\n## Sample lines\n- {hostile}\n"
    );
    std::fs::write(roster.join("characters/wren.md"), wren).unwrap();
    let app = spawn_with(Options { roster: Some(roster), ..Options::default() }).await;
    let card = json!({ "spec": "chara_card_v2", "spec_version": "2.0",
        "data": { "name": "Vex", "description": "A test.", "first_mes": hostile } });
    let url = app.url("/api/roster/import?filename=vex.json");
    let request = app.client.post(url).insert_header(("content-type", "application/json"));
    let mut res = request.send_body(card.to_string()).await.unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let vex: Value = res.json().await.unwrap();
    let materials = vex["materials"].as_str().unwrap();
    assert!(materials.contains("- ]0;pwnedHello"), "the greeting, its escapes dropped on import:\n{materials}");
    assert!(!materials.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{materials:?}");

    let id = app.create(&["wren", "vex"]).await;
    let mut sse = app.sse(&id, None).await;
    for line in ["@Wren what do you see?", "@Vex and you?"] {
        app.say(&id, line).await;
        sse.until("turn-end").await;
    }
    let (status, _) = app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert_eq!(status, 200);
    // In colour, as on a person's terminal: only tail's own escapes may show.
    let tail = format!("{} tail {id} --url {}", env!("CARGO_BIN_EXE_panel"), app.address);
    let (mut child, shown) = on_a_terminal(&tail, &[]);
    assert!(wait_exit(&mut child.0).await.success());
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
        if text.contains("session closed") {
            break text;
        }
        assert!(Instant::now() < deadline, "the tail did not finish: {text:?}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(text.contains("Hello") && text.contains("Wren") && text.contains("Vex"), "{text:?}");
    for bad in ["\u{1b}]", "\u{7}", "\u{1b}[2J", "\u{1b}[H", "\u{9b}"] {
        assert!(!text.contains(bad), "{bad:?} reached the terminal: {text:?}");
    }
    let colours_only = text.split('\u{1b}').skip(1).all(|after| {
        after
            .strip_prefix('[')
            .and_then(|s| s.split_once('m'))
            .is_some_and(|(params, _)| !params.is_empty() && params.bytes().all(|b| b.is_ascii_digit() || b == b';'))
    });
    assert!(colours_only, "an escape that is not a colour: {text:?}");
}

/// `panel tail ID --seat SEAT` on `app`: the child, its output, its
/// terminal's input, and where its complaints go.
fn tail_seated(
    app: &TestApp,
    id: &str,
    seat: &str,
) -> (Reaped, Lines, std::process::ChildStdin, tempfile::NamedTempFile) {
    let errors = tempfile::NamedTempFile::new().unwrap();
    let mut child = Reaped(
        panel()
            .args(["tail", id, "--url", &app.address, "--seat", seat])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(errors.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let lines = Lines::of(&mut child.0);
    let stdin = child.0.stdin.take().unwrap();
    (child, lines, stdin, errors)
}

#[actix_web::test]
async fn tail_with_a_seat_says_each_typed_line_under_its_name_and_shows_who_is_here() {
    use std::io::Write as _;
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let (mut child, lines, mut stdin, errors) = tail_seated(&app, &id, "Maya");
    writeln!(stdin, "What fails first?").unwrap();
    lines
        .until("the line said under the seat", |l| l.iter().any(|l| l.contains("▶ floor (Maya): What fails first?")))
        .await;
    lines.until("the seat shown as here", |l| l.iter().any(|l| l.contains("· here: Maya"))).await;
    // A line the server refuses is reported, not lost silently.
    writeln!(stdin, "@Nobody are you there?").unwrap();
    writeln!(stdin, "And the second?").unwrap();
    lines.until("the second line said", |l| l.iter().any(|l| l.contains("▶ floor (Maya): And the second?"))).await;
    let history = app.get(&format!("/api/sessions/{id}/history")).await.1;
    let said: Vec<(Value, Value)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "human-speak")
        .map(|e| (e["seat"].clone(), e["text"].clone()))
        .collect();
    assert_eq!(said, [(json!("Maya"), json!("What fails first?")), (json!("Maya"), json!("And the second?"))]);
    app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert!(wait_exit(&mut child.0).await.success(), "tail ends when the session closes");
    let refused = std::fs::read_to_string(errors.path()).unwrap();
    assert!(refused.contains("not said") && refused.contains("@Nobody are you there?"), "{refused}");
}

#[actix_web::test]
async fn tail_with_a_seat_is_here_from_the_start_and_stays_connected_while_nobody_types() {
    use std::io::Write as _;
    // Pings every 50 ms: a socket that answers none for 150 ms is closed.
    let app = spawn_with(Options { keep_alive: Duration::from_millis(50), ..Options::default() }).await;
    let id = app.create(&["ada", "byron"]).await;
    let (mut child, lines, mut stdin, errors) = tail_seated(&app, &id, "Theo");
    lines.until("the seat here before it speaks", |l| l.iter().any(|l| l.contains("· here: Theo"))).await;
    // Twenty of the server's ping periods with nobody typing: the time
    // under test, not a wait for an event.
    actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
    writeln!(stdin, "Still here?").unwrap();
    lines.until("the line said after the pause", |l| l.iter().any(|l| l.contains("▶ floor (Theo): Still here?"))).await;
    let shown = lines.all();
    let arrived = shown.iter().position(|l| l.contains("· here: Theo")).unwrap();
    let presence: Vec<&String> =
        shown[arrived..].iter().filter(|l| l.contains("  · here") || l.ends_with(" watching")).collect();
    assert!(presence.iter().all(|l| l.contains("here: Theo")), "the seat never left: {presence:?}");
    app.post_empty(&format!("/api/sessions/{id}/close")).await;
    assert!(wait_exit(&mut child.0).await.success());
    let stderr = std::fs::read_to_string(errors.path()).unwrap();
    assert!(!stderr.contains("not said"), "{stderr}");
}
