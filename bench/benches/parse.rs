//! The HTTP edge's work on a purchase body before it reaches a wallet: parsing the JSON into
//! the request type (with the body-wide string scan) and the same bytes through plain
//! serde_json, the floor of what parsing can cost with these types.

use criterion::{criterion_group, criterion_main, Criterion};
use rewards_actors::dto::purchase::PurchaseBody;
use rewards_actors::http::json::parse;
use std::hint::black_box;

const BODY: &[u8] = br#"{"identity":{"contact_code":"C-000123"},"external_reference":"R-0001234567","lines":[{"sku":"MILK-1L","family":"dairy","quantity":"2","unit_price":"1.20","tax_rate":"0.19"},{"sku":"BREAD-WHITE","family":"bakery","quantity":"1","unit_price":"2.50","tax_rate":"0.07"},{"sku":"APPLE-KG","family":"fruit","quantity":"1.25","unit_price":"3.10","tax_rate":"0.07"}],"spend":{"amount":"all"}}"#;

fn parse_purchase(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.bench_function("purchase_body_three_lines", |b| {
        b.iter(|| {
            let body: PurchaseBody = parse(black_box(BODY)).expect("a valid body");
            black_box(body)
        })
    });
    group.bench_function("plain_serde_json_three_lines", |b| {
        b.iter(|| {
            let body: PurchaseBody = serde_json::from_slice(black_box(BODY)).expect("a valid body");
            black_box(body)
        })
    });
    group.finish();
}

criterion_group!(benches, parse_purchase);
criterion_main!(benches);
