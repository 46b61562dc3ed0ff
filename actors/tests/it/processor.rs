//! Payment networks (SPEC section 7): processor purchases routed to every business on a shared
//! TAP, by each business's processor mode; matching with POS purchases; claims by code and by
//! receipt; exactly once by transaction reference; the races; a restart inside a window.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{audit_wallet, basket, world, Api, Server, World, ADMIN_KEY};

/// A processor and a key for it.
pub async fn processor_key(api: &Api) -> String {
    let processor = api
        .post("/v1/processors", ADMIN_KEY, &json!({"name": "Network"}))
        .await;
    let id = processor.expect(201)["id"].as_str().unwrap().to_string();
    let key = api
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "processor", "processor_id": id}),
        )
        .await;
    key.expect(201)["key"].as_str().unwrap().to_string()
}

/// A business in `mode` with a 10% instant offer and the TAP `tap`.
pub async fn business(api: &Api, mode: &str, tap: &str, window: u32) -> World {
    let w = world(api, "EUR").await;
    api.request_settings(
        &w.business,
        &w.key,
        json!({"processor_mode": mode, "match_window_seconds": window}),
    )
    .await;
    w.offer(json!({"name": "10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    api.post(
        &format!("/v1/businesses/{}/taps", w.business),
        &w.key,
        &json!({"code": tap}),
    )
    .await
    .expect(201);
    w
}

pub fn transaction(tap: &str, reference: &str, total: &str, card: &str) -> Value {
    json!({"tap_code": tap, "transaction_reference": reference, "total_amount": total,
           "currency": "EUR", "performed_on": "2026-11-22T10:00:00Z",
           "payment_medium": {"identifier": card, "brand": "visa", "type": "debit"}})
}

fn route<'a>(answer: &'a Value, business: &str) -> &'a Value {
    answer["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["business_id"] == business)
        .unwrap_or_else(|| panic!("no route to {business} in {answer}"))
}

/// A contact session (a `contact` key) for `contact`.
async fn session(w: &World, contact: &str) -> String {
    let answer = w
        .api
        .post(
            &format!("/v1/contacts/{contact}/sessions"),
            &w.key,
            &json!({}),
        )
        .await;
    answer.expect(201)["token"].as_str().unwrap().to_string()
}

/// Polls a purchase until `done` holds of it (a window's end runs on a timer).
async fn wait_for(api: &Api, key: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let answer = api.get(&format!("/v1/purchases/{id}"), key).await;
        let body = answer.expect(200).clone();
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("purchase {id} never reached the expected state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_purchase_is_routed_to_every_business_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let network = processor_key(&api).await;
    let award = business(&api, "award", "T-SHARED", 600).await;
    let claim = business(&api, "claim", "T-SHARED", 600).await;
    let cardholder = award
        .contact(json!({"payment_media": [{"identifier": "tok_ada", "brand": "visa"}]}))
        .await;

    // Unknown terminal; keys other than a processor's.
    api.post(
        "/v1/processor/purchases",
        &network,
        &transaction("T-NOWHERE", "N-0", "10.00", "tok_ada"),
    )
    .await
    .expect_error(404, "tap_not_found");
    api.post(
        "/v1/processor/purchases",
        &award.key,
        &transaction("T-SHARED", "N-0", "10.00", "tok_ada"),
    )
    .await
    .expect_error(403, "forbidden");
    api.get(&format!("/v1/businesses/{}", award.business), &network)
        .await
        .expect_error(403, "forbidden");

    let body = transaction("T-SHARED", "N-1", "42.00", "tok_ada");
    let first = api.post("/v1/processor/purchases", &network, &body).await;
    let answer = first.expect(200).clone();
    assert!(!first.replay);
    assert_eq!(answer["transaction_reference"], "N-1");
    assert_eq!(answer["routes"].as_array().unwrap().len(), 2);
    let rewarded = route(&answer, &award.business);
    assert_eq!(rewarded["outcome"], "rewarded");
    assert_eq!(rewarded["claim_code"], Value::Null);
    let unclaimed = route(&answer, &claim.business);
    assert_eq!(unclaimed["outcome"], "unclaimed");
    let code = unclaimed["claim_code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(code
        .chars()
        .all(|c| c == '-' || "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c)));

    // The rewarded purchase is the cardholder's, with origin processor and its awards.
    let id = rewarded["purchase_id"].as_str().unwrap();
    let purchase = api.get(&format!("/v1/purchases/{id}"), &award.key).await;
    let purchase = purchase.expect(200);
    assert_eq!(purchase["origin"], "processor");
    assert_eq!(purchase["contact_id"], cardholder["id"]);
    assert_eq!(purchase["amounts"]["total"], "42.00");
    assert_eq!(purchase["awards"][0]["amount"], "4.20");
    assert_eq!(purchase["payment_medium"]["identifier"], "tok_ada");
    assert_eq!(purchase["transaction_reference"], "N-1");
    // Another business's key sees nothing of it.
    api.get(&format!("/v1/purchases/{id}"), &claim.key)
        .await
        .expect_error(404, "not_found");

    // The unclaimed purchase shows its code and no contact; the business's list shows it.
    let kept_id = unclaimed["purchase_id"].as_str().unwrap();
    let kept = api
        .get(&format!("/v1/purchases/{kept_id}"), &claim.key)
        .await;
    let kept = kept.expect(200).clone();
    assert_eq!(kept["claim_code"], code.as_str());
    assert_eq!(kept["contact_id"], Value::Null);
    assert_eq!(kept["origin"], "processor");
    let listed = api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", claim.business),
            &claim.key,
        )
        .await;
    assert!(listed.iter().any(|e| e["id"] == kept_id));

    // The same transaction again is a replay; with another body a conflict.
    let again = api.post("/v1/processor/purchases", &network, &body).await;
    assert!(again.replay);
    assert_eq!(again.expect(200), &answer);
    let mut changed = body.clone();
    changed["total_amount"] = json!("43.00");
    api.post("/v1/processor/purchases", &network, &changed)
        .await
        .expect_error(409, "idempotency_conflict");

    // A contact of the claim business claims it by code (any case, without the hyphen).
    let claimer = claim.contact(json!({"code": "ZOE"})).await;
    let token = session(&claim, claimer["id"].as_str().unwrap()).await;
    let typed = code.replace('-', "").to_lowercase();
    let claimed = api
        .post(
            "/v1/purchases/claims",
            &token,
            &json!({"claim_code": typed}),
        )
        .await;
    let claimed = claimed.expect(200).clone();
    assert_eq!(claimed["id"], kept_id);
    assert_eq!(claimed["origin"], "claim");
    assert_eq!(claimed["contact_id"], claimer["id"]);
    assert_eq!(claimed["claim_code"], code.as_str());
    assert_eq!(claimed["awards"][0]["amount"], "4.20");
    assert_eq!(claimed["wallet"]["open"], "4.20");
    api.post("/v1/purchases/claims", &token, &json!({"claim_code": code}))
        .await
        .expect_error(409, "already_claimed");
    api.post(
        "/v1/purchases/claims",
        &token,
        &json!({"claim_code": "ZZZZ-ZZZZ"}),
    )
    .await
    .expect_error(404, "not_found");
    audit_wallet(&claim, claimer["wallet_id"].as_str().unwrap()).await;
    audit_wallet(&award, cardholder["wallet_id"].as_str().unwrap()).await;

    // Award mode with an unknown card keeps the purchase unclaimed; a business claims it for
    // a contact it names, by the receipt.
    let stranger = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-SHARED", "N-2", "7.50", "tok_unknown"),
        )
        .await;
    let stranger = stranger.expect(200).clone();
    assert_eq!(route(&stranger, &award.business)["outcome"], "unclaimed");
    let bob = award.contact(json!({"code": "BOB"})).await;
    let by_receipt = api
        .post(
            "/v1/purchases/claims",
            &award.key,
            &json!({"identity": {"contact_code": "BOB"}, "tap_code": "T-SHARED",
                    "total_amount": "7.50", "performed_on": "2026-11-22T10:03:00Z"}),
        )
        .await;
    let by_receipt = by_receipt.expect(200);
    assert_eq!(by_receipt["contact_id"], bob["id"]);
    assert_eq!(
        by_receipt["id"],
        route(&stranger, &award.business)["purchase_id"]
    );
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pos_purchases_and_transactions_match_once_whichever_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let network = processor_key(&api).await;
    let shop = business(&api, "match", "T-M", 600).await;
    let ada = shop.contact(json!({"code": "ADA"})).await;
    let wallet = ada["wallet_id"].as_str().unwrap().to_string();

    // POS first: 202 pending, nothing rewarded; the transaction completes the match.
    let mut pos = basket(json!({"contact_code": "ADA"}), "20.00");
    pos["tap_code"] = json!("T-M");
    pos["performed_on"] = json!("2026-11-22T10:00:30Z");
    pos["external_reference"] = json!("POS-1");
    let pending = shop.purchase(pos.clone()).await;
    let pending = pending.expect(202).clone();
    assert_eq!(pending["match_state"], "pending");
    assert_eq!(pending["awards"], json!([]));
    let pos_id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(shop.wallet(&wallet).await["balances"]["open"], "0.00");
    // The POS's retry replays the 202.
    let replay = shop.purchase(pos.clone()).await;
    assert!(replay.replay);
    assert_eq!(replay.expect(202)["id"], pos_id.as_str());

    let tx = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-M", "M-1", "20.00", "tok_9"),
        )
        .await;
    let tx = tx.expect(200).clone();
    assert_eq!(route(&tx, &shop.business)["outcome"], "matched");
    assert_eq!(route(&tx, &shop.business)["purchase_id"], pos_id.as_str());
    let matched = api.get(&format!("/v1/purchases/{pos_id}"), &shop.key).await;
    let matched = matched.expect(200).clone();
    assert_eq!(matched["match_state"], "matched");
    assert_eq!(matched["awards"][0]["amount"], "2.00");
    assert_eq!(matched["payment_medium"]["identifier"], "tok_9");
    assert_eq!(matched["lines"][0]["sku"], "ITEM");
    assert_eq!(shop.wallet(&wallet).await["balances"]["open"], "2.00");

    // Processor first: pending_match; the POS purchase completes it with 201 and its awards.
    let tx = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-M", "M-2", "30.00", "tok_9"),
        )
        .await;
    let tx = tx.expect(200).clone();
    let waiting = route(&tx, &shop.business);
    assert_eq!(waiting["outcome"], "pending_match");
    let mut pos = basket(json!({"contact_code": "ADA"}), "30.00");
    pos["tap_code"] = json!("T-M");
    pos["performed_on"] = json!("2026-11-22T09:59:00Z");
    pos["spend"] = json!({"amount": "all"});
    let completed = shop.purchase(pos).await;
    let completed = completed.expect(201).clone();
    assert_eq!(completed["match_state"], "matched");
    assert_eq!(completed["id"], waiting["purchase_id"]);
    assert_eq!(completed["awards"][0]["amount"], "3.00");
    assert_eq!(completed["spend"]["spent"], "5.00");

    // A POS purchase naming a transaction reference matches only that transaction.
    for (reference, total) in [("M-3", "11.00"), ("M-4", "11.00")] {
        let tx = api
            .post(
                "/v1/processor/purchases",
                &network,
                &transaction("T-M", reference, total, "tok_9"),
            )
            .await;
        assert_eq!(
            route(tx.expect(200), &shop.business)["outcome"],
            "pending_match"
        );
    }
    let mut pos = basket(json!({"contact_code": "ADA"}), "11.00");
    pos["tap_code"] = json!("T-M");
    pos["transaction_reference"] = json!("M-4");
    let named = shop.purchase(pos).await;
    let named = named.expect(201);
    assert_eq!(named["transaction_reference"], "M-4");

    // Another total, or a time outside the window, does not match.
    let mut pos = basket(json!({"contact_code": "ADA"}), "12.00");
    pos["tap_code"] = json!("T-M");
    shop.purchase(pos).await.expect(202);
    audit_wallet(&shop, &wallet).await;
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_end_in_unmatched_and_unclaimed_also_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let network = processor_key(&api).await;
    let shop = business(&api, "match", "T-W", 1).await;
    shop.contact(json!({"code": "ADA"})).await;

    let mut pos = basket(json!({"contact_code": "ADA"}), "5.00");
    pos["tap_code"] = json!("T-W");
    let pending = shop.purchase(pos).await;
    let pos_id = pending.expect(202)["id"].as_str().unwrap().to_string();
    let unmatched = wait_for(&api, &shop.key, &pos_id, |p| {
        p["match_state"] == "unmatched"
    })
    .await;
    assert_eq!(unmatched["awards"], json!([]));

    let tx = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-W", "W-1", "8.00", "tok_1"),
        )
        .await;
    let tx_id = route(tx.expect(200), &shop.business)["purchase_id"]
        .as_str()
        .unwrap()
        .to_string();
    let unclaimed = wait_for(&api, &shop.key, &tx_id, |p| p["claim_code"].is_string()).await;
    assert_eq!(unclaimed["match_state"], Value::Null);

    // A window that ends while the server is down ends at start-up.
    let mut long = basket(json!({"contact_code": "ADA"}), "6.00");
    long["tap_code"] = json!("T-W");
    api.request_settings(
        &shop.business,
        &shop.key,
        json!({"match_window_seconds": 2}),
    )
    .await;
    let waiting = shop.purchase(long).await;
    let waiting_id = waiting.expect(202)["id"].as_str().unwrap().to_string();
    let tx = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-W", "W-2", "9.00", "tok_1"),
        )
        .await;
    let tx_waiting = route(tx.expect(200), &shop.business)["purchase_id"]
        .as_str()
        .unwrap()
        .to_string();
    server.kill();
    std::thread::sleep(Duration::from_millis(2500));
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    wait_for(&api, &shop.key, &waiting_id, |p| {
        p["match_state"] == "unmatched"
    })
    .await;
    let kept = wait_for(&api, &shop.key, &tx_waiting, |p| {
        p["claim_code"].is_string()
    })
    .await;
    // It can be claimed after the restart, and only once.
    let code = kept["claim_code"].as_str().unwrap();
    let claim = json!({"identity": {"contact_code": "ADA"}, "claim_code": code});
    api.post("/v1/purchases/claims", &shop.key, &claim)
        .await
        .expect(200);
    api.post("/v1/purchases/claims", &shop.key, &claim)
        .await
        .expect_error(409, "already_claimed");
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_in_progress_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let network = processor_key(&api).await;
    let shop = business(&api, "match", "T-R", 600).await;
    shop.contact(json!({"code": "ADA"})).await;
    let tx = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-R", "R-1", "15.00", "tok_1"),
        )
        .await;
    let tx_id = route(tx.expect(200), &shop.business)["purchase_id"].clone();
    server.kill();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let shop = World {
        api: api.clone(),
        ..shop
    };
    let mut pos = basket(json!({"contact_code": "ADA"}), "15.00");
    pos["tap_code"] = json!("T-R");
    pos["performed_on"] = json!("2026-11-22T10:01:00Z");
    let matched = shop.purchase(pos).await;
    let matched = matched.expect(201);
    assert_eq!(matched["id"], tx_id);
    assert_eq!(matched["awards"][0]["amount"], "1.50");
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_arrivals_match_once_and_concurrent_claims_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let network = processor_key(&api).await;
    let shop = business(&api, "match", "T-X", 600).await;
    let ada = shop.contact(json!({"code": "ADA"})).await;
    let wallet = ada["wallet_id"].as_str().unwrap().to_string();

    for n in 0..50 {
        // A distinct total each time, so each pair can only match itself.
        let total = format!("{}.00", 100 + n);
        let mut pos = basket(json!({"contact_code": "ADA"}), &total);
        pos["tap_code"] = json!("T-X");
        pos["performed_on"] = json!("2026-11-22T10:00:05Z");
        let tx = transaction("T-X", &format!("X-{n}"), &total, "tok_1");
        let (pos_answer, tx_answer) = tokio::join!(
            shop.purchase(pos),
            api.post("/v1/processor/purchases", &network, &tx)
        );
        let tx_route = route(tx_answer.expect(200), &shop.business).clone();
        // Exactly one of the two completed the match, and it names the same purchase.
        match pos_answer.status.as_u16() {
            201 => {
                assert_eq!(tx_route["outcome"], "pending_match");
                assert_eq!(pos_answer.body["id"], tx_route["purchase_id"]);
            }
            202 => {
                assert_eq!(tx_route["outcome"], "matched");
                assert_eq!(pos_answer.body["id"], tx_route["purchase_id"]);
            }
            other => panic!("POS purchase answered {other}: {}", pos_answer.body),
        }
        let id = tx_route["purchase_id"].as_str().unwrap();
        let stored = api.get(&format!("/v1/purchases/{id}"), &shop.key).await;
        let stored = stored.expect(200);
        assert_eq!(stored["match_state"], "matched");
        assert_eq!(stored["awards"].as_array().unwrap().len(), 1);
    }
    // Fifty purchases, each rewarded once.
    let events = api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", shop.business),
            &shop.key,
        )
        .await;
    let rewarded: Vec<&Value> = events
        .iter()
        .filter(|e| e["match_state"] == "matched")
        .collect();
    assert_eq!(rewarded.len(), 50);
    audit_wallet(&shop, &wallet).await;

    // Concurrent claims of one purchase: one wins, the others are already_claimed.
    let claims = business(&api, "claim", "T-C", 600).await;
    let tx = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-C", "C-1", "10.00", "tok_1"),
        )
        .await;
    let code = route(tx.expect(200), &claims.business)["claim_code"]
        .as_str()
        .unwrap()
        .to_string();
    let mut contenders = Vec::new();
    for i in 0..6 {
        let contact = claims.contact(json!({"code": format!("C{i}")})).await;
        let token = session(&claims, contact["id"].as_str().unwrap()).await;
        let api = api.clone();
        let code = code.clone();
        contenders.push(tokio::spawn(async move {
            api.post("/v1/purchases/claims", &token, &json!({"claim_code": code}))
                .await
        }));
    }
    let mut won = 0;
    for contender in contenders {
        let answer = contender.await.unwrap();
        match answer.status.as_u16() {
            200 => won += 1,
            _ => answer.expect_error(409, "already_claimed"),
        }
    }
    assert_eq!(won, 1);
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_currencies_and_concurrent_copies() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let network = processor_key(&api).await;
    let euro = business(&api, "award", "T-B", 600).await;
    let dollar = {
        let w = world(&api, "USD").await;
        w.offer(json!({"name": "10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
            .await;
        api.post(
            &format!("/v1/businesses/{}/taps", w.business),
            &w.key,
            &json!({"code": "T-B"}),
        )
        .await
        .expect(201);
        api.put(
            &format!("/v1/businesses/{}/exchange-rates/EUR", w.business),
            &w.key,
            &json!({"rate": "1.25"}),
        )
        .await
        .expect(200);
        w
    };
    euro.contact(json!({"payment_media": [{"identifier": "tok_e"}]}))
        .await;
    dollar
        .contact(json!({"payment_media": [{"identifier": "tok_e"}]}))
        .await;

    // Converted per business with its own rate.
    let answer = api
        .post(
            "/v1/processor/purchases",
            &network,
            &transaction("T-B", "B-1", "40.00", "tok_e"),
        )
        .await;
    let answer = answer.expect(200).clone();
    let in_dollars = route(&answer, &dollar.business)["purchase_id"].clone();
    let purchase = api
        .get(
            &format!("/v1/purchases/{}", in_dollars.as_str().unwrap()),
            &dollar.key,
        )
        .await;
    let purchase = purchase.expect(200);
    assert_eq!(purchase["amounts"]["total"], "50.00");
    assert_eq!(purchase["original_amounts"]["total"], "40.00");
    assert_eq!(purchase["awards"][0]["amount"], "5.00");

    // A batch: every item its own result, in order, bad ones too.
    let items = json!({"items": [
        transaction("T-B", "B-2", "1.00", "tok_e"),
        {"tap_code": "T-B", "transaction_reference": "B-3"},
        transaction("T-NONE", "B-4", "1.00", "tok_e"),
        transaction("T-B", "B-1", "40.00", "tok_e"),
        transaction("T-B", "B-5", "2.00", "tok_e"),
    ]});
    let batch = api
        .post("/v1/processor/purchases:batch", &network, &items)
        .await;
    let results = batch.expect(200)["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 400, 404, 200, 200]);
    assert_eq!(results[1]["body"]["code"], "validation_failed");
    assert_eq!(results[2]["body"]["code"], "tap_not_found");
    assert_eq!(results[3]["body"], answer);

    // Concurrent copies of one transaction route it once.
    let body = transaction("T-B", "B-6", "3.00", "tok_e");
    let copies: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            let network = network.clone();
            let body = body.clone();
            tokio::spawn(async move { api.post("/v1/processor/purchases", &network, &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.unwrap());
    }
    let first = answers[0].expect(200).clone();
    assert!(answers.iter().all(|a| a.body == first));
    assert_eq!(answers.iter().filter(|a| !a.replay).count(), 1);
    let events = api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", euro.business),
            &euro.key,
        )
        .await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["transaction_reference"] == "B-6")
            .count(),
        1
    );

    // Routing shows in the metrics.
    let metrics = api.get("/metrics", &euro.key).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(text.contains("rewards_routes_total"), "{text}");
    assert!(text.contains("rewards_route_entries"), "{text}");
    server.stop();
    crate::audit::assert_clean(dir.path());
}

/// The `rewards_router_actors_resident` gauge of the server's metrics.
async fn resident_routers(api: &Api) -> u64 {
    let metrics = api.get("/metrics", ADMIN_KEY).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("rewards_router_actors_resident "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_router_answers_overloaded_and_an_idle_empty_one_is_passivated() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewardsd.toml");
    std::fs::write(
        &config,
        "router_mailbox_capacity = 1\nwallet_idle_seconds = 1\n",
    )
    .unwrap();
    let server = Server::start_with(dir.path(), "sync", Some(&config));
    let api = server.client();
    let network = processor_key(&api).await;
    let shop = business(&api, "claim", "T-O", 600).await;

    // 100 transactions at one terminal at once: a mailbox of one cannot queue them all.
    let answers = futures::future::join_all((0..100).map(|n| {
        let body = transaction("T-O", &format!("O-{n}"), "3.00", "tok_1");
        let (api, network) = (&api, &network);
        async move { api.post("/v1/processor/purchases", network, &body).await }
    }))
    .await;
    let overloaded: Vec<_> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(!overloaded.is_empty(), "a mailbox of one never filled");
    for answer in &overloaded {
        answer.expect_error(503, "overloaded");
        assert!(answer.retry_after.is_some());
    }
    // What was refused left nothing behind: a retry routes it once, and what was accepted is
    // listed once.
    for (n, answer) in answers.iter().enumerate() {
        if answer.status == 503 {
            let body = transaction("T-O", &format!("O-{n}"), "3.00", "tok_1");
            let mut retried = api.post("/v1/processor/purchases", &network, &body).await;
            while retried.status == 503 {
                retried = api.post("/v1/processor/purchases", &network, &body).await;
            }
            assert!(!retried.replay);
            retried.expect(200);
        }
    }
    let listed = api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", shop.business),
            &shop.key,
        )
        .await;
    assert_eq!(listed.len(), 100);

    // A match-mode terminal whose book empties is passivated after the idle time, and comes
    // back from the store on its next purchase.
    let matching = business(&api, "match", "T-P", 600).await;
    matching.contact(json!({"code": "ADA"})).await;
    let mut pos = basket(json!({"contact_code": "ADA"}), "4.00");
    pos["tap_code"] = json!("T-P");
    pos["performed_on"] = json!("2026-11-22T10:00:00Z");
    matching.purchase(pos.clone()).await.expect(202);
    api.post(
        "/v1/processor/purchases",
        &network,
        &transaction("T-P", "P-1", "4.00", "tok_1"),
    )
    .await
    .expect(200);
    // T-O keeps its unclaimed purchases (not empty); T-P is empty now.
    let mut waited = 0;
    while resident_routers(&api).await > 1 {
        waited += 1;
        assert!(waited < 600, "the idle router was never passivated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    matching.purchase(pos).await.expect(202);
    server.stop();
    crate::audit::assert_clean(dir.path());
}
