//! Every key the server stores a record under, one builder per layout (see the map in
//! [`crate::schema`]). Integers are big-endian and strings end with a 0 byte
//! ([`KeyBuilder::str`]), so byte order is scan order.

use rewards_core::claim::ClaimCode;
use rewards_core::{
    BusinessId, ContactId, EstimateId, EventId, KeyId, LotId, MerchantId, OfferId, ProcessorId,
    SchemeId, TapId, Timestamp, WalletId, WebhookId,
};
use rewards_storage::keys::KeyBuilder;

use crate::identities::Kind;

// ---- Config: business id, the kind of record, its id ----

/// Kinds of configuration record: the byte after the business id in a config key.
mod config_kind {
    pub const BUSINESS: u8 = 1;
    pub const MERCHANT: u8 = 2;
    pub const TAP: u8 = 3;
    pub const SCHEME: u8 = 4;
    pub const TIERS: u8 = 5;
    pub const OFFER: u8 = 6;
    pub const SCHEME_CODE: u8 = 7;
    pub const PROCESSOR: u8 = 8;
    pub const WEBHOOK: u8 = 9;
}

fn config_key(business: BusinessId, kind: u8, id: &[u8; 16]) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(kind)
        .bytes(id)
        .finish()
}

pub fn business_config_key(business: BusinessId) -> Vec<u8> {
    config_key(business, config_kind::BUSINESS, business.as_bytes())
}

pub fn merchant_config_key(business: BusinessId, merchant: MerchantId) -> Vec<u8> {
    config_key(business, config_kind::MERCHANT, merchant.as_bytes())
}

pub fn tap_config_key(business: BusinessId, tap: TapId) -> Vec<u8> {
    config_key(business, config_kind::TAP, tap.as_bytes())
}

pub fn scheme_config_key(business: BusinessId, scheme: SchemeId) -> Vec<u8> {
    config_key(business, config_kind::SCHEME, scheme.as_bytes())
}

/// A business's tier configuration: one per business, under the business's own id.
pub fn tiers_config_key(business: BusinessId) -> Vec<u8> {
    config_key(business, config_kind::TIERS, business.as_bytes())
}

pub fn offer_config_key(business: BusinessId, offer: OfferId) -> Vec<u8> {
    config_key(business, config_kind::OFFER, offer.as_bytes())
}

/// Processors belong to no business: they are kept under the nil business id.
pub fn webhook_config_key(business: BusinessId, webhook: WebhookId) -> Vec<u8> {
    config_key(business, config_kind::WEBHOOK, webhook.as_bytes())
}

pub fn processor_config_key(processor: ProcessorId) -> Vec<u8> {
    config_key(
        BusinessId::NIL,
        config_kind::PROCESSOR,
        processor.as_bytes(),
    )
}

/// A closed-loop scheme's sign-up code.
pub fn scheme_code_key(business: BusinessId, scheme: SchemeId, code: &str) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(config_kind::SCHEME_CODE)
        .bytes(scheme.as_bytes())
        .str(code)
        .finish()
}

// ---- Records stored under their own id ----

/// An API key's record, by key id.
pub fn api_key_key(id: KeyId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// A contact's profile.
pub fn contact_key(id: ContactId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// The part of a contact its wallet actor owns.
pub fn contact_state_key(id: ContactId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

pub fn wallet_key(id: WalletId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

pub fn event_key(id: EventId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

// ---- EventIndex ----

/// Index entry of a business's events, ordered by time then id.
pub fn business_index_key(business: BusinessId, at: Timestamp, id: EventId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'b')
        .bytes(business.as_bytes())
        .u64(at.0 as u64)
        .bytes(id.as_bytes())
        .finish()
}

/// The first key after every index entry of `business`.
pub fn business_index_end(business: BusinessId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'b')
        .bytes(business.as_bytes())
        .u64(u64::MAX)
        .bytes(&[0xff; 16])
        .u8(0xff)
        .finish()
}

pub fn business_index_prefix(business: BusinessId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'b')
        .bytes(business.as_bytes())
        .finish()
}

/// Index entry of a contact's activity, ordered by time then id.
pub fn contact_index_key(contact: ContactId, at: Timestamp, id: EventId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'c')
        .bytes(contact.as_bytes())
        .u64(at.0 as u64)
        .bytes(id.as_bytes())
        .finish()
}

/// What a settlement entry stands for, the last part of its key: an event's own, its void, or
/// one of its returns (then followed by the return's id).
pub const SETTLEMENT_POSTED: u8 = 0;
pub const SETTLEMENT_VOID: u8 = 1;
pub const SETTLEMENT_RETURN: u8 = 2;

/// A settlement entry of a business and a merchant, ordered by time: `m` · business ·
/// merchant · `u64` at · event · kind (· return id).
pub fn settlement_key(
    business: BusinessId,
    merchant: MerchantId,
    at: Timestamp,
    event: EventId,
    kind: u8,
    return_id: Option<EventId>,
) -> Vec<u8> {
    let mut key = KeyBuilder::new()
        .u8(b'm')
        .bytes(business.as_bytes())
        .bytes(merchant.as_bytes())
        .u64(at.0 as u64)
        .bytes(event.as_bytes())
        .u8(kind);
    if let Some(id) = return_id {
        key = key.bytes(id.as_bytes());
    }
    key.finish()
}

/// Every settlement entry of a business (`merchant` none), or of one of its merchants.
pub fn settlement_prefix(business: BusinessId, merchant: Option<MerchantId>) -> Vec<u8> {
    let key = KeyBuilder::new().u8(b'm').bytes(business.as_bytes());
    match merchant {
        Some(m) => key.bytes(m.as_bytes()).finish(),
        None => key.finish(),
    }
}

/// A contact's financial statement of one classification and period (taken once).
pub fn statement_key(contact: ContactId, classification: &str, period: &str) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b's')
        .bytes(contact.as_bytes())
        .str(classification)
        .str(period)
        .finish()
}

/// A referral whose referred side is not committed yet, by the referred contact.
pub fn pending_referral_key(referred: ContactId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'r')
        .bytes(referred.as_bytes())
        .finish()
}

pub fn pending_referral_prefix() -> Vec<u8> {
    KeyBuilder::new().u8(b'r').finish()
}

pub fn contact_index_prefix(contact: ContactId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'c')
        .bytes(contact.as_bytes())
        .finish()
}

// ---- Ledger and Lots ----

/// The ledger entries one operation posted, by wallet and the first entry's sequence number.
pub fn ledger_key(wallet: WalletId, first_seq: u64) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(wallet.as_bytes())
        .u64(first_seq)
        .finish()
}

/// Every ledger record of a wallet.
pub fn ledger_prefix(wallet: WalletId) -> Vec<u8> {
    wallet.as_bytes().to_vec()
}

/// The closed lots of one event, as of `version` (the wallet's next sequence number when they
/// were written), so a later state of a lot sorts after an earlier one.
pub fn lots_key(wallet: WalletId, event: EventId, version: u64) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(wallet.as_bytes())
        .bytes(event.as_bytes())
        .u64(version)
        .finish()
}

/// Every record of an event's closed lots.
pub fn lots_prefix(wallet: WalletId, event: EventId) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(wallet.as_bytes())
        .bytes(event.as_bytes())
        .finish()
}

// ---- Idempotency ----

/// A request's idempotency key: `scope` separates kinds of request sharing the reference space
/// (events, returns, top-ups).
pub fn idempotency_key(
    business: BusinessId,
    scope: &str,
    external_system: &str,
    external_reference: &str,
) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .str(scope)
        .str(external_system)
        .str(external_reference)
        .finish()
}

/// A processor purchase's idempotency key: its transaction reference, unique per processor.
pub fn processor_idempotency_key(processor: ProcessorId, transaction_reference: &str) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(processor.as_bytes())
        .str("processor")
        .str(transaction_reference)
        .finish()
}

/// The prefix of the keys of every business's part of the request whose key is `key`.
pub fn route_idempotency_prefix(key: &[u8]) -> Vec<u8> {
    KeyBuilder::new().bytes(key).u8(0xff).finish()
}

/// The key of one business's part of the request whose key is `key`.
pub fn route_idempotency_key(key: &[u8], business: BusinessId) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(key)
        .u8(0xff)
        .bytes(business.as_bytes())
        .finish()
}

// ---- Identities: business, kind, identifier ----

/// The byte of an identity kind in its keys. Written out rather than taken from the enum's
/// discriminants, so reordering `Kind` cannot move stored identities.
fn identity_kind(kind: Kind) -> u8 {
    match kind {
        Kind::ContactId => 0,
        Kind::WalletCode => 1,
        Kind::ContactCode => 2,
        Kind::Cim => 3,
        Kind::GiftCard => 4,
        Kind::PaymentMedium => 5,
        Kind::ReferralCode => 6,
    }
}

/// An identifier of a contact, unique within its business.
pub fn identity_key(business: BusinessId, kind: Kind, identifier: &str) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(identity_kind(kind))
        .str(identifier)
        .finish()
}

/// A contact's id as an identity: the id's 16 bytes rather than its text.
pub fn identity_contact_key(business: BusinessId, contact: ContactId) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(identity_kind(Kind::ContactId))
        .bytes(contact.as_bytes())
        .finish()
}

/// Every contact of a business, by the contact-id identity of each.
pub fn identity_contacts_prefix(business: BusinessId) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(identity_kind(Kind::ContactId))
        .finish()
}

// ---- Counters ----

/// An offer's persisted totals (awarded amount in minor units, award count), merged by the
/// writer. Fixed-size, so adding to it allocates nothing (a purchase adds once per award).
pub fn offer_totals_key(offer: OfferId) -> [u8; 17] {
    let mut key = [b'o'; 17];
    key[1..].copy_from_slice(offer.as_bytes());
    key
}

// ---- Routes ----

/// A route record, by its purchase's id.
pub fn route_key(id: EventId) -> Vec<u8> {
    KeyBuilder::new().u8(b'r').bytes(id.as_bytes()).finish()
}

/// A live (pending or unclaimed) route record in the index a router rebuilds from.
pub fn live_route_key(tap_code: &str, business: BusinessId, id: EventId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'l')
        .str(tap_code)
        .bytes(business.as_bytes())
        .bytes(id.as_bytes())
        .finish()
}

/// Every live route record, or those of one TAP code.
pub fn live_route_prefix(tap_code: Option<&str>) -> Vec<u8> {
    let builder = KeyBuilder::new().u8(b'l');
    match tap_code {
        Some(code) => builder.str(code).finish(),
        None => builder.finish(),
    }
}

/// The record id at the end of a live route key.
pub fn id_of_live_route_key(key: &[u8]) -> Option<EventId> {
    let start = key.len().checked_sub(16)?;
    let bytes: [u8; 16] = key.get(start..)?.try_into().ok()?;
    Some(EventId::from_bytes(bytes))
}

/// A claim code issued in a business (taken for ever, so codes stay unique).
pub fn claim_code_key(business: BusinessId, code: ClaimCode) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'c')
        .bytes(business.as_bytes())
        .str(&code.to_string())
        .finish()
}

// ---- Estimates: by id, and the open holds by expiry ----

/// An estimate record.
pub fn estimate_key(id: EstimateId) -> Vec<u8> {
    KeyBuilder::new().u8(b'e').bytes(id.as_bytes()).finish()
}

/// An open hold in the index start-up wakes actors from: by expiry, then estimate.
pub fn hold_key(expires_at: Timestamp, id: EstimateId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'h')
        .u64(expires_at.0.max(0) as u64)
        .bytes(id.as_bytes())
        .finish()
}

/// Every open hold, earliest expiry first.
pub fn hold_prefix() -> Vec<u8> {
    KeyBuilder::new().u8(b'h').finish()
}

// ---- Outbox: webhook deliveries by webhook, and the pending ones ----

/// A delivery, under its webhook (ids are time-ordered: a webhook's deliveries in order).
pub fn delivery_key(webhook: WebhookId, delivery: WebhookId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'd')
        .bytes(webhook.as_bytes())
        .bytes(delivery.as_bytes())
        .finish()
}

/// Every delivery of one webhook.
pub fn deliveries_prefix(webhook: WebhookId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'd')
        .bytes(webhook.as_bytes())
        .finish()
}

/// A delivery not yet delivered or given up: what the deliverer scans.
pub fn pending_delivery_key(delivery: WebhookId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'p')
        .bytes(delivery.as_bytes())
        .finish()
}

/// Every pending delivery, oldest first.
pub fn pending_delivery_prefix() -> Vec<u8> {
    KeyBuilder::new().u8(b'p').finish()
}

/// The delivery a pending key names.
pub fn delivery_of_pending_key(key: &[u8]) -> Option<WebhookId> {
    let bytes: [u8; 16] = key.get(1..17)?.try_into().ok()?;
    Some(WebhookId::from_bytes(bytes))
}

// ---- Open lots: wallet · lot ----

/// An open lot of a wallet, one record per lot.
pub fn open_lot_key(wallet: WalletId, lot: LotId) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(wallet.as_bytes())
        .bytes(lot.as_bytes())
        .finish()
}

/// Every open lot of a wallet.
pub fn open_lots_prefix(wallet: WalletId) -> Vec<u8> {
    KeyBuilder::new().bytes(wallet.as_bytes()).finish()
}
