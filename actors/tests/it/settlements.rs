//! Settlement between a business and its merchants: each event at a merchant's TAP records
//! what the merchant funds of its awards, the contribution and settlement fees and the wallet
//! money spent there; a return takes back its share, a void what is left; the report sums a
//! period per merchant with `net = awards_funded + contribution_fees + settlement_fees - spends`.

use serde_json::{json, Value};

use crate::support::{world, Server};

fn basket(tap: &str, reference: &str) -> Value {
    json!({"identity": {"contact_code": "C-1"}, "tap_code": tap, "external_reference": reference,
        "lines": [{"sku": "X", "quantity": "2", "unit_price": "15.00", "tax_rate": "0"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_entries_follow_awards_spends_returns_and_voids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let a = w
        .merchant_with_tap(
            json!({"name": "A", "commercial_terms": {"award_contribution_percent": "50",
                "contribution_fee": {"type": "percent", "value": "10"},
                "settlement_fee": {"type": "amount", "value": "0.25"}}}),
            "T-A",
        )
        .await;
    let b = w.merchant_with_tap(json!({"name": "B"}), "T-B").await;
    w.offer(json!({"name": "10.00 a purchase", "goal": "spend",
        "award": {"kind": "fixed", "amount": "10.00"}, "redeem": "deferred"}))
        .await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let report = |query: String| {
        let api = api.clone();
        let key = w.key.clone();
        let business = w.business.clone();
        async move {
            api.get(
                &format!("/v1/businesses/{business}/settlements{query}"),
                &key,
            )
            .await
            .expect(200)["items"]
                .clone()
        }
    };
    let line = |items: &Value, merchant: &str| -> Value {
        let line = items
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["merchant_id"] == merchant)
            .cloned()
            .unwrap_or(Value::Null);
        json!([
            line["awards_funded"],
            line["contribution_fees"],
            line["spends"],
            line["settlement_fees"],
            line["net"]
        ])
    };

    // The spec's example: an award of 10.00, contribution 50 %, fee 10 %: 5.00 and 1.00.
    let p1 = w.purchase(basket("T-A", "p1")).await.expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.purchase(basket("T-B", "p2")).await.expect(201);
    let items = report(String::new()).await;
    assert_eq!(
        line(&items, &a),
        json!(["5.00", "1.00", "0.00", "0.00", "6.00"])
    );
    assert_eq!(
        line(&items, &b),
        json!(["10.00", "0.00", "0.00", "0.00", "10.00"])
    );

    // Wallet money spent at A: the business owes it to A, and A pays the settlement fee.
    w.topup(contact["wallet_id"].as_str().unwrap(), "20.00")
        .await;
    let mut spending = basket("T-A", "p3");
    spending["spend"] = json!({"amount": "12.00"});
    let p3 = w.purchase(spending).await.expect(201).clone();
    assert_eq!(p3["spend"]["spent"], "12.00");
    let p3 = p3["id"].as_str().unwrap().to_string();
    let items = report(String::new()).await;
    assert_eq!(
        line(&items, &a),
        json!(["10.00", "2.00", "12.00", "0.25", "0.25"])
    );

    // A return of half of p1 takes back half of its awards' settlement; the void the rest.
    api.post(
        &format!("/v1/purchases/{p1}/returns"),
        &w.pos_key,
        &json!({"lines": [{"sku": "X", "quantity": "1"}]}),
    )
    .await
    .expect(201);
    let items = report(String::new()).await;
    assert_eq!(
        line(&items, &a),
        json!(["7.50", "1.50", "12.00", "0.25", "-2.75"])
    );
    api.post(&format!("/v1/purchases/{p1}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    let items = report(String::new()).await;
    assert_eq!(
        line(&items, &a),
        json!(["5.00", "1.00", "12.00", "0.25", "-5.75"])
    );
    api.post(&format!("/v1/purchases/{p3}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    let items = report(String::new()).await;
    assert_eq!(
        line(&items, &a),
        json!(["0.00", "0.00", "0.00", "0.00", "0.00"])
    );
    assert_eq!(
        line(&items, &b),
        json!(["10.00", "0.00", "0.00", "0.00", "10.00"])
    );

    // One merchant, and periods: nothing after now; everything in a period that holds it.
    let items = report(format!("?merchant_id={b}")).await;
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(
        line(&items, &b),
        json!(["10.00", "0.00", "0.00", "0.00", "10.00"])
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = |millis: i64| rewards_core::Timestamp::from_millis(millis).to_rfc3339();
    let (earlier, later) = (at(now - 3_600_000), at(now + 3_600_000));
    let query = |from: &str, to: &str| format!("?from={from}&to={to}");
    assert_eq!(report(query(&later, &later)).await, json!([]));
    let items = report(query(&earlier, &later)).await;
    assert_eq!(
        line(&items, &b),
        json!(["10.00", "0.00", "0.00", "0.00", "10.00"])
    );
    let items = report(format!("?merchant_id={a}&{}", &query(&later, &later)[1..])).await;
    assert_eq!(
        line(&items, &a),
        json!(["0.00", "0.00", "0.00", "0.00", "0.00"])
    );

    // Refusals.
    let path = format!("/v1/businesses/{}/settlements", w.business);
    api.get(&format!("{path}?from=yesterday"), &w.key)
        .await
        .expect_error(400, "validation_failed");
    api.get(
        &format!("{path}?merchant_id=00000000-0000-0000-0000-000000000001"),
        &w.key,
    )
    .await
    .expect_error(404, "not_found");
    api.get(&path, &w.pos_key)
        .await
        .expect_error(403, "forbidden");
    server.stop();
    // Returns and voids clawed back awards: the offline audit finds the offers' totals, the
    // settlement entries and the ledgers whole.
    crate::audit::assert_clean(dir.path());
}
