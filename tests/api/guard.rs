//! Bad input gets a clear error and loses nothing; the guard refuses
//! foreign hosts and origins; the server stays healthy throughout.

use serde_json::{Value, json};

use crate::helpers::*;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_else(|| panic!("an error body: {body}"))
}

#[actix_web::test]
async fn each_bad_input_gets_its_clear_error_and_the_server_stays_healthy() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let say = format!("/api/sessions/{id}/say");

    let mut res =
        app.client.post(app.url(&say)).content_type("application/json").send_body("{\"text\": ").await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!((res.status().as_u16(), code(&body)), (400, "bad-json"));

    let mut res = app.client.post(app.url(&say)).content_type("text/plain").send_body("hello").await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!((res.status().as_u16(), code(&body)), (415, "bad-content-type"));

    let huge = json!({ "text": "x".repeat(100_000) });
    let (status, body) = app.post(&say, huge).await;
    assert_eq!((status, code(&body)), (413, "too-large"));

    let (status, body) = app.post(&say, json!({ "text": "x".repeat(9_000) })).await;
    assert_eq!((status, code(&body)), (422, "text-too-long"));

    let (status, body) = app.post(&say, json!({ "txt": "typo" })).await;
    assert_eq!((status, code(&body)), (400, "bad-json"));

    let (status, body) = app.post("/api/sessions/nope-nope/say", json!({ "text": "hi" })).await;
    assert_eq!((status, code(&body)), (404, "session-not-found"));

    let (status, body) = app.get("/api/sessions/..%2F..%2Fetc").await;
    assert_eq!((status, code(&body)), (400, "bad-id"));
    let (status, body) = app.get("/api/sessions/Not_Valid").await;
    assert_eq!((status, code(&body)), (400, "bad-id"));

    let (status, body) = app.post("/api/sessions", json!({ "cast": ["ada", "zorro"] })).await;
    assert_eq!((status, code(&body)), (422, "unknown-character"));
    let (status, body) = app.post("/api/sessions", json!({ "cast": [] })).await;
    assert_eq!((status, code(&body)), (422, "empty-cast"));
    let (status, body) = app.post("/api/sessions", json!({ "cast": ["ada"], "depth": 99 })).await;
    assert_eq!((status, code(&body)), (422, "bad-depth"));

    let cast = format!("/api/sessions/{id}/cast");
    let (status, body) = app.post(&cast, json!({ "add": "zorro" })).await;
    assert_eq!((status, code(&body)), (422, "unknown-character"));
    let (status, body) = app.post(&cast, json!({ "add": "ada" })).await;
    assert_eq!((status, code(&body)), (422, "already-on-stage"));
    let (status, body) = app.post(&cast, json!({ "add": "cleo", "retire": "ada" })).await;
    assert_eq!((status, code(&body)), (400, "bad-cast-change"));
    let (status, _) = app.post(&cast, json!({ "retire": "byron" })).await;
    assert_eq!(status, 202);
    let (status, body) = app.post(&cast, json!({ "retire": "ada" })).await;
    assert_eq!((status, code(&body)), (422, "last-character"));

    let (status, body) = app.get("/api/nothing-here").await;
    assert_eq!((status, code(&body)), (404, "no-such-route"));

    // Nothing was lost or broken: the session still answers.
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "Still there?").await;
    assert_eq!(sse.until("turn-end").await.last().unwrap().json()["turn"], 1);
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_foreign_host_is_refused_on_every_route() {
    let app = spawn_app().await;
    for path in ["/healthz", "/api/sessions", "/index.html"] {
        let mut res = app.client.get(app.url(path)).insert_header(("Host", "evil.example:7878")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 403, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(code(&body), "forbidden-host");
    }
    let res = app
        .client
        .get(app.url("/healthz"))
        .insert_header(("Host", format!("localhost:{}", app.port)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_for_posts_and_websocket_upgrades() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut res = app
        .client
        .post(app.url(&format!("/api/sessions/{id}/say")))
        .insert_header(("Origin", "http://evil.example"))
        .send_json(&json!({ "text": "hi" }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(code(&res.json().await.unwrap()), "forbidden-origin");

    let err = app
        .client
        .ws(app.url(&format!("/api/sessions/{id}/ws")))
        .origin("http://evil.example")
        .connect()
        .await
        .err()
        .expect("a cross-site WebSocket is refused");
    assert!(format!("{err:?}").contains("403"), "{err:?}");

    let ok = app
        .client
        .ws(app.url(&format!("/api/sessions/{id}/ws")))
        .origin(format!("http://localhost:{}", app.port).as_str())
        .connect()
        .await;
    assert!(ok.is_ok(), "a same-site page may connect");
    // The refused attempts changed nothing.
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(detail["turns"], 0);
}

#[actix_web::test]
async fn with_a_token_every_request_must_carry_it() {
    let app = spawn_with(Options { token: Some("let-me-in-0123456789".into()), ..Options::default() }).await;
    let (status, body) = app.get("/api/sessions").await;
    assert_eq!((status, code(&body)), (401, "token-required"));
    let res = app
        .client
        .get(app.url("/api/sessions"))
        .insert_header(("Authorization", "Bearer let-me-in-0123456789"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = app.client.get(app.url("/api/sessions?token=let-me-in-0123456789")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "EventSource cannot send headers, so a query token works too");
    let res = app.client.get(app.url("/api/sessions?token=wrong")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // The guard consumes it: a route that takes only its own parameters
    // (`since`) never sees the token as one it does not know.
    let bearer = ("Authorization", "Bearer let-me-in-0123456789");
    let mut res = app
        .client
        .post(app.url("/api/sessions"))
        .insert_header(bearer)
        .send_json(&json!({ "cast": ["ada"] }))
        .await
        .unwrap();
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/sessions/{id}/history?since=0&token=let-me-in-0123456789");
    let res = app.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "a strict route answers as without the token");
}

#[actix_web::test]
async fn another_local_port_may_change_nothing_and_the_servers_own_origin_may() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let other = if app.port == 8000 { 8001 } else { 8000 };
    let foreign = [format!("http://localhost:{other}"), format!("http://127.0.0.1:{other}")];
    let routes: [(&str, String, Value); 8] = [
        ("POST", "/api/sessions".into(), json!({ "cast": ["ada"] })),
        ("POST", format!("/api/sessions/{id}/say"), json!({ "text": "hi" })),
        ("POST", format!("/api/sessions/{id}/cast"), json!({ "add": "cleo" })),
        ("POST", format!("/api/sessions/{id}/settings"), json!({ "keep_warm": "off" })),
        ("POST", format!("/api/sessions/{id}/close"), json!({})),
        ("POST", "/api/roster/import".into(), json!({})),
        ("POST", "/api/roster".into(), json!({ "name": "Zed" })),
        ("DELETE", format!("/api/sessions/{id}/actor"), json!({})),
    ];
    for origin in &foreign {
        for (method, path, body) in &routes {
            let req = match *method {
                "DELETE" => app.client.delete(app.url(path)),
                _ => app.client.post(app.url(path)),
            };
            let mut res = req.insert_header(("Origin", origin.as_str())).send_json(body).await.unwrap();
            assert_eq!(res.status().as_u16(), 403, "{method} {path} from {origin}");
            assert_eq!(code(&res.json().await.unwrap()), "forbidden-origin", "{method} {path} from {origin}");
        }
        let err = app.client.ws(app.url(&format!("/api/sessions/{id}/ws"))).origin(origin.as_str()).connect().await;
        assert!(format!("{:?}", err.err()).contains("403"), "a WebSocket from {origin} is refused");
    }
    let (_, detail) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!((detail["turns"].as_u64(), detail["closed"].as_bool()), (Some(0), Some(false)), "{detail}");

    let own = format!("http://127.0.0.1:{}", app.port);
    let res = app
        .client
        .post(app.url(&format!("/api/sessions/{id}/say")))
        .insert_header(("Origin", own.as_str()))
        .send_json(&json!({ "text": "From the app itself." }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202, "the server's own origin may speak");
    let ws = app.client.ws(app.url(&format!("/api/sessions/{id}/ws"))).origin(own.as_str()).connect().await;
    assert!(ws.is_ok(), "and connect");
}

#[actix_web::test]
async fn a_browser_with_the_token_gets_a_cookie_that_lets_in_everything_after_and_never_sees_the_token_again() {
    const TOKEN: &str = "s3cret-token-0123456789";
    let app = spawn_with(Options { token: Some(TOKEN.into()), ..Options::default() }).await;
    let client = awc::Client::builder().disable_redirects().finish();
    let page = |path: String| {
        client
            .get(app.url(&path))
            .insert_header(("Sec-Fetch-Site", "none"))
            .insert_header(("Sec-Fetch-Mode", "navigate"))
            .insert_header(("Sec-Fetch-Dest", "document"))
    };
    let mut res = page(format!("/?token={TOKEN}&x=1")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303, "the token leaves the address bar");
    let location = res.headers().get("location").unwrap().to_str().unwrap().to_owned();
    assert!(!location.contains(TOKEN) && location.contains("x=1"), "{location}");
    let set = res.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains(TOKEN), "{set}");
    let body = res.body().await.unwrap();
    assert!(!String::from_utf8_lossy(&body).contains(TOKEN));
    let cookie = set.split(';').next().unwrap().to_owned();

    for path in ["/", "/app.css", "/js/main.js", "/viewer.html", "/api/providers", "/api/sessions"] {
        let res = client.get(app.url(path)).insert_header(("Cookie", cookie.as_str())).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path} with the cookie");
        for (_, v) in res.headers().iter() {
            assert!(!v.to_str().unwrap_or("").contains(TOKEN), "{path} echoes the token in a header");
        }
    }
    let res = client.get(app.url("/app.css")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401, "nothing without the cookie or the token");
    let mut res = page("/?token=wrong".into()).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401, "a wrong token is refused");
    assert!(res.headers().get("set-cookie").is_none());
    let body = res.body().await.unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("wrong"), "the token given is not echoed");
}
