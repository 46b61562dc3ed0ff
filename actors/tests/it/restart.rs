//! A clean restart keeps everything: configuration, contacts, offers, wallets, idempotency.

use serde_json::json;

use crate::support::{basket, world, Api, Server, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let offer = w
        .offer(json!({"name": "2 back", "goal": "spend", "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "deferred", "limits": {"budget": "5.00"}}))
        .await;
    let contact = w.contact(json!({"code": "C-1", "cim": "CIM-1"})).await;
    let wallet_id = contact["wallet_id"].as_str().unwrap().to_string();
    let mut body = basket(json!({"cim": "CIM-1"}), "10.00");
    body["external_reference"] = json!("R-restart");
    let first = w.purchase(body.clone()).await.expect(201).clone();
    api.request_settings(&w.business, &w.key, json!({"reward_resolution": "highest"}))
        .await;
    let wallet_before = w.wallet(&wallet_id).await;
    server.stop();

    let server = Server::start(dir.path(), "sync");
    let api: Api = server.client();
    let w = crate::support::World {
        api: api.clone(),
        ..w
    };
    assert_eq!(
        api.get(
            &format!("/v1/contacts/{}", contact["id"].as_str().unwrap()),
            &w.key
        )
        .await
        .expect(200)["code"],
        "C-1"
    );
    assert_eq!(w.wallet(&wallet_id).await, wallet_before);
    let business = api
        .get(&format!("/v1/businesses/{}", w.business), ADMIN_KEY)
        .await;
    assert_eq!(
        business.expect(200)["settings"]["reward_resolution"],
        "highest"
    );
    let stats = api
        .get(
            &format!(
                "/v1/businesses/{}/offers/{}",
                w.business,
                offer["id"].as_str().unwrap()
            ),
            &w.key,
        )
        .await;
    assert_eq!(stats.expect(200)["awarded_total"], "2.00");
    // The idempotency index survived: the repeat replays the first answer.
    let again = w.purchase(body).await;
    assert!(again.replay);
    assert_eq!(again.body, first);
    // The budget survived: 2.00 given, one more fits in 5.00, then none.
    for expected in [1, 0] {
        let p = w.purchase(basket(json!({"cim": "CIM-1"}), "1.00")).await;
        assert_eq!(p.expect(201)["awards"].as_array().unwrap().len(), expected);
    }
    // Identities are still indexed, and still unique.
    api.post(
        &format!("/v1/businesses/{}/contacts", w.business),
        &w.key,
        &json!({"code": "C-1"}),
    )
    .await
    .expect_error(409, "already_exists");
    server.stop();
}
