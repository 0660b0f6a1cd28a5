//! Invites behind `--token`: what a watcher and a speaker may reach (and
//! nothing more), revocation at the next request and of open streams, the
//! secret kept out of every file, list and log line, and the browser flow.

use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};

use crate::helpers::*;

const TOKEN: &str = "the-token-holder-0123456789";

/// A client that shows one secret (the token, or an invite's) as a bearer.
struct Holder {
    client: awc::Client,
    base: String,
}

impl Holder {
    fn new(app: &TestApp, secret: &str) -> Self {
        let client = awc::Client::builder()
            .add_default_header(("Authorization", format!("Bearer {secret}")))
            .timeout(WAIT)
            .finish();
        Self { client, base: app.address.clone() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let mut res = self.client.get(self.url(path)).send().await.expect("GET answered");
        (res.status().as_u16(), res.json().limit(16 << 20).await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut res = self.client.post(self.url(path)).send_json(&body).await.expect("POST answered");
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, path: &str) -> u16 {
        self.client.delete(self.url(path)).send().await.expect("DELETE answered").status().as_u16()
    }

    async fn sse(&self, path: &str) -> Sse {
        Sse::from_response(self.client.get(self.url(path)).send().await.expect("SSE answered"))
    }

    async fn create(&self, cast: &[&str]) -> String {
        let (status, body) = self.post("/api/sessions", json!({ "cast": cast, "title": "invited" })).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// A new invite to `session`: its id and its secret (from its url).
    async fn invite(&self, session: &str, body: Value) -> (String, String) {
        let (status, answer) = self.post(&format!("/api/sessions/{session}/invites"), body).await;
        assert_eq!(status, 201, "{answer}");
        let url = answer["url"].as_str().unwrap();
        let secret = url.split("?invite=").nth(1).unwrap().split('#').next().unwrap().to_owned();
        (answer["id"].as_str().unwrap().to_owned(), secret)
    }
}

async fn with_token() -> (TestApp, Holder) {
    let app = spawn_with(Options { token: Some(TOKEN.into()), ..Options::default() }).await;
    let admin = Holder::new(&app, TOKEN);
    (app, admin)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("an error body: {body}"))
}

type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// The next JSON text frame, or `None` once the server closes the socket.
async fn next_json(conn: &mut Conn) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(WAIT, conn.next()).await.expect("a frame in time")?.ok()?;
        match frame {
            Frame::Text(bytes) => return Some(serde_json::from_slice(&bytes).unwrap()),
            Frame::Ping(p) => conn.send(Message::Pong(p)).await.unwrap(),
            Frame::Close(_) => return None,
            _ => {}
        }
    }
}

#[actix_web::test]
async fn invites_are_refused_on_a_server_without_a_token() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let (status, body) = app.post(&format!("/api/sessions/{id}/invites"), json!({ "role": "watcher" })).await;
    assert_eq!((status, code(&body)), (409, "invites-need-token"));
    let (status, body) = app.get(&format!("/api/sessions/{id}/invites")).await;
    assert_eq!((status, code(&body)), (409, "invites-need-token"));
    let (status, _) = app.get(&format!("/api/sessions/{id}?invite=anything")).await;
    assert_eq!(status, 200, "without a token an invite parameter means nothing");
}

#[actix_web::test]
async fn the_token_holder_makes_lists_and_revokes_invites_and_wrong_ones_are_refused_clearly() {
    let (_app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let invites = format!("/api/sessions/{id}/invites");

    let (status, body) = admin.post("/api/sessions/no-such-one/invites", json!({ "role": "watcher" })).await;
    assert_eq!((status, code(&body)), (404, "session-not-found"));
    let (status, body) = admin.post(&invites, json!({ "role": "admin" })).await;
    assert_eq!((status, code(&body)), (400, "bad-role"));
    let (status, body) = admin.post(&invites, json!({ "role": "watcher", "seat": "Maya" })).await;
    assert_eq!((status, code(&body)), (400, "bad-seat"), "a watcher speaks as nobody");
    // A seat its holder could never speak under is refused as a floor line's would be.
    for seat in ["Ma\u{7}ya", "Ada", "b\u{200b}yron", "   "] {
        let (status, body) = admin.post(&invites, json!({ "role": "speaker", "seat": seat })).await;
        assert_eq!((status, code(&body)), (422, "bad-seat"), "{seat:?}: {body}");
    }

    let (status, made) = admin.post(&invites, json!({ "role": "speaker", "seat": "  Maya " })).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["role"].as_str(), made["seat"].as_str()), (Some("speaker"), Some("Maya")));
    let url = made["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/?invite=") && url.ends_with(&format!("#/s/{id}")),
        "{url}"
    );
    let (watcher, _) = admin.invite(&id, json!({ "role": "watcher" })).await;

    let (status, list) = admin.get(&invites).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = list["invites"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [made["id"].as_str().unwrap(), watcher.as_str()]);
    assert!(list["invites"].as_array().unwrap().iter().all(|i| i.get("url").is_none() && i.get("digest").is_none()));

    assert_eq!(admin.delete(&format!("{invites}/{watcher}")).await, 204);
    assert_eq!(admin.delete(&format!("{invites}/{watcher}")).await, 204, "revoking twice is harmless");
    assert_eq!(admin.delete(&format!("{invites}/not-an-invite")).await, 404);
    let (_, list) = admin.get(&invites).await;
    assert_eq!(list["invites"].as_array().unwrap().len(), 1, "{list}");
}

#[actix_web::test]
async fn a_watcher_may_read_and_stream_its_session_but_not_speak_nor_see_another() {
    let (app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let other = admin.create(&["cleo"]).await;
    let (_, secret) = admin.invite(&id, json!({ "role": "watcher" })).await;
    let watcher = Holder::new(&app, &secret);

    for path in [
        format!("/api/sessions/{id}"),
        format!("/api/sessions/{id}/history"),
        format!("/api/sessions/{id}/dynamics"),
        format!("/api/sessions/{id}/replays"),
        format!("/logs/{id}/events.jsonl"),
        "/api/roster".to_owned(),
        "/healthz".to_owned(),
    ] {
        let res = watcher.client.get(watcher.url(&path)).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
    }
    let mut own = watcher.sse(&format!("/api/sessions/{id}/events?since=0")).await;
    assert_eq!(own.next().await.unwrap().event, "session-open");
    let mut multiplexed = watcher.sse(&format!("/api/events?sessions={id}&since=0")).await;
    assert_eq!(multiplexed.next().await.unwrap().event, "session-open");

    let (status, body) = watcher.post(&format!("/api/sessions/{id}/say"), json!({ "text": "May I?" })).await;
    assert_eq!((status, code(&body)), (403, "invite-forbidden"));
    let socket = watcher.client.ws(watcher.url(&format!("/api/sessions/{id}/ws"))).connect().await;
    assert!(format!("{:?}", socket.err()).contains("403"), "a watcher opens no socket to speak on");

    for path in [
        format!("/api/sessions/{other}"),
        format!("/api/sessions/{other}/events?since=0"),
        format!("/api/events?sessions={id},{other}"),
        format!("/api/events?sessions={id}&directory=1"),
        format!("/logs/{other}/events.jsonl"),
        format!("/logs/{id}/../{other}/events.jsonl"),
        format!("/logs/{id}/invites.json"),
        "/logs/index.json".to_owned(),
        "/api/sessions".to_owned(),
        format!("/api/sessions/{id}/invites"),
    ] {
        let (status, body) = watcher.get(&path).await;
        assert_eq!((status, code(&body)), (403, "invite-forbidden"), "{path}");
        assert!(!body.to_string().contains(&other), "{path} names another session: {body}");
    }
    // The session goes on, and the watcher sees it.
    admin.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Welcome, watchers." })).await;
    let heard = own.until("turn-end").await;
    assert!(heard.iter().any(|e| e.event == "human-speak" && e.json()["text"] == "Welcome, watchers."));
    multiplexed.until("turn-end").await;
}

#[actix_web::test]
async fn a_speaker_may_say_and_its_line_is_logged_but_it_may_not_cast_close_or_change_settings() {
    let (app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let (_, secret) = admin.invite(&id, json!({ "role": "speaker" })).await;
    let speaker = Holder::new(&app, &secret);
    let mut log = admin.sse(&format!("/api/sessions/{id}/events?since=0")).await;

    let (status, body) =
        speaker.post(&format!("/api/sessions/{id}/say"), json!({ "text": "From the invited floor." })).await;
    assert_eq!(status, 202, "{body}");
    let turn = log.until("turn-end").await;
    let spoken: Vec<_> = turn.iter().filter(|e| e.event == "human-speak").map(|e| e.json()["text"].clone()).collect();
    assert_eq!(spoken, [json!("From the invited floor.")]);

    let changes: [(&str, String, Value); 11] = [
        ("POST", format!("/api/sessions/{id}/cast"), json!({ "add": "cleo" })),
        ("POST", format!("/api/sessions/{id}/close"), json!({})),
        ("POST", format!("/api/sessions/{id}/settings"), json!({ "keep_warm": "off" })),
        ("POST", format!("/api/sessions/{id}/fork"), json!({})),
        ("POST", format!("/api/sessions/{id}/continue"), json!({})),
        ("POST", format!("/api/sessions/{id}/actor"), json!({})),
        ("DELETE", format!("/api/sessions/{id}/actor"), json!({})),
        ("POST", format!("/api/sessions/{id}/replay"), json!({ "turn": 1 })),
        ("POST", format!("/api/sessions/{id}/invites"), json!({ "role": "speaker" })),
        ("POST", "/api/sessions".into(), json!({ "cast": ["ada"] })),
        ("POST", "/api/roster".into(), json!({ "name": "Zed" })),
    ];
    for (method, path, body) in &changes {
        let req = match *method {
            "DELETE" => speaker.client.delete(speaker.url(path)),
            _ => speaker.client.post(speaker.url(path)),
        };
        let mut res = req.send_json(body).await.unwrap();
        let answer: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!((res.status().as_u16(), code(&answer)), (403, "invite-forbidden"), "{method} {path}");
    }
    // The origin rule still holds for an invite.
    let mut res = speaker
        .client
        .post(speaker.url(&format!("/api/sessions/{id}/say")))
        .insert_header(("Origin", "http://evil.example"))
        .send_json(&json!({ "text": "hi" }))
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), code(&res.json().await.unwrap())), (403, "forbidden-origin"));

    // Its socket says, and changes nothing else.
    let (res, mut ws) =
        speaker.client.ws(speaker.url(&format!("/api/sessions/{id}/ws?events=none"))).connect().await.unwrap();
    assert_eq!(res.status().as_u16(), 101);
    ws.send(Message::Text(json!({ "type": "add", "character": "cleo", "id": 1 }).to_string().into())).await.unwrap();
    let refused = next_json(&mut ws).await.unwrap();
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("invite-forbidden")));
    ws.send(Message::Text(json!({ "type": "settings", "keep_warm": "off", "id": 2 }).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["code"], "invite-forbidden");
    ws.send(Message::Text(json!({ "type": "say", "text": "And by socket.", "id": 3 }).to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "ack");
    let turn = log.until("turn-end").await;
    assert!(turn.iter().any(|e| e.event == "human-speak" && e.json()["text"] == "And by socket."));
    let (_, detail) = admin.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["closed"], false, "{detail}");
    assert!(!detail.to_string().contains("cleo"), "the cast is as it was: {detail}");
}

#[actix_web::test]
async fn a_revoked_invite_is_refused_at_its_next_request_and_its_open_streams_end() {
    let (app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let (watcher_id, watcher_secret) = admin.invite(&id, json!({ "role": "watcher" })).await;
    let (speaker_id, speaker_secret) = admin.invite(&id, json!({ "role": "speaker" })).await;
    let (_, kept_secret) = admin.invite(&id, json!({ "role": "watcher" })).await;
    let watcher = Holder::new(&app, &watcher_secret);
    let speaker = Holder::new(&app, &speaker_secret);
    let kept = Holder::new(&app, &kept_secret);

    let mut single = watcher.sse(&format!("/api/sessions/{id}/events?since=0")).await;
    let mut multiplexed = watcher.sse(&format!("/api/events?sessions={id}&since=0")).await;
    let mut untouched = kept.sse(&format!("/api/sessions/{id}/events?since=0")).await;
    for stream in [&mut single, &mut multiplexed, &mut untouched] {
        assert_eq!(stream.next().await.unwrap().event, "session-open");
    }
    let (_, mut ws) =
        speaker.client.ws(speaker.url(&format!("/api/sessions/{id}/ws?events=none"))).connect().await.unwrap();

    assert_eq!(admin.delete(&format!("/api/sessions/{id}/invites/{watcher_id}")).await, 204);
    assert_eq!(admin.delete(&format!("/api/sessions/{id}/invites/{speaker_id}")).await, 204);

    // Each open stream ends (Sse::next fails the test if it does not in time).
    assert!(single.next().await.is_none(), "the single stream ends");
    assert!(multiplexed.next().await.is_none(), "the multiplexed stream ends");
    assert!(next_json(&mut ws).await.is_none(), "the socket is closed");

    let (status, body) = watcher.get(&format!("/api/sessions/{id}")).await;
    assert_eq!((status, code(&body)), (401, "invite-revoked"));
    let (status, body) = speaker.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Still here?" })).await;
    assert_eq!((status, code(&body)), (401, "invite-revoked"));

    // Another invite to the same session is unaffected.
    let (status, _) = kept.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    admin.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Carry on." })).await;
    untouched.until("turn-end").await;
}

#[actix_web::test]
async fn an_invite_secret_has_at_least_128_bits_and_is_in_no_file_list_or_log_line() {
    let logs = tempfile::tempdir().unwrap();
    let app =
        spawn_with(Options { token: Some(TOKEN.into()), logs: Some(logs.path().to_owned()), ..Options::default() })
            .await;
    let admin = Holder::new(&app, TOKEN);
    let id = admin.create(&["ada", "byron"]).await;
    let (_, secret) = admin.invite(&id, json!({ "role": "speaker", "seat": "Maya" })).await;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&secret).expect("url-safe base64");
    assert!(bytes.len() * 8 >= 128, "{} bits", bytes.len() * 8);

    // Use it every way there is, so anything that would record it has had the chance.
    let speaker = Holder::new(&app, &secret);
    let mut log = admin.sse(&format!("/api/sessions/{id}/events?since=0")).await;
    speaker.post(&format!("/api/sessions/{id}/say"), json!({ "text": "A line." })).await;
    log.until("turn-end").await;
    let res = app.client.get(app.url(&format!("/api/sessions/{id}?invite={secret}"))).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    speaker.get(&format!("/api/sessions/{id}/cast")).await;

    let (_, list) = admin.get(&format!("/api/sessions/{id}/invites")).await;
    assert!(!list.to_string().contains(&secret), "{list}");
    let mut files = vec![logs.path().to_owned()];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(&secret), "{} holds the secret", path.display());
            read += 1;
        }
    }
    assert!(read >= 2, "the session's log and its invites were read");
    assert!(std::fs::read_to_string(logs.path().join(&id).join("invites.json")).unwrap().contains("Maya"));
    assert!(log_lines().iter().all(|l| !l.contains(&secret)), "a log line holds the secret");
}

#[actix_web::test]
async fn a_browser_opening_an_invite_link_gets_a_cookie_for_that_invite_and_the_secret_leaves_the_address_bar() {
    let (app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let other = admin.create(&["cleo"]).await;
    let (_, secret) = admin.invite(&id, json!({ "role": "watcher" })).await;
    let browser = awc::Client::builder().disable_redirects().finish();
    let page = |path: String| {
        browser
            .get(app.url(&path))
            .insert_header(("Sec-Fetch-Site", "none"))
            .insert_header(("Sec-Fetch-Mode", "navigate"))
            .insert_header(("Sec-Fetch-Dest", "document"))
    };

    let mut res = page(format!("/?invite={secret}")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers().get("location").unwrap(), "/", "the secret leaves the address bar");
    let set = res.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(&secret), "{set}");
    assert!(!String::from_utf8_lossy(&res.body().await.unwrap()).contains(&secret));
    let cookie = set.split(';').next().unwrap().to_owned();

    let with_cookie = |path: String| browser.get(app.url(&path)).insert_header(("Cookie", cookie.as_str()));
    for path in
        ["/".to_owned(), "/js/main.js".to_owned(), format!("/api/sessions/{id}"), format!("/api/sessions/{id}/history")]
    {
        let res = with_cookie(path.clone()).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path} with the invite's cookie");
    }
    for path in [format!("/api/sessions/{other}"), "/api/sessions".to_owned(), "/api/providers".to_owned()] {
        let res = with_cookie(path.clone()).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 403, "{path}: the cookie is the invite's, not the token's");
    }
    let mut res = page("/?invite=not-a-real-secret".into()).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!((res.status().as_u16(), code(&body)), (401, "invite-unknown"));
    assert!(res.headers().get("set-cookie").is_none());

    // Revoked, the cookie admits nothing more.
    let (_, list) = admin.get(&format!("/api/sessions/{id}/invites")).await;
    let iid = list["invites"][0]["id"].as_str().unwrap();
    assert_eq!(admin.delete(&format!("/api/sessions/{id}/invites/{iid}")).await, 204);
    let mut res = with_cookie(format!("/api/sessions/{id}")).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!((res.status().as_u16(), code(&body)), (401, "invite-revoked"));
}

#[actix_web::test]
async fn invites_and_their_revocation_survive_a_restart() {
    let logs = tempfile::tempdir().unwrap();
    let options = || Options { token: Some(TOKEN.into()), logs: Some(logs.path().to_owned()), ..Options::default() };
    let first = spawn_with(options()).await;
    let admin = Holder::new(&first, TOKEN);
    let id = admin.create(&["ada", "byron"]).await;
    let (_, kept) = admin.invite(&id, json!({ "role": "watcher" })).await;
    let (gone_id, gone) = admin.invite(&id, json!({ "role": "watcher" })).await;
    assert_eq!(admin.delete(&format!("/api/sessions/{id}/invites/{gone_id}")).await, 204);
    first.stopper.clone().stop().await;

    let second = spawn_with(options()).await;
    let (status, _) = Holder::new(&second, &kept).get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200, "the invite still admits after a restart");
    let (status, body) = Holder::new(&second, &gone).get(&format!("/api/sessions/{id}")).await;
    assert_eq!((status, code(&body)), (401, "invite-revoked"));
}

#[actix_web::test]
async fn a_speaker_invited_under_a_seat_speaks_as_that_seat_whatever_it_asks() {
    let (app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let (_, secret) = admin.invite(&id, json!({ "role": "speaker", "seat": "Maya" })).await;
    let speaker = Holder::new(&app, &secret);
    let mut log = admin.sse(&format!("/api/sessions/{id}/events?since=0")).await;
    let (status, body) =
        speaker.post(&format!("/api/sessions/{id}/say"), json!({ "text": "Who am I?", "seat": "Theo" })).await;
    assert_eq!(status, 202, "{body}");
    let turn = log.until("turn-end").await;
    let floor: Vec<Value> =
        turn.iter().filter(|e| e.event == "human-speak").map(|e| e.json()["seat"].clone()).collect();
    assert_eq!(floor, [json!("Maya")], "the invite's seat, not the one asked for");
}

#[actix_web::test]
async fn no_character_joins_under_the_seat_a_live_invite_fixes() {
    let (_app, admin) = with_token().await;
    let id = admin.create(&["ada", "byron"]).await;
    let (iid, _) = admin.invite(&id, json!({ "role": "speaker", "seat": "Cleo" })).await;
    let (status, body) = admin.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "cleo" })).await;
    assert_eq!((status, code(&body)), (422, "seat-taken"), "{body}");
    // Once the invite is revoked, its seat is free again.
    assert_eq!(admin.delete(&format!("/api/sessions/{id}/invites/{iid}")).await, 204);
    let (status, body) = admin.post(&format!("/api/sessions/{id}/cast"), json!({ "add": "cleo" })).await;
    assert_eq!(status, 202, "{body}");
}
