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
