//! One purchase over HTTP: a real server in this process on loopback, one request at a time, so
//! the figure is the round trip of one purchase (parse, actor, durable commit, answer).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rewards_actors::config::Config;
use rewards_storage::Durability;
use serde_json::{json, Value};

const ADMIN: &str = "rk_bench_operator";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: Value) -> Value {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

fn http(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        durability: Durability::Sync,
        ..Config::default()
    };
    std::thread::spawn(move || rewards_actors::server::run(config, Some(ADMIN.into())));
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let pos_key = runtime.block_on(async {
        for _ in 0..100 {
            if client
                .get(format!("{base}/health/ready"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let business = post(
            &client,
            &format!("{base}/v1/businesses"),
            ADMIN,
            json!({"name": "b", "currency": "EUR"}),
        )
        .await;
        let b = business["id"].as_str().unwrap().to_string();
        let key = post(
            &client,
            &format!("{base}/v1/keys"),
            ADMIN,
            json!({"role": "business", "business_id": b}),
        )
        .await;
        let key = key["key"].as_str().unwrap().to_string();
        for offer in rewards_bench::http_offers() {
            post(
                &client,
                &format!("{base}/v1/businesses/{b}/offers"),
                &key,
                offer,
            )
            .await;
        }
        post(
            &client,
            &format!("{base}/v1/businesses/{b}/contacts"),
            &key,
            json!({"code": "C-1"}),
        )
        .await;
        key
    });
    let body = json!({
        "identity": {"contact_code": "C-1"},
        "lines": [
            {"sku": "MILK-1L", "family": "dairy", "quantity": "2", "unit_price": "1.20", "tax_rate": "0.19"},
            {"sku": "BREAD", "family": "bakery", "quantity": "1", "unit_price": "3.00", "tax_amount": "0.21"}
        ],
        "spend": {"amount": "all"},
    });
    let url = format!("{base}/v1/purchases");
    let mut group = c.benchmark_group("http");
    group.sample_size(20);
    group.bench_function("purchase_round_trip_sync", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    post(&client, &url, &pos_key, body.clone()).await;
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, http);
criterion_main!(benches);
