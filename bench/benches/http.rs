//! One purchase over HTTP: a real server in this process on loopback, one request at a time, so
//! the figure is the round trip of one purchase (parse, actor, durable commit, answer).

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use rewards_bench::served::{post, Served};
use serde_json::json;

fn http(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let served = runtime
        .block_on(async {
            let served = Served::start(&client).await?;
            served.contact(&client, "C-1").await?;
            anyhow::Ok(served)
        })
        .expect("a server with a business");
    let (base, pos_key) = (&served.base, &served.key);
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
                    post(&client, &url, pos_key, body.clone())
                        .await
                        .expect("a purchase");
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, http);
criterion_main!(benches);
