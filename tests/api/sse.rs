//! SSE: identical streams for every tailer, resume with no gap and no
//! duplicate, slow subscribers cut loose.

use crate::helpers::*;

#[actix_web::test]
async fn several_tailers_see_the_same_session_identically() {
    let app = spawn_with(Options { pace_ms: 1, ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut tailers = Vec::new();
    for _ in 0..4 {
        tailers.push(app.sse(&id, Some(0)).await);
    }
    app.say(&id, "What is a fair way to share a scarce resource?").await;
    app.say(&id, "@Byron and you?").await;
    let mut seen = Vec::new();
    for t in &mut tailers {
        let mut events = t.until("turn-end").await;
        events.extend(t.until("turn-end").await);
        seen.push(events);
    }
    for other in &seen[1..] {
        assert_eq!(other, &seen[0], "every tailer sees the same frames, deltas included");
    }
    let k = kinds(&seen[0]);
    assert_eq!(k[0], "session-open");
    assert!(k.contains(&"speak-delta") && k.contains(&"deliberation") && k.contains(&"cost"));
    assert!(seen[0].iter().filter(|e| e.event == "speak-delta").all(|e| e.id.is_none()), "deltas carry no id");
    let ids: Vec<u64> = logged(&seen[0]).iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    for e in logged(&seen[0]) {
        assert_eq!(e.json()["seq"].as_u64(), e.id, "id: is the seq");
        assert_eq!(e.json()["kind"].as_str(), Some(e.event.as_str()), "event: is the kind");
    }
}

#[actix_web::test]
async fn last_event_id_resumes_mid_turn_with_no_gap_and_no_duplicate() {
    let app = spawn_with(Options { pace_ms: 5, ..Options::default() }).await;
    let id = app.create(&["ada", "byron", "cleo"]).await;
    let mut reference = app.sse(&id, Some(0)).await;
    let mut dropped = app.sse(&id, Some(0)).await;
    app.say(&id, "Tell me about failure.").await;
    let before = logged(&dropped.until("deliberation").await);
    let last = before.last().unwrap().id.unwrap();
    drop(dropped);

    let mut resumed = app.sse_resume(&id, last).await;
    let after = logged(&resumed.until("turn-end").await);
    assert_eq!(after[0].id, Some(last + 1), "the first event after the resume point");
    let whole = logged(&reference.until("turn-end").await);
    let stitched: Vec<_> = before.into_iter().chain(after).collect();
    assert_eq!(stitched, whole);

    // `?since=N` does the same for a fresh page.
    let mut fresh = app.sse(&id, Some(last)).await;
    let first = fresh.next().await.unwrap();
    assert_eq!(first.id, Some(last + 1));
}

#[actix_web::test]
async fn without_a_resume_point_the_stream_is_live_only() {
    let app = spawn_app().await;
    let id = app.create(&["ada", "byron"]).await;
    let mut sse = app.sse(&id, None).await;
    app.say(&id, "Hello.").await;
    let first = sse.next().await.unwrap();
    assert_eq!(first.event, "human-speak");
}
