//! Idempotency keys of `POST /v1/messages`, on SQLite and PostgreSQL: a
//! replayed answer says so (`Idempotent-Replayed: true`), and a key older
//! than the configured window is free again — the same key sends a new
//! message, and the old one keeps existing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::{Backend, StatusCode, TestApp};

both_backends!(
    a_replay_is_marked_and_the_first_answer_is_not,
    an_expired_key_sends_a_new_message_and_the_old_one_stays,
);

fn replayed(a: &support::Answer) -> Option<&str> {
    a.headers
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
}

async fn a_replay_is_marked_and_the_first_answer_is_not(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let first = app.send("k-1", &r, "transactional", "hello").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    assert_eq!(replayed(&first), None, "a first answer is not a replay");
    assert_eq!(first.body["outcome"], "deliver");
    let again = app.send("k-1", &r, "transactional", "hello").await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(replayed(&again), Some("true"));
    assert_eq!(again.body, first.body);
    // A refused reuse is an error, not a replay.
    let other = app.send("k-1", &r, "transactional", "other").await;
    assert_eq!(other.status, StatusCode::CONFLICT);
    assert_eq!(replayed(&other), None);
    assert!(other.body.get("outcome").is_none(), "{}", other.text);
    // The retired-key namespace is not the caller's.
    let reserved = app.send("expired:msg_1", &r, "transactional", "x").await;
    assert_eq!(
        reserved.status,
        StatusCode::BAD_REQUEST,
        "{}",
        reserved.text
    );
    assert_eq!(reserved.body["error"]["code"], "invalid_idempotency_key");
    app.stop().await;
}

async fn an_expired_key_sends_a_new_message_and_the_old_one_stays(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .idempotency_window_s(1)
        .start()
        .await
    else {
        return;
    };
    let r = app.recipient("emp-1").await;
    let first = app.send("k-1", &r, "transactional", "hello").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let old = first.body["id"].as_str().unwrap().to_string();
    // Seconds are whole: two of them put the first send out of a 1 s window.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let second = app.send("k-1", &r, "transactional", "hello").await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.text);
    assert_eq!(replayed(&second), None, "an expired key is not replayed");
    let new = second.body["id"].as_str().unwrap().to_string();
    assert_ne!(new, old, "an expired key sends a new message");
    // Within the new window the key replays the new message.
    let third = app.send("k-1", &r, "transactional", "hello").await;
    assert_eq!(replayed(&third), Some("true"));
    assert_eq!(third.body["id"], new.as_str());
    // The old message keeps existing, under its retired key.
    let m = app.get(&format!("/v1/messages/{old}"), &app.sender).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    let key: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT idempotency_key FROM messages WHERE id = '{old}'"
    )))
    .fetch_one(app.state().store.pool())
    .await
    .unwrap();
    assert_eq!(key, format!("expired:{old}"));
    app.stop().await;
}
