//! Event records: what the server stores for each customer event, and their keys.
//!
//! An event is stored once under its id, with two index entries: by business and time (the
//! business's event list) and by contact and time (a contact's activity), both newest-first
//! readable by reverse scans.

use rewards_core::identity::Identity;
use rewards_core::offer::Redemption;
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::wallet::Balances;
use rewards_core::{
    BusinessId, ContactId, EventId, LotId, MerchantId, Money, OfferId, ProcessorId, Timestamp,
    WalletId,
};
use rewards_storage::keys::KeyBuilder;
use rewards_storage::{codec, CodecError, Record};
use serde::{Deserialize, Serialize};

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EventType {
    Purchase,
    Achievement,
    Referral,
    SpendRequest,
    SignUp,
    TierReached,
    Topup,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Purchase => "purchase",
            EventType::Achievement => "achievement",
            EventType::Referral => "referral",
            EventType::SpendRequest => "spend_request",
            EventType::SignUp => "sign_up",
            EventType::TierReached => "tier_reached",
            EventType::Topup => "top_up",
        }
    }
    pub fn parse(text: &str) -> Option<EventType> {
        [
            EventType::Purchase,
            EventType::Achievement,
            EventType::Referral,
            EventType::SpendRequest,
            EventType::SignUp,
            EventType::TierReached,
            EventType::Topup,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EventState {
    Posted,
    Cancelled,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AwardRecord {
    pub offer_id: OfferId,
    pub amount: Money,
    pub redeem: Redemption,
    pub expires_at: Option<Timestamp>,
    pub lot_id: LotId,
    pub merchant_id: Option<MerchantId>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SpendRecord {
    /// `None`: "all".
    pub requested: Option<Money>,
    pub spent: Money,
    pub front_end: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PaymentMediumRecord {
    pub identifier: Option<String>,
    pub brand: Option<String>,
    pub kind: Option<String>,
}

/// What was returned of a purchase so far, and what that reversed.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ReturnsRecord {
    pub returned_lines: Vec<(String, rust_decimal::Decimal)>,
    pub returned_amount: Money,
    pub clawed_back: Money,
    pub refunded: Money,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    pub event_type: EventType,
    pub business_id: BusinessId,
    pub contact_id: ContactId,
    pub wallet_id: WalletId,
    pub state: EventState,
    pub origin: String,
    pub performed_on: Timestamp,
    pub created_at: Timestamp,
    pub classification: Option<String>,
    pub reference_number: Option<String>,
    pub tap_code: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub identity: Option<Identity>,
    pub purchase: Option<ValidatedPurchase>,
    pub payment_medium: Option<PaymentMediumRecord>,
    pub amount: Option<Money>,
    pub awards: Vec<AwardRecord>,
    pub spend: Option<SpendRecord>,
    pub wallet_after: Balances,
    pub spendable_after: Money,
    pub returns: ReturnsRecord,
    pub cancelled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    /// How processor routing brought the purchase about, when it did.
    pub route: Option<RouteFacts>,
}

/// Where a POS purchase stands in `match` mode (API.md `match_state`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MatchState {
    Pending,
    Matched,
    Unmatched,
}

impl MatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchState::Pending => "pending",
            MatchState::Matched => "matched",
            MatchState::Unmatched => "unmatched",
        }
    }
}

/// What a purchase owes to processor routing: its match, its claim, its transaction.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RouteFacts {
    pub match_state: Option<MatchState>,
    /// The code it was claimed with, shown `XXXX-XXXX`.
    pub claim_code: Option<String>,
    pub transaction_reference: Option<String>,
    pub processor_id: Option<ProcessorId>,
}

impl Record for EventRecord {
    /// Version 2 added `route`, the last field.
    const VERSION: u8 = 2;

    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        // A version 1 record is a version 2 record without its last field; bincode writes an
        // absent `Option` as one 0 byte, so appending it reads the old record as the new one.
        (version == 1).then(|| {
            let mut upgraded = Vec::with_capacity(body.len() + 1);
            upgraded.extend_from_slice(body);
            upgraded.push(0);
            codec::decode_body(&upgraded)
        })
    }
}

pub fn event_key(id: EventId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// Index entry of a business's events, ordered by time then id.
pub fn business_index_key(business: BusinessId, at: Timestamp, id: EventId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'b')
        .bytes(business.as_bytes())
        .u64(at.0 as u64)
        .bytes(id.as_bytes())
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

pub fn contact_index_prefix(contact: ContactId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'c')
        .bytes(contact.as_bytes())
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewards_storage::codec;

    #[test]
    fn a_version_1_event_reads_as_version_2_without_route() {
        let event = EventRecord {
            id: EventId::from_bytes([1; 16]),
            event_type: EventType::Purchase,
            business_id: BusinessId::from_bytes([2; 16]),
            contact_id: ContactId::from_bytes([3; 16]),
            wallet_id: WalletId::from_bytes([4; 16]),
            state: EventState::Posted,
            origin: "pos".into(),
            performed_on: Timestamp(5),
            created_at: Timestamp(6),
            classification: Some("grocery".into()),
            reference_number: None,
            tap_code: Some("T-1".into()),
            merchant_id: None,
            external_system: String::new(),
            external_reference: Some("R-1".into()),
            identity: None,
            purchase: None,
            payment_medium: None,
            amount: Some(Money::from_minor(700)),
            awards: Vec::new(),
            spend: None,
            wallet_after: Default::default(),
            spendable_after: Money::from_minor(0),
            returns: ReturnsRecord::default(),
            cancelled_at: None,
            cancel_reason: None,
            route: None,
        };
        let v2 = codec::encode(&event);
        assert_eq!(v2[0], 2);
        // Version 1 wrote the same fields without the last one.
        let mut v1 = v2[..v2.len() - 1].to_vec();
        v1[0] = 1;
        assert_eq!(codec::decode::<EventRecord>(&v1).unwrap(), event);
        let mut routed = event.clone();
        routed.route = Some(RouteFacts {
            match_state: Some(MatchState::Matched),
            ..RouteFacts::default()
        });
        assert_eq!(
            codec::decode::<EventRecord>(&codec::encode(&routed)).unwrap(),
            routed
        );
        v1[0] = 9;
        assert!(codec::decode::<EventRecord>(&v1).is_err());
    }
}
