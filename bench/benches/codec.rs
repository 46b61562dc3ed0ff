//! The record codec: a purchase's event record and its ledger entries, encoded and decoded.
//! An entry is measured as the ledger stores it, in a ledger record (here of one entry).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rewards_actors::events::EventRecord;
use rewards_actors::schema::LedgerEntriesRecord;
use rewards_bench::records::{purchase_entries, purchase_record};
use rewards_storage::codec::{decode, encode};

fn codec(c: &mut Criterion) {
    let record = purchase_record();
    let entries: Vec<LedgerEntriesRecord> = purchase_entries()
        .chunks(1)
        .map(LedgerEntriesRecord::from)
        .collect();
    let encoded = encode(&record);
    let entry_bytes: Vec<Vec<u8>> = entries.iter().map(encode).collect();
    println!(
        "purchase record: {} bytes; its {} ledger entries: {} bytes",
        encoded.len(),
        entries.len(),
        entry_bytes.iter().map(Vec::len).sum::<usize>()
    );
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_purchase_record", |b| {
        b.iter(|| encode(black_box(&record)))
    });
    group.bench_function("decode_purchase_record", |b| {
        b.iter(|| decode::<EventRecord>(black_box(&encoded)).unwrap())
    });
    group.bench_function("encode_ledger_entry", |b| {
        b.iter(|| encode(black_box(&entries[0])))
    });
    group.bench_function("decode_ledger_entry", |b| {
        b.iter(|| decode::<LedgerEntriesRecord>(black_box(&entry_bytes[0])).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
