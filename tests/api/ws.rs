//! WebSocket: commands answered with acks or errors, events pushed as JSON.

use awc::ws::{Frame, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};

use crate::helpers::*;

pub type Conn = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

pub async fn connect(app: &TestApp, id: &str, query: &str) -> Conn {
    let url = app.url(&format!("/api/sessions/{id}/ws{query}"));
    let (res, conn) = app.client.ws(url).connect().await.expect("the WebSocket opens");
    assert_eq!(res.status().as_u16(), 101);
    conn
}

pub async fn send(conn: &mut Conn, value: Value) {
    conn.send(Message::Text(value.to_string().into())).await.unwrap();
}

/// The next JSON text frame (pings are answered by the codec's peer logic here).
pub async fn next_json(conn: &mut Conn) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, conn.next()).await.expect("a frame in time").expect("open").unwrap();
        match frame {
            Frame::Text(bytes) => return serde_json::from_slice(&bytes).unwrap(),
            Frame::Ping(p) => conn.send(Message::Pong(p)).await.unwrap(),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn until_kind(conn: &mut Conn, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let v = next_json(conn).await;
        let done = v["kind"] == kind;
        seen.push(v);
        if done {
            return seen;
        }
    }
}

#[actix_web::test]
async fn a_websocket_client_says_changes_the_cast_and_sees_the_events() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut ws = connect(&app, &id, "?since=0").await;
    let open = next_json(&mut ws).await;
    assert_eq!(open["kind"], "session-open");

    send(&mut ws, json!({ "type": "add", "character": "cleo", "id": 1 })).await;
    let seen = until_kind(&mut ws, "join").await;
    let ack = seen.iter().find(|v| v["type"] == "ack").expect("an ack");
    assert_eq!((ack["id"].clone(), ack["for"].clone()), (json!(1), json!("add")));

    send(&mut ws, json!({ "type": "say", "text": "Hello, panel.", "id": "a" })).await;
    let seen = until_kind(&mut ws, "turn-end").await;
    assert!(seen.iter().any(|v| v["type"] == "ack" && v["id"] == "a"));
    assert!(seen.iter().any(|v| v["kind"] == "speak-delta"));
    assert!(seen.iter().any(|v| v["kind"] == "deliberation"));

    send(&mut ws, json!({ "type": "retire", "character": "nobody", "id": 2 })).await;
    let err = next_json(&mut ws).await;
    assert_eq!(
        (err["type"].clone(), err["code"].clone(), err["id"].clone()),
        (json!("error"), json!("not-on-stage"), json!(2))
    );
    send(&mut ws, json!({ "type": "dance" })).await;
    assert_eq!(next_json(&mut ws).await["code"], "bad-command");
    ws.send(Message::Text("{nope".into())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "bad-json");
    ws.send(Message::Close(None)).await.unwrap();
}

#[actix_web::test]
async fn a_websocket_to_an_unknown_session_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let err = app.client.ws(app.url("/api/sessions/nope/ws")).connect().await.err().expect("refused");
    assert!(err.to_string().contains("404") || format!("{err:?}").contains("404"), "{err:?}");
}
