//! kill -9 under load: every acknowledged purchase (and achievement, financial statement,
//! spend request and referral) survives whole, nothing is half applied (a referral's two
//! sides, committed one after the other, are both there after a restart), and
//! every wallet equals its ledger. Processor traffic runs beside it on a TAP shared by an award,
//! a match and a claim business: every acknowledged route is there after a restart, nothing is
//! rewarded twice, and windows that ended while the server was down end at start-up. Estimates
//! with holds run beside them (some consumed by their purchase, some cancelled, some left
//! open): every acknowledged step is there after a restart, and every hold is resolved exactly
//! once, as its estimate's state says. A webhook receiver hears of every acknowledged purchase
//! after each restart.
//! Checkpoints run every few milliseconds here, so kills land in appends and in checkpoints
//! alike, and each restart replays the log's tail over a half-written checkpoint as often as
//! not. `REWARDS_CRASH_ROUNDS` sets the number of rounds (default 3).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::processor::{business, processor_key};
use crate::support::{audit_wallet, basket, cents, world, Api, Receiver, Server, World};

const CONTACTS: usize = 8;
const CLIENTS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_purchases_survive_sigkill() {
    let rounds: usize = std::env::var("REWARDS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("REWARDS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test: {rounds} rounds, seed {seed} (REWARDS_CRASH_SEED to repeat)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crash.toml");
    std::fs::write(
        &config,
        // Wallets of more than two lots keep them apart, so kills land while lots move apart,
        // change one by one and come back inline.
        "checkpoint_interval_ms = 15\ncheckpoint_bytes = 65536\nlog_segment_bytes = 32768\n\
         wallet_lots_apart_above = 2\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let start = || {
        let started = std::time::Instant::now();
        let server = Server::start_with(&data, "sync", Some(&config));
        (server, started.elapsed())
    };

    let (server, _) = start();
    let w = world(&server.client(), "EUR").await;
    w.offer(json!({"name": "instant 10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    w.offer(json!({"name": "deferred 1", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "deferred"}))
        .await;
    w.offer(json!({"name": "a like", "goal": "achievement", "conditions": {"classifications": ["like"]}, "award": {"kind": "fixed", "amount": "0.50"}, "redeem": "instant"}))
        .await;
    w.offer(json!({"name": "bring a friend", "goal": "membership",
        "conditions": {"membership": "referral", "award_referred": true},
        "award": {"kind": "fixed", "amount": "0.25"}, "redeem": "instant"}))
        .await;
    // Many referrals a day here: the limit is not what this test is about.
    w.api
        .request_settings(&w.business, &w.key, json!({"referral_daily_limit": 100000}))
        .await;
    let mut wallets = Vec::new();
    api_setup_taps(&w).await;
    let merchant = setup_settling_merchant(&w).await;
    for i in 0..CONTACTS {
        let contact = w
            .contact(json!({"code": format!("C-{i}"), "payment_media": [{"identifier": format!("tok-{i}")}]}))
            .await;
        let wallet = contact["wallet_id"].as_str().unwrap().to_string();
        w.topup(&wallet, "50.00").await;
        wallets.push(wallet);
    }
    let network = Network::new(&w.api).await;
    // Every posted purchase of the business is announced to a receiver that outlives the kills.
    let receiver = Receiver::start(Vec::new()).await;
    w.api
        .post(
            &format!("/v1/businesses/{}/webhooks", w.business),
            &w.key,
            &json!({"url": receiver.url, "events": ["purchase.posted"], "secret": "a-secret-of-the-shop"}),
        )
        .await
        .expect(201);
    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let routed: Arc<Mutex<Routed>> = Arc::default();
    let estimated: Arc<Mutex<Vec<Value>>> = Arc::default();
    let requested: Arc<Mutex<Vec<Value>>> = Arc::default();
    let referred: Arc<Mutex<Vec<Value>>> = Arc::default();
    let mut server = Some(server);
    let mut w = w;
    for round in 0..rounds {
        let running = server.take().expect("a running server");
        let api = running.client();
        w = World {
            api: api.clone(),
            ..w
        };
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let w = World {
                api: api.clone(),
                business: w.business.clone(),
                key: w.key.clone(),
                pos_key: w.pos_key.clone(),
            };
            let acknowledged = acknowledged.clone();
            let requested = requested.clone();
            let client_seed: u64 = rng.gen();
            clients.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(client_seed);
                for n in 0.. {
                    let contact = rng.gen_range(0..CONTACTS);
                    if rng.gen_bool(0.2) {
                        // An achievement or a financial statement now and then: acknowledged
                        // ones must survive too.
                        let (path, body) = if rng.gen_bool(0.5) {
                            ("/v1/achievements", json!({"identity": {"contact_code": format!("C-{contact}")},
                                "kind": "social_media", "classification": "like",
                                "external_reference": format!("a{round}-c{client}-n{n}")}))
                        } else {
                            ("/v1/financial-statements", json!({"identity": {"contact_code": format!("C-{contact}")},
                                "classification": format!("s{round}-c{client}-n{n}"), "period": "2026-10",
                                "kpis": [{"name": "balance", "value": n}]}))
                        };
                        let sent = w
                            .api
                            .try_post(path, &w.pos_key, &body)
                            .await;
                        match sent {
                            Ok(answer) if answer.status == 201 => {
                                acknowledged.lock().push(answer.body)
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                        continue;
                    }
                    let total = format!("{}.{:02}", rng.gen_range(1..20), rng.gen_range(0..100));
                    let mut body = basket(json!({"contact_code": format!("C-{contact}")}), &total);
                    body["external_reference"] = json!(format!("r{round}-c{client}-n{n}"));
                    if rng.gen_bool(0.5) {
                        // At the merchant's terminal: settled in the purchase's commit.
                        body["tap_code"] = json!(SETTLING_TAP);
                    }
                    if rng.gen_bool(0.6) {
                        body["spend"] = json!({"amount": "all"});
                    }
                    let purchase = match w.try_purchase(&body).await {
                        Ok(answer) if answer.status == 201 => answer.body,
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    let id = purchase["id"].as_str().unwrap().to_string();
                    acknowledged.lock().push(purchase);
                    if rng.gen_bool(0.15) {
                        // A spend request on what is left of the purchase.
                        let body = json!({"identity": {"contact_code": format!("C-{contact}")},
                            "purchase_id": id, "amount": "all",
                            "external_reference": format!("q{round}-c{client}-n{n}")});
                        let sent = w
                            .api
                            .try_post("/v1/spend-requests", &w.pos_key, &body)
                            .await;
                        match sent {
                            Ok(answer) if answer.status == 201 => requested.lock().push(answer.body),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
            }));
        }
        clients.push(referral_traffic(&w, round, rng.gen(), &referred));
        clients.extend(network.traffic(&api, round, rng.gen(), &routed));
        clients.push(estimate_traffic(
            &w,
            &api,
            round,
            rng.gen(),
            &estimated,
            &acknowledged,
        ));
        let delay = rng.gen_range(300..1200);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        // Kills land while log segments are being prepared and renamed into place too; the
        // counts say how often that path ran in this round.
        let segments = log_segment_counts(&api).await;
        running.kill();
        for client in clients {
            client.await.unwrap();
        }
        println!(
            "round {round}: killed after {delay} ms, {} acknowledged so far, log segments \
             prepared / started empty: {segments}",
            acknowledged.lock().len()
        );

        let (restarted, recovery) = start();
        println!(
            "round {round}: restarted and ready in {} ms",
            recovery.as_millis()
        );
        w = World {
            api: restarted.client(),
            ..w
        };
        let answered = acknowledged.lock().clone();
        check(&w, &answered, &wallets, &merchant).await;
        let answered_estimates = estimated.lock().clone();
        check_estimates(&w, &answered_estimates, &wallets).await;
        check_deliveries(&receiver, &answered).await;
        let answered_requests = requested.lock().clone();
        check_spend_requests(&w, &answered_requests).await;
        let answered_referrals = referred.lock().clone();
        check_referrals(&w, &answered_referrals).await;
        let routed_now = std::mem::take(&mut *routed.lock());
        network.check(&restarted.client(), &w, &routed_now).await;
        server = Some(restarted);
    }
    assert!(
        !acknowledged.lock().is_empty(),
        "the load acknowledged nothing"
    );
    network.claim_some(&server.as_ref().unwrap().client()).await;
    server.take().unwrap().stop();
    // What the kills and restarts left is whole by the offline audit too.
    let audit = crate::audit::audit(&data);
    assert_eq!(audit.code, Some(0), "{}{}", audit.stdout, audit.stderr);
    println!("{}", audit.stdout.trim_end());
}

/// The log's prepared and unprepared segment counters, as "prepared / empty".
async fn log_segment_counts(api: &crate::support::Api) -> String {
    let metrics = api.get("/metrics", "").await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    let count = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map_or("0", str::trim)
            .to_string()
    };
    format!(
        "{} / {}",
        count("rewards_log_segments_prepared_total"),
        count("rewards_log_segments_unprepared_total")
    )
}

async fn check(w: &World, acknowledged: &[Value], wallets: &[String], merchant: &str) {
    crate::support::check_purchases_as_answered(w, acknowledged).await;
    // Nothing is half applied: each stored purchase's ledger entries are exactly its awards and
    // its spend.
    let mut events = w
        .api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", w.business),
            &w.key,
        )
        .await;
    for kind in ["achievement", "spend_request"] {
        events.extend(
            w.api
                .all(
                    &format!("/v1/businesses/{}/events?type={kind}", w.business),
                    &w.key,
                )
                .await,
        );
    }
    let mut entries_by_event: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for wallet in wallets {
        for entry in w
            .api
            .all(&format!("/v1/wallets/{wallet}/journal"), &w.key)
            .await
        {
            if let Some(event) = entry["event_id"].as_str() {
                entries_by_event
                    .entry(event.to_string())
                    .or_default()
                    .push(entry);
            }
        }
        audit_wallet(w, wallet).await;
    }
    for event in &events {
        let id = event["id"].as_str().unwrap();
        let entries = entries_by_event.get(id).cloned().unwrap_or_default();
        let sum = |kind: &str| -> i64 {
            entries
                .iter()
                .filter(|e| e["kind"] == kind)
                .map(|e| cents(&e["amount"]))
                .sum()
        };
        let awarded: i64 = event["awards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| cents(&a["amount"]))
            .sum();
        assert_eq!(sum("award"), awarded, "awards of purchase {id}");
        let spent = event
            .get("spend")
            .and_then(|s| s.get("spent"))
            .map_or(0, cents);
        assert_eq!(sum("spend"), spent, "spend of purchase {id}");
    }
    check_settlement(w, &events, merchant).await;
}

const SETTLING_TAP: &str = "T-SETTLE";

/// A merchant that funds half of its awards, pays 10 % of each as a fee and 0.25 per spend,
/// with a terminal of its own.
async fn setup_settling_merchant(w: &World) -> String {
    w.merchant_with_tap(
        json!({"name": "Settling", "commercial_terms": {"award_contribution_percent": "50",
            "contribution_fee": {"type": "percent", "value": "10"},
            "settlement_fee": {"type": "amount", "value": "0.25"}}}),
        SETTLING_TAP,
    )
    .await
}

/// The merchant's settlement is exactly what its stored events say: each entry was written in
/// its event's commit, none without it.
async fn check_settlement(w: &World, events: &[Value], merchant: &str) {
    // Half away from zero, for amounts in cents that are not negative.
    let share = |cents: i64, percent: i64| (cents * percent + 50) / 100;
    let (mut funded, mut fees, mut spends, mut settlement_fees) = (0i64, 0i64, 0i64, 0i64);
    for event in events {
        if event["organisation_id"] != merchant || event["state"] != "posted" {
            continue;
        }
        for award in event["awards"].as_array().unwrap() {
            funded += share(cents(&award["amount"]), 50);
            fees += share(cents(&award["amount"]), 10);
        }
        let spent = event
            .get("spend")
            .and_then(|s| s.get("spent"))
            .map_or(0, cents);
        if spent > 0 {
            spends += spent;
            settlement_fees += 25;
        }
    }
    assert!(
        funded > 0,
        "no purchase was acknowledged at the settling merchant"
    );
    let report = w
        .api
        .get(
            &format!(
                "/v1/businesses/{}/settlements?merchant_id={merchant}",
                w.business
            ),
            &w.key,
        )
        .await;
    let line = report.expect(200)["items"][0].clone();
    assert_eq!(
        [
            cents(&line["awards_funded"]),
            cents(&line["contribution_fees"]),
            cents(&line["spends"]),
            cents(&line["settlement_fees"]),
        ],
        [funded, fees, spends, settlement_fees],
        "the settlement of {merchant}: {line}"
    );
}

/// One client of estimates with holds: each is then consumed by its purchase, cancelled, or
/// left open. Every acknowledged answer is kept (the estimate's, then its step's).
fn estimate_traffic(
    w: &World,
    api: &Api,
    round: usize,
    seed: u64,
    estimated: &Arc<Mutex<Vec<Value>>>,
    acknowledged: &Arc<Mutex<Vec<Value>>>,
) -> tokio::task::JoinHandle<()> {
    let api = api.clone();
    let pos_key = w.pos_key.clone();
    let estimated = estimated.clone();
    let acknowledged = acknowledged.clone();
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for n in 0.. {
            let contact = rng.gen_range(0..CONTACTS);
            let total = format!("{}.00", rng.gen_range(1..8));
            let mut body = basket(json!({"contact_code": format!("C-{contact}")}), &total);
            body["hold"] = json!(true);
            body["spend"] = json!({"amount": "all"});
            let send = |path: String, body: Value| {
                let api = api.clone();
                let pos_key = pos_key.clone();
                async move { api.try_post(&path, &pos_key, &body).await }
            };
            let answer = match send("/v1/estimates".into(), body).await {
                Ok(answer) if answer.status == 201 => answer.body,
                Ok(_) => continue,
                Err(_) => break,
            };
            let id = answer["id"].as_str().unwrap().to_string();
            estimated.lock().push(answer);
            let step = match rng.gen_range(0..3) {
                0 => {
                    let mut purchase =
                        basket(json!({"contact_code": format!("C-{contact}")}), &total);
                    purchase["estimate_id"] = json!(id);
                    purchase["external_reference"] = json!(format!("E{round}-{n}"));
                    send("/v1/purchases".into(), purchase).await
                }
                1 => send(format!("/v1/estimates/{id}/cancel"), json!({})).await,
                _ => continue,
            };
            match step {
                Ok(answer) if answer.status == 201 => {
                    let mut consumed = answer.body.clone();
                    acknowledged.lock().push(answer.body);
                    consumed["estimate_id"] = json!(id);
                    consumed["state"] = json!("consumed");
                    estimated.lock().push(consumed);
                }
                Ok(answer) if answer.status == 200 => estimated.lock().push(answer.body),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
}

/// Every acknowledged estimate step is there, and every hold in the wallets' journals was
/// resolved exactly once when its estimate is no longer open, and not at all while it is.
async fn check_estimates(w: &World, answered: &[Value], wallets: &[String]) {
    let mut last: std::collections::HashMap<String, (String, Value)> = Default::default();
    for answer in answered {
        let id = answer["estimate_id"]
            .as_str()
            .or(answer["id"].as_str())
            .unwrap()
            .to_string();
        let state = answer["state"].as_str().unwrap().to_string();
        let held = if state == "estimated" {
            answer["spend"]["held"].clone()
        } else {
            last.get(&id).map_or(Value::Null, |(_, held)| held.clone())
        };
        last.insert(id, (state, held));
    }
    let mut states: std::collections::HashMap<String, String> = Default::default();
    for (id, (acknowledged_state, _)) in &last {
        let stored = w.api.get(&format!("/v1/estimates/{id}"), &w.key).await;
        let stored = stored.expect(200)["state"].as_str().unwrap().to_string();
        // A step after the last acknowledged one may have become durable unanswered.
        if acknowledged_state != "estimated" {
            assert_eq!(&stored, acknowledged_state, "estimate {id}");
        }
        states.insert(id.clone(), stored);
    }
    let mut all_holds: std::collections::HashMap<String, i64> = Default::default();
    for wallet in wallets {
        let journal = w
            .api
            .all(&format!("/v1/wallets/{wallet}/journal"), &w.key)
            .await;
        let mut holds: std::collections::HashMap<String, (i64, i64, usize)> = Default::default();
        for entry in &journal {
            let Some(estimate) = entry["estimate_id"].as_str() else {
                continue;
            };
            let slot = holds.entry(estimate.to_string()).or_default();
            match entry["kind"].as_str().unwrap() {
                "hold" => {
                    slot.0 += cents(&entry["amount"]);
                    slot.2 += 1;
                }
                "release" | "capture" => slot.1 += cents(&entry["amount"]),
                other => panic!("a {other} entry names estimate {estimate}"),
            }
        }
        for (estimate, (held, resolved, hold_entries)) in holds {
            assert_eq!(hold_entries, 1, "estimate {estimate} held more than once");
            all_holds.insert(estimate.clone(), held);
            let state = match states.get(&estimate) {
                Some(state) => state.clone(),
                None => {
                    let stored = w
                        .api
                        .get(&format!("/v1/estimates/{estimate}"), &w.key)
                        .await;
                    stored.expect(200)["state"].as_str().unwrap().to_string()
                }
            };
            if state == "estimated" {
                assert_eq!(
                    resolved, 0,
                    "open estimate {estimate} lost money from its hold"
                );
            } else {
                assert_eq!(
                    resolved, held,
                    "{state} estimate {estimate}: hold not resolved once"
                );
            }
        }
    }
    // Every acknowledged hold is in the journal, for the amount answered.
    for (id, (_, held)) in &last {
        if let Some(held) = held.as_str().filter(|h| *h != "0.00") {
            let cents_held = cents(&json!(held));
            assert_eq!(
                all_holds.get(id),
                Some(&cents_held),
                "the hold of estimate {id}"
            );
        }
    }
    println!(
        "estimates: {} acknowledged, {} holds in the journals",
        last.len(),
        all_holds.len()
    );
}

/// Every acknowledged spend request is there as answered, and no purchase had more spent on it
/// than its total.
async fn check_spend_requests(w: &World, answered: &[Value]) {
    let mut on_purchase: std::collections::HashMap<String, i64> = Default::default();
    for answer in answered {
        let id = answer["id"].as_str().unwrap();
        let stored = w.api.get(&format!("/v1/purchases/{id}"), &w.key).await;
        let stored = stored.expect(200);
        assert_eq!(
            stored["spend"]["spent"], answer["spent"],
            "spend request {id}"
        );
        *on_purchase
            .entry(answer["purchase_id"].as_str().unwrap().to_string())
            .or_default() += cents(&answer["spent"]);
    }
    for (purchase, later) in on_purchase {
        let stored = w
            .api
            .get(&format!("/v1/purchases/{purchase}"), &w.key)
            .await;
        let stored = stored.expect(200);
        let own = stored["spend"].get("spent").map_or(0, cents);
        assert!(
            own + later <= cents(&stored["amounts"]["total"]),
            "purchase {purchase}: {own} + {later} spent on it"
        );
    }
}

/// New contacts referred by the first ones, one after another, until the kill.
fn referral_traffic(
    w: &World,
    round: usize,
    seed: u64,
    referred: &Arc<Mutex<Vec<Value>>>,
) -> tokio::task::JoinHandle<()> {
    let w = World {
        api: w.api.clone(),
        business: w.business.clone(),
        key: w.key.clone(),
        pos_key: w.pos_key.clone(),
    };
    let referred = referred.clone();
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for n in 0.. {
            let code = format!("N{round}-{n}");
            let created = w
                .api
                .try_post(
                    &format!("/v1/businesses/{}/contacts", w.business),
                    &w.key,
                    &json!({"code": code}),
                )
                .await;
            let contact = match created {
                Ok(answer) if answer.status == 201 => answer.body,
                Ok(_) => continue,
                Err(_) => break,
            };
            let referrer = rng.gen_range(0..CONTACTS);
            let body = json!({"referrer": {"contact_code": format!("C-{referrer}")},
                "referred": {"contact_code": code},
                "external_reference": format!("f{round}-n{n}")});
            let sent = w.api.try_post("/v1/referrals", &w.pos_key, &body).await;
            match sent {
                Ok(answer) if answer.status == 201 => referred
                    .lock()
                    .push(json!({"event": answer.body, "contact": contact})),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
}

/// Both sides of every acknowledged referral are there after a restart: the referrer's event as
/// answered, and the referred contact referred by it with its own event and award (start-up
/// completes a referral the kill cut between its two commits; time only bounds a failing test).
async fn check_referrals(w: &World, answered: &[Value]) {
    for answer in answered {
        let event = &answer["event"];
        let id = event["id"].as_str().unwrap();
        let stored = w.api.get(&format!("/v1/purchases/{id}"), &w.key).await;
        let stored = stored.expect(200);
        assert_eq!(stored["awards"], event["awards"], "referral {id}");
        assert_eq!(stored["referral"], event["referral"], "referral {id}");
        let contact = answer["contact"]["id"].as_str().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = w.api.get(&format!("/v1/contacts/{contact}"), &w.key).await;
            if now.expect(200)["referred_by"] == event["contact_id"] {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "referral {id}: its referred side was not completed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let theirs = event["referral"]["referred_event_id"].as_str().unwrap();
        let stored = w.api.get(&format!("/v1/purchases/{theirs}"), &w.key).await;
        let stored = stored.expect(200);
        assert_eq!(stored["contact_id"], answer["contact"]["id"]);
        assert_eq!(stored["awards"][0]["amount"], "0.25", "referral {id}");
        audit_wallet(w, answer["contact"]["wallet_id"].as_str().unwrap()).await;
    }
    println!(
        "referrals: both sides of all {} acknowledged referrals there",
        answered.len()
    );
}

/// Every acknowledged purchase is delivered to the receiver after the restart, whatever the
/// kill interrupted (time only bounds a failing test).
async fn check_deliveries(receiver: &Receiver, acknowledged: &[Value]) {
    let wanted: std::collections::HashSet<String> = acknowledged
        .iter()
        .filter(|p| p["type"] == "purchase")
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let delivered: std::collections::HashSet<String> = receiver
            .received
            .lock()
            .iter()
            .filter_map(|r| r.json()["data"]["id"].as_str().map(str::to_string))
            .collect();
        let missing = wanted.difference(&delivered).count();
        if missing == 0 {
            println!(
                "deliveries: all {} acknowledged purchases delivered",
                wanted.len()
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} acknowledged purchases were never delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const TAP: &str = "T-CRASH";

async fn api_setup_taps(w: &World) {
    w.api
        .post(
            &format!("/v1/businesses/{}/taps", w.business),
            &w.key,
            &json!({"code": TAP}),
        )
        .await
        .expect(201);
}

/// What the processor and match-mode POS clients were answered.
#[derive(Default)]
struct Routed {
    /// Processor answers with the bodies that got them.
    transactions: Vec<(Value, Value)>,
    /// POS purchases answered 202 (waiting) or 201 (completed a match).
    pos: Vec<Value>,
}

/// A processor, a match business (2 s window) and a claim business on the shared TAP.
struct Network {
    key: String,
    matching: World,
    claiming: World,
    wallets: Vec<String>,
}

impl Network {
    async fn new(api: &Api) -> Network {
        let key = processor_key(api).await;
        let matching = business(api, "match", TAP, 2).await;
        let claiming = business(api, "claim", TAP, 2).await;
        let mut wallets = Vec::new();
        for i in 0..CONTACTS {
            let contact = matching.contact(json!({"code": format!("M-{i}")})).await;
            wallets.push(contact["wallet_id"].as_str().unwrap().to_string());
        }
        Network {
            key,
            matching,
            claiming,
            wallets,
        }
    }

    /// Two processor clients and two POS clients of the match business, on a few totals so
    /// that matches happen, until the server dies.
    fn traffic(
        &self,
        api: &Api,
        round: usize,
        seed: u64,
        routed: &Arc<Mutex<Routed>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut clients = Vec::new();
        for client in 0..4 {
            let api = api.clone();
            let routed = routed.clone();
            let key = self.key.clone();
            let pos_key = self.matching.pos_key.clone();
            clients.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ client as u64);
                for n in 0.. {
                    let total = format!("{}.00", rng.gen_range(1..6));
                    let contact = rng.gen_range(0..CONTACTS);
                    let (path, key, body) = if client < 2 {
                        let body = json!({"tap_code": TAP,
                            "transaction_reference": format!("P{round}-{client}-{n}"),
                            "total_amount": total,
                            "payment_medium": {"identifier": format!("tok-{contact}")}});
                        ("/v1/processor/purchases", &key, body)
                    } else {
                        let mut body =
                            basket(json!({"contact_code": format!("M-{contact}")}), &total);
                        body["tap_code"] = json!(TAP);
                        body["external_reference"] = json!(format!("Q{round}-{client}-{n}"));
                        ("/v1/purchases", &pos_key, body)
                    };
                    let sent = api.try_post(path, key, &body).await;
                    match sent {
                        Ok(answer) if answer.status == 200 => {
                            routed.lock().transactions.push((body, answer.body))
                        }
                        Ok(answer) if answer.status == 201 || answer.status == 202 => {
                            routed.lock().pos.push(answer.body)
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
        clients
    }

    fn key_of(&self, w: &World, business: &str) -> String {
        if business == self.matching.business {
            self.matching.key.clone()
        } else if business == self.claiming.business {
            self.claiming.key.clone()
        } else {
            assert_eq!(business, w.business);
            w.key.clone()
        }
    }

    async fn check(&self, api: &Api, w: &World, routed: &Routed) {
        // Every acknowledged transaction replays its first answer and routed to all three.
        for (body, answer) in &routed.transactions {
            let again = api.post("/v1/processor/purchases", &self.key, body).await;
            assert!(again.replay, "{body} was not stored");
            assert_eq!(&again.body, answer);
            assert_eq!(answer["routes"].as_array().unwrap().len(), 3);
        }
        // Every route and POS purchase answered is there; those that waited reach an end.
        let mut waiting: Vec<(String, String)> = Vec::new();
        for (_, answer) in &routed.transactions {
            for route in answer["routes"].as_array().unwrap() {
                let business = route["business_id"].as_str().unwrap();
                let id = route["purchase_id"].as_str().unwrap().to_string();
                let key = self.key_of(w, business);
                let stored = api.get(&format!("/v1/purchases/{id}"), &key).await;
                let stored = stored.expect(200);
                match route["outcome"].as_str().unwrap() {
                    "rewarded" | "matched" => assert_eq!(stored["state"], "posted"),
                    "unclaimed" => assert_eq!(stored["claim_code"], route["claim_code"]),
                    "pending_match" => waiting.push((key, id)),
                    other => panic!("unexpected outcome {other}"),
                }
            }
        }
        for answer in &routed.pos {
            let id = answer["id"].as_str().unwrap().to_string();
            if answer["match_state"] == "pending" {
                waiting.push((self.matching.key.clone(), id));
            } else {
                let stored = api
                    .get(&format!("/v1/purchases/{id}"), &self.matching.key)
                    .await;
                assert_eq!(stored.expect(200)["awards"], answer["awards"]);
            }
        }
        for (key, id) in waiting {
            let mut ended = false;
            for _ in 0..200 {
                let stored = api.get(&format!("/v1/purchases/{id}"), &key).await;
                let stored = stored.expect(200).clone();
                if stored["match_state"] != "pending" {
                    ended = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(ended, "purchase {id} still waits after its window");
        }
        // Nothing is rewarded twice: a transaction completes at most one purchase per business.
        for business in [&self.matching, w] {
            let events = api
                .all(
                    &format!("/v1/businesses/{}/events?type=purchase", business.business),
                    &business.key,
                )
                .await;
            let mut seen = std::collections::HashSet::new();
            for event in &events {
                if let Some(reference) = event["transaction_reference"].as_str() {
                    if event["state"] == "posted" && !event["awards"].as_array().unwrap().is_empty()
                    {
                        assert!(
                            seen.insert(reference.to_string()),
                            "{reference} rewarded twice"
                        );
                    }
                }
            }
        }
        for wallet in &self.wallets {
            audit_wallet(
                &World {
                    api: api.clone(),
                    ..self.matching.clone()
                },
                wallet,
            )
            .await;
        }
    }

    /// Claims a few unclaimed purchases of the claim business once each.
    async fn claim_some(&self, api: &Api) {
        let events = api
            .all(
                &format!(
                    "/v1/businesses/{}/events?type=purchase",
                    self.claiming.business
                ),
                &self.claiming.key,
            )
            .await;
        let codes: Vec<String> = events
            .iter()
            .filter_map(|e| e["claim_code"].as_str().map(str::to_string))
            .take(3)
            .collect();
        let claiming = World {
            api: api.clone(),
            ..self.claiming.clone()
        };
        assert!(!codes.is_empty(), "the claim business kept nothing");
        for (i, code) in codes.iter().enumerate() {
            let contact = claiming.contact(json!({"code": format!("K-{i}")})).await;
            let claim = json!({"identity": {"contact_id": contact["id"]}, "claim_code": code});
            api.post("/v1/purchases/claims", &self.claiming.key, &claim)
                .await
                .expect(200);
            api.post("/v1/purchases/claims", &self.claiming.key, &claim)
                .await
                .expect_error(409, "already_claimed");
        }
    }
}
