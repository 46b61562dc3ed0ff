//! The README's tour: a business, an offer, a contact, a purchase with a spend, the wallet.

use serde_json::json;

use crate::support::{audit_wallet, world, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_awards_and_spends_on_the_same_purchase() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    assert_eq!(api.get("/health/live", "").await.status, 200);
    assert_eq!(api.get("/health/ready", "").await.status, 200);
    let w = world(&api, "EUR").await;
    let offer = w
        .offer(json!({
            "name": "10% back on dairy", "goal": "spend",
            "conditions": {"families": ["dairy"], "min_amount": "2.00"},
            "award": {"kind": "percent", "percent": "10"},
            "validity_days": 30, "redeem": "instant",
        }))
        .await;
    let contact = w.contact(json!({"code": "C-1", "name": "Ada"})).await;
    assert_eq!(
        contact["scheme_ids"].as_array().unwrap().len(),
        1,
        "joined the default scheme"
    );
    let purchase = w
        .purchase(json!({
            "identity": {"contact_code": "C-1"},
            "reference_number": "R-1001",
            "lines": [
                {"sku": "MILK-1L", "family": "dairy", "quantity": "2", "unit_price": "1.20", "tax_rate": "0.19"},
                {"sku": "BREAD", "family": "bakery", "quantity": 1, "unit_price": 3.00, "tax_amount": "0.21"}
            ],
            "spend": {"amount": "all"},
        }))
        .await;
    let purchase = purchase.expect(201);
    assert_eq!(purchase["amounts"]["total"], "6.07");
    assert_eq!(purchase["lines"][0]["total_amount"], "2.86");
    assert_eq!(purchase["awards"][0]["amount"], "0.29");
    assert_eq!(purchase["awards"][0]["offer_id"], offer["id"]);
    assert_eq!(purchase["spend"]["spent"], "0.29");
    assert_eq!(purchase["spend"]["reduction_method"], "front_end");
    assert_eq!(purchase["wallet"]["spendable"], "0.00");

    let id = purchase["id"].as_str().unwrap();
    let read = api.get(&format!("/v1/purchases/{id}"), &w.key).await;
    assert_eq!(read.expect(200)["awards"], purchase["awards"]);

    let wallet_id = contact["wallet_id"].as_str().unwrap();
    let wallet = w.wallet(wallet_id).await;
    assert_eq!(wallet["balances"]["open"], "0.00");
    assert_eq!(wallet["code"], contact["wallet_code"]);
    let journal = api
        .all(&format!("/v1/wallets/{wallet_id}/journal"), &w.key)
        .await;
    let kinds: Vec<&str> = journal
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["spend", "redeem", "award"]);
    audit_wallet(&w, wallet_id).await;

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
    assert_eq!(stats.expect(200)["awarded_total"], "0.29");
    assert_eq!(stats.body["award_count"], 1);

    let events = api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", w.business),
            &w.key,
        )
        .await;
    assert_eq!(events.len(), 1);
    let metrics = api.get("/metrics", "").await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(text.contains("rewards_events_total"), "metrics: {text}");
    assert!(text.contains("rewards_commit_batch_sets"));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topups_void_returns_and_payouts_keep_the_ledger_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({
        "name": "5 back", "goal": "spend", "award": {"kind": "fixed", "amount": "5.00"},
        "redeem": "deferred", "limits": {"budget": "12.00"},
    }))
    .await;
    let contact = w
        .contact(
            json!({"cim": "CARD-1", "payment_media": [{"identifier": "tok_1", "brand": "visa"}]}),
        )
        .await;
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    let topup = w.topup(wallet_id, "20.00").await;
    assert_eq!(topup["entry"]["kind"], "topup");
    assert!(topup["achievement_event_id"].is_string());

    let purchase = w
        .purchase(json!({
            "identity": {"payment_medium_identifier": "tok_1"},
            "lines": [{"sku": "SHOE", "quantity": "2", "unit_price": "10.00", "tax_rate": "0"}],
            "spend": {"amount": "8.00", "require_full": true},
        }))
        .await;
    let purchase = purchase.expect(201).clone();
    assert_eq!(purchase["spend"]["spent"], "8.00");
    assert_eq!(purchase["awards"][0]["amount"], "5.00");
    let id = purchase["id"].as_str().unwrap();

    // Return one of two shoes: half the award is clawed back, half the spend refunded.
    let returned = api
        .post(
            &format!("/v1/purchases/{id}/returns"),
            &w.key,
            &json!({"lines": [{"sku": "SHOE", "quantity": "1"}]}),
        )
        .await;
    let returned = returned.expect(201);
    assert_eq!(returned["returned_amount"], "10.00");
    assert_eq!(returned["clawed_back"], "2.50");
    assert_eq!(returned["refunded"], "4.00");
    let too_many = api
        .post(
            &format!("/v1/purchases/{id}/returns"),
            &w.key,
            &json!({"lines": [{"sku": "SHOE", "quantity": "2"}]}),
        )
        .await;
    too_many.expect_error(422, "return_exceeds_purchase");

    let voided = api
        .post(
            &format!("/v1/purchases/{id}/void"),
            &w.key,
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(voided.expect(200)["state"], "cancelled");
    api.post(&format!("/v1/purchases/{id}/void"), &w.key, &json!({}))
        .await
        .expect_error(409, "already_cancelled");
    let wallet = w.wallet(wallet_id).await;
    assert_eq!(wallet["balances"]["open"], "20.00");
    assert_eq!(wallet["balances"]["commerce"], "0.00");

    // The voided award went back to the budget: two more awards of 5.00 fit in 12.00, a third not.
    for expected in [1, 1, 0] {
        let p = w
            .purchase(crate::support::basket(json!({"cim": "CARD-1"}), "1.00"))
            .await;
        assert_eq!(p.expect(201)["awards"].as_array().unwrap().len(), expected);
    }

    let payout = api
        .post(
            &format!("/v1/wallets/{wallet_id}/payouts"),
            &w.key,
            &json!({"amount": "5.00"}),
        )
        .await;
    assert_eq!(payout.expect(201)["amount"], "5.00");
    audit_wallet(&w, wallet_id).await;
    // Pages of any size walk the same journal, newest first, without gaps or repeats.
    let journal = format!("/v1/wallets/{wallet_id}/journal");
    let whole = api.all(&journal, &w.key).await;
    assert!(whole.len() >= 8, "{} entries", whole.len());
    for limit in [1, 2, 3, 7] {
        assert_eq!(
            api.all_in_pages(&journal, &w.key, limit).await,
            whole,
            "pages of {limit}"
        );
    }
    let events = format!("/v1/businesses/{}/events", w.business);
    let all_events = api.all(&events, &w.key).await;
    assert_eq!(api.all_in_pages(&events, &w.key, 2).await, all_events);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voiding_a_purchase_claws_back_awards_already_spent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let offer = w
        .offer(json!({"name": "1 back", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "instant"}))
        .await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    let mut body = crate::support::basket(json!({"contact_code": "C-1"}), "4.00");
    body["spend"] = json!({"amount": "all"});
    let purchase = w.purchase(body.clone()).await.expect(201).clone();
    assert_eq!(purchase["spend"]["spent"], "1.00");
    // Another purchase in between, so the first one's lot is long closed when it is voided.
    w.purchase(crate::support::basket(
        json!({"contact_code": "C-1"}),
        "2.00",
    ))
    .await
    .expect(201);
    let id = purchase["id"].as_str().unwrap();
    api.post(&format!("/v1/purchases/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    let wallet = w.wallet(wallet_id).await;
    // The second purchase's 1.00 stays; the first's award was clawed back and its spend refunded.
    assert_eq!(wallet["balances"]["open"], "1.00");
    assert_eq!(wallet["balances"]["commerce"], "0.00");
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
    assert_eq!(stats.expect(200)["awarded_total"], "1.00");
    audit_wallet(&w, wallet_id).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_then_a_void_claw_back_a_spent_award_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({"name": "2 back", "goal": "spend", "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant"}))
        .await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    let purchase = w
        .purchase(json!({
            "identity": {"contact_code": "C-1"},
            "lines": [{"sku": "SHOE", "quantity": "2", "unit_price": "5.00", "tax_rate": "0"}],
            "spend": {"amount": "all"},
        }))
        .await;
    let purchase = purchase.expect(201).clone();
    assert_eq!(
        purchase["spend"]["spent"], "2.00",
        "the award was spent at once"
    );
    let id = purchase["id"].as_str().unwrap();
    // Half returned: half the award clawed back from open, half the spend refunded.
    let returned = api
        .post(
            &format!("/v1/purchases/{id}/returns"),
            &w.key,
            &json!({"lines": [{"sku": "SHOE", "quantity": "1"}]}),
        )
        .await;
    let returned = returned.expect(201);
    assert_eq!(returned["clawed_back"], "1.00");
    assert_eq!(returned["refunded"], "1.00");
    // The void takes back only what is left of the award, and refunds the rest of the spend.
    api.post(&format!("/v1/purchases/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    let wallet = w.wallet(wallet_id).await;
    assert_eq!(wallet["balances"]["open"], "0.00");
    assert_eq!(wallet["balances"]["commerce"], "0.00");
    let journal = api
        .all(&format!("/v1/wallets/{wallet_id}/journal"), &w.key)
        .await;
    let clawed: i64 = journal
        .iter()
        .filter(|e| e["kind"] == "clawback")
        .map(|e| crate::support::cents(&e["amount"]))
        .sum();
    assert_eq!(clawed, 200, "the award is clawed back once in all");
    audit_wallet(&w, wallet_id).await;
    server.stop();
}
