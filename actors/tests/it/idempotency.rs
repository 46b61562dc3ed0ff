//! Exactly once by `external_reference`: replays, conflicts, concurrent copies.

use futures::future::join_all;
use serde_json::json;

use crate::support::{basket, world, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_replays_and_a_different_body_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({"name": "1 back", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "instant"}))
        .await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let mut body = basket(json!({"contact_code": "C-1"}), "4.00");
    body["external_system"] = json!("pos-1");
    body["external_reference"] = json!("R-1");
    body["spend"] = json!({"amount": "all"});
    let first = w.purchase(body.clone()).await;
    assert_eq!(first.status, 201);
    assert!(
        !first.replay,
        "the first response never carries Idempotent-Replay"
    );
    let again = w.purchase(body.clone()).await;
    assert_eq!(again.status, 201);
    assert!(again.replay);
    assert_eq!(again.body, first.body);

    // The same request with its fields in another order is the same request.
    let reordered = serde_json::to_string(&body).unwrap();
    let value: serde_json::Value = serde_json::from_str(&reordered).unwrap();
    assert!(w.purchase(value).await.replay);

    let mut different = body.clone();
    different["lines"][0]["unit_price"] = json!("5.00");
    w.purchase(different)
        .await
        .expect_error(409, "idempotency_conflict");
    // Another external system is another key.
    let mut other_system = body.clone();
    other_system["external_system"] = json!("pos-2");
    let other = w.purchase(other_system).await;
    assert_eq!(other.status, 201);
    assert!(!other.replay);
    assert_ne!(other.body["id"], first.body["id"]);

    let journal = api
        .all(
            &format!(
                "/v1/wallets/{}/journal",
                contact["wallet_id"].as_str().unwrap()
            ),
            &w.key,
        )
        .await;
    let awards = journal.iter().filter(|e| e["kind"] == "award").count();
    assert_eq!(awards, 2, "a replay posts nothing");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_copies_create_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({"name": "1 back", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "deferred"}))
        .await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let mut body = basket(json!({"contact_code": "C-1"}), "4.00");
    body["external_reference"] = json!("R-concurrent");
    let answers = join_all((0..50).map(|_| w.purchase(body.clone()))).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|a| a.expect(201)["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "every copy answers the one event");
    assert_eq!(answers.iter().filter(|a| !a.replay).count(), 1);
    let events = api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", w.business),
            &w.key,
        )
        .await;
    assert_eq!(events.len(), 1);
    let wallet = w.wallet(contact["wallet_id"].as_str().unwrap()).await;
    assert_eq!(wallet["balances"]["commerce"], "1.00");
    server.stop();
}
