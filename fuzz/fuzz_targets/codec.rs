//! Checks that decoding arbitrary bytes as a stored record never panics, and that a record that
//! decodes encodes and decodes again to an equal value.
//!
//! The store reads these records back at start-up and on every lookup, so a torn or corrupt value
//! on disk must come back as a `CodecError`, never as a panic that stops the server from starting.
//! The round trip checks that what the codec accepts it can also write: a record that decodes but
//! does not survive re-encoding would change when the server next writes it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rewards_actors::estimates::EstimateRecord;
use rewards_actors::events::EventRecord;
use rewards_actors::idempotency::StoredResponse;
use rewards_actors::router::records::RouteRecord;
use rewards_actors::schema::{
    ContactRecord, LedgerEntriesRecord, LotsRecord, OpenLotRecord, PendingReferralRecord,
    SettlementRecord, WalletRecord,
};
use rewards_actors::webhooks::DeliveryRecord;
use rewards_storage::codec::{self, Record};
use rewards_storage::replicated;
use std::fmt::Debug;

/// Decodes `data` as a `T`; when that succeeds, the value must survive an encode and a decode.
fn round_trip<T: Record + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = codec::decode::<T>(data) else {
        return;
    };
    let encoded = codec::encode(&value);
    let again = codec::decode::<T>(&encoded).unwrap_or_else(|e| {
        panic!(
            "{} re-encoded as {encoded:02x?} does not decode: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(
        value,
        again,
        "{} changed in an encode and decode round trip",
        std::any::type_name::<T>()
    );
}

fuzz_target!(|data: &[u8]| {
    // Every input is tried as every record type rather than picking one from a leading byte:
    // the first byte is already the record's format version, and bytes written as one type are
    // exactly what a key mix-up or a format change would feed to another.
    round_trip::<EventRecord>(data);
    round_trip::<WalletRecord>(data);
    round_trip::<OpenLotRecord>(data);
    round_trip::<LotsRecord>(data);
    round_trip::<ContactRecord>(data);
    round_trip::<RouteRecord>(data);
    round_trip::<StoredResponse>(data);
    round_trip::<LedgerEntriesRecord>(data);
    round_trip::<EstimateRecord>(data);
    round_trip::<DeliveryRecord>(data);
    round_trip::<SettlementRecord>(data);
    round_trip::<PendingReferralRecord>(data);
    // A cluster's nodes read the log's records from the stream compressed: a damaged block is
    // an error, and what decompresses compresses and decompresses back to itself.
    if let Ok(record) = replicated::decompress(data) {
        if let Some(again) = replicated::compress(&record) {
            assert_eq!(
                replicated::decompress(&again).as_deref(),
                Ok(record.as_slice()),
                "a log record changed in a compress and decompress round trip"
            );
        }
    }
});
