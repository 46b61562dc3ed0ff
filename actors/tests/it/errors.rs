//! Every error code the purchase pipeline answers, as problem+json with the status of API.md.

use serde_json::json;

use crate::support::{basket, world, Server, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_their_codes_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w
        .contact(json!({"code": "C-1", "gift_cards": ["GC-1"]}))
        .await;
    let wallet_id = contact["wallet_id"].as_str().unwrap().to_string();
    let c1 = json!({"contact_code": "C-1"});

    // 401: no key, an unknown key, a revoked key.
    let none = api
        .send(
            reqwest::Method::POST,
            "/v1/purchases",
            None,
            Some(b"{}".to_vec()),
        )
        .await
        .unwrap();
    none.expect_error(401, "unauthorized");
    api.post("/v1/purchases", "rk_nope", &json!({}))
        .await
        .expect_error(401, "unauthorized");
    let extra = api
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "pos", "business_id": w.business}),
        )
        .await;
    let extra_key = extra.body["key"].as_str().unwrap().to_string();
    let extra_id = extra.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(&format!("/v1/keys/{extra_id}"), ADMIN_KEY)
            .await
            .status,
        204
    );
    api.post("/v1/purchases", &extra_key, &basket(c1.clone(), "1.00"))
        .await
        .expect_error(401, "unauthorized");

    // 403: a role without the right.
    api.post(
        &format!("/v1/businesses/{}/offers", w.business),
        &w.pos_key,
        &json!({}),
    )
    .await
    .expect_error(403, "forbidden");
    api.post(
        "/v1/businesses",
        &w.key,
        &json!({"name": "x", "currency": "EUR"}),
    )
    .await
    .expect_error(403, "forbidden");

    // 400: malformed JSON, wrong types, missing fields, two identities, all with field paths.
    let malformed = api
        .send(
            reqwest::Method::POST,
            "/v1/purchases",
            Some(&w.pos_key),
            Some(b"{\"identity\":".to_vec()),
        )
        .await
        .unwrap();
    malformed.expect_error(400, "validation_failed");
    let bad_quantity = w
        .purchase(
            json!({"identity": c1, "lines": [{"sku": "A", "quantity": "two", "unit_price": "1"}]}),
        )
        .await;
    bad_quantity.expect_error(400, "validation_failed");
    assert_eq!(bad_quantity.body["errors"][0]["field"], "lines[0].quantity");
    let zero_quantity = w
        .purchase(
            json!({"identity": c1, "lines": [{"sku": "A", "quantity": "0", "unit_price": "1"}]}),
        )
        .await;
    zero_quantity.expect_error(400, "validation_failed");
    assert_eq!(
        zero_quantity.body["errors"][0]["field"],
        "lines[0].quantity"
    );
    let two = w
        .purchase(basket(json!({"contact_code": "C-1", "cim": "X"}), "1.00"))
        .await;
    two.expect_error(400, "validation_failed");
    assert_eq!(two.body["errors"][0]["field"], "identity");
    let missing = w.purchase(json!({"lines": []})).await;
    missing.expect_error(400, "validation_failed");

    // 404: unknown identity, unknown TAP, unknown purchase, another path.
    w.purchase(basket(json!({"contact_code": "nobody"}), "1.00"))
        .await
        .expect_error(404, "contact_not_found");
    w.purchase(basket(json!({"wallet_code": "0000000000000000"}), "1.00"))
        .await
        .expect_error(404, "contact_not_found");
    let mut with_tap = basket(c1.clone(), "1.00");
    with_tap["tap_code"] = json!("T-404");
    w.purchase(with_tap)
        .await
        .expect_error(404, "tap_not_found");
    api.get("/v1/purchases/00000000-0000-4000-8000-000000000000", &w.key)
        .await
        .expect_error(404, "not_found");
    api.get("/v1/purchases/not-an-id", &w.key)
        .await
        .expect_error(404, "not_found");

    // 409: identifiers unique within the business, TAP codes too.
    api.post(
        &format!("/v1/businesses/{}/contacts", w.business),
        &w.key,
        &json!({"code": "C-1"}),
    )
    .await
    .expect_error(409, "already_exists");
    api.post(
        &format!("/v1/businesses/{}/contacts", w.business),
        &w.key,
        &json!({"gift_cards": ["GC-1"]}),
    )
    .await
    .expect_error(409, "already_exists");
    let tap = json!({"code": "T-1"});
    api.post(&format!("/v1/businesses/{}/taps", w.business), &w.key, &tap)
        .await
        .expect(201);
    api.post(&format!("/v1/businesses/{}/taps", w.business), &w.key, &tap)
        .await
        .expect_error(409, "already_exists");

    // 422: money rules.
    let mut inconsistent = basket(c1.clone(), "1.00");
    inconsistent["total_amount"] = json!("2.00");
    w.purchase(inconsistent)
        .await
        .expect_error(422, "amounts_inconsistent");
    let mut foreign = basket(c1.clone(), "1.00");
    foreign["currency"] = json!("USD");
    w.purchase(foreign)
        .await
        .expect_error(422, "unknown_currency");
    let mut full = basket(c1.clone(), "5.00");
    full["spend"] = json!({"amount": "1.00", "require_full": true});
    w.purchase(full.clone())
        .await
        .expect_error(422, "insufficient_funds");
    w.topup(&wallet_id, "3.00").await;
    api.put(
        &format!(
            "/v1/contacts/{}/spend-block",
            contact["id"].as_str().unwrap()
        ),
        &w.key,
        &json!({"blocked": true}),
    )
    .await
    .expect(200);
    w.purchase(full.clone())
        .await
        .expect_error(422, "spend_blocked");
    api.put(
        &format!(
            "/v1/contacts/{}/spend-block",
            contact["id"].as_str().unwrap()
        ),
        &w.key,
        &json!({"blocked": false}),
    )
    .await
    .expect(200);
    api.request_settings(&w.business, &w.key, json!({"max_spend": "0.50"}))
        .await;
    w.purchase(full.clone())
        .await
        .expect_error(422, "spend_limit");
    api.request_settings(&w.business, &w.key, json!({"max_spend": null}))
        .await;
    assert_eq!(w.purchase(full).await.expect(201)["spend"]["spent"], "1.00");

    // Refusals recorded nothing: one purchase, the top-up's achievement, nothing else.
    let events = api
        .all(&format!("/v1/businesses/{}/events", w.business), &w.key)
        .await;
    let purchases = events.iter().filter(|e| e["type"] == "purchase").count();
    assert_eq!(purchases, 1);
    let wallet = w.wallet(&wallet_id).await;
    assert_eq!(wallet["balances"]["open"], "2.00");

    // 413 and the batch limit.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let too_large = api
        .send(
            reqwest::Method::POST,
            "/v1/purchases",
            Some(&w.pos_key),
            Some(huge),
        )
        .await
        .unwrap();
    assert_eq!(too_large.status, 413);
    let items: Vec<_> = (0..1001).map(|_| json!({})).collect();
    api.post("/v1/purchases:batch", &w.pos_key, &json!({"items": items}))
        .await
        .expect_error(400, "validation_failed");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_item_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.contact(json!({"code": "C-1"})).await;
    let items = vec![
        basket(json!({"contact_code": "C-1"}), "1.00"),
        basket(json!({"contact_code": "nobody"}), "1.00"),
        json!({"identity": {"contact_code": "C-1"}, "lines": "wrong"}),
        basket(json!({"contact_code": "C-1"}), "2.00"),
    ];
    let answer = api
        .post("/v1/purchases:batch", &w.pos_key, &json!({"items": items}))
        .await;
    let results = answer.expect(200)["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 404, 400, 201]);
    assert_eq!(results[1]["body"]["code"], "contact_not_found");
    assert_eq!(results[3]["body"]["amounts"]["total"], "2.00");
    server.stop();
}
