//! The compact form of lots, in a wallet's record ([`WalletRecord`] from format 3), in the
//! closed lots of an event ([`LotsRecord`] from format 2) and in an open lot stored apart
//! ([`OpenLotRecord`] from format 2): each lot written against the one before it.
//!
//! A lot's id is derived from the event that awarded it (`LotId::for_event(event, index)`), and
//! the lots of one event sit next to each other: a purchase's awards are pushed onto the wallet
//! together, and the lots one operation closes are grouped by event. Format 1 wrote every lot
//! whole, its id and its event's id 16 bytes each; these formats write the id as its index
//! among the event's lots and the event as one byte when it is the previous lot's. The encoder
//! leaves out only what it computes back exactly, so a lot that breaks a pattern is written
//! whole, never read back different.
//!
//! Layout (bincode 2, as every record), each lot with, in order:
//! - the event: `Implied` (the previous lot's) or `Stated(EventId)`;
//! - the id: `OfEvent(index)` (`LotId::for_event` of the lot's event) or `Stated(id)`;
//! - the rest as in format 1: amount, remaining, expiry, offer, funding, expired, redeemed,
//!   expired amount, the amounts clawed back from commerce and from open.
//!
//! The first lot of a sequence, and a lot stored alone, state their event.

use rewards_core::{EventId, LotId, Money, OfferId, Timestamp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::records::{FundingRecord, HoldRecord, LotRecord, WalletRecord};
use super::relative::{deserialize_seq, implied, lot_index, serialize_seq, Compact, Relative};
use rewards_core::{BusinessId, ContactId, Currency, WalletId};

/// A lot's id: its index among its event's lots, or the id itself.
#[derive(Serialize, Deserialize)]
enum LotRef {
    OfEvent(u32),
    Stated(LotId),
}

#[derive(Serialize, Deserialize)]
struct CompactLot {
    event_id: Relative<EventId>,
    id: LotRef,
    amount: Money,
    remaining: Money,
    expires_at: Option<Timestamp>,
    offer_id: Option<OfferId>,
    funding: FundingRecord,
    expired: bool,
    redeemed: Money,
    expired_amount: Money,
    clawed_back_commerce: Money,
    clawed_back_open: Money,
}

impl Compact for CompactLot {
    type Whole = LotRecord;

    fn of(lot: &LotRecord, before: Option<&LotRecord>) -> CompactLot {
        let LotRecord {
            id,
            amount,
            remaining,
            expires_at,
            offer_id,
            event_id,
            funding,
            expired,
            redeemed,
            expired_amount,
            clawed_back_commerce,
            clawed_back_open,
        } = lot;
        CompactLot {
            event_id: implied(*event_id, before.map(|b| b.event_id)),
            id: match lot_index(*event_id, *id) {
                Some(index) => LotRef::OfEvent(index),
                None => LotRef::Stated(*id),
            },
            amount: *amount,
            remaining: *remaining,
            expires_at: *expires_at,
            offer_id: *offer_id,
            funding: *funding,
            expired: *expired,
            redeemed: *redeemed,
            expired_amount: *expired_amount,
            clawed_back_commerce: *clawed_back_commerce,
            clawed_back_open: *clawed_back_open,
        }
    }

    fn resolve(self, before: Option<&LotRecord>) -> Result<LotRecord, String> {
        let event_id = match self.event_id {
            Relative::Stated(event) => event,
            Relative::Implied => before
                .map(|b| b.event_id)
                .ok_or("a lot's event follows from nothing")?,
        };
        Ok(LotRecord {
            id: match self.id {
                LotRef::OfEvent(index) => LotId::for_event(event_id, index),
                LotRef::Stated(id) => id,
            },
            amount: self.amount,
            remaining: self.remaining,
            expires_at: self.expires_at,
            offer_id: self.offer_id,
            event_id,
            funding: self.funding,
            expired: self.expired,
            redeemed: self.redeemed,
            expired_amount: self.expired_amount,
            clawed_back_commerce: self.clawed_back_commerce,
            clawed_back_open: self.clawed_back_open,
        })
    }
}

/// A sequence of lots, each written against the one before it (`#[serde(with)]` on a
/// `Vec<LotRecord>`).
pub(super) mod sequence {
    use super::*;

    pub fn serialize<S: Serializer>(lots: &[LotRecord], serializer: S) -> Result<S::Ok, S::Error> {
        serialize_seq::<CompactLot, S>(lots, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<LotRecord>, D::Error> {
        deserialize_seq::<CompactLot, D>(deserializer, "a sequence of lots")
    }
}

/// One lot alone, stating its event (`#[serde(with)]` on a `LotRecord`).
pub(super) mod single {
    use super::*;

    pub fn serialize<S: Serializer>(lot: &LotRecord, serializer: S) -> Result<S::Ok, S::Error> {
        CompactLot::of(lot, None).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LotRecord, D::Error> {
        CompactLot::deserialize(deserializer)?
            .resolve(None)
            .map_err(D::Error::custom)
    }
}

/// [`WalletRecord`] as formats 1 and 2 wrote it: its lots whole. Read by `decode_old`.
#[derive(Serialize, Deserialize)]
pub(super) struct WholeLotsWallet {
    id: WalletId,
    contact_id: ContactId,
    business_id: BusinessId,
    currency: Currency,
    lots: Vec<LotRecord>,
    open: Money,
    reserved: Money,
    holds: Vec<HoldRecord>,
    auto_payable: Money,
    next_seq: u64,
    lots_apart: bool,
}

impl From<WholeLotsWallet> for WalletRecord {
    fn from(old: WholeLotsWallet) -> WalletRecord {
        let WholeLotsWallet {
            id,
            contact_id,
            business_id,
            currency,
            lots,
            open,
            reserved,
            holds,
            auto_payable,
            next_seq,
            lots_apart,
        } = old;
        WalletRecord {
            id,
            contact_id,
            business_id,
            currency,
            lots,
            open,
            reserved,
            holds,
            auto_payable,
            next_seq,
            lots_apart,
        }
    }
}

/// [`OpenLotRecord`](super::records::OpenLotRecord) as format 1 wrote it: its lot whole. Read
/// by `decode_old`.
#[derive(Serialize, Deserialize)]
pub(super) struct WholeOpenLot {
    pub order: u64,
    pub lot: LotRecord,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rewards_core::MerchantId;
    use rewards_storage::codec;

    use super::super::records::{LotsRecord, OpenLotRecord};
    use super::*;

    /// Lots that mostly follow the pattern of a wallet's (the next lot of the same event, its
    /// id derived from it) and now and then break it: another event, an id of no event or of
    /// another event's, extreme amounts and indexes.
    fn lots() -> impl Strategy<Value = Vec<LotRecord>> {
        let lot = (
            (any::<bool>(), any::<[u8; 16]>()),
            (0u8..3, any::<u32>(), any::<[u8; 16]>()),
            (any::<i64>(), any::<i64>(), any::<i64>()),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<[u8; 16]>()),
            prop::option::of(any::<[u8; 16]>()),
            any::<bool>(),
            any::<[i64; 3]>(),
        );
        prop::collection::vec(lot, 0..12).prop_map(|parts| {
            let mut out: Vec<LotRecord> = Vec::new();
            for (event, id, amounts, expires, offer, merchant, expired, rest) in parts {
                let event_id = match (event.0, out.last()) {
                    (true, Some(b)) => b.event_id,
                    _ => EventId::from_bytes(event.1),
                };
                let id = match id.0 {
                    0 => LotId::for_event(event_id, id.1),
                    1 => LotId::for_event(EventId::from_bytes(id.2), id.1),
                    _ => LotId::from_bytes(id.2),
                };
                out.push(LotRecord {
                    id,
                    amount: Money::from_minor(amounts.0),
                    remaining: Money::from_minor(amounts.1),
                    expires_at: expires.map(Timestamp),
                    offer_id: offer.map(OfferId::from_bytes),
                    event_id,
                    funding: match merchant {
                        Some(m) => FundingRecord::Merchant(MerchantId::from_bytes(m)),
                        None => FundingRecord::Business,
                    },
                    expired,
                    redeemed: Money::from_minor(amounts.2),
                    expired_amount: Money::from_minor(rest[0]),
                    clawed_back_commerce: Money::from_minor(rest[1]),
                    clawed_back_open: Money::from_minor(rest[2]),
                });
            }
            out
        })
    }

    /// Format 1's bytes of lots, to compare sizes.
    #[derive(Serialize, Deserialize)]
    struct Whole(Vec<LotRecord>);

    impl rewards_storage::Record for Whole {
        const VERSION: u8 = 1;
    }

    proptest! {
        #[test]
        fn lots_read_back_as_they_were_written(lots in lots()) {
            let record = LotsRecord(lots.clone());
            let bytes = codec::encode(&record);
            prop_assert_eq!(codec::decode::<LotsRecord>(&bytes).unwrap(), record);
            // Never larger than format 1 but for the parts' tags.
            prop_assert!(bytes.len() <= codec::encode(&Whole(lots.clone())).len() + 2 * lots.len());
            for (order, lot) in lots.into_iter().enumerate() {
                let open = OpenLotRecord { order: order as u64, lot };
                let bytes = codec::encode(&open);
                prop_assert_eq!(codec::decode::<OpenLotRecord>(&bytes).unwrap(), open);
            }
        }
    }

    #[test]
    fn the_lots_of_one_event_take_two_thirds_of_format_1() {
        let event = EventId::from_bytes([7; 16]);
        let lots: Vec<LotRecord> = (0..4)
            .map(|index| LotRecord {
                id: LotId::for_event(event, index),
                amount: Money::from_minor(50),
                remaining: Money::from_minor(50),
                expires_at: Some(Timestamp(1_796_657_205_176)),
                offer_id: Some(OfferId::from_bytes([index as u8; 16])),
                event_id: event,
                funding: FundingRecord::Business,
                expired: false,
                redeemed: Money::ZERO,
                expired_amount: Money::ZERO,
                clawed_back_commerce: Money::ZERO,
                clawed_back_open: Money::ZERO,
            })
            .collect();
        let compact = codec::encode(&LotsRecord(lots.clone())).len();
        let whole = codec::encode(&Whole(lots.clone())).len();
        assert!(compact * 3 <= whole * 2, "{compact} bytes against {whole}");
    }

    #[test]
    fn a_lot_whose_event_follows_from_nothing_is_refused() {
        // A sequence of one lot, its event `Implied`: bincode writes the length, then the
        // variant index 0.
        let mut bytes = vec![<LotsRecord as rewards_storage::Record>::VERSION, 1, 0];
        bytes.extend_from_slice(&[0, 0]); // `OfEvent(0)`
        bytes.extend_from_slice(&[0; 11]);
        assert!(codec::decode::<LotsRecord>(&bytes).is_err());
    }
}
