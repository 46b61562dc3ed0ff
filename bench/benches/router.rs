//! The router path beside the POS path, in one run: processor purchases on TAPs shared by
//! three businesses (award with a known card: rewarded; match: waits; claim: kept unclaimed),
//! against single POS purchases, 1000 at a time, durable (`SyncData`). `BENCH_WALLETS` sets
//! the number of wallets (default 10,000).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rewards_bench::inproc::InProcess;
use rewards_storage::Durability;

fn router(c: &mut Criterion) {
    let wallets: usize = std::env::var("BENCH_WALLETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let batch = 1000;
    let mut group = c.benchmark_group("router");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(batch as u64));
    let pipeline = InProcess::start(wallets, Durability::Sync);
    pipeline.run(batch); // warm the wallet actors
    group.bench_function(format!("pos_purchases_{wallets}_wallets"), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| pipeline.run(batch)).sum())
    });
    group.bench_function(
        format!("processor_purchases_3_businesses_{wallets}_wallets"),
        |b| b.iter_custom(|iters| (0..iters).map(|_| pipeline.route(batch)).sum()),
    );
    group.finish();
}

criterion_group!(benches, router);
criterion_main!(benches);
