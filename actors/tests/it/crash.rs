//! kill -9 under load: every acknowledged purchase survives whole, nothing is half applied, and
//! every wallet equals its ledger. `REWARDS_CRASH_ROUNDS` sets the number of rounds (default 3).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::{audit_wallet, basket, cents, world, Server, World};

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

    let server = Server::start(dir.path(), "sync");
    let w = world(&server.client(), "EUR").await;
    w.offer(json!({"name": "instant 10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    w.offer(json!({"name": "deferred 1", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "deferred"}))
        .await;
    let mut wallets = Vec::new();
    for i in 0..CONTACTS {
        let contact = w.contact(json!({"code": format!("C-{i}")})).await;
        let wallet = contact["wallet_id"].as_str().unwrap().to_string();
        w.topup(&wallet, "50.00").await;
        wallets.push(wallet);
    }
    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
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
            let client_seed: u64 = rng.gen();
            clients.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(client_seed);
                for n in 0.. {
                    let contact = rng.gen_range(0..CONTACTS);
                    let total = format!("{}.{:02}", rng.gen_range(1..20), rng.gen_range(0..100));
                    let mut body = basket(json!({"contact_code": format!("C-{contact}")}), &total);
                    body["external_reference"] = json!(format!("r{round}-c{client}-n{n}"));
                    if rng.gen_bool(0.6) {
                        body["spend"] = json!({"amount": "all"});
                    }
                    match w
                        .api
                        .send(
                            reqwest::Method::POST,
                            "/v1/purchases",
                            Some(&w.pos_key),
                            Some(serde_json::to_vec(&body).unwrap()),
                        )
                        .await
                    {
                        Ok(answer) if answer.status == 201 => acknowledged.lock().push(answer.body),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
        let delay = rng.gen_range(300..1200);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        running.kill();
        for client in clients {
            client.await.unwrap();
        }
        println!(
            "round {round}: killed after {delay} ms, {} acknowledged so far",
            acknowledged.lock().len()
        );

        let restarted = Server::start(dir.path(), "sync");
        w = World {
            api: restarted.client(),
            ..w
        };
        let answered = acknowledged.lock().clone();
        check(&w, &answered, &wallets).await;
        server = Some(restarted);
    }
    assert!(
        !acknowledged.lock().is_empty(),
        "the load acknowledged nothing"
    );
    server.take().unwrap().stop();
}

async fn check(w: &World, acknowledged: &[Value], wallets: &[String]) {
    // Every acknowledged purchase is there, as it was answered.
    for answer in acknowledged {
        let id = answer["id"].as_str().unwrap();
        let stored = w.api.get(&format!("/v1/purchases/{id}"), &w.key).await;
        let stored = stored.expect(200);
        assert_eq!(stored["awards"], answer["awards"], "purchase {id}");
        assert_eq!(stored["spend"], answer["spend"], "purchase {id}");
    }
    // Nothing is half applied: each stored purchase's ledger entries are exactly its awards and
    // its spend.
    let events = w
        .api
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", w.business),
            &w.key,
        )
        .await;
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
        let spent = event["spend"].get("spent").map_or(0, cents);
        assert_eq!(sum("spend"), spent, "spend of purchase {id}");
    }
}
