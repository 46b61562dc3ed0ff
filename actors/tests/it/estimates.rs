//! Estimates and payment requests: what a purchase would do, holds that reserve money until
//! their purchase captures them or they are rejected, cancelled or expired (exactly once each,
//! also across a restart), and the contact's approval.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{audit_wallet, basket, cents, world, Api, Server, World};

async fn estimate(w: &World, body: Value) -> Value {
    w.api
        .post("/v1/estimates", &w.pos_key, &body)
        .await
        .expect(201)
        .clone()
}

fn held_basket(identity: Value, total: &str, spend: &str) -> Value {
    let mut body = basket(identity, total);
    body["hold"] = json!(true);
    body["spend"] = json!({"amount": spend});
    body
}

async fn session(w: &World, contact: &str) -> String {
    w.api
        .post(
            &format!("/v1/contacts/{contact}/sessions"),
            &w.key,
            &json!({}),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn reserved(wallet: &Value) -> &str {
    wallet["balances"]["reserved"].as_str().unwrap()
}

/// Polls until `check` holds, for at most `limit` (time only bounds a failing test).
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_estimate_reserves_money_and_its_purchase_captures_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let offer = w
        .offer(json!({"name": "10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "deferred"}))
        .await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let ann_wallet = ann["wallet_id"].as_str().unwrap();
    let bob = w.contact(json!({"code": "BOB"})).await;
    w.topup(ann_wallet, "20.00").await;

    // Without a hold nothing changes.
    let plain = estimate(&w, {
        let mut body = basket(json!({"contact_code": "ANN"}), "30.00");
        body["spend"] = json!({"amount": "all"});
        body
    })
    .await;
    assert_eq!(plain["state"], "estimated");
    assert_eq!(plain["approval"], "none");
    assert_eq!(plain["spend"]["spendable"], "20.00");
    assert_eq!(plain["spend"]["would_spend"], "20.00");
    assert_eq!(plain["spend"]["held"], "0.00");
    assert_eq!(plain["amounts"]["total"], "30.00");
    assert_eq!(plain["lines"][0]["total_amount"], "30.00");
    assert_eq!(plain["awards"][0]["offer_id"], offer["id"]);
    assert_eq!(plain["awards"][0]["amount"], "3.00");
    assert_eq!(reserved(&w.wallet(ann_wallet).await), "0.00");
    // An estimate gives no award: the offer's totals do not move.
    let totals = api
        .get(
            &format!(
                "/v1/businesses/{}/offers/{}",
                w.business,
                offer["id"].as_str().unwrap()
            ),
            &w.key,
        )
        .await;
    assert_eq!(totals.expect(200)["award_count"], 0);

    // A hold reserves what the purchase would spend.
    let held = estimate(
        &w,
        held_basket(json!({"contact_code": "ANN"}), "30.00", "15.00"),
    )
    .await;
    let id = held["id"].as_str().unwrap();
    assert_eq!(held["spend"]["held"], "15.00");
    assert_eq!(held["spend"]["spendable"], "20.00");
    let wallet = w.wallet(ann_wallet).await;
    assert_eq!(reserved(&wallet), "15.00");
    assert_eq!(wallet["balances"]["spendable"], "5.00");

    // Another purchase cannot spend the held money.
    let mut other = basket(json!({"contact_code": "ANN"}), "10.00");
    other["spend"] = json!({"amount": "all"});
    assert_eq!(
        w.purchase(other).await.expect(201)["spend"]["spent"],
        "5.00"
    );

    // The purchase that names it must be the estimate's contact and total.
    let mut wrong = basket(json!({"contact_code": "ANN"}), "29.00");
    wrong["estimate_id"] = json!(id);
    w.purchase(wrong)
        .await
        .expect_error(422, "estimate_mismatch");
    let mut wrong = basket(json!({"contact_code": "BOB"}), "30.00");
    wrong["estimate_id"] = json!(id);
    w.purchase(wrong)
        .await
        .expect_error(422, "estimate_mismatch");
    let mut unknown = basket(json!({"contact_code": "ANN"}), "30.00");
    unknown["estimate_id"] = json!("00000000-0000-0000-0000-000000000000");
    w.purchase(unknown).await.expect_error(404, "not_found");
    let mut bad = basket(json!({"contact_code": "ANN"}), "30.00");
    bad["estimate_id"] = json!("nope");
    w.purchase(bad).await.expect_error(400, "validation_failed");
    assert_eq!(reserved(&w.wallet(ann_wallet).await), "15.00");

    // It spends the estimate's spend, captured from the hold, and earns as estimated.
    let mut body = basket(json!({"contact_code": "ANN"}), "30.00");
    body["estimate_id"] = json!(id);
    let purchase = w.purchase(body.clone()).await.expect(201).clone();
    assert_eq!(purchase["spend"]["spent"], "15.00");
    assert_eq!(purchase["awards"][0]["amount"], "3.00");
    let wallet = w.wallet(ann_wallet).await;
    assert_eq!(reserved(&wallet), "0.00");
    // 20.00 topped up and 1.00 earned, less 5.00 and 15.00 spent, and this purchase's 3.00.
    assert_eq!(wallet["balances"]["spendable"], "4.00");
    let consumed = api
        .get(&format!("/v1/estimates/{id}"), &w.pos_key)
        .await
        .expect(200)
        .clone();
    assert_eq!(consumed["state"], "consumed");
    assert_eq!(consumed["purchase_id"], purchase["id"]);
    assert_eq!(consumed["spend"]["held"], "0.00");
    w.purchase(body)
        .await
        .expect_error(409, "estimate_consumed");
    let journal = api
        .all(&format!("/v1/wallets/{ann_wallet}/journal"), &w.key)
        .await;
    let captures: Vec<&Value> = journal.iter().filter(|e| e["kind"] == "capture").collect();
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["amount"], "15.00");
    assert_eq!(captures[0]["estimate_id"], id);
    audit_wallet(&w, ann_wallet).await;

    // A purchase that spends less than the hold captures that much and releases the rest.
    w.topup(ann_wallet, "20.00").await;
    let held = estimate(
        &w,
        held_basket(json!({"contact_code": "ANN"}), "12.00", "all"),
    )
    .await;
    assert_eq!(held["spend"]["held"], "12.00");
    let mut body = basket(json!({"contact_code": "ANN"}), "12.00");
    body["estimate_id"] = held["id"].clone();
    body["spend"] = json!({"amount": "4.00"});
    assert_eq!(w.purchase(body).await.expect(201)["spend"]["spent"], "4.00");
    let wallet = w.wallet(ann_wallet).await;
    assert_eq!(reserved(&wallet), "0.00");
    // 4.00 and 20.00 topped up, less 4.00 spent, and this purchase's 1.20.
    assert_eq!(wallet["balances"]["spendable"], "21.20");
    audit_wallet(&w, ann_wallet).await;

    // Refusals record nothing: a spend-blocked contact, an approval that is not none/required,
    // an estimate naming an estimate, another business's contact.
    api.post(
        "/v1/estimates",
        &w.pos_key,
        &json!({"identity": {"contact_code": "ANN"}, "total_amount": "5.00", "approval": "maybe"}),
    )
    .await
    .expect_error(400, "validation_failed");
    api.post(
        "/v1/estimates",
        &w.pos_key,
        &json!({"identity": {"contact_code": "ANN"}, "total_amount": "5.00", "estimate_id": id}),
    )
    .await
    .expect_error(400, "validation_failed");
    api.post(
        "/v1/estimates",
        &w.pos_key,
        &json!({"identity": {"contact_code": "ANN"}, "total_amount": "5.00", "hold": "yes"}),
    )
    .await
    .expect_error(400, "validation_failed");
    let mut full = held_basket(json!({"contact_code": "BOB"}), "5.00", "5.00");
    full["spend"]["require_full"] = json!(true);
    api.post("/v1/estimates", &w.pos_key, &full)
        .await
        .expect_error(422, "insufficient_funds");
    let other = world(&api, "EUR").await;
    other
        .api
        .get(&format!("/v1/estimates/{id}"), &other.pos_key)
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        reserved(&w.wallet(bob["wallet_id"].as_str().unwrap()).await),
        "0.00"
    );
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_request_waits_for_its_contact() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let ann_id = ann["id"].as_str().unwrap();
    let ann_wallet = ann["wallet_id"].as_str().unwrap();
    let bob = w.contact(json!({"code": "BOB"})).await;
    w.topup(ann_wallet, "50.00").await;
    let ann_session = session(&w, ann_id).await;
    let bob_session = session(&w, bob["id"].as_str().unwrap()).await;

    let mut body = held_basket(json!({"contact_code": "ANN"}), "20.00", "20.00");
    body["approval"] = json!("required");
    let request = estimate(&w, body.clone()).await;
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(request["state"], "pending_approval");
    assert_eq!(reserved(&w.wallet(ann_wallet).await), "20.00");

    // The contact sees the basket, each line's charge and the total; no one else does.
    let seen = api
        .get(&format!("/v1/estimates/{id}"), &ann_session)
        .await
        .expect(200)
        .clone();
    assert_eq!(seen["lines"][0]["total_amount"], "20.00");
    assert_eq!(seen["amounts"]["total"], "20.00");
    api.get(&format!("/v1/estimates/{id}"), &bob_session)
        .await
        .expect_error(404, "not_found");
    api.post(
        &format!("/v1/estimates/{id}/approve"),
        &bob_session,
        &json!({}),
    )
    .await
    .expect_error(404, "not_found");
    // The POS cannot approve for the contact.
    api.post(
        &format!("/v1/estimates/{id}/approve"),
        &w.pos_key,
        &json!({}),
    )
    .await
    .expect_error(403, "forbidden");

    // Until approved, the purchase is refused.
    let mut purchase = basket(json!({"contact_code": "ANN"}), "20.00");
    purchase["estimate_id"] = json!(id);
    w.purchase(purchase.clone())
        .await
        .expect_error(409, "estimate_not_approved");

    let approved = api
        .post(
            &format!("/v1/estimates/{id}/approve"),
            &ann_session,
            &json!({}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(approved["state"], "approved");
    api.post(
        &format!("/v1/estimates/{id}/approve"),
        &ann_session,
        &json!({}),
    )
    .await
    .expect_error(409, "invalid_state");
    api.post(
        &format!("/v1/estimates/{id}/reject"),
        &ann_session,
        &json!({}),
    )
    .await
    .expect_error(409, "invalid_state");
    // The POS polls the state, then submits the purchase.
    let polled = api.get(&format!("/v1/estimates/{id}"), &w.pos_key).await;
    assert_eq!(polled.expect(200)["state"], "approved");
    assert_eq!(
        w.purchase(purchase).await.expect(201)["spend"]["spent"],
        "20.00"
    );
    assert_eq!(reserved(&w.wallet(ann_wallet).await), "0.00");

    // A rejected request releases its hold, and its purchase is refused.
    let rejected_one = estimate(&w, body.clone()).await;
    let rid = rejected_one["id"].as_str().unwrap();
    assert_eq!(reserved(&w.wallet(ann_wallet).await), "20.00");
    let rejected = api
        .post(
            &format!("/v1/estimates/{rid}/reject"),
            &ann_session,
            &json!({}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["spend"]["held"], "0.00");
    assert_eq!(reserved(&w.wallet(ann_wallet).await), "0.00");
    let mut purchase = basket(json!({"contact_code": "ANN"}), "20.00");
    purchase["estimate_id"] = json!(rid);
    w.purchase(purchase)
        .await
        .expect_error(409, "invalid_state");
    api.post(
        &format!("/v1/estimates/{rid}/cancel"),
        &w.pos_key,
        &json!({}),
    )
    .await
    .expect_error(409, "invalid_state");

    // The POS cancels an open one: the hold is released once; the contact cannot cancel.
    let open = estimate(&w, body).await;
    let oid = open["id"].as_str().unwrap();
    api.post(
        &format!("/v1/estimates/{oid}/cancel"),
        &ann_session,
        &json!({}),
    )
    .await
    .expect_error(403, "forbidden");
    let cancelled = api
        .post(
            &format!("/v1/estimates/{oid}/cancel"),
            &w.pos_key,
            &json!({}),
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(cancelled["state"], "cancelled");
    api.post(&format!("/v1/estimates/{oid}/cancel"), &w.key, &json!({}))
        .await
        .expect_error(409, "invalid_state");
    let wallet = w.wallet(ann_wallet).await;
    assert_eq!(reserved(&wallet), "0.00");
    assert_eq!(wallet["balances"]["open"], "30.00");
    let journal = api
        .all(&format!("/v1/wallets/{ann_wallet}/journal"), &w.key)
        .await;
    let releases = journal.iter().filter(|e| e["kind"] == "release").count();
    assert_eq!(
        releases, 2,
        "one release for the rejection, one for the cancellation"
    );
    audit_wallet(&w, ann_wallet).await;
    server.stop();
    crate::audit::assert_clean(dir.path());
}

async fn wallet_reserved(api: &Api, w: &World, wallet: &str) -> String {
    api.get(&format!("/v1/wallets/{wallet}"), &w.key)
        .await
        .expect(200)["balances"]["reserved"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_on_their_timer_and_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    api.request_settings(&w.business, &w.key, json!({"estimate_ttl_seconds": 1}))
        .await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let wallet = ann["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet, "10.00").await;

    // On the actor's timer.
    let held = estimate(
        &w,
        held_basket(json!({"contact_code": "ANN"}), "6.00", "6.00"),
    )
    .await;
    let id = held["id"].as_str().unwrap().to_string();
    assert_eq!(wallet_reserved(&api, &w, &wallet).await, "6.00");
    eventually(Duration::from_secs(30), "the hold's expiry", || async {
        wallet_reserved(&api, &w, &wallet).await == "0.00"
    })
    .await;
    let expired = api.get(&format!("/v1/estimates/{id}"), &w.pos_key).await;
    assert_eq!(expired.expect(200)["state"], "expired");
    let mut purchase = basket(json!({"contact_code": "ANN"}), "6.00");
    purchase["estimate_id"] = json!(id);
    w.purchase(purchase)
        .await
        .expect_error(410, "estimate_expired");

    // Across a restart: one hold expires while the server is down, one outlives it.
    let short = estimate(
        &w,
        held_basket(json!({"contact_code": "ANN"}), "3.00", "3.00"),
    )
    .await;
    api.request_settings(&w.business, &w.key, json!({"estimate_ttl_seconds": 900}))
        .await;
    let long = estimate(
        &w,
        held_basket(json!({"contact_code": "ANN"}), "2.00", "2.00"),
    )
    .await;
    assert_eq!(wallet_reserved(&api, &w, &wallet).await, "5.00");
    server.kill();
    let short_expiry =
        rewards_core::Timestamp::parse_rfc3339(short["expires_at"].as_str().unwrap()).unwrap();
    let now = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        rewards_core::Timestamp(since.unwrap().as_millis() as i64)
    };
    while now() <= short_expiry {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = World {
        api: api.clone(),
        ..w
    };
    eventually(
        Duration::from_secs(30),
        "the expiry at start-up",
        || async { wallet_reserved(&api, &w, &wallet).await == "2.00" },
    )
    .await;
    let short_now = api
        .get(
            &format!("/v1/estimates/{}", short["id"].as_str().unwrap()),
            &w.pos_key,
        )
        .await;
    assert_eq!(short_now.expect(200)["state"], "expired");
    let long_now = api
        .get(
            &format!("/v1/estimates/{}", long["id"].as_str().unwrap()),
            &w.pos_key,
        )
        .await;
    assert_eq!(long_now.expect(200)["state"], "estimated");
    let journal = api
        .all(&format!("/v1/wallets/{wallet}/journal"), &w.key)
        .await;
    assert_eq!(
        journal.iter().filter(|e| e["kind"] == "release").count(),
        2,
        "each expired hold released once"
    );
    audit_wallet(&w, &wallet).await;
    server.stop();
    crate::audit::assert_clean(dir.path());
}

/// Holds, captures, cancellations and plain spends race on one wallet: money is never spent
/// twice, spendable never goes below zero, and every hold is resolved at most once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_and_spends_never_spend_money_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let ann = w.contact(json!({"code": "ANN"})).await;
    let wallet = ann["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet, "100.00").await;
    let mut tasks = Vec::new();
    for client in 0..8 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let mut spent = 0i64;
            for n in 0..10 {
                match (client + n) % 3 {
                    0 => {
                        let answer = w
                            .api
                            .post(
                                "/v1/estimates",
                                &w.pos_key,
                                &held_basket(json!({"contact_code": "ANN"}), "7.00", "all"),
                            )
                            .await;
                        let held = answer.expect(201).clone();
                        let mut body = basket(json!({"contact_code": "ANN"}), "7.00");
                        body["estimate_id"] = held["id"].clone();
                        let purchase = w.purchase(body).await;
                        spent += cents(&purchase.expect(201)["spend"]["spent"]);
                    }
                    1 => {
                        let answer = w
                            .api
                            .post(
                                "/v1/estimates",
                                &w.pos_key,
                                &held_basket(json!({"contact_code": "ANN"}), "5.00", "all"),
                            )
                            .await;
                        let held = answer.expect(201).clone();
                        let id = held["id"].as_str().unwrap();
                        w.api
                            .post(
                                &format!("/v1/estimates/{id}/cancel"),
                                &w.pos_key,
                                &json!({}),
                            )
                            .await
                            .expect(200);
                    }
                    _ => {
                        let mut body = basket(json!({"contact_code": "ANN"}), "6.00");
                        body["spend"] = json!({"amount": "all"});
                        spent += cents(&w.purchase(body).await.expect(201)["spend"]["spent"]);
                    }
                }
            }
            spent
        }));
    }
    let mut spent = 0;
    for task in tasks {
        spent += task.await.unwrap();
    }
    assert!(spent <= 10_000, "spent {spent} of 100.00");
    let state = w.wallet(&wallet).await;
    let balances = &state["balances"];
    assert_eq!(balances["reserved"], "0.00");
    assert_eq!(cents(&balances["open"]), 10_000 - spent);
    assert!(cents(&state["balances"]["spendable"]) >= 0);
    let journal = api
        .all(&format!("/v1/wallets/{wallet}/journal"), &w.key)
        .await;
    let mut by_estimate: std::collections::HashMap<String, (i64, i64)> = Default::default();
    for entry in &journal {
        let Some(estimate) = entry["estimate_id"].as_str() else {
            continue;
        };
        let slot = by_estimate.entry(estimate.to_string()).or_default();
        match entry["kind"].as_str().unwrap() {
            "hold" => slot.0 += cents(&entry["amount"]),
            "release" | "capture" => slot.1 += cents(&entry["amount"]),
            _ => {}
        }
    }
    for (estimate, (held, resolved)) in by_estimate {
        assert_eq!(
            held, resolved,
            "estimate {estimate}: held {held}, resolved {resolved}"
        );
    }
    audit_wallet(&w, &wallet).await;
    server.stop();
    crate::audit::assert_clean(dir.path());
}
