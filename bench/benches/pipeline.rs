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

/// The cost of an estimate that holds money and of the purchase that captures it, beside a
/// plain purchase that spends all it can (each 1000 at a time, durability `sync`).
fn holds(c: &mut Criterion) {
    let wallets: usize = std::env::var("BENCH_WALLETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let count = 1000;
    let pipeline = InProcess::start(wallets, Durability::Sync);
    pipeline.run(count * 4); // warm the actors; the awards give the wallets money to hold
    let mut group = c.benchmark_group("holds");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(count as u64));
    type Phase = fn(&rewards_bench::inproc::HoldTimes) -> Duration;
    let phases: [(&str, Phase); 3] = [
        ("purchase_spend_all", |t| t.plain),
        ("estimate_with_hold", |t| t.estimates),
        ("purchase_capturing_hold", |t| t.captures),
    ];
    for (name, phase) in phases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| phase(&pipeline.holds(count))).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline, holds);
criterion_main!(benches);
