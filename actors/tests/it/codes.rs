//! One-time passwords and dynamic wallet codes: issued on request, usable by one posted event,
//! an OTP's spend amount spent, wrong OTPs limited per key, repeats answered from the store.

use serde_json::json;

use crate::support::{basket, world, Server, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otp_identifies_once_and_spends_its_amount() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({})).await;
    let contact_id = contact["id"].as_str().unwrap();
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    w.topup(wallet_id, "20.00").await;
    let otps = format!("/v1/contacts/{contact_id}/otps");

    // Refused bodies issue nothing.
    api.post(&otps, &w.pos_key, &json!({"spend_amount": "-1"}))
        .await
        .expect_error(400, "validation_failed");
    api.post(&otps, &w.pos_key, &json!({"spend_amount": "1.001"}))
        .await
        .expect_error(400, "validation_failed");

    let issued = api
        .post(&otps, &w.pos_key, &json!({"spend_amount": "5.00"}))
        .await;
    let issued = issued.expect(201).clone();
    let otp = issued["otp"].as_str().unwrap().to_string();
    assert_eq!(otp.len(), 6);
    assert!(otp.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(issued["spend_amount"], "5.00");
    assert!(issued["expires_at"].as_str().unwrap().ends_with('Z'));

    // A claim cannot use an OTP that carries a spend amount (it would use it up without
    // spending), and leaves it usable.
    api.post(
        "/v1/purchases/claims",
        &w.key,
        &json!({"identity": {"otp": otp}, "claim_code": "ABCD-EFGH"}),
    )
    .await
    .expect_error(422, "otp_spend_mismatch");

    // A stated spend that differs is refused, and leaves the OTP usable.
    let mut body = basket(json!({"otp": otp}), "12.00");
    body["spend"] = json!({"amount": "4.00"});
    w.purchase(body)
        .await
        .expect_error(422, "otp_spend_mismatch");
    let mut body = basket(json!({"otp": otp}), "12.00");
    body["spend"] = json!({"amount": "all"});
    w.purchase(body)
        .await
        .expect_error(422, "otp_spend_mismatch");

    // Identify and spend in one click.
    let mut body = basket(json!({"otp": otp}), "12.00");
    body["external_reference"] = json!("otp-1");
    let first = w.purchase(body.clone()).await;
    let first = first.expect(201).clone();
    assert_eq!(first["contact_id"], contact_id);
    assert_eq!(first["spend"]["spent"], "5.00");
    assert_eq!(w.wallet(wallet_id).await["balances"]["open"], "15.00");

    // The repeat is answered from the store; another purchase finds the OTP used.
    let again = w.purchase(body).await;
    assert_eq!(again.status, 201);
    assert!(again.replay);
    assert_eq!(again.body, first);
    w.purchase(basket(json!({"otp": otp}), "1.00"))
        .await
        .expect_error(422, "otp_invalid");
    assert_eq!(w.wallet(wallet_id).await["balances"]["open"], "15.00");

    // An OTP without a spend amount only identifies; the contact's own session may ask for one.
    let session = api
        .post(
            &format!("/v1/contacts/{contact_id}/sessions"),
            &w.key,
            &json!({}),
        )
        .await;
    let token = session.expect(201)["token"].as_str().unwrap().to_string();
    let issued = api.post(&otps, &token, &json!({})).await;
    let issued = issued.expect(201).clone();
    assert_eq!(issued["spend_amount"], serde_json::Value::Null);
    let plain = w
        .purchase(basket(json!({"otp": issued["otp"]}), "3.00"))
        .await;
    assert_eq!(plain.expect(201)["spend"], serde_json::Value::Null);

    // Operators see the live codes and the identities held in memory.
    let metrics = api.get("/metrics", ADMIN_KEY).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("rewards_one_time_codes{kind=\"otp\"}"),
        "{text}"
    );
    assert!(text.contains("rewards_identities_cached"), "{text}");

    // Codes live an hour at most.
    for field in ["otp_ttl_seconds", "wallet_code_ttl_seconds"] {
        let refused = api
            .send(
                reqwest::Method::PATCH,
                &format!("/v1/businesses/{}/settings", w.business),
                Some(&w.key),
                Some(serde_json::to_vec(&json!({ field: 3601 })).unwrap()),
            )
            .await
            .unwrap();
        refused.expect_error(400, "validation_failed");
    }

    // Another business's key cannot ask for this contact's OTPs.
    let other = world(&api, "EUR").await;
    api.post(&otps, &other.key, &json!({}))
        .await
        .expect_error(404, "not_found");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_otps_are_limited_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({})).await;
    let contact_id = contact["id"].as_str().unwrap();
    let issued = api
        .post(
            &format!("/v1/contacts/{contact_id}/otps"),
            &w.key,
            &json!({}),
        )
        .await;
    let otp = issued.expect(201)["otp"].as_str().unwrap().to_string();
    let wrong = if otp == "000000" { "000001" } else { "000000" };
    for _ in 0..10 {
        w.purchase(basket(json!({"otp": wrong}), "1.00"))
            .await
            .expect_error(422, "otp_invalid");
    }
    let limited = w.purchase(basket(json!({"otp": otp}), "1.00")).await;
    limited.expect_error(429, "rate_limited");
    let retry_after: u32 = limited.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another key is not limited by this one's guesses, and the OTP was not spent by them.
    let pos = api
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "pos", "business_id": w.business}),
        )
        .await;
    let other_pos = pos.expect(201)["key"].as_str().unwrap().to_string();
    let purchase = api
        .post(
            "/v1/purchases",
            &other_pos,
            &basket(json!({"otp": otp}), "1.00"),
        )
        .await;
    assert_eq!(purchase.expect(201)["contact_id"], contact_id);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_wallet_code_identifies_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({})).await;
    let contact_id = contact["id"].as_str().unwrap();
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    let codes = format!("/v1/wallets/{wallet_id}/codes");
    // A POS key may not issue wallet codes.
    api.post(&codes, &w.pos_key, &json!({}))
        .await
        .expect_error(403, "forbidden");
    let issued = api.post(&codes, &w.key, &json!({})).await;
    let issued = issued.expect(201).clone();
    let code = issued["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 20);
    assert_ne!(code, contact["wallet_code"].as_str().unwrap());
    let purchase = w
        .purchase(basket(json!({"wallet_code": code}), "2.00"))
        .await;
    assert_eq!(purchase.expect(201)["contact_id"], contact_id);
    w.purchase(basket(json!({"wallet_code": code}), "2.00"))
        .await
        .expect_error(404, "contact_not_found");
    // The static wallet code still identifies, as often as wanted.
    for _ in 0..2 {
        let purchase = w
            .purchase(basket(
                json!({"wallet_code": contact["wallet_code"]}),
                "1.00",
            ))
            .await;
        assert_eq!(purchase.expect(201)["contact_id"], contact_id);
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_purchases_naming_one_otp_post_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({})).await;
    let contact_id = contact["id"].as_str().unwrap();
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    w.topup(wallet_id, "10.00").await;
    for round in 0..5 {
        let issued = api
            .post(
                &format!("/v1/contacts/{contact_id}/otps"),
                &w.key,
                &json!({"spend_amount": "1.00"}),
            )
            .await;
        let otp = issued.expect(201)["otp"].as_str().unwrap().to_string();
        // A key of its own per round: the losers' attempts count as wrong OTPs of their key.
        let pos = api
            .post(
                "/v1/keys",
                ADMIN_KEY,
                &json!({"role": "pos", "business_id": w.business}),
            )
            .await;
        let pos_key = pos.expect(201)["key"].as_str().unwrap().to_string();
        let answers = futures::future::join_all((0..8).map(|i| {
            let api = api.clone();
            let pos_key = pos_key.clone();
            let mut body = basket(json!({"otp": otp}), "3.00");
            body["external_reference"] = json!(format!("race-{round}-{i}"));
            async move { api.post("/v1/purchases", &pos_key, &body).await }
        }))
        .await;
        let posted = answers.iter().filter(|a| a.status == 201).count();
        assert_eq!(posted, 1, "{answers:?}");
        for answer in answers.iter().filter(|a| a.status != 201) {
            answer.expect_error(422, "otp_invalid");
        }
    }
    // Five OTPs of 1.00 each were spent, once each.
    assert_eq!(w.wallet(wallet_id).await["balances"]["open"], "5.00");
    server.stop();
}
