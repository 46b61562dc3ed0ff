//! One business's key sees nothing of another's.

use serde_json::json;

use crate::support::{basket, world, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_key_cannot_touch_another_business() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let a = world(&api, "EUR").await;
    let b = world(&api, "EUR").await;
    let contact_b = b.contact(json!({"code": "SAME"})).await;
    // Identifiers are unique per business, not across businesses.
    a.contact(json!({"code": "SAME"})).await;
    let purchase_b = b
        .purchase(basket(json!({"contact_code": "SAME"}), "3.00"))
        .await;
    let purchase_b = purchase_b.expect(201)["id"].as_str().unwrap().to_string();
    let contact_id = contact_b["id"].as_str().unwrap();
    let wallet_id = contact_b["wallet_id"].as_str().unwrap();

    for path in [
        format!("/v1/contacts/{contact_id}"),
        format!("/v1/wallets/{wallet_id}"),
        format!("/v1/wallets/{wallet_id}/journal"),
        format!("/v1/purchases/{purchase_b}"),
        format!("/v1/businesses/{}", b.business),
        format!("/v1/businesses/{}/events", b.business),
    ] {
        let answer = api.get(&path, &a.key).await;
        answer.expect_error(404, "not_found");
    }
    api.post(
        &format!("/v1/businesses/{}/contacts", b.business),
        &a.key,
        &json!({}),
    )
    .await
    .expect_error(404, "not_found");
    api.post(
        &format!("/v1/wallets/{wallet_id}/topups"),
        &a.key,
        &json!({"amount": "5.00"}),
    )
    .await
    .expect_error(404, "not_found");
    api.post(
        &format!("/v1/purchases/{purchase_b}/void"),
        &a.key,
        &json!({}),
    )
    .await
    .expect_error(404, "not_found");
    api.put(
        &format!("/v1/contacts/{contact_id}/spend-block"),
        &a.key,
        &json!({"blocked": true}),
    )
    .await
    .expect_error(404, "not_found");
    // Naming the other business in a purchase is forbidden; its contact id is unknown here.
    let mut named = basket(json!({"contact_id": contact_id}), "1.00");
    named["business_id"] = json!(b.business);
    api.post("/v1/purchases", &a.key, &named)
        .await
        .expect_error(403, "forbidden");
    api.post(
        "/v1/purchases",
        &a.key,
        &basket(json!({"contact_id": contact_id}), "1.00"),
    )
    .await
    .expect_error(404, "contact_not_found");

    // Nothing changed in b.
    let wallet = b.wallet(wallet_id).await;
    assert_eq!(wallet["balances"]["open"], "0.00");
    let contact = api.get(&format!("/v1/contacts/{contact_id}"), &b.key).await;
    assert_eq!(contact.expect(200)["spend_blocked"], false);

    // A consumer session sees its own contact and wallet only.
    let session = api
        .post(
            &format!("/v1/contacts/{contact_id}/sessions"),
            &b.key,
            &json!({"ttl_seconds": 600}),
        )
        .await;
    let token = session.expect(201)["token"].as_str().unwrap().to_string();
    api.get(&format!("/v1/wallets/{wallet_id}"), &token)
        .await
        .expect(200);
    api.get(&format!("/v1/purchases/{purchase_b}"), &token)
        .await
        .expect(200);
    let other = b.contact(json!({})).await;
    api.get(
        &format!("/v1/contacts/{}", other["id"].as_str().unwrap()),
        &token,
    )
    .await
    .expect_error(404, "not_found");
    api.post(
        "/v1/purchases",
        &token,
        &basket(json!({"contact_id": contact_id}), "1.00"),
    )
    .await
    .expect_error(403, "forbidden");
    server.stop();
}
