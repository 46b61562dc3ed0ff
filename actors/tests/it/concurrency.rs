//! No double spend: concurrent all-or-nothing spends on one wallet.

use futures::future::join_all;
use serde_json::json;

use crate::support::{audit_wallet, basket, world, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spends_never_spend_more_than_the_wallet_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet_id = contact["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet_id, "10.00").await;
    let mut body = basket(json!({"contact_code": "C-1"}), "5.00");
    body["spend"] = json!({"amount": "1.00", "require_full": true});
    let answers = join_all((0..50).map(|_| w.purchase(body.clone()))).await;
    let spent = answers.iter().filter(|a| a.status == 201).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 422 && a.code() == "insufficient_funds")
        .count();
    let overloaded = answers.iter().filter(|a| a.status == 503).count();
    assert_eq!(
        spent + refused + overloaded,
        50,
        "only spends, refusals or overload"
    );
    assert_eq!(
        spent,
        10.min(50 - overloaded),
        "exactly the money there was"
    );
    for answer in answers.iter().filter(|a| a.status == 201) {
        assert_eq!(answer.body["spend"]["spent"], "1.00");
    }
    let wallet = w.wallet(&wallet_id).await;
    assert_eq!(
        crate::support::cents(&wallet["balances"]["open"]),
        1000 - 100 * spent as i64
    );
    audit_wallet(&w, &wallet_id).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_wallet_mailbox_answers_overloaded_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewardsd.toml");
    std::fs::write(&config, "wallet_mailbox_capacity = 1\n").unwrap();
    let server = Server::start_with(dir.path(), "sync", Some(&config));
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet_id = contact["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet_id, "100.00").await;
    let mut body = basket(json!({"contact_code": "C-1"}), "2.00");
    body["spend"] = json!({"amount": "1.00"});
    // 200 purchases on one wallet at once (more than its 100.00 pays for: the last ones spend
    // less or nothing): a mailbox of one cannot queue them all.
    let answers = join_all((0..200).map(|_| w.purchase(body.clone()))).await;
    let accepted = answers.iter().filter(|a| a.status == 201).count();
    let overloaded: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(accepted + overloaded.len(), 200, "only answers or overload");
    assert!(accepted >= 1);
    assert!(!overloaded.is_empty(), "a mailbox of one never filled");
    for answer in &overloaded {
        answer.expect_error(503, "overloaded");
        assert!(answer.retry_after.is_some(), "503 carries Retry-After");
    }
    // What was refused left no trace: the wallet paid exactly what the accepted answers spent.
    let spent: i64 = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| crate::support::cents(&a.body["spend"]["spent"]))
        .sum();
    let wallet = w.wallet(&wallet_id).await;
    assert_eq!(
        crate::support::cents(&wallet["balances"]["open"]),
        10_000 - spent
    );
    audit_wallet(&w, &wallet_id).await;
    server.stop();
}
