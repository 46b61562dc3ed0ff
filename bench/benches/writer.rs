//! The group-commit writer with `SyncData`: N write sets of a purchase's size handed over at once,
//! committed with one fsync per batch; throughput per write set at N = 1, 10, 100, 1000.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rewards_actors::schema::LedgerEntriesRecord;
use rewards_bench::records::{purchase_entries, purchase_record};
use rewards_storage::{Durability, Space, Store, StoreOptions, WriteSet};

fn purchase_set(n: u64, record: &[u8], entries: &[Vec<u8>]) -> WriteSet {
    let mut set = WriteSet::new();
    let mut key = n.to_be_bytes().to_vec();
    key.extend_from_slice(&[0; 8]);
    set.put_raw(Space::Events, key.clone(), record.to_vec());
    for (i, entry) in entries.iter().enumerate() {
        let mut ledger_key = key.clone();
        ledger_key.push(i as u8);
        set.put_raw(Space::Ledger, ledger_key, entry.clone());
    }
    set.put_raw(Space::Wallets, key, record[..200].to_vec());
    set
}

fn writer(c: &mut Criterion) {
    let record = rewards_storage::codec::encode(&purchase_record());
    let entries: Vec<Vec<u8>> = purchase_entries()
        .chunks(1)
        .map(|entry| rewards_storage::codec::encode(&LedgerEntriesRecord::from(entry)))
        .collect();
    let mut group = c.benchmark_group("writer_sync");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for batch in [1usize, 10, 100, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreOptions {
                durability: Durability::Sync,
                queue_capacity: 4096,
                max_batch_sets: batch,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let mut next = 0u64;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                for _ in 0..iters {
                    let (tx, rx) = mpsc::channel();
                    for _ in 0..batch {
                        next += 1;
                        let tx = tx.clone();
                        store
                            .submit(
                                purchase_set(next, &record, &entries),
                                Box::new(move |r| tx.send(r).expect("waiting")),
                            )
                            .unwrap();
                    }
                    for _ in 0..batch {
                        rx.recv().unwrap().unwrap();
                    }
                }
                started.elapsed()
            })
        });
        let stats = store.writer_stats();
        println!(
            "batch {batch}: {} sets in {} commits ({:.1} sets per fsync)",
            stats.sets,
            stats.commits,
            stats.sets as f64 / stats.commits.max(1) as f64
        );
        store.close();
    }
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
