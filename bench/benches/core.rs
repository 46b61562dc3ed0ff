//! The domain core's hot path: one purchase validated and evaluated against 10 and 100 active
//! offers, and one wallet spend.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rewards_bench::{basket, offers};
use rewards_core::business::RewardResolution;
use rewards_core::engine::{
    evaluate, ContactFacts, EngineContext, EventFacts, OfferCounters, PurchaseFacts, Unlimited,
};
use rewards_core::identity::Identity;
use rewards_core::offer::Redemption;
use rewards_core::purchase::{validate_purchase, PurchaseContext};
use rewards_core::wallet::{AwardInput, Funding, SpendAmount, SpendRequest, Wallet};
use rewards_core::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn purchase_evaluation(c: &mut Criterion) {
    let currency = Currency::parse("EUR").unwrap();
    let rates = BTreeMap::new();
    let context = PurchaseContext {
        currency,
        exchange_rates: &rates,
        amount_tolerance: Decimal::new(1, 2),
    };
    let input = basket();
    let now = Timestamp::parse_rfc3339("2026-11-23T10:00:00Z").unwrap();
    let counters = OfferCounters::default();
    let mut group = c.benchmark_group("purchase_evaluation");
    group.throughput(Throughput::Elements(1));
    group.bench_function("validation_only", |b| {
        b.iter(|| {
            validate_purchase(
                Identity::ContactCode("C-1".into()),
                black_box(&input).clone(),
                &context,
            )
            .unwrap()
        })
    });
    for count in [10, 100] {
        let offers = offers(count);
        group.bench_function(format!("{count}_offers"), |b| {
            b.iter(|| {
                let purchase = validate_purchase(
                    Identity::ContactCode("C-1".into()),
                    black_box(&input).clone(),
                    &context,
                )
                .unwrap();
                let facts = PurchaseFacts {
                    performed_on: now,
                    classification: Some("grocery"),
                    merchant_id: None,
                    tap_code: Some("T-1"),
                    payment_brand: Some("visa"),
                    lines: &purchase.lines,
                    total: purchase.amounts.total,
                };
                let engine = EngineContext {
                    currency,
                    resolution: RewardResolution::All,
                    schemes: &[],
                    now,
                };
                let contact = ContactFacts {
                    tier: None,
                    scheme_ids: &[],
                    counters: &counters,
                };
                black_box(evaluate(
                    &engine,
                    &EventFacts::Purchase(facts),
                    &contact,
                    &offers,
                    &mut Unlimited,
                ))
            })
        });
    }
    group.finish();
}

fn wallet_spend(c: &mut Criterion) {
    let currency = Currency::parse("EUR").unwrap();
    let now = Timestamp(1_000_000);
    let mut wallet = Wallet::new(WalletId::NIL, ContactId::NIL, BusinessId::NIL, currency);
    for i in 0..5u32 {
        let event = EventId::from_bytes([i as u8 + 1; 16]);
        wallet
            .award(
                &AwardInput {
                    event_id: event,
                    lot_id: LotId::for_event(event, 0),
                    offer_id: None,
                    amount: Money::from_minor(100_000),
                    expires_at: Some(Timestamp(10_000_000 + i64::from(i))),
                    redeem: Redemption::Deferred,
                    funding: Funding::Business,
                },
                now,
            )
            .unwrap();
    }
    wallet
        .top_up(Money::from_minor(100_000), EventId::NIL, now)
        .unwrap();
    let request = SpendRequest {
        event_id: EventId::NIL,
        amount: SpendAmount::Exact(Money::from_minor(250)),
        require_full: true,
        limit: Money::from_minor(1000),
        min_spend: None,
        max_spend: None,
        blocked: false,
        hold: None,
    };
    let mut group = c.benchmark_group("wallet");
    group.throughput(Throughput::Elements(1));
    group.bench_function("spend", |b| {
        b.iter_batched_ref(
            || wallet.clone(),
            |w| black_box(w.spend(&request, now).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, purchase_evaluation, wallet_spend);
criterion_main!(benches);
