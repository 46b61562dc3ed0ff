//! Fixtures shared by the benchmarks: a business's offers and a typical basket.

// The server runs on mimalloc; so do its benchmarks. The `count-allocs` feature wraps it in a
// counter (for `alloc-probe`); `system-alloc` leaves the system's allocator in place, so that
// `valgrind --tool=dhat` sees every allocation and names where it was made.
#[cfg(not(any(feature = "count-allocs", feature = "system-alloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "count-allocs", not(feature = "system-alloc")))]
#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

#[cfg(feature = "count-allocs")]
pub mod counting;

use rewards_core::offer::*;
use rewards_core::purchase::{LineInput, PurchaseInput};
use rewards_core::*;
use rust_decimal::Decimal;
use std::sync::Arc;

/// `count` active offers of every award kind, half with SKU or family conditions, so the engine
/// does the work a real catalogue makes it do.
pub fn offers(count: usize) -> Vec<Arc<Offer>> {
    (0..count)
        .map(|i| {
            let conditions = SpendConditions {
                families: if i % 4 == 0 {
                    vec!["dairy".into()]
                } else {
                    Vec::new()
                },
                skus: if i % 4 == 1 {
                    vec![format!("SKU-{}", i % 7)]
                } else {
                    Vec::new()
                },
                classifications: if i % 5 == 2 {
                    vec!["grocery".into()]
                } else {
                    Vec::new()
                },
                min_amount: if i % 3 == 0 {
                    Some(Money::from_minor(200))
                } else {
                    None
                },
                days_of_week: if i % 6 == 5 {
                    vec![1, 2, 3, 4, 5]
                } else {
                    Vec::new()
                },
                ..Default::default()
            };
            let kind = match i % 4 {
                0 => AwardKind::Percent {
                    percent: Decimal::new(5, 0),
                },
                1 => AwardKind::Fixed {
                    amount: Money::from_minor(100),
                },
                2 => AwardKind::PerUnit {
                    amount: Money::from_minor(10),
                },
                _ => AwardKind::Step {
                    step: Money::from_minor(1000),
                    amount: Money::from_minor(50),
                },
            };
            Arc::new(Offer {
                id: OfferId::from_bytes([(i % 251) as u8 + 1; 16]),
                business_id: BusinessId::NIL,
                name: format!("offer {i}"),
                scheme_id: None,
                active: true,
                priority: i as i32,
                created_seq: i as u64,
                merchant_id: None,
                from: None,
                to: None,
                goal: Goal::Spend(conditions),
                award: Award {
                    kind,
                    cap: Some(Money::from_minor(1000)),
                },
                validity: Validity::Days(30),
                redeem: if i % 2 == 0 {
                    Redemption::Instant
                } else {
                    Redemption::Deferred
                },
                limits: Limits::default(),
            })
        })
        .collect()
}

/// A five-line grocery basket.
pub fn basket() -> PurchaseInput {
    let line = |sku: &str, family: &str, qty: i64, price: i64| LineInput {
        sku: sku.into(),
        name: None,
        family: Some(family.into()),
        quantity: Decimal::new(qty, 0),
        unit_price: Decimal::new(price, 2),
        tax_rate: Some(Decimal::new(19, 2)),
        tax_amount: None,
    };
    PurchaseInput {
        lines: vec![
            line("MILK-1L", "dairy", 2, 120),
            line("SKU-1", "bakery", 1, 300),
            line("SKU-3", "produce", 3, 99),
            line("CHEESE", "dairy", 1, 450),
            line("SKU-5", "drinks", 6, 65),
        ],
        ..Default::default()
    }
}

pub mod inproc;
pub mod records;
pub mod served;

/// Ten offers of every award kind as API JSON, for the benchmarks that go through HTTP.
pub fn http_offers() -> Vec<serde_json::Value> {
    use serde_json::json;
    (0..10)
        .map(|i| match i % 4 {
            0 => json!({"name": format!("percent {i}"), "goal": "spend", "conditions": {"families": ["dairy"]}, "award": {"kind": "percent", "percent": "5"}, "redeem": "instant"}),
            1 => json!({"name": format!("fixed {i}"), "goal": "spend", "conditions": {"min_amount": "2.00"}, "award": {"kind": "fixed", "amount": "0.10"}, "redeem": "deferred"}),
            2 => json!({"name": format!("per unit {i}"), "goal": "spend", "award": {"kind": "per_unit", "amount": "0.01"}, "redeem": "instant"}),
            _ => json!({"name": format!("step {i}"), "goal": "spend", "award": {"kind": "step", "step": "1.00", "amount": "0.01"}, "redeem": "deferred"}),
        })
        .collect()
}
