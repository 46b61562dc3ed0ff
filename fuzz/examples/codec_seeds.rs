//! Writes the `codec` fuzz target's seeds: one encoded record of each fuzzed type, as the server
//! would store it.
//!
//! Run it from the repository root with `cargo run --manifest-path fuzz/Cargo.toml --example
//! codec_seeds -- fuzz/seeds/codec` after a change to a record's format. Without valid records
//! to start from, libFuzzer would spend most of a short run rediscovering the bincode layout of
//! a record before it reaches the deeper fields.
//!
//! The same files are golden records in `actors/tests/it/golden/`: a record format that
//! changes gets a new version (and a decoder for the old one), and its new seed is added beside
//! the old one rather than written over it.

use rewards_actors::events::{
    AchievementRecord, AwardLot, AwardRecord, EventRecord, EventState, EventType, KpiRecord,
    PaymentMediumRecord, ReturnsRecord, RouteFacts, SpendRecord, StatementRecord,
};
use rewards_actors::idempotency::StoredResponse;
use rewards_actors::router::records::{PosFacts, RouteRecord, RouteState};
use rewards_actors::schema::{
    ContactRecord, LedgerEntriesRecord, LotsRecord, OpenLotRecord, WalletRecord,
};
use rewards_core::claim::ClaimCode;
use rewards_core::contact::{Contact, ContactRewards, PaymentMedium};
use rewards_core::identity::Identity;
use rewards_core::matching::Side;
use rewards_core::offer::Redemption;
use rewards_core::purchase::{validate_purchase, LineInput, PurchaseContext, PurchaseInput};
use rewards_core::wallet::{AwardInput, Funding, SpendAmount, SpendRequest, Wallet};
use rewards_core::*;
use rewards_storage::codec::{self, Record};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const NOW: Timestamp = Timestamp(1_795_000_000_000);

fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR")
}

/// A two-line basket paid in dollars, so the record carries a conversion and both tax kinds.
fn purchase() -> rewards_core::purchase::ValidatedPurchase {
    let rates = BTreeMap::from([("USD".to_string(), Decimal::new(9, 1))]);
    let input = PurchaseInput {
        currency: Some("USD".into()),
        lines: vec![
            LineInput {
                sku: "MILK-1L".into(),
                name: Some("Milk".into()),
                family: Some("dairy".into()),
                quantity: Decimal::new(2, 0),
                unit_price: Decimal::new(120, 2),
                tax_rate: Some(Decimal::new(19, 2)),
                tax_amount: None,
            },
            LineInput {
                sku: "BREAD".into(),
                name: None,
                family: Some("bakery".into()),
                quantity: Decimal::new(15, 1),
                unit_price: Decimal::new(300, 2),
                tax_rate: None,
                tax_amount: Some(Decimal::new(21, 2)),
            },
        ],
        ..Default::default()
    };
    validate_purchase(
        Identity::Cim("CARD-0001".into()),
        input,
        &PurchaseContext {
            currency: eur(),
            exchange_rates: &rates,
            amount_tolerance: Decimal::new(1, 2),
        },
    )
    .expect("the seed basket is valid")
}

/// A wallet after an instant award that was partly spent, and the entries that did it.
fn wallet_and_entries() -> (Wallet, Vec<rewards_core::wallet::LedgerEntry>) {
    let mut wallet = Wallet::new(
        WalletId::from_bytes([3; 16]),
        ContactId::from_bytes([2; 16]),
        BusinessId::from_bytes([1; 16]),
        eur(),
    );
    let event = EventId::from_bytes([7; 16]);
    let mut entries = wallet
        .award(
            &AwardInput {
                event_id: event,
                lot_id: LotId::for_event(event, 0),
                offer_id: Some(OfferId::from_bytes([4; 16])),
                amount: Money::from_minor(250),
                expires_at: Some(Timestamp(1_800_000_000_000)),
                redeem: Redemption::Instant,
                funding: Funding::Business,
            },
            NOW,
        )
        .expect("award");
    let spent = wallet
        .spend(
            &SpendRequest {
                event_id: event,
                amount: SpendAmount::Exact(Money::from_minor(100)),
                require_full: false,
                limit: Money::from_minor(2000),
                min_spend: None,
                max_spend: None,
                blocked: false,
                hold: None,
            },
            NOW,
        )
        .expect("spend");
    entries.extend(spent.entries);
    (wallet, entries.to_vec())
}

fn event_record() -> EventRecord {
    let purchase = purchase();
    let event = EventId::from_bytes([7; 16]);
    EventRecord {
        id: event,
        event_type: EventType::Purchase,
        business_id: BusinessId::from_bytes([1; 16]),
        contact_id: ContactId::from_bytes([2; 16]),
        wallet_id: WalletId::from_bytes([3; 16]),
        state: EventState::Cancelled,
        origin: "pos".into(),
        performed_on: NOW,
        created_at: NOW,
        classification: Some("grocery".into()),
        reference_number: Some("R-1001".into()),
        tap_code: Some("MALL-7".into()),
        merchant_id: Some(MerchantId::from_bytes([5; 16])),
        external_system: "pos-1".into(),
        external_reference: Some("R-1001".into()),
        identity: Some(purchase.identity.clone()),
        purchase: Some(purchase),
        payment_medium: Some(PaymentMediumRecord {
            identifier: Some("tok_ben".into()),
            brand: Some("visa".into()),
            kind: Some("debit".into()),
        }),
        amount: Some(Money::from_minor(705)),
        awards: vec![AwardRecord {
            offer_id: OfferId::from_bytes([4; 16]),
            amount: Money::from_minor(250),
            redeem: Redemption::Instant,
            expires_at: Some(Timestamp(1_800_000_000_000)),
            // As versions before 7 wrote it, the id whole (see `event_v7.bin` below).
            lot: AwardLot::Stated(LotId::for_event(event, 0)),
            merchant_id: None,
        }],
        spend: Some(SpendRecord {
            requested: Some(Money::from_minor(100)),
            spent: Money::from_minor(100),
            front_end: true,
        }),
        wallet_after: Default::default(),
        spendable_after: Money::from_minor(150),
        returns: ReturnsRecord {
            returned_lines: vec![("BREAD".into(), Decimal::new(5, 1))],
            returned_amount: Money::from_minor(150),
            clawed_back: Money::from_minor(20),
            refunded: Money::from_minor(130),
        },
        cancelled_at: Some(Timestamp(1_795_000_060_000)),
        cancel_reason: Some("duplicate".into()),
        route: Some(RouteFacts {
            match_state: None,
            claim_code: Some("ABCD-EFGH".into()),
            transaction_reference: Some("NET-000123".into()),
            processor_id: Some(ProcessorId::from_bytes([6; 16])),
        }),
        achievement: None,
        statement: None,
        of_event: None,
        later_spent: Money::ZERO,
        referral: None,
    }
}

fn contact() -> Contact {
    Contact {
        id: ContactId::from_bytes([2; 16]),
        business_id: BusinessId::from_bytes([1; 16]),
        code: Some("C-1".into()),
        cim: Some("CARD-0001".into()),
        name: Some("Ben".into()),
        email: Some("ben@example.com".into()),
        phone: None,
        payment_media: vec![PaymentMedium {
            identifier: "tok_ben".into(),
            brand: Some("visa".into()),
            kind: None,
        }],
        gift_cards: vec!["GC-1".into()],
        referral_code: "REF-1".into(),
        wallet_id: WalletId::from_bytes([3; 16]),
        wallet_code: "1234567890123456".into(),
        scheme_ids: vec![SchemeId::from_bytes([8; 16])],
        spend_blocked: true,
        spend_block_reason: Some("fraud review".into()),
        referred_by: Some(ContactId::from_bytes([9; 16])),
        created_at: NOW,
        rewards: ContactRewards::default(),
    }
}

fn route_record() -> RouteRecord {
    RouteRecord {
        id: EventId::from_bytes([10; 16]),
        business_id: BusinessId::from_bytes([1; 16]),
        tap_code: "MALL-7".into(),
        side: Side::Pos,
        state: RouteState::PendingMatch,
        performed_on: NOW,
        created_at: NOW,
        deadline: Timestamp(1_795_000_300_000),
        transaction_reference: Some("NET-000123".into()),
        reference_number: Some("R-1001".into()),
        claim_code: Some(ClaimCode::from_random([1, 2, 3, 4, 5])),
        processor_id: None,
        merchant_id: None,
        payment_medium: None,
        purchase: purchase(),
        pos: Some(PosFacts {
            contact_id: ContactId::from_bytes([2; 16]),
            spend: Some((None, true)),
            classification: None,
            external_system: "pos-1".into(),
            external_reference: Some("R-1001".into()),
            merchant_id: None,
            origin: "pos".into(),
        }),
    }
}

/// Encodes `value` into `dir/name`, after checking that it decodes back to itself (a seed the
/// codec rejects would only slow the fuzzer down).
fn write<T: Record + PartialEq + std::fmt::Debug>(dir: &Path, name: &str, value: &T) -> Vec<u8> {
    let bytes = codec::encode(value);
    let back: T = codec::decode(&bytes).expect("a seed decodes");
    assert_eq!(&back, value, "seed {name} round trips");
    std::fs::write(dir.join(name), &bytes).expect("write a seed");
    bytes
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/seeds/codec".into()));
    std::fs::create_dir_all(&dir).expect("create the seed directory");

    let (wallet, entries) = wallet_and_entries();
    // `wallet_v1.bin` is the same wallet as version 1 wrote it, its lots inline; from version 2
    // each open lot is a record of its own, and `wallet_v2.bin` is that wallet as version 2
    // wrote it (`open_lot_v1.bin` its lot, whole). `wallet_inline.bin` keeps its lots inline,
    // written against each other as version 3 writes them.
    let mut state = WalletRecord::from(&wallet);
    write(&dir, "wallet_inline.bin", &state);
    // The same lots as an event's closed lots.
    write(&dir, "lots.bin", &LotsRecord(state.lots.clone()));
    let first_lot = state.lots.first().cloned().expect("the seed wallet has a lot");
    state.lots.clear();
    state.lots_apart = true;
    write(&dir, "wallet.bin", &state);
    write(
        &dir,
        "open_lot.bin",
        &OpenLotRecord {
            order: 0,
            lot: first_lot,
        },
    );
    write(
        &dir,
        "ledger_entries.bin",
        &LedgerEntriesRecord::from(entries.as_slice()),
    );
    // `event_v4.bin` is a financial statement as version 4 wrote it; `event_v3.bin` an achievement as
    // version 3 wrote it (without the trailing absent statement), and `event.bin` a purchase as
    // version 2 wrote it, before achievements.
    let mut statement = event_record();
    statement.event_type = EventType::FinancialStatement;
    statement.statement = Some(StatementRecord {
        period: "2026-10".into(),
        kpis: vec![KpiRecord {
            name: "balance".into(),
            product_sku: Some("LOAN-1".into()),
            value: Decimal::new(-1_250_075, 2),
        }],
    });
    let mut v4 = codec::encode(&statement);
    assert_eq!(v4.pop(), Some(0), "no referral is one 0 byte at the end");
    assert_eq!(
        (v4.pop(), v4.pop()),
        (Some(0), Some(0)),
        "no later spend and no event acted on are two 0 bytes at the end"
    );
    v4[0] = 4;
    let upgraded: EventRecord = codec::decode(&v4).expect("a version 4 event decodes");
    assert_eq!(upgraded, statement);
    std::fs::write(dir.join("event_v4.bin"), &v4).expect("write a seed");
    // The event of today (version 7): a spend request on an earlier purchase, its award's lot
    // written as its index; `event_v6.bin` is the same as version 6 wrote it, the lot's id
    // whole, and `event_v5.bin` as version 5 wrote it, before referrals.
    let mut spend_request = event_record();
    spend_request.event_type = EventType::SpendRequest;
    spend_request.of_event = Some(EventId::from_bytes([8; 16]));
    spend_request.later_spent = Money::from_minor(120);
    let mut today = spend_request.clone();
    for (index, award) in (0u32..).zip(&mut today.awards) {
        award.lot = AwardLot::OfEvent(index);
    }
    let event = write(&dir, "event_v7.bin", &today);
    let mut v6 = codec::encode(&spend_request);
    v6[0] = 6;
    let upgraded: EventRecord = codec::decode(&v6).expect("a version 6 event decodes");
    assert_eq!(upgraded, spend_request);
    std::fs::write(dir.join("event_v6.bin"), &v6).expect("write a seed");
    let mut v5 = v6.clone();
    assert_eq!(v5.pop(), Some(0), "no referral is one 0 byte at the end");
    v5[0] = 5;
    let upgraded: EventRecord = codec::decode(&v5).expect("a version 5 event decodes");
    assert_eq!(upgraded, spend_request);
    std::fs::write(dir.join("event_v5.bin"), &v5).expect("write a seed");
    let mut achieved = event_record();
    achieved.event_type = EventType::Achievement;
    achieved.achievement = Some(AchievementRecord {
        kind: rewards_core::offer::AchievementKind::SocialMedia,
        product_sku: None,
        platform: Some("instagram".into()),
        profile: Some("@shop".into()),
        action: Some("like".into()),
        url: None,
    });
    let mut v3 = codec::encode(&achieved);
    v3.truncate(v3.len() - 3);
    assert_eq!(
        v3.pop(),
        Some(0),
        "an absent statement is one 0 byte at the end"
    );
    v3[0] = 3;
    let upgraded: EventRecord = codec::decode(&v3).expect("a version 3 event decodes");
    assert_eq!(upgraded, achieved);
    std::fs::write(dir.join("event_v3.bin"), &v3).expect("write a seed");
    let mut v2 = codec::encode(&event_record());
    v2.truncate(v2.len() - 3);
    assert_eq!(
        (v2.pop(), v2.pop()),
        (Some(0), Some(0)),
        "an absent statement and an absent achievement are two 0 bytes at the end"
    );
    v2[0] = 2;
    let upgraded: EventRecord = codec::decode(&v2).expect("a version 2 event decodes");
    assert_eq!(upgraded, event_record());
    std::fs::write(dir.join("event.bin"), &v2).expect("write a seed");
    write(&dir, "contact.bin", &ContactRecord::from(&contact()));
    write(&dir, "route.bin", &route_record());
    write(
        &dir,
        "stored_response.bin",
        &StoredResponse {
            body_hash: [0xab; 32],
            status: 201,
            body: br#"{"id":"0707","state":"posted"}"#.to_vec(),
        },
    );

    // A version 1 event (before `route` was added) takes the upgrade path of `decode_old`. It is
    // an event without a route, written with version 1 and without the trailing absent-route byte.
    let mut old = event_record();
    old.route = None;
    let mut v1 = codec::encode(&old);
    v1.truncate(v1.len() - 3);
    assert_eq!(
        (v1.pop(), v1.pop(), v1.pop()),
        (Some(0), Some(0), Some(0)),
        "an absent statement, achievement and route are three 0 bytes at the end"
    );
    v1[0] = 1;
    let upgraded: EventRecord = codec::decode(&v1).expect("a version 1 event decodes");
    assert_eq!(upgraded, old);
    std::fs::write(dir.join("event_v1.bin"), &v1).expect("write a seed");

    // A log record as a cluster's owner publishes it, compressed (the events of a batch repeat
    // their business, currency and texts).
    let record = event.repeat(4);
    let compressed =
        rewards_storage::replicated::compress(&record).expect("repeated events compress");
    std::fs::write(dir.join("log_record_lz4.bin"), &compressed).expect("write a seed");

    println!(
        "wrote the seeds to {} (the event is {} bytes)",
        dir.display(),
        event.len()
    );
}
