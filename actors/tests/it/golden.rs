//! Records written by earlier builds still decode: one stored record of each type, as bytes
//! (`fuzz/seeds/codec/`, which are also the codec fuzz target's seeds; `event_v1.bin` is an event
//! in the format before route facts). A current-format record must also encode back to exactly
//! its bytes, so a change to a record's layout cannot pass unnoticed: it needs a new format
//! version and a decoder for the old one, and then new golden bytes beside the old.

use std::fmt::Debug;
use std::path::PathBuf;

use rewards_actors::events::EventRecord;
use rewards_actors::idempotency::StoredResponse;
use rewards_actors::router::records::RouteRecord;
use rewards_core::contact::Contact;
use rewards_core::wallet::{LedgerEntry, Wallet};
use rewards_storage::codec::{self, Record};

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/codec")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes the golden bytes and checks they are what this build writes for the same value.
fn current<T: Record + Debug>(name: &str) -> T {
    let bytes = golden(name);
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
fn every_stored_record_type_reads_its_golden_bytes() {
    let wallet: Wallet = current("wallet.bin");
    assert!(!wallet.lots.is_empty());
    let entries: Vec<LedgerEntry> = current("ledger_entries.bin");
    assert!(!entries.is_empty());
    let event: EventRecord = current("event.bin");
    assert!(event.purchase.is_some());
    let contact: Contact = current("contact.bin");
    assert!(contact.code.is_some());
    let route: RouteRecord = current("route.bin");
    assert!(!route.tap_code.is_empty());
    let response: StoredResponse = current("stored_response.bin");
    assert!(!response.body.is_empty());
}

#[test]
fn an_event_of_the_first_format_reads_as_one_without_route_facts() {
    let bytes = golden("event_v1.bin");
    assert_eq!(
        bytes.first(),
        Some(&1),
        "the golden v1 event starts with its version"
    );
    let event: EventRecord = codec::decode(&bytes).expect("a version 1 event decodes");
    assert!(event.route.is_none());
    let current: EventRecord = current("event.bin");
    assert_eq!(event.id, current.id);
    assert_eq!(event.purchase, current.purchase);
}
