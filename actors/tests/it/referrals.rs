//! Referrals: both sides awarded by referral offers, a contact referred once, a daily limit per
//! referrer, referrals at contact creation (a refusal still creates the contact), exactly once
//! by external reference, concurrent referrals of one contact, voids, and a crash between the
//! referral's two commits completed at start-up.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{audit_wallet, world, Api, Server, World};

/// Ann, Bob, Cat, Dan and Eve, with a referral offer of 5.00 to the referrer and the referred.
async fn referral_world(api: &Api) -> (World, Value, Vec<Value>) {
    let w = world(api, "EUR").await;
    let offer = w
        .offer(json!({"name": "bring a friend", "goal": "membership",
            "conditions": {"membership": "referral", "award_referred": true}, "award": {"kind": "fixed", "amount": "5.00"},
            "redeem": "instant"}))
        .await;
    let mut contacts = Vec::new();
    for code in ["ANN", "BOB", "CAT", "DAN", "EVE"] {
        contacts.push(w.contact(json!({"code": code})).await);
    }
    (w, offer, contacts)
}

fn referral(referrer: &str, referred: &str) -> Value {
    json!({"referrer": {"contact_code": referrer}, "referred": {"contact_code": referred}})
}

async fn spendable(w: &World, contact: &Value) -> String {
    let wallet = contact["wallet_id"].as_str().unwrap();
    w.wallet(wallet).await["balances"]["spendable"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn referred_by(w: &World, contact: &Value) -> Value {
    let id = contact["id"].as_str().unwrap();
    w.api
        .get(&format!("/v1/contacts/{id}"), &w.key)
        .await
        .expect(200)["referred_by"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_awards_both_sides_once_within_the_daily_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let (w, offer, c) = referral_world(&api).await;
    let (ann, bob, cat, dan, eve) = (&c[0], &c[1], &c[2], &c[3], &c[4]);

    let mut body = referral("ANN", "BOB");
    body["external_reference"] = json!("ref-1");
    let event = api
        .post("/v1/referrals", &w.pos_key, &body)
        .await
        .expect(201)
        .clone();
    assert_eq!(event["type"], "referral");
    assert_eq!(event["contact_id"], ann["id"]);
    assert_eq!(event["awards"][0]["offer_id"], offer["id"]);
    assert_eq!(event["awards"][0]["amount"], "5.00");
    assert_eq!(event["referral"]["referrer_contact_id"], ann["id"]);
    assert_eq!(event["referral"]["referred_contact_id"], bob["id"]);
    assert_eq!(event["referral"]["referrer_event_id"], event["id"]);
    assert_eq!(spendable(&w, ann).await, "5.00");
    // The referred contact's side: its own event, its award, and who referred it.
    assert_eq!(spendable(&w, bob).await, "5.00");
    assert_eq!(referred_by(&w, bob).await, ann["id"]);
    let bob_id = bob["id"].as_str().unwrap();
    let activity = api
        .all(&format!("/v1/contacts/{bob_id}/activity"), &w.key)
        .await;
    let theirs = activity
        .iter()
        .find(|e| e["type"] == "referral")
        .expect("the referred contact's referral event");
    assert_eq!(theirs["id"], event["referral"]["referred_event_id"]);
    assert_eq!(theirs["contact_id"], bob["id"]);
    assert_eq!(theirs["awards"][0]["amount"], "5.00");
    assert_eq!(theirs["referral"]["referrer_event_id"], event["id"]);

    // Exactly once by external reference; a contact is referred once, by anyone.
    let again = api.post("/v1/referrals", &w.pos_key, &body).await;
    assert!(again.replay);
    assert_eq!(again.body, event);
    api.post("/v1/referrals", &w.pos_key, &referral("ANN", "BOB"))
        .await
        .expect_error(409, "already_referred");
    api.post("/v1/referrals", &w.pos_key, &referral("EVE", "BOB"))
        .await
        .expect_error(409, "already_referred");
    assert_eq!(spendable(&w, bob).await, "5.00");

    // Two a day: the third is refused and changes nothing, so another referrer may refer Dan.
    api.post("/v1/referrals", &w.key, &referral("ANN", "CAT"))
        .await
        .expect(201);
    api.post("/v1/referrals", &w.pos_key, &referral("ANN", "DAN"))
        .await
        .expect_error(422, "referral_limit_exceeded");
    assert_eq!(spendable(&w, ann).await, "10.00");
    assert_eq!(referred_by(&w, dan).await, Value::Null);
    api.post("/v1/referrals", &w.pos_key, &referral("EVE", "DAN"))
        .await
        .expect(201);
    assert_eq!(referred_by(&w, dan).await, eve["id"]);
    assert_eq!(spendable(&w, cat).await, "5.00");

    // Refusals name their fields.
    for (body, status, code, field) in [
        (
            referral("ANN", "ANN"),
            400,
            "validation_failed",
            Some("referred"),
        ),
        (
            json!({"referrer": {"contact_code": "ANN"}}),
            400,
            "validation_failed",
            Some("referred"),
        ),
        (
            json!({"referred": {"contact_code": "ANN"}}),
            400,
            "validation_failed",
            Some("referrer"),
        ),
        (referral("ANN", "NOBODY"), 404, "contact_not_found", None),
    ] {
        let refused = api.post("/v1/referrals", &w.pos_key, &body).await;
        refused.expect_error(status, code);
        if let Some(field) = field {
            assert_eq!(refused.body["errors"][0]["field"], field, "{body}");
        }
    }

    // A void takes its side's award back; the contact stays referred.
    let id = event["id"].as_str().unwrap();
    api.post(&format!("/v1/events/{id}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    assert_eq!(spendable(&w, ann).await, "5.00");
    assert_eq!(referred_by(&w, bob).await, ann["id"]);
    for contact in &c {
        audit_wallet(&w, contact["wallet_id"].as_str().unwrap()).await;
    }
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_created_with_a_referral_code_is_created_even_when_the_referral_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let (w, _offer, c) = referral_world(&api).await;
    let ann = &c[0];
    let code = ann["referral_code"].as_str().unwrap();

    let mut created = Vec::new();
    for name in ["FAY", "GUS", "HAL"] {
        created.push(w.contact(json!({"code": name, "referred_by": code})).await);
    }
    for fresh in &created[..2] {
        assert_eq!(fresh["referred_by"], ann["id"]);
        assert_eq!(fresh["referral_error"], Value::Null);
        assert!(fresh["referral_event_id"].is_string());
        assert_eq!(spendable(&w, fresh).await, "5.00");
        assert_eq!(referred_by(&w, fresh).await, ann["id"]);
    }
    // The third of the day: created, not referred, and told why.
    let hal = &created[2];
    assert_eq!(hal["referral_error"], "referral_limit_exceeded");
    assert_eq!(hal["referral_event_id"], Value::Null);
    assert_eq!(hal["referred_by"], Value::Null);
    assert_eq!(spendable(&w, hal).await, "0.00");
    assert_eq!(spendable(&w, ann).await, "10.00");
    let unknown = w
        .contact(json!({"code": "IVY", "referred_by": "NOSUCHCODE"}))
        .await;
    assert_eq!(unknown["referral_error"], "contact_not_found");
    assert_eq!(unknown["code"], "IVY");
    // A contact without `referred_by` is answered without the referral fields.
    assert!(ann.get("referral_error").is_none());
    let refused = api
        .post(
            &format!("/v1/businesses/{}/contacts", w.business),
            &w.key,
            &json!({"code": "JON", "referred_by": " "}),
        )
        .await;
    refused.expect_error(400, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "referred_by");
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_referrals_refer_a_contact_once_and_a_referrer_twice_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({"name": "bring a friend", "goal": "membership",
        "conditions": {"membership": "referral", "award_referred": true}, "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "instant"}))
        .await;
    let mut referrers = Vec::new();
    let mut referred = Vec::new();
    for i in 0..8 {
        referrers.push(w.contact(json!({"code": format!("R-{i}")})).await);
        referred.push(w.contact(json!({"code": format!("N-{i}")})).await);
    }
    // Eight referrers at once for one contact: one wins.
    let tries = (0..8).map(|i| {
        let api = api.clone();
        let key = w.pos_key.clone();
        async move {
            api.post("/v1/referrals", &key, &referral(&format!("R-{i}"), "N-0"))
                .await
        }
    });
    let answers = futures::future::join_all(tries).await;
    let won: Vec<_> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for lost in answers.iter().filter(|a| a.status != 201) {
        lost.expect_error(409, "already_referred");
    }
    assert_eq!(spendable(&w, &referred[0]).await, "1.00");
    // One referrer for seven contacts at once: two a day.
    let tries = (1..8).map(|i| {
        let api = api.clone();
        let key = w.pos_key.clone();
        async move {
            api.post("/v1/referrals", &key, &referral("R-7", &format!("N-{i}")))
                .await
        }
    });
    let answers = futures::future::join_all(tries).await;
    let accepted = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(accepted, 2);
    for refused in answers.iter().filter(|a| a.status != 201) {
        refused.expect_error(422, "referral_limit_exceeded");
    }
    let mut referred_total = 0;
    for contact in &referred[1..] {
        if referred_by(&w, contact).await != Value::Null {
            referred_total += 1;
            assert_eq!(spendable(&w, contact).await, "1.00");
        } else {
            assert_eq!(spendable(&w, contact).await, "0.00");
        }
    }
    assert_eq!(referred_total, 2);
    for contact in referrers.iter().chain(&referred) {
        audit_wallet(&w, contact["wallet_id"].as_str().unwrap()).await;
    }
    server.stop();
    crate::audit::assert_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_a_referrals_two_commits_is_completed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_custom(
        dir.path(),
        "sync",
        None,
        &[("REWARDS_CRASH_AT", "referral_between_sides")],
        None,
    );
    let api = server.client();
    let (w, _offer, c) = referral_world(&api).await;
    let (ann, bob) = (&c[0], &c[1]);
    // The process ends once the referrer's side is durable, before the referred contact's.
    let mut body = referral("ANN", "BOB");
    body["external_reference"] = json!("ref-crash");
    let sent = api.try_post("/v1/referrals", &w.pos_key, &body).await;
    assert!(sent.is_err(), "the server answered before its crash point");
    drop(server);
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = World {
        api: api.clone(),
        ..w
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while referred_by(&w, bob).await == Value::Null {
        assert!(
            Instant::now() < deadline,
            "the half-done referral was not completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(referred_by(&w, bob).await, ann["id"]);
    assert_eq!(spendable(&w, ann).await, "5.00");
    assert_eq!(spendable(&w, bob).await, "5.00");
    // The referrer's answer was stored with its side: the retry is its replay.
    let again = api.post("/v1/referrals", &w.pos_key, &body).await;
    assert!(again.replay);
    assert_eq!(again.body["referral"]["referred_contact_id"], bob["id"]);
    api.post("/v1/referrals", &w.pos_key, &referral("CAT", "BOB"))
        .await
        .expect_error(409, "already_referred");
    for contact in &c {
        audit_wallet(&w, contact["wallet_id"].as_str().unwrap()).await;
    }
    server.stop();
    crate::audit::assert_clean(dir.path());
}
