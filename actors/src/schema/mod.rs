//! The store's schema: every record type the server stores, its format version, and the layout
//! of every key. Nothing outside this module builds a key or names a format version.
//!
//! # The map of the store
//!
//! The rows follow the [`Space`](rewards_storage::Space)s in the order of `Space::ALL`, one row
//! per layout where a space holds entries of several. In keys, `·` joins parts; an id is its 16
//! bytes; `u64` is 8 bytes big-endian (times are milliseconds since the epoch); `str` is a
//! string ended by a 0 byte, with 0 and 1 inside written as `01 01` and `01 02`; a letter is its
//! ASCII byte. A record value is a version byte then bincode 2 (`rewards_storage::codec`); a raw
//! value has no version.
//!
//! | space | key ([`keys`]) | value | version |
//! |---|---|---|---|
//! | `config` | business · kind · id, kind 1 business, 2 merchant, 3 TAP, 4 scheme, 5 tiers (under the business id), 6 offer, 8 processor (under the nil business), 9 webhook; scheme codes: business · 7 · scheme · `str` code | [`ConfigRecord`] | 1 |
//! | `keys` | API key id | [`KeyRecord`](crate::auth::KeyRecord) | 1 |
//! | `contacts` | contact id | [`ContactRecord`] (the profile) | 1 |
//! | `wallets` | wallet id | [`WalletRecord`] (its open lots inline, or, with `lots_apart`, in `open_lots` below once the wallet has more than `wallet_lots_apart_above`; each lot written against the one before it, `lots.rs`) | 3 (reads 1 and 2) |
//! | `events` | event id | [`EventRecord`](crate::events::EventRecord) (an award's lot as its index among the event's lots, [`AwardLot`](crate::events::AwardLot)) | 7 (reads 1 to 6) |
//! | `event_index` | `b` · business · `u64` created at · event id | raw event id, then, for an event settled with a merchant, its own [`SettlementRecord`] (version byte and all) | 1 (the record) |
//! | `event_index` | `c` · contact · `u64` created at · event id; `s` · contact · `str` classification · `str` period (a financial statement) | raw event id | none |
//! | `event_index` | `r` · referred contact (a referral half done: its referrer's side committed) | [`PendingReferralRecord`] | 1 |
//! | `event_index` | `m` · business · merchant · `u64` at · event id · kind (1 a void, 2 a return, then the return's id; 0, an event's own entry, is kept in its `b` entry instead) | [`SettlementRecord`] | 1 |
//! | `ledger` | wallet · `u64` sequence number of the first entry | [`LedgerEntriesRecord`] (each entry written against the one before it, `ledger.rs`) | 2 (reads 1) |
//! | `idempotency` | business · `str` scope · `str` external system · `str` external reference; processor · `str` "processor" · `str` transaction reference; one business's part of a processor purchase: its key · `ff` · business | [`StoredResponse`](crate::idempotency::StoredResponse) | 1 |
//! | `identities` | business · kind · `str` identifier, kind 1 wallet code, 2 contact code, 3 CIM, 4 gift card, 5 payment medium, 6 referral code; a contact id as an identity: business · 0 · contact id | raw contact id | none |
//! | `counters` | `o` · offer | two `i64` big-endian (awarded minor units, awards), merged by the writer | none |
//! | `meta` | `checkpoint` (storage's own) | raw `u64` big-endian log position | none |
//! | `lots` | wallet · event · `u64` wallet's next sequence number when written | [`LotsRecord`] (each lot written against the one before it, `lots.rs`) | 2 (reads 1) |
//! | `contact_states` | contact id | [`ContactState`](crate::contact_state::ContactState) | 1 |
//! | `routes` | `r` · event id | [`RouteRecord`](crate::router::records::RouteRecord) | 1 |
//! | `routes` | `l` · `str` TAP code · business · event id (pending or unclaimed) | empty | none |
//! | `routes` | `c` · business · `str` claim code (`XXXX-XXXX`) | raw event id | none |
//! | `estimates` | `e` · estimate id | [`EstimateRecord`](crate::estimates::EstimateRecord) | 1 |
//! | `estimates` | `h` · `u64` expires at · estimate id (an open hold) | raw contact id | none |
//! | `outbox` | `d` · webhook id · delivery id | [`DeliveryRecord`](crate::webhooks::DeliveryRecord) | 1 |
//! | `outbox` | `p` · delivery id (pending) | raw webhook id | none |
//! | `open_lots` | wallet · lot id | [`OpenLotRecord`] (the lot, its id as its index among its event's lots, and its place among the wallet's lots) | 2 (reads 1) |
//!
//! # What the records are made of
//!
//! The core's wallets, ledger entries, lots and contacts are stored as record types of their
//! own (`records.rs`), with the structs and enums inside them mirrored too (lots, holds,
//! funding, postings, accounts, entry kinds, balances, payment media, reward state). A change to
//! a core type changes no stored bytes; one that adds or retypes a field stops a conversion
//! from compiling instead.
//!
//! Leaf types stay the core's: ids (a length byte and 16 bytes; an award's lot,
//! [`AwardLot`](crate::events::AwardLot), is a length byte and an id's 16 bytes or an index's
//! 1 to 4), `Money` and `Timestamp` (a varint `i64`), `Currency` (three letters and its
//! decimals, checked when decoded) and `Decimal` (its text). They are newtypes whose value the core keeps private or checks, and a
//! mirror would have to repeat those checks. The records kept beside their actors
//! ([`EventRecord`](crate::events::EventRecord),
//! [`RouteRecord`](crate::router::records::RouteRecord),
//! [`EstimateRecord`](crate::estimates::EstimateRecord),
//! [`ContactState`](crate::contact_state::ContactState)) and [`ConfigRecord`] still embed core
//! types as they are (a validated purchase, an identity, reward state, offers and the rest of
//! the configuration).
//!
//! Every record type and every key layout has golden bytes in `actors/tests/it/golden/`: fixed
//! examples, with each optional field present in one and absent in another and each enum
//! variant that carries data, and their encodings as hex. A change to any type a record
//! contains, mirrored or not, fails them instead of changing the format unnoticed.
//!
//! # Changing a format
//!
//! A record whose layout changes gets a new version in `versions.rs` and a `decode_old` arm
//! that reads the version it replaces; the old golden bytes stay in the tests, now decoded
//! through that arm, beside golden bytes of the new version.

pub mod keys;
mod ledger;
mod lots;
mod records;
mod relative;
mod versions;

pub use records::*;
