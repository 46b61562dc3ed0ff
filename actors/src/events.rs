//! Event records: what the server stores for each customer event.
//!
//! An event is stored once under its id, with two index entries: by business and time (the
//! business's event list) and by contact and time (a contact's activity), both newest-first
//! readable by reverse scans (their keys are in [`crate::schema::keys`]).

use rewards_core::identity::Identity;
use rewards_core::offer::Redemption;
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::wallet::Balances;
use rewards_core::{
    BusinessId, ContactId, EventId, LotId, MerchantId, Money, OfferId, ProcessorId, Timestamp,
    WalletId,
};
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
    /// New variants go at the end: the variant's number is stored.
    FinancialStatement,
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
            EventType::FinancialStatement => "financial_statement",
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
            EventType::FinancialStatement,
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
    /// The lot the award credited ([`AwardRecord::lot_id`] with the event's id).
    pub lot: AwardLot,
    pub merchant_id: Option<MerchantId>,
}

impl AwardRecord {
    /// The id of the lot the award credited, `event` being the id of the award's event.
    pub fn lot_id(&self, event: EventId) -> LotId {
        self.lot.id(event)
    }
}

/// The lot an award credited: the `index`-th lot of the award's event (its id
/// `LotId::for_event(event, index)`), as every award is since event format 7, or a lot id
/// stated whole, as older events hold them.
///
/// Stored as a byte string: a stated id as its 16 bytes, exactly as format 6 wrote a lot id,
/// and an index as its 1 to 4 little-endian bytes without the high zero bytes. One decoder
/// reads both formats, and an index takes 2 bytes where an id took 17.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum AwardLot {
    OfEvent(u32),
    Stated(LotId),
}

impl AwardLot {
    pub fn id(self, event: EventId) -> LotId {
        match self {
            AwardLot::OfEvent(index) => LotId::for_event(event, index),
            AwardLot::Stated(id) => id,
        }
    }
}

impl Serialize for AwardLot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AwardLot::Stated(id) => serializer.serialize_bytes(id.as_bytes()),
            AwardLot::OfEvent(index) => {
                let bytes = index.to_le_bytes();
                let used = 4 - index.leading_zeros() as usize / 8;
                serializer.serialize_bytes(bytes.get(..used.max(1)).unwrap_or(&bytes))
            }
        }
    }
}

impl<'de> Deserialize<'de> for AwardLot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Lot;

        impl serde::de::Visitor<'_> for Lot {
            type Value = AwardLot;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a lot id of 16 bytes or a lot index of 1 to 4")
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<AwardLot, E> {
                if let Ok(id) = <[u8; 16]>::try_from(bytes) {
                    return Ok(AwardLot::Stated(LotId::from_bytes(id)));
                }
                if bytes.is_empty() || bytes.len() > 4 {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                let mut index = [0u8; 4];
                for (out, byte) in index.iter_mut().zip(bytes) {
                    *out = *byte;
                }
                Ok(AwardLot::OfEvent(u32::from_le_bytes(index)))
            }
        }

        deserializer.deserialize_bytes(Lot)
    }
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
    /// What an achievement event was (format version 3).
    pub achievement: Option<AchievementRecord>,
    /// A financial statement's period and KPIs (format version 4).
    pub statement: Option<StatementRecord>,
    /// The event this one acts on: a spend request's purchase (format version 5).
    pub of_event: Option<EventId>,
    /// On a purchase: what later spend requests spent on it, less what their voids gave back
    /// (format version 5).
    pub later_spent: Money,
    /// On a referral: who referred whom, and the other side's event (format version 6; the
    /// last field).
    pub referral: Option<ReferralRecord>,
}

/// A referral is two events, one on each side's wallet, each naming the other (SPEC section 4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReferralRecord {
    pub referrer_id: ContactId,
    pub referred_id: ContactId,
    /// The referrer's event on the referred side, the referred contact's on the referrer's.
    pub other_event_id: EventId,
}

/// A contact's key performance indicators for a month (SPEC section 4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StatementRecord {
    /// `YYYY-MM`.
    pub period: String,
    pub kpis: Vec<KpiRecord>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KpiRecord {
    pub name: String,
    pub product_sku: Option<String>,
    pub value: rust_decimal::Decimal,
}

impl EventRecord {
    /// A posted event of the contact's wallet with nothing but its ids, type and time: what
    /// every operation fills in.
    pub fn posted(
        id: EventId,
        event_type: EventType,
        business_id: BusinessId,
        contact_id: ContactId,
        wallet_id: WalletId,
        now: Timestamp,
    ) -> EventRecord {
        EventRecord {
            id,
            event_type,
            business_id,
            contact_id,
            wallet_id,
            state: EventState::Posted,
            origin: "backend".into(),
            performed_on: now,
            created_at: now,
            classification: None,
            reference_number: None,
            tap_code: None,
            merchant_id: None,
            external_system: String::new(),
            external_reference: None,
            identity: None,
            purchase: None,
            payment_medium: None,
            amount: None,
            awards: Vec::new(),
            spend: None,
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
}

/// The kind of an achievement and the details that go with it (SPEC section 4).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct AchievementRecord {
    pub kind: rewards_core::offer::AchievementKind,
    /// A financial achievement's product (a loan, an account).
    pub product_sku: Option<String>,
    /// A social media action: where, whose profile, what (a "like").
    pub platform: Option<String>,
    pub profile: Option<String>,
    pub action: Option<String>,
    /// A web achievement's visited URL.
    pub url: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    use rewards_storage::{codec, CodecError, Record};

    #[derive(Serialize, Deserialize)]
    struct One<T>(T);

    impl<T: Serialize + serde::de::DeserializeOwned> Record for One<T> {
        const VERSION: u8 = 1;
    }

    /// A value alone, as the codec writes it inside a record (the version byte left out).
    fn bytes_of<T: Serialize + serde::de::DeserializeOwned>(value: T) -> Vec<u8> {
        codec::encode(&One(value)).split_off(1)
    }

    fn read(bytes: &[u8]) -> Result<AwardLot, CodecError> {
        codec::decode_body::<One<AwardLot>>(bytes).map(|one| one.0)
    }

    #[test]
    fn an_award_lot_reads_back_as_written_in_its_fewest_bytes() {
        for (index, len) in [(0u32, 1usize), (1, 1), (255, 1), (256, 2), (65_536, 3)] {
            let bytes = bytes_of(AwardLot::OfEvent(index));
            assert_eq!(bytes.len(), 1 + len, "{index}");
            assert_eq!(read(&bytes).unwrap(), AwardLot::OfEvent(index));
        }
        let last = bytes_of(AwardLot::OfEvent(u32::MAX));
        assert_eq!(last.len(), 5);
        assert_eq!(read(&last).unwrap(), AwardLot::OfEvent(u32::MAX));
        let stated = AwardLot::Stated(LotId::from_bytes([9; 16]));
        assert_eq!(read(&bytes_of(stated)).unwrap(), stated);
    }

    #[test]
    fn a_stated_lot_is_written_as_a_lot_id_was() {
        let id = LotId::from_bytes([9; 16]);
        assert_eq!(bytes_of(AwardLot::Stated(id)), bytes_of(id));
    }

    #[test]
    fn an_award_lot_of_another_length_is_refused() {
        for len in [0u8, 5, 15, 17] {
            let mut bytes = vec![len];
            bytes.extend(std::iter::repeat_n(1, usize::from(len)));
            assert!(read(&bytes).is_err(), "{len} bytes");
        }
    }

    #[test]
    fn an_awards_lot_id_is_its_events_lot_of_that_index() {
        let event = EventId::from_bytes([3; 16]);
        assert_eq!(AwardLot::OfEvent(4).id(event), LotId::for_event(event, 4));
        let id = LotId::from_bytes([9; 16]);
        assert_eq!(AwardLot::Stated(id).id(event), id);
    }
}
