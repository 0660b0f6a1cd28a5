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
}
