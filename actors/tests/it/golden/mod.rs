//! Stores written by earlier builds still open: the stored format of every record type and every
//! key layout of `rewards_actors::schema`, pinned by golden bytes.
//!
//! `records.rs` and `keys.rs` hold fixed examples (each optional field present in one and absent
//! in another, each enum variant that carries data at least once) with their encodings as hex,
//! taken from the build before the schema module existed. A record must encode to exactly its
//! golden bytes and decode from them to exactly its example; a key must be exactly its bytes.
//! A change to a layout cannot pass unnoticed: it needs a new format version, a decoder for the
//! old one, and new golden bytes beside the old.
//!
//! The tests here also read the codec fuzz target's seeds (`fuzz/seeds/codec/`: `wallet.bin`,
//! `wallet_inline.bin` and `open_lot.bin` are of today, `wallet_v2.bin` and `open_lot_v1.bin`
//! their lots written whole, `wallet_v1.bin` one before lots apart; `event_v7.bin` is an event
//! of today, `event_v6.bin` the same with its awards' lots whole, `event_v5.bin` one before
//! referrals, `event_v4.bin` one before spend requests, `event_v3.bin` one before financial
//! statements, `event.bin` one before achievements and `event_v1.bin` one before route facts),
//! which are records as the server wrote them.

mod keys;
mod records;

use std::fmt::Debug;
use std::path::PathBuf;

use rewards_actors::events::{AwardLot, EventRecord};
use rewards_actors::idempotency::StoredResponse;
use rewards_actors::router::records::RouteRecord;
use rewards_actors::schema::{ContactRecord, LedgerEntriesRecord, OpenLotRecord, WalletRecord};
use rewards_core::*;
use rewards_storage::codec::{self, Record};
use rewards_storage::CodecError;
use uuid::Uuid;

const NOW: Timestamp = Timestamp(1_795_000_000_000);
const LATER: Timestamp = Timestamp(1_800_000_000_000);
const BUSINESS: BusinessId = BusinessId(Uuid::from_bytes([1; 16]));
const CONTACT: ContactId = ContactId(Uuid::from_bytes([2; 16]));
const WALLET: WalletId = WalletId(Uuid::from_bytes([3; 16]));
const OFFER: OfferId = OfferId(Uuid::from_bytes([4; 16]));
const MERCHANT: MerchantId = MerchantId(Uuid::from_bytes([5; 16]));
const PROCESSOR: ProcessorId = ProcessorId(Uuid::from_bytes([6; 16]));
const EVENT: EventId = EventId(Uuid::from_bytes([7; 16]));
const SCHEME: SchemeId = SchemeId(Uuid::from_bytes([8; 16]));
const REFERRER: ContactId = ContactId(Uuid::from_bytes([9; 16]));
const ROUTE: EventId = EventId(Uuid::from_bytes([10; 16]));
const ESTIMATE: EstimateId = EstimateId(Uuid::from_bytes([11; 16]));
const KEY: KeyId = KeyId(Uuid::from_bytes([12; 16]));
const LOT: LotId = LotId(Uuid::from_bytes([13; 16]));
const OTHER_LOT: LotId = LotId(Uuid::from_bytes([14; 16]));
const TAP: TapId = TapId(Uuid::from_bytes([15; 16]));
const WEBHOOK: WebhookId = WebhookId(Uuid::from_bytes([16; 16]));
const DELIVERY: WebhookId = WebhookId(Uuid::from_bytes([17; 16]));

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn money(minor: i64) -> Money {
    Money::from_minor(minor)
}

/// Each example encodes to its golden bytes, and the golden bytes decode to the example.
fn check<T: Record + PartialEq + Debug>(examples: &[T], golden: &[&str]) {
    let name = std::any::type_name::<T>();
    assert_eq!(
        examples.len(),
        golden.len(),
        "{name}: one encoding per example"
    );
    for (i, (example, golden)) in examples.iter().zip(golden).enumerate() {
        assert_eq!(
            hex::encode(codec::encode(example)),
            *golden,
            "{name} example {i} is written differently: give the record a new version"
        );
        let bytes = hex::decode(golden).unwrap();
        let decoded: T = codec::decode(&bytes)
            .unwrap_or_else(|e| panic!("{name} example {i} no longer decodes: {e}"));
        assert_eq!(&decoded, example, "{name} example {i} decodes differently");
    }
}

/// Golden bytes of an older format still decode, through its `decode_old` arm, to the example.
fn check_old<T: Record + PartialEq + Debug>(examples: &[T], golden: &[&str]) {
    let name = std::any::type_name::<T>();
    assert_eq!(
        examples.len(),
        golden.len(),
        "{name}: one encoding per example"
    );
    for (i, (example, golden)) in examples.iter().zip(golden).enumerate() {
        let bytes = hex::decode(golden).unwrap();
        assert!(
            bytes[0] < T::VERSION,
            "{name} example {i} is of an older version"
        );
        let decoded: T = codec::decode(&bytes)
            .unwrap_or_else(|e| panic!("{name} old example {i} no longer decodes: {e}"));
        assert_eq!(
            &decoded, example,
            "{name} old example {i} decodes differently"
        );
    }
}

/// Golden bytes with a version byte that their type does not know are refused as such.
fn check_unknown_versions<T: Record + Debug>(golden: &[&str]) {
    let name = std::any::type_name::<T>();
    for golden in golden {
        let mut bytes = hex::decode(golden).unwrap();
        for version in [0, T::VERSION + 1, u8::MAX] {
            bytes[0] = version;
            match codec::decode::<T>(&bytes) {
                Err(CodecError::UnknownVersion { found, expected }) => {
                    assert_eq!((found, expected), (version, T::VERSION), "{name}")
                }
                other => panic!("{name} with version {version}: {other:?}"),
            }
        }
    }
}

fn seed(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/codec")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes a seed and checks it is what this build writes for the same value.
fn current<T: Record + Debug>(name: &str) -> T {
    let bytes = seed(name);
    let value: T = codec::decode(&bytes).unwrap_or_else(|e| {
        panic!(
            "{name} no longer decodes as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(
        codec::encode(&value),
        bytes,
        "{name}: this build writes {} differently; give the record a new version",
        std::any::type_name::<T>()
    );
    value
}

#[test]
fn the_codec_seeds_read_and_write_as_they_were_written() {
    let wallet: WalletRecord = current("wallet.bin");
    assert!(wallet.lots.is_empty(), "a wallet's lots are stored apart");
    let lot: OpenLotRecord = current("open_lot.bin");
    let inline: WalletRecord = current("wallet_inline.bin");
    assert_eq!(inline.lots.first(), Some(&lot.lot));
    // Written by versions 1 and 2, their lots whole: read through their old arms.
    let v1: WalletRecord =
        codec::decode(&seed("wallet_v1.bin")).expect("a version 1 wallet decodes");
    assert_eq!(v1, inline);
    let v2: WalletRecord =
        codec::decode(&seed("wallet_v2.bin")).expect("a version 2 wallet decodes");
    assert_eq!(v2, wallet);
    let lot_v1: OpenLotRecord =
        codec::decode(&seed("open_lot_v1.bin")).expect("a version 1 open lot decodes");
    assert_eq!(lot_v1, lot);
    assert_eq!(
        WalletRecord {
            lots: Vec::new(),
            lots_apart: true,
            ..v1
        },
        wallet
    );
    let entries: LedgerEntriesRecord = current("ledger_entries.bin");
    assert!(!entries.0.is_empty());
    // Written by version 1, every entry whole: read through its old arm.
    let v1: LedgerEntriesRecord =
        codec::decode(&seed("ledger_entries_v1.bin")).expect("a version 1 ledger record decodes");
    assert_eq!(v1, entries);
    let today: EventRecord = current("event_v7.bin");
    assert!(today
        .awards
        .iter()
        .all(|a| matches!(a.lot, AwardLot::OfEvent(_))));
    // Written by version 6, its awards' lots whole: read through its old arm, the same lots.
    let event: EventRecord =
        codec::decode(&seed("event_v6.bin")).expect("a version 6 event decodes");
    assert!(event.purchase.is_some());
    assert!(event.of_event.is_some());
    assert!(event
        .awards
        .iter()
        .all(|a| matches!(a.lot, AwardLot::Stated(_))));
    let lots =
        |e: &EventRecord| -> Vec<LotId> { e.awards.iter().map(|a| a.lot_id(e.id)).collect() };
    assert_eq!(lots(&event), lots(&today));
    assert_eq!(event.purchase, today.purchase);
    // Written by version 5, before referrals: read through its old arm.
    let v5: EventRecord = codec::decode(&seed("event_v5.bin")).expect("a version 5 event decodes");
    assert_eq!(v5, event);
    // Written by versions 4, 3 and 2, before spend requests, statements and achievements: read
    // through old arms.
    let v4: EventRecord = codec::decode(&seed("event_v4.bin")).expect("a version 4 event decodes");
    assert!(v4.statement.is_some() && v4.of_event.is_none());
    let v3: EventRecord = codec::decode(&seed("event_v3.bin")).expect("a version 3 event decodes");
    assert!(v3.achievement.is_some() && v3.statement.is_none());
    let v2: EventRecord = codec::decode(&seed("event.bin")).expect("a version 2 event decodes");
    assert!(v2.achievement.is_none());
    assert_eq!(v2.purchase, event.purchase);
    let contact: ContactRecord = current("contact.bin");
    assert!(contact.code.is_some());
    let route: RouteRecord = current("route.bin");
    assert!(!route.tap_code.is_empty());
    let response: StoredResponse = current("stored_response.bin");
    assert!(!response.body.is_empty());
}

#[test]
fn an_event_of_the_first_format_reads_as_one_without_route_facts() {
    let bytes = seed("event_v1.bin");
    assert_eq!(
        bytes.first(),
        Some(&1),
        "the golden v1 event starts with its version"
    );
    let event: EventRecord = codec::decode(&bytes).expect("a version 1 event decodes");
    assert!(event.route.is_none());
    let current: EventRecord = codec::decode(&seed("event.bin")).unwrap();
    assert_eq!(event.id, current.id);
    assert_eq!(event.purchase, current.purchase);
}
