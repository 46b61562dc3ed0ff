//! Hostile input, as an attacker or an unlucky client would send it: every request is answered
//! (400 with its field, never a dropped connection or a wedged store), nothing is half written,
//! and the server goes on taking writes.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{basket, world, Server, World};

/// Refused with 400 `validation_failed` naming `field`.
#[track_caller]
fn refused(answer: &crate::support::Response, field: &str) {
    answer.expect_error(400, "validation_failed");
    let fields: Vec<&str> = answer.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "{field} not in {}", answer.body);
}

/// The store still takes writes and says it is ready.
async fn still_writes(w: &World) {
    let ready = w.api.get("/health/ready", &w.key).await;
    ready.expect(200);
    w.contact(json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_past_the_store_limit_are_refused_at_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let w = world(&server.client(), "EUR").await;
    let b = &w.business;
    w.contact(json!({"code": "C-1", "cim": "CARD-1"})).await;
    let huge = "x".repeat(65_536);

    // A scheme code of 64 KiB once panicked the store's writer and stopped every write.
    let scheme = w
        .api
        .post(
            &format!("/v1/businesses/{b}/schemes"),
            &w.key,
            &json!({"name": "VIP", "sign_up": "code", "codes": ["OK-1", huge]}),
        )
        .await;
    refused(&scheme, "codes[1]");
    still_writes(&w).await;

    for (field, body) in [
        ("external_reference", {
            let mut p = basket(json!({"contact_code": "C-1"}), "1.00");
            p["external_reference"] = json!(huge);
            p
        }),
        ("external_system", {
            let mut p = basket(json!({"contact_code": "C-1"}), "1.00");
            p["external_system"] = json!(huge);
            p["external_reference"] = json!("R-1");
            p
        }),
        ("identity.cim", basket(json!({"cim": huge}), "1.00")),
        (
            "identity.contact_code",
            basket(json!({"contact_code": "c".repeat(300)}), "1.00"),
        ),
        ("external_reference", {
            let mut p = basket(json!({"contact_code": "C-1"}), "1.00");
            p["external_reference"] = json!("r".repeat(300));
            p
        }),
    ] {
        refused(&w.purchase(body).await, field);
    }
    let contact = w
        .api
        .post(
            &format!("/v1/businesses/{b}/contacts"),
            &w.key,
            &json!({"code": huge}),
        )
        .await;
    refused(&contact, "code");
    still_writes(&w).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_quantities_and_rates_have_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let w = world(&server.client(), "EUR").await;
    let b = &w.business;
    w.offer(json!({"name": "all back", "goal": "spend", "award": {"kind": "percent", "percent": "100"}, "redeem": "instant"}))
        .await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet = contact["wallet_id"].as_str().unwrap().to_string();
    let line = |q: Value, p: Value| json!({"sku": "A", "quantity": q, "unit_price": p});
    let purchase = |lines: Vec<Value>| json!({"identity": {"contact_code": "C-1"}, "lines": lines});
    let cases = vec![
        (
            json!({"identity": {"contact_code": "C-1"}, "total_amount": "92233720368547758.07"}),
            "total_amount",
        ),
        (
            purchase(vec![line(json!("1e15"), json!("1e15"))]),
            "lines[0].quantity",
        ),
        (
            purchase(vec![line(json!("99999999999999999999999.99"), json!("1"))]),
            "lines[0].quantity",
        ),
        (
            purchase(vec![
                json!({"sku": "A", "quantity": "1", "unit_price": "1", "tax_rate": "92233720368547758.07"}),
            ]),
            "lines[0].tax_rate",
        ),
        (
            purchase(vec![
                line(json!("1"), json!(46116860184273880u64)),
                json!({"sku": "B", "quantity": "1", "unit_price": 46116860184273880u64}),
            ]),
            "lines[0].unit_price",
        ),
        (
            purchase(vec![line(json!("1_000"), json!("1"))]),
            "lines[0].quantity",
        ),
        (
            purchase(vec![line(json!(" 1"), json!("1"))]),
            "lines[0].quantity",
        ),
        (
            purchase(vec![line(json!("1__"), json!("1"))]),
            "lines[0].quantity",
        ),
        (
            purchase(vec![line(json!(true), json!("1"))]),
            "lines[0].quantity",
        ),
        (
            purchase(vec![line(json!({"value": 1}), json!("1"))]),
            "lines[0].quantity",
        ),
    ];
    for (body, field) in cases {
        refused(&w.purchase(body).await, field);
    }
    // Money given directly is below 10,000,000,000.00.
    let topup = w
        .api
        .post(
            &format!("/v1/wallets/{wallet}/topups"),
            &w.key,
            &json!({"amount": "10000000000.00"}),
        )
        .await;
    refused(&topup, "amount");
    // Exchange rates: neither absurdly large nor vanishing, and never the own currency's.
    for (currency, rate, field) in [
        ("USD", "100000000000000000000", "rate"),
        ("USD", "0.000000000000000000000001", "rate"),
        ("USD", "0", "rate"),
        ("EUR", "2", "currency"),
    ] {
        let answer = w
            .api
            .put(
                &format!("/v1/businesses/{b}/exchange-rates/{currency}"),
                &w.key,
                &json!({"rate": rate}),
            )
            .await;
        refused(&answer, field);
    }
    // The largest purchase that is allowed is rewarded, and the wallet goes on receiving.
    let big = w
        .purchase(json!({"identity": {"contact_code": "C-1"}, "total_amount": "9999999999.99"}))
        .await;
    assert_eq!(big.expect(201)["awards"][0]["amount"], "9999999999.99");
    w.purchase(basket(json!({"contact_code": "C-1"}), "1.00"))
        .await
        .expect(201);
    // A payout of nothing and a return of almost nothing are refused, not written as 0.00.
    let empty = w.contact(json!({"code": "C-2"})).await;
    let payout = w
        .api
        .post(
            &format!(
                "/v1/wallets/{}/payouts",
                empty["wallet_id"].as_str().unwrap()
            ),
            &w.key,
            &json!({}),
        )
        .await;
    payout.expect_error(422, "insufficient_funds");
    let id = big.body["id"].as_str().unwrap();
    let small = w
        .purchase(basket(json!({"contact_code": "C-1"}), "3.00"))
        .await;
    let small_id = small.expect(201)["id"].as_str().unwrap().to_string();
    let ret = w
        .api
        .post(
            &format!("/v1/purchases/{small_id}/returns"),
            &w.key,
            &json!({"lines": [{"sku": "ITEM", "quantity": "1e-25"}]}),
        )
        .await;
    refused(&ret, "lines[0].quantity");
    // Ids in paths: only the canonical lower-case form names anything.
    for variant in [
        id.to_uppercase(),
        id.replace('-', ""),
        format!("{{{id}}}"),
        format!("urn:uuid:{id}"),
    ] {
        w.api
            .get(&format!("/v1/purchases/{variant}"), &w.key)
            .await
            .expect_error(404, "not_found");
    }
    w.api
        .get(&format!("/v1/purchases/{id}"), &w.key)
        .await
        .expect(200);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_every_item_and_replays_compare_the_parsed_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let w = world(&server.client(), "EUR").await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet = contact["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet, "10.00").await;
    let spend = |reference: &str| {
        let mut p = basket(json!({"contact_code": "C-1"}), "2.00");
        p["spend"] = json!({"amount": "1.00"});
        p["external_reference"] = json!(reference);
        p
    };
    let mut bad = spend("B-2");
    bad["external_reference"] = json!("r".repeat(70_000));
    let batch = w
        .api
        .post(
            "/v1/purchases:batch",
            &w.pos_key,
            &json!({"items": [spend("B-1"), bad, spend("B-3")]}),
        )
        .await;
    let results = batch.expect(200)["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![201, 400, 201]);
    assert_eq!(
        results[1]["body"]["errors"][0]["field"],
        "external_reference"
    );
    assert_eq!(
        w.wallet(&wallet).await["balances"]["open"],
        "8.00",
        "two spends, not one and not three"
    );

    // A repeat that differs only in an unknown field, or in "2.00" against 2, is the same
    // request: it replays; a different amount conflicts.
    let mut first = basket(json!({"contact_code": "C-1"}), "2.00");
    first["external_reference"] = json!("R-1");
    let answer = w.purchase(first.clone()).await;
    answer.expect(201);
    let mut same = first.clone();
    same["note"] = json!("ignored");
    same["lines"][0]["unit_price"] = json!(2);
    same["lines"][0]["quantity"] = json!(1.0);
    let replay = w.purchase(same).await;
    assert!(replay.replay, "{}", replay.body);
    assert_eq!(replay.body, answer.body);
    let mut other = first.clone();
    other["lines"][0]["unit_price"] = json!("2.01");
    w.purchase(other)
        .await
        .expect_error(409, "idempotency_conflict");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let w = world(&server.client(), "EUR").await;
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let head = format!(
        "POST /v1/purchases HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
        w.pos_key
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    // Answered (and closed) by the server's deadline, not held open.
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "held for {:?}",
        started.elapsed()
    );
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    still_writes(&w).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_wallet_actors_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewardsd.toml");
    std::fs::write(
        &config,
        "max_resident_wallets = 2\nwallet_idle_seconds = 1\n",
    )
    .unwrap();
    let server = Server::start_with(dir.path(), "sync", Some(&config));
    let w = world(&server.client(), "EUR").await;
    for code in ["C-1", "C-2", "C-3"] {
        w.contact(json!({ "code": code })).await;
    }
    for code in ["C-1", "C-2"] {
        w.purchase(basket(json!({ "contact_code": code }), "1.00"))
            .await
            .expect(201);
    }
    let third = w
        .purchase(basket(json!({"contact_code": "C-3"}), "1.00"))
        .await;
    third.expect_error(503, "overloaded");
    // Once the idle ones are passivated, the third wallet comes in.
    let mut waited = 0;
    loop {
        let answer = w
            .purchase(basket(json!({"contact_code": "C-3"}), "1.00"))
            .await;
        if answer.status == 201 {
            break;
        }
        answer.expect_error(503, "overloaded");
        waited += 1;
        assert!(waited < 300, "idle wallet actors were never passivated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}

/// The contract is served without a key; a method a documented path lacks is 405 with `Allow`,
/// not 404; a body that is not an object is refused as a whole, never read as a struct's
/// fields in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_is_served_and_its_edges_hold() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let w = world(&server.client(), "EUR").await;
    let document = w
        .api
        .send(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .unwrap();
    assert_eq!(document.status, 200);
    assert_eq!(document.body["openapi"], "3.1.0");
    let paths = document.body["paths"].as_object().unwrap();
    for path in [
        "/v1/purchases",
        "/v1/processor/purchases",
        "/v1/purchases/claims",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let page = w
        .api
        .send(reqwest::Method::GET, "/docs", None, None)
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"));

    // "claims" is not a purchase id: GET of the claims path is the wrong method.
    let wrong = w.api.get("/v1/purchases/claims", &w.key).await;
    wrong.expect_error(405, "method_not_allowed");
    let wrong = w
        .api
        .send(reqwest::Method::DELETE, "/v1/purchases", Some(&w.key), None)
        .await
        .unwrap();
    wrong.expect_error(405, "method_not_allowed");
    let unknown = w.api.get("/v1/nothing-here", &w.key).await;
    unknown.expect_error(404, "not_found");

    let b = &w.business;
    for body in [json!([null, null]), json!(["C-1"]), json!("C-1"), json!(7)] {
        let answer = w
            .api
            .post(&format!("/v1/businesses/{b}/contacts"), &w.key, &body)
            .await;
        refused(&answer, "body");
        let answer = w.api.post("/v1/purchases", &w.pos_key, &body).await;
        refused(&answer, "body");
    }
    // Merchant fees are bounded like every amount and percentage.
    for (fee, field) in [
        (
            json!({"contribution_fee": {"type": "percent", "value": "100.01"}}),
            "commercial_terms.contribution_fee.value",
        ),
        (
            json!({"settlement_fee": {"type": "amount", "value": "10000000000.01"}}),
            "commercial_terms.settlement_fee.value",
        ),
    ] {
        let answer = w
            .api
            .post(
                &format!("/v1/businesses/{b}/merchants"),
                &w.key,
                &json!({"name": "Branch", "commercial_terms": fee}),
            )
            .await;
        refused(&answer, field);
    }
    // Every list has a bound, refused at its field.
    let skus: Vec<String> = (0..1001).map(|i| format!("S{i}")).collect();
    let answer = w
        .api
        .post(
            &format!("/v1/businesses/{b}/offers"),
            &w.key,
            &json!({"name": "Many", "goal": "spend", "conditions": {"skus": skus},
                    "award": {"kind": "fixed", "amount": "1.00"}}),
        )
        .await;
    refused(&answer, "conditions.skus");
    let levels: Vec<Value> = (0..1001)
        .map(|i| json!({"name": format!("L{i}"), "value_units": i}))
        .collect();
    let answer = w
        .api
        .send(
            reqwest::Method::PUT,
            &format!("/v1/businesses/{b}/tiers"),
            Some(&w.key),
            Some(serde_json::to_vec(&json!({"period_days": 30, "levels": levels})).unwrap()),
        )
        .await
        .unwrap();
    refused(&answer, "levels");
    // Nor is an array read as a nested object's fields.
    w.contact(json!({"code": "C-1"})).await;
    let purchase = |change: Value| {
        let mut body = basket(json!({"contact_code": "C-1"}), "5.00");
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (change, field) in [
        (json!({"spend": ["all"]}), "spend"),
        (json!({"identity": ["C-1"]}), "identity"),
        (
            json!({"lines": [["A", null, null, "1", "5.00"]]}),
            "lines[0]",
        ),
        (json!({"payment_medium": ["4111"]}), "payment_medium"),
    ] {
        let answer = w
            .api
            .post("/v1/purchases", &w.pos_key, &purchase(change))
            .await;
        refused(&answer, field);
    }
    still_writes(&w).await;
}
