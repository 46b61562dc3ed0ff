//! The in-process pipeline, no HTTP: purchases (30% with spends) validated, handed to wallet
//! actors, evaluated against 10 offers and committed durably (`SyncData`), 1000 at a time.
//! `BENCH_WALLETS` sets the number of wallets (default 10,000).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rewards_bench::inproc::InProcess;
use rewards_storage::Durability;

fn pipeline(c: &mut Criterion) {
    let wallets: usize = std::env::var("BENCH_WALLETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let purchases = 1000;
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(purchases as u64));
    for (name, durability) in [
        ("sync", Durability::Sync),
        ("buffered", Durability::Buffered),
    ] {
        let pipeline = InProcess::start(wallets, durability);
        pipeline.run(purchases); // warm the wallet actors
        group.bench_function(format!("purchases_{name}_{wallets}_wallets"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| pipeline.run(purchases)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
