//! Configuration that shapes purchases: exchange rates, TAPs, tiers, schemes; identification by
//! wallet code; processor keys kept to their API; idle wallet actors passivated.

use serde_json::json;

use crate::support::{basket, world, Server, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_taps_tiers_and_wallet_codes_shape_purchases() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let b = &w.business;
    api.put(
        &format!("/v1/businesses/{b}/exchange-rates/USD"),
        &w.key,
        &json!({"rate": "0.5"}),
    )
    .await
    .expect(200);
    let merchant = api
        .post(&format!("/v1/businesses/{b}/merchants"), &w.key, &json!({"name": "Kiosk", "commercial_terms": {"award_contribution_percent": "50", "reduction_method": "back_end"}}))
        .await;
    let merchant_id = merchant.expect(201)["id"].as_str().unwrap().to_string();
    let tap = api
        .post(
            &format!("/v1/businesses/{b}/taps"),
            &w.key,
            &json!({"code": "T-1", "merchant_id": merchant_id}),
        )
        .await;
    assert_eq!(tap.expect(201)["organisation_id"], merchant_id.as_str());
    api.put(&format!("/v1/businesses/{b}/tiers"), &w.key, &json!({"period_days": 30, "levels": [{"name": "Silver", "value_units": "10"}, {"name": "Gold", "value_units": "100"}]}))
        .await
        .expect(200);
    w.offer(json!({"name": "gold bonus", "goal": "membership", "conditions": {"membership": "tier_reached", "tier_level": "Silver"}, "award": {"kind": "fixed", "amount": "3.00"}, "redeem": "instant"}))
        .await;
    let contact = w.contact(json!({})).await;
    let wallet_code = contact["wallet_code"].as_str().unwrap();
    assert_eq!(wallet_code.len(), 16);

    // 30 USD at 0.5 is 15 EUR: Silver is reached, and its offer awards.
    let mut body = basket(json!({"wallet_code": wallet_code}), "30.00");
    body["currency"] = json!("USD");
    body["tap_code"] = json!("T-1");
    let purchase = w.purchase(body).await;
    let purchase = purchase.expect(201);
    assert_eq!(purchase["amounts"]["total"], "15.00");
    assert_eq!(purchase["original_amounts"]["total"], "30.00");
    assert_eq!(purchase["original_currency"], "USD");
    assert_eq!(purchase["exchange_rate"], "0.5");
    assert_eq!(purchase["organisation_id"], merchant_id.as_str());
    let contact_now = api
        .get(
            &format!("/v1/contacts/{}", contact["id"].as_str().unwrap()),
            &w.key,
        )
        .await;
    assert_eq!(contact_now.expect(200)["tier"], "Silver");
    let tier_events = api
        .all(
            &format!("/v1/businesses/{b}/events?type=tier_reached"),
            &w.key,
        )
        .await;
    assert_eq!(tier_events.len(), 1);
    assert_eq!(tier_events[0]["awards"][0]["amount"], "3.00");

    // The merchant's terms set the reduction method of spends at its TAP.
    let mut spend = basket(json!({"wallet_code": wallet_code}), "2.00");
    spend["tap_code"] = json!("T-1");
    spend["spend"] = json!({"amount": "1.00"});
    let spent = w.purchase(spend).await;
    assert_eq!(spent.expect(201)["spend"]["reduction_method"], "back_end");

    // Voiding the big purchase takes its units away: the tier falls.
    let id = purchase["id"].as_str().unwrap();
    api.post(&format!("/v1/purchases/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    let contact_now = api
        .get(
            &format!("/v1/contacts/{}", contact["id"].as_str().unwrap()),
            &w.key,
        )
        .await;
    assert_eq!(contact_now.expect(200)["tier"], serde_json::Value::Null);
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemes_are_joined_and_left_by_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let b = &w.business;
    let schemes = api
        .get(&format!("/v1/businesses/{b}/schemes"), &w.key)
        .await;
    let default = schemes.expect(200)["items"][0].clone();
    assert_eq!(default["name"], "default");
    let coded = api
        .post(
            &format!("/v1/businesses/{b}/schemes"),
            &w.key,
            &json!({"name": "Staff", "sign_up": "code", "codes": ["S-1"]}),
        )
        .await;
    let coded = coded.expect(201)["id"].as_str().unwrap().to_string();
    let domain = api
        .post(
            &format!("/v1/businesses/{b}/schemes"),
            &w.key,
            &json!({"name": "Corp", "sign_up": "email_domain", "email_domains": ["corp.example"]}),
        )
        .await;
    let domain = domain.expect(201)["id"].as_str().unwrap().to_string();
    w.offer(json!({"name": "welcome", "goal": "membership", "scheme_id": coded, "conditions": {"membership": "sign_up"}, "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "deferred"}))
        .await;

    let first = w.contact(json!({"email": "ann@corp.example"})).await;
    let second = w.contact(json!({"email": "bob@else.example"})).await;
    let join = |contact: &serde_json::Value, scheme: &str, code: Option<&str>| {
        let path = format!("/v1/contacts/{}/schemes", contact["id"].as_str().unwrap());
        let mut body = json!({"action": "sign_up", "scheme_id": scheme});
        if let Some(code) = code {
            body["code"] = json!(code);
        }
        let api = api.clone();
        let key = w.key.clone();
        async move { api.post(&path, &key, &body).await }
    };
    let joined = join(&first, &coded, Some("S-1")).await;
    assert!(joined.expect(200)["scheme_ids"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == coded.as_str()));
    let wallet = w.wallet(first["wallet_id"].as_str().unwrap()).await;
    assert_eq!(
        wallet["balances"]["commerce"], "2.00",
        "the sign-up offer awarded"
    );
    join(&second, &coded, Some("S-1"))
        .await
        .expect_error(400, "validation_failed");
    join(&second, &coded, None)
        .await
        .expect_error(400, "validation_failed");
    join(&first, &domain, None).await.expect(200);
    join(&second, &domain, None)
        .await
        .expect_error(400, "validation_failed");

    let leave_default = api
        .post(
            &format!("/v1/contacts/{}/schemes", first["id"].as_str().unwrap()),
            &w.key,
            &json!({"action": "sign_out", "scheme_id": default["id"]}),
        )
        .await;
    leave_default.expect_error(409, "invalid_state");
    let left = api
        .post(
            &format!("/v1/contacts/{}/schemes", first["id"].as_str().unwrap()),
            &w.key,
            &json!({"action": "sign_out", "scheme_id": domain}),
        )
        .await;
    assert!(!left.expect(200)["scheme_ids"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == domain.as_str()));
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processor_keys_reach_only_the_processor_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let processor = api
        .post("/v1/processors", ADMIN_KEY, &json!({"name": "Network"}))
        .await;
    let processor_id = processor.expect(201)["id"].as_str().unwrap().to_string();
    let key = api
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "processor", "processor_id": processor_id}),
        )
        .await;
    let key = key.expect(201)["key"].as_str().unwrap().to_string();
    api.post(
        "/v1/purchases",
        &key,
        &basket(json!({"contact_code": "x"}), "1.00"),
    )
    .await
    .expect_error(403, "forbidden");
    api.get(&format!("/v1/businesses/{}", w.business), &key)
        .await
        .expect_error(403, "forbidden");
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wallet_actors_are_passivated_and_come_back_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewardsd.toml");
    std::fs::write(&config, "wallet_idle_seconds = 1\n").unwrap();
    let server = Server::start_with(dir.path(), "sync", Some(&config));
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({"code": "C-1"})).await;
    let wallet_id = contact["wallet_id"].as_str().unwrap();
    w.topup(wallet_id, "5.00").await;
    assert_eq!(resident(&api).await, 1);
    // Passivation runs on the actor's timer; poll (generously) until it happened.
    let mut waited = 0;
    while resident(&api).await != 0 {
        assert!(waited < 600, "the idle wallet actor was never passivated");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    let mut body = basket(json!({"contact_code": "C-1"}), "3.00");
    body["spend"] = json!({"amount": "all"});
    let purchase = w.purchase(body).await;
    assert_eq!(
        purchase.expect(201)["spend"]["spent"],
        "3.00",
        "the state came back whole"
    );
    assert_eq!(resident(&api).await, 1);
    server.stop();
    crate::audit::assert_clean(dir.path());
}

async fn resident(api: &crate::support::Api) -> u64 {
    let metrics = api.get("/metrics", "").await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("rewards_wallet_actors_resident "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_threshold_level_is_the_tier_of_a_new_contact() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let b = &w.business;
    // A contact from before the business had tiers.
    let earlier = w.contact(json!({})).await;
    assert_eq!(earlier["tier"], serde_json::Value::Null);
    api.put(&format!("/v1/businesses/{b}/tiers"), &w.key, &json!({"period_days": 30, "levels": [{"name": "Base", "value_units": "0"}, {"name": "Silver", "value_units": "10"}]}))
        .await
        .expect(200);
    let contact = w.contact(json!({})).await;
    assert_eq!(contact["tier"], "Base");
    let id = contact["id"].as_str().unwrap();
    let read = api.get(&format!("/v1/contacts/{id}"), &w.key).await;
    assert_eq!(read.expect(200)["tier"], "Base");
    let earlier_id = earlier["id"].as_str().unwrap();
    let read = api.get(&format!("/v1/contacts/{earlier_id}"), &w.key).await;
    assert_eq!(read.expect(200)["tier"], "Base");

    w.purchase(basket(json!({"contact_id": id}), "15.00"))
        .await
        .expect(201);
    let read = api.get(&format!("/v1/contacts/{id}"), &w.key).await;
    assert_eq!(read.expect(200)["tier"], "Silver");
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_sees_its_activity_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let contact = w.contact(json!({})).await;
    let other = w.contact(json!({})).await;
    let id = contact["id"].as_str().unwrap();
    let wallet = contact["wallet_id"].as_str().unwrap();
    let mut posted = Vec::new();
    for total in ["1.00", "2.00", "3.00"] {
        let purchase = w.purchase(basket(json!({"contact_id": id}), total)).await;
        posted.push(purchase.expect(201)["id"].as_str().unwrap().to_string());
    }
    let topup = w.topup(wallet, "5.00").await;
    w.purchase(basket(json!({"contact_id": other["id"]}), "9.00"))
        .await
        .expect(201);

    let activity = format!("/v1/contacts/{id}/activity");
    // Read one at a time, the pages together are the contact's events, newest first.
    let items = api.all_in_pages(&activity, &w.key, 1).await;
    let ids: Vec<&str> = items.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(ids[0], topup["achievement_event_id"].as_str().unwrap());
    assert_eq!(&ids[1..], [&posted[2], &posted[1], &posted[0]]);
    assert!(items.iter().all(|e| e["contact_id"] == id));

    // The contact's own session reads it; another contact's, a POS key and another business
    // do not.
    let session = api
        .post(&format!("/v1/contacts/{id}/sessions"), &w.key, &json!({}))
        .await;
    let token = session.expect(201)["token"].as_str().unwrap().to_string();
    assert_eq!(api.all(&activity, &token).await.len(), 4);
    let other_id = other["id"].as_str().unwrap();
    api.get(&format!("/v1/contacts/{other_id}/activity"), &token)
        .await
        .expect_error(404, "not_found");
    api.get(&activity, &w.pos_key)
        .await
        .expect_error(403, "forbidden");
    let elsewhere = world(&api, "EUR").await;
    api.get(&activity, &elsewhere.key)
        .await
        .expect_error(404, "not_found");
    server.stop();
    crate::audit::assert_clean(dir.path());
}
