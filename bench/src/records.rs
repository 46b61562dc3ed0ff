//! A purchase's records as the server writes them, for the codec and writer benchmarks.

use rewards_actors::events::{EventRecord, EventState, EventType, ReturnsRecord, SpendRecord};
use rewards_core::identity::Identity;
use rewards_core::purchase::{validate_purchase, PurchaseContext};
use rewards_core::wallet::{AwardInput, Funding, LedgerEntry, SpendAmount, SpendRequest, Wallet};
use rewards_core::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

use crate::basket;

/// The event record of a five-line purchase with two awards and a spend.
pub fn purchase_record() -> EventRecord {
    let currency = Currency::parse("EUR").expect("EUR");
    let rates = BTreeMap::new();
    let purchase = validate_purchase(
        Identity::ContactCode("C-1".into()),
        basket(),
        &PurchaseContext {
            currency,
            exchange_rates: &rates,
            amount_tolerance: Decimal::new(1, 2),
        },
    )
    .expect("valid basket");
    let now = Timestamp(1_795_000_000_000);
    EventRecord {
        id: EventId::from_bytes([7; 16]),
        event_type: EventType::Purchase,
        business_id: BusinessId::from_bytes([1; 16]),
        contact_id: ContactId::from_bytes([2; 16]),
        wallet_id: WalletId::from_bytes([3; 16]),
        state: EventState::Posted,
        origin: "pos".into(),
        performed_on: now,
        created_at: now,
        classification: Some("grocery".into()),
        reference_number: Some("R-1001".into()),
        tap_code: Some("T-1".into()),
        merchant_id: None,
        external_system: "pos-1".into(),
        external_reference: Some("R-1001".into()),
        identity: Some(purchase.identity.clone()),
        purchase: Some(purchase),
        payment_medium: None,
        amount: None,
        awards: Vec::new(),
        spend: Some(SpendRecord {
            requested: None,
            spent: Money::from_minor(250),
            front_end: true,
        }),
        wallet_after: Default::default(),
        spendable_after: Money::ZERO,
        returns: ReturnsRecord::default(),
        cancelled_at: None,
        cancel_reason: None,
        route: None,
        achievement: None,
        statement: None,
        of_event: None,
        later_spent: Money::ZERO,
        referral: None,
    }
}

/// The ledger entries of an instant award spent on its purchase.
pub fn purchase_entries() -> Vec<LedgerEntry> {
    let currency = Currency::parse("EUR").expect("EUR");
    let mut wallet = Wallet::new(
        WalletId::from_bytes([3; 16]),
        ContactId::from_bytes([2; 16]),
        BusinessId::from_bytes([1; 16]),
        currency,
    );
    let event = EventId::from_bytes([7; 16]);
    let now = Timestamp(1_795_000_000_000);
    let mut entries = wallet
        .award(
            &AwardInput {
                event_id: event,
                lot_id: LotId::for_event(event, 0),
                offer_id: None,
                amount: Money::from_minor(250),
                expires_at: None,
                redeem: rewards_core::offer::Redemption::Instant,
                funding: Funding::Business,
            },
            now,
        )
        .expect("award");
    entries.extend(
        wallet
            .spend(
                &SpendRequest {
                    event_id: event,
                    amount: SpendAmount::All,
                    require_full: false,
                    limit: Money::from_minor(2000),
                    min_spend: None,
                    max_spend: None,
                    blocked: false,
                    hold: None,
                },
                now,
            )
            .expect("spend")
            .entries,
    );
    entries.into_vec()
}
