//! Events other than purchases: each achievement kind with its details, offers that award on
//! classification and kind, the cumulative monthly target; one financial statement per
//! classification and period; spend requests up to what is left of a purchase's total; exactly
//! once by external reference, refusals and voids.

use serde_json::json;

use crate::support::{audit_wallet, basket, world, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn achievements_earn_what_their_offers_say() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let like = w
        .offer(json!({"name": "a like", "goal": "achievement",
            "conditions": {"classifications": ["like"], "event_kinds": ["social_media"]},
            "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "instant"}))
        .await;
    let loans = w
        .offer(json!({"name": "loans of 1000 a month", "goal": "achievement",
            "conditions": {"classifications": ["loan_balance"], "event_kinds": ["financial_achievement"],
                "cumulative_monthly_amount": "1000.00"},
            "award": {"kind": "fixed", "amount": "10.00"}, "redeem": "deferred"}))
        .await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let wallet = ann["wallet_id"].as_str().unwrap();

    let liked = api
        .post(
            "/v1/achievements",
            &w.pos_key,
            &json!({"identity": {"contact_code": "ANN"}, "kind": "social_media",
                "classification": "like", "platform": "instagram", "profile": "@shop",
                "action": "like", "external_reference": "like-1"}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(liked["type"], "achievement");
    assert_eq!(liked["kind"], "social_media");
    assert_eq!(liked["platform"], "instagram");
    assert_eq!(liked["profile"], "@shop");
    assert_eq!(liked["classification"], "like");
    assert_eq!(liked["awards"][0]["offer_id"], like["id"]);
    assert_eq!(liked["awards"][0]["amount"], "1.00");
    // Exactly once: the repeat is the first answer; a different body under the key is refused.
    let again = api
        .post(
            "/v1/achievements",
            &w.pos_key,
            &json!({"identity": {"contact_code": "ANN"}, "kind": "social_media",
                "classification": "like", "platform": "instagram", "profile": "@shop",
                "action": "like", "external_reference": "like-1"}),
        )
        .await;
    assert!(again.replay);
    assert_eq!(again.body, liked);
    api.post(
        "/v1/achievements",
        &w.pos_key,
        &json!({"identity": {"contact_code": "ANN"}, "classification": "like",
            "external_reference": "like-1"}),
    )
    .await
    .expect_error(409, "idempotency_conflict");
    // A web visit is another kind: no award from the like offer.
    let visit = api
        .post(
            "/v1/achievements",
            &w.pos_key,
            &json!({"identity": {"contact_code": "ANN"}, "kind": "web", "classification": "like",
                "url": "https://shop.example/sale"}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(visit["url"], "https://shop.example/sale");
    assert_eq!(visit["awards"], json!([]));

    // The monthly target: 600 then 500 in one month reach 1000 once; more that month does not.
    let month = "2026-10-";
    let mut awarded = Vec::new();
    for (day, amount) in [("03", "600.00"), ("10", "500.00"), ("20", "900.00")] {
        let event = api
            .post(
                "/v1/achievements",
                &w.pos_key,
                &json!({"identity": {"contact_code": "ANN"}, "kind": "financial_achievement",
                    "classification": "loan_balance", "amount": amount, "product_sku": "LOAN-1",
                    "performed_on": format!("{month}{day}T10:00:00Z")}),
            )
            .await
            .expect(201)
            .clone();
        assert_eq!(event["product_sku"], "LOAN-1");
        assert_eq!(event["amount"], amount);
        awarded.push(event["awards"].as_array().unwrap().len());
    }
    assert_eq!(awarded, [0, 1, 0]);
    let november = api
        .post(
            "/v1/achievements",
            &w.pos_key,
            &json!({"identity": {"contact_code": "ANN"}, "kind": "financial_achievement",
                "classification": "loan_balance", "amount": "1000.00",
                "performed_on": "2026-11-02T10:00:00Z"}),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(november["awards"][0]["offer_id"], loans["id"]);
    assert_eq!(w.wallet(wallet).await["balances"]["spendable"], "21.00");

    // A void takes the awards back.
    let id = liked["id"].as_str().unwrap();
    let voided = api
        .post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(voided["state"], "cancelled");
    assert_eq!(w.wallet(wallet).await["balances"]["spendable"], "20.00");
    audit_wallet(&w, wallet).await;

    // Refusals name their fields and record nothing.
    for (body, field) in [
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "x", "kind": "dance"}),
            "kind",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "  "}),
            "classification",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "x", "amount": "-1"}),
            "amount",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "x", "performed_on": "yesterday"}),
            "performed_on",
        ),
        (json!({"classification": "x"}), "identity"),
        (
            json!({"identity": {"contact_code": "ANN"}}),
            "classification",
        ),
    ] {
        let refused = api.post("/v1/achievements", &w.pos_key, &body).await;
        refused.expect_error(400, "validation_failed");
        assert_eq!(refused.body["errors"][0]["field"], field, "{body}");
    }
    api.post(
        "/v1/achievements",
        &w.pos_key,
        &json!({"identity": {"contact_code": "NOBODY"}, "classification": "x"}),
    )
    .await
    .expect_error(404, "contact_not_found");
    let events = api
        .all(
            &format!("/v1/businesses/{}/events?type=achievement", w.business),
            &w.key,
        )
        .await;
    assert_eq!(events.len(), 6);
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_financial_statement_is_one_per_classification_and_period() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.contact(json!({"code": "ANN"})).await;
    let body = json!({"identity": {"contact_code": "ANN"}, "classification": "loan",
        "period": "2026-10", "external_reference": "st-1",
        "kpis": [{"name": "balance", "product_sku": "LOAN-1", "value": "-12500.75"},
                 {"name": "payments", "value": 3}]});
    let statement = api
        .post("/v1/financial-statements", &w.pos_key, &body)
        .await
        .expect(201)
        .clone();
    assert_eq!(statement["type"], "financial_statement");
    assert_eq!(statement["classification"], "loan");
    assert_eq!(statement["period"], "2026-10");
    assert_eq!(statement["kpis"][0]["value"], "-12500.75");
    assert_eq!(statement["kpis"][0]["product_sku"], "LOAN-1");
    assert_eq!(statement["kpis"][1]["value"], "3");
    // The repeat is the first answer; another statement of the same period is a duplicate,
    // also when two race; another period or classification is not.
    let again = api
        .post("/v1/financial-statements", &w.pos_key, &body)
        .await;
    assert!(again.replay);
    assert_eq!(again.body, statement);
    let same = json!({"identity": {"contact_code": "ANN"}, "classification": "loan",
        "period": "2026-10", "kpis": [{"name": "balance", "value": "1"}]});
    api.post("/v1/financial-statements", &w.pos_key, &same)
        .await
        .expect_error(409, "duplicate_statement");
    let racing = json!({"identity": {"contact_code": "ANN"}, "classification": "savings",
        "period": "2026-10", "kpis": [{"name": "balance", "value": "1"}]});
    let answers = futures::future::join_all(
        (0..6).map(|_| api.post("/v1/financial-statements", &w.pos_key, &racing)),
    )
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let duplicates = answers
        .iter()
        .filter(|a| a.code() == "duplicate_statement")
        .count();
    assert_eq!((created, duplicates), (1, 5));
    let november = json!({"identity": {"contact_code": "ANN"}, "classification": "loan",
        "period": "2026-11", "kpis": [{"name": "balance", "value": "1"}]});
    api.post("/v1/financial-statements", &w.pos_key, &november)
        .await
        .expect(201);

    // A voided statement frees its period.
    let id = statement["id"].as_str().unwrap();
    api.post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    api.post("/v1/financial-statements", &w.pos_key, &same)
        .await
        .expect(201);

    for (body, field) in [
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "loan", "period": "2026-13", "kpis": [{"name": "a", "value": 1}]}),
            "period",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "loan", "period": "26-10", "kpis": [{"name": "a", "value": 1}]}),
            "period",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "loan", "period": "2026-10", "kpis": []}),
            "kpis",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "loan", "period": "2026-10", "kpis": [{"name": " ", "value": 1}]}),
            "kpis[0].name",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "period": "2026-10", "kpis": [{"name": "a", "value": 1}]}),
            "classification",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "classification": "loan", "period": "2026-10", "kpis": [{"name": "a", "value": "x"}]}),
            "kpis[0].value",
        ),
    ] {
        let refused = api
            .post("/v1/financial-statements", &w.pos_key, &body)
            .await;
        refused.expect_error(400, "validation_failed");
        assert_eq!(refused.body["errors"][0]["field"], field, "{body}");
    }
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spend_request_spends_at_most_what_is_left_of_its_purchase() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let ann_id = ann["id"].as_str().unwrap();
    let wallet = ann["wallet_id"].as_str().unwrap();
    w.contact(json!({"code": "BOB"})).await;
    w.topup(wallet, "30.00").await;
    // A 20.00 purchase that spent 5.00 itself: 15.00 are left to spend on it.
    let mut body = basket(json!({"contact_code": "ANN"}), "20.00");
    body["spend"] = json!({"amount": "5.00"});
    let purchase = w.purchase(body).await.expect(201).clone();
    let purchase_id = purchase["id"].as_str().unwrap();
    let request = |amount: serde_json::Value, reference: &str| {
        json!({"identity": {"contact_code": "ANN"}, "purchase_id": purchase_id,
            "amount": amount, "external_reference": reference})
    };
    let first = api
        .post(
            "/v1/spend-requests",
            &w.pos_key,
            &request(json!("10.00"), "sr-1"),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(first["purchase_id"], purchase_id);
    assert_eq!(first["requested"], "10.00");
    assert_eq!(first["spent"], "10.00");
    assert_eq!(first["reduction_method"], "front_end");
    assert_eq!(first["wallet"]["balances"]["open"], "15.00");
    let again = api
        .post(
            "/v1/spend-requests",
            &w.pos_key,
            &request(json!("10.00"), "sr-1"),
        )
        .await;
    assert!(again.replay);
    assert_eq!(again.body, first);
    // Only 5.00 are left on the purchase: "all" takes that, require_full refuses more.
    let mut full = request(json!("6.00"), "sr-2");
    full["require_full"] = json!(true);
    api.post("/v1/spend-requests", &w.pos_key, &full)
        .await
        .expect_error(422, "insufficient_funds");
    let rest = api
        .post(
            "/v1/spend-requests",
            &w.pos_key,
            &request(json!("all"), "sr-3"),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(rest["spent"], "5.00");
    let nothing = api
        .post(
            "/v1/spend-requests",
            &w.pos_key,
            &request(json!("all"), "sr-4"),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(nothing["spent"], "0.00");
    // The request is an event of its own, naming its purchase.
    let stored = api
        .get(
            &format!("/v1/purchases/{}", first["id"].as_str().unwrap()),
            &w.key,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(stored["type"], "spend_request");
    assert_eq!(stored["purchase_id"], purchase_id);
    assert_eq!(stored["spend"]["spent"], "10.00");

    // A void gives the money back and the room on the purchase with it.
    let id = rest["id"].as_str().unwrap();
    api.post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    assert_eq!(w.wallet(wallet).await["balances"]["open"], "15.00");
    let again = api
        .post(
            "/v1/spend-requests",
            &w.pos_key,
            &request(json!("all"), "sr-5"),
        )
        .await
        .expect(201)
        .clone();
    assert_eq!(again["spent"], "5.00");
    audit_wallet(&w, wallet).await;

    // Refusals: a spend-blocked contact, another contact's purchase, a voided purchase, bad
    // fields.
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/contacts/{ann_id}/spend-block"),
        Some(&w.key),
        Some(serde_json::to_vec(&json!({"blocked": true, "reason": "dispute"})).unwrap()),
    )
    .await
    .unwrap()
    .expect(200);
    api.post(
        "/v1/spend-requests",
        &w.pos_key,
        &request(json!("1.00"), "sr-6"),
    )
    .await
    .expect_error(422, "spend_blocked");
    let mut other = request(json!("1.00"), "sr-7");
    other["identity"] = json!({"contact_code": "BOB"});
    api.post("/v1/spend-requests", &w.pos_key, &other)
        .await
        .expect_error(404, "not_found");
    for (body, field) in [
        (
            json!({"identity": {"contact_code": "ANN"}, "purchase_id": "x", "amount": "1.00"}),
            "purchase_id",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "purchase_id": purchase_id, "amount": "0"}),
            "amount",
        ),
        (
            json!({"identity": {"contact_code": "ANN"}, "purchase_id": purchase_id, "amount": "-1"}),
            "amount",
        ),
        (
            json!({"purchase_id": purchase_id, "amount": "1"}),
            "identity",
        ),
    ] {
        let refused = api.post("/v1/spend-requests", &w.pos_key, &body).await;
        refused.expect_error(400, "validation_failed");
        assert_eq!(refused.body["errors"][0]["field"], field, "{body}");
    }
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voiding_a_top_up_takes_its_money_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let wallet = ann["wallet_id"].as_str().unwrap();
    let topup = w.topup(wallet, "10.00").await;
    let mut body = basket(json!({"contact_code": "ANN"}), "4.00");
    body["spend"] = json!({"amount": "all"});
    w.purchase(body).await.expect(201);
    let id = topup["achievement_event_id"].as_str().unwrap();
    let voided = api
        .post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(voided["state"], "cancelled");
    // The 4.00 already spent of it leaves open below zero, and nothing is spendable.
    let state = w.wallet(wallet).await;
    assert_eq!(state["balances"]["open"], "-4.00");
    assert_eq!(state["balances"]["spendable"], "0.00");
    api.post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect_error(409, "already_cancelled");
    // An achievement that is merely classified top_up carries no money to take back.
    let posted = api
        .post(
            "/v1/achievements",
            &w.pos_key,
            &json!({"identity": {"contact_code": "ANN"}, "classification": "top_up", "amount": "50.00"}),
        )
        .await
        .expect(201)
        .clone();
    let id = posted["id"].as_str().unwrap();
    api.post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    assert_eq!(w.wallet(wallet).await["balances"]["open"], "-4.00");
    audit_wallet(&w, wallet).await;
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_run_pays_auto_redemptions_once_per_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let run = format!("/v1/businesses/{}/payouts/run", w.business);
    // Only in the payout spend model.
    api.post(&run, &w.key, &json!({"run_id": "r-0"}))
        .await
        .expect_error(409, "invalid_state");
    api.request_settings(&w.business, &w.key, json!({"spend_model": "payout"}))
        .await;
    w.offer(json!({"name": "auto 10%", "goal": "spend",
        "award": {"kind": "percent", "percent": "10"}, "redeem": "auto"}))
        .await;
    let mut wallets = Vec::new();
    for (code, total) in [("ANN", "30.00"), ("BOB", "12.00")] {
        let contact = w.contact(json!({"code": code})).await;
        wallets.push(contact["wallet_id"].as_str().unwrap().to_string());
        w.purchase(basket(json!({"contact_code": code}), total))
            .await
            .expect(201);
    }
    let idle = w.contact(json!({"code": "CAT"})).await;
    w.topup(idle["wallet_id"].as_str().unwrap(), "5.00").await;

    let first = api
        .post(&run, &w.key, &json!({"run_id": "r-1"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(first["wallets"], 3);
    assert_eq!(first["payouts"], 2);
    assert_eq!(first["amount"], "4.20");
    assert_eq!(first["run_id"], "r-1");
    for wallet in &wallets {
        assert_eq!(w.wallet(wallet).await["balances"]["open"], "0.00");
        audit_wallet(&w, wallet).await;
    }
    // A top-up is not an auto redemption: it stays.
    assert_eq!(
        w.wallet(idle["wallet_id"].as_str().unwrap()).await["balances"]["open"],
        "5.00"
    );
    // The same run again pays nothing twice and answers the same.
    let again = api
        .post(&run, &w.key, &json!({"run_id": "r-1"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(again, first);
    let journal = api
        .all(&format!("/v1/wallets/{}/journal", wallets[0]), &w.key)
        .await;
    assert_eq!(journal.iter().filter(|e| e["kind"] == "payout").count(), 1);
    // A new run finds nothing left to pay.
    let second = api
        .post(&run, &w.key, &json!({"run_id": "r-2"}))
        .await
        .expect(200)
        .clone();
    assert_eq!(second["amount"], "0.00");
    // Without a run id every call is a run of its own.
    let unnamed = api.post(&run, &w.key, &json!({})).await.expect(200).clone();
    assert_eq!(unnamed["payouts"], 0);
    assert!(unnamed["run_id"].is_string());
    api.post(&run, &w.key, &json!({"run_id": " "}))
        .await
        .expect_error(400, "validation_failed");
    api.post(&run, &w.pos_key, &json!({"run_id": "r-3"}))
        .await
        .expect_error(403, "forbidden");
    server.stop();
    crate::audit::assert_clean(dir.path());
}
