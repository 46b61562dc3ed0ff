//! The format version of every stored record type, and the decoders of older formats.
//!
//! A change to a record's layout bumps its version here and adds a `decode_old` arm for the
//! version it replaces, with golden bytes of the old format in `tests/it/golden/records.rs`.

use rewards_storage::{codec, CodecError, Record};

use super::lots::{WholeLotsWallet, WholeOpenLot};
use super::records::{
    ConfigRecord, ContactRecord, LedgerEntriesRecord, LotRecord, LotsRecord, OpenLotRecord,
    PendingReferralRecord, SettlementRecord, WalletRecord,
};
use crate::auth::KeyRecord;
use crate::contact_state::ContactState;
use crate::estimates::EstimateRecord;
use crate::events::{AwardLot, EventRecord};
use crate::idempotency::StoredResponse;
use crate::router::records::RouteRecord;
use crate::webhooks::DeliveryRecord;

impl Record for ConfigRecord {
    const VERSION: u8 = 1;
}

impl Record for KeyRecord {
    const VERSION: u8 = 1;
}

impl Record for ContactRecord {
    const VERSION: u8 = 1;
}

impl Record for ContactState {
    const VERSION: u8 = 1;
}

impl Record for WalletRecord {
    /// Version 2 added `lots_apart` at the end: a record of version 1 (its lots inline) reads
    /// with it false, one 0 byte appended. The version also tells a build that does not know
    /// lots apart to refuse the record rather than read a wallet without its lots. Version 3
    /// writes each lot against the one before it (`schema::lots`); 1 and 2 wrote them whole.
    const VERSION: u8 = 3;

    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        let whole = match version {
            1 => {
                let mut upgraded = Vec::with_capacity(body.len() + 1);
                upgraded.extend_from_slice(body);
                upgraded.push(0);
                codec::decode_body::<WholeLotsWallet>(&upgraded)
            }
            2 => codec::decode_body::<WholeLotsWallet>(body),
            _ => return None,
        };
        Some(whole.map(WalletRecord::from))
    }
}

impl Record for OpenLotRecord {
    /// Version 2 writes the lot's id as its index among its event's lots (`schema::lots`);
    /// version 1 wrote the lot whole.
    const VERSION: u8 = 2;

    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| {
            codec::decode_body::<WholeOpenLot>(body).map(|old| OpenLotRecord {
                order: old.order,
                lot: old.lot,
            })
        })
    }
}

impl Record for EventRecord {
    /// Version 2 added `route`, version 3 `achievement`, version 4 `statement`, version 5
    /// `of_event` and `later_spent`, version 6 `referral`: each at the end, each written as one
    /// 0 byte when absent or zero (an absent `Option`, a zero `Money` varint). Version 7 writes
    /// an award's lot as its index among the event's lots ([`AwardLot`]); the lot ids of
    /// earlier versions read as they are, stated whole, and an index in one of them is refused
    /// (those versions never wrote one).
    ///
    /// [`AwardLot`]: crate::events::AwardLot
    const VERSION: u8 = 7;

    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        // An older record is a newer one without its last fields; bincode writes an absent
        // `Option` as one 0 byte, so appending one per missing field reads it as the new one.
        let missing = match version {
            1 => 6,
            2 => 5,
            3 => 4,
            4 => 3,
            5 => 1,
            6 => 0,
            _ => return None,
        };
        let event: Result<EventRecord, CodecError> = if missing == 0 {
            codec::decode_body(body)
        } else {
            let mut upgraded = Vec::with_capacity(body.len() + missing);
            upgraded.extend_from_slice(body);
            upgraded.extend(std::iter::repeat_n(0, missing));
            codec::decode_body(&upgraded)
        };
        Some(event.and_then(|event| {
            match event
                .awards
                .iter()
                .any(|a| matches!(a.lot, AwardLot::OfEvent(_)))
            {
                true => Err(CodecError::Corrupt(format!(
                    "an event of format {version} with an award's lot as an index"
                ))),
                false => Ok(event),
            }
        }))
    }
}

impl Record for LedgerEntriesRecord {
    /// Version 2 writes each entry against the one before it (`schema::ledger`); version 1
    /// wrote every entry whole.
    const VERSION: u8 = 2;

    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| {
            codec::decode_body::<super::ledger::WholeEntries>(body)
                .map(|whole| LedgerEntriesRecord(whole.0))
        })
    }
}

impl Record for PendingReferralRecord {
    const VERSION: u8 = 1;
}

impl Record for LotsRecord {
    /// Version 2 writes each lot against the one before it (`schema::lots`); version 1 wrote
    /// them whole.
    const VERSION: u8 = 2;

    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        (version == 1).then(|| codec::decode_body::<Vec<LotRecord>>(body).map(LotsRecord))
    }
}

impl Record for StoredResponse {
    const VERSION: u8 = 1;
}

impl Record for RouteRecord {
    const VERSION: u8 = 1;
}

impl Record for EstimateRecord {
    const VERSION: u8 = 1;
}

impl Record for DeliveryRecord {
    const VERSION: u8 = 1;
}

impl Record for SettlementRecord {
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use rewards_core::{
        BusinessId, ContactId, EventId, LotId, Money, OfferId, Timestamp, WalletId,
    };
    use rewards_storage::codec;

    use crate::events::{
        AchievementRecord, AwardLot, AwardRecord, EventRecord, EventState, EventType, MatchState,
        ReturnsRecord, RouteFacts,
    };
    use rewards_core::offer::{AchievementKind, Redemption};

    /// An event of today whose award states its lot id whole, as every version before 7 wrote it.
    fn event() -> EventRecord {
        EventRecord {
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
            // A lot id whole, as every version before 7 wrote it.
            awards: vec![AwardRecord {
                offer_id: OfferId::from_bytes([5; 16]),
                amount: Money::from_minor(70),
                redeem: Redemption::Instant,
                expires_at: None,
                lot: AwardLot::Stated(LotId::for_event(EventId::from_bytes([1; 16]), 0)),
                merchant_id: None,
            }],
            spend: None,
            wallet_after: Default::default(),
            spendable_after: Money::from_minor(0),
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

    #[test]
    fn older_events_read_as_version_7_without_their_missing_fields() {
        let event = event();
        let v7 = codec::encode(&event);
        assert_eq!(v7[0], 7);
        // Each older version wrote the same fields without the ones added after it (version 6
        // all of them: it differs only in how it wrote an award's lot, see below).
        for (version, missing) in [(6u8, 0usize), (5, 1), (4, 3), (3, 4), (2, 5), (1, 6)] {
            let mut old = v7[..v7.len() - missing].to_vec();
            old[0] = version;
            assert_eq!(
                codec::decode::<EventRecord>(&old).unwrap(),
                event,
                "{version}"
            );
        }
        let mut v1 = v7[..v7.len() - 6].to_vec();
        v1[0] = 1;
        assert_eq!(codec::decode::<EventRecord>(&v1).unwrap(), event);
        let mut routed = event.clone();
        routed.route = Some(RouteFacts {
            match_state: Some(MatchState::Matched),
            ..RouteFacts::default()
        });
        routed.achievement = Some(AchievementRecord {
            kind: AchievementKind::Web,
            url: Some("https://example.org".into()),
            ..AchievementRecord::default()
        });
        assert_eq!(
            codec::decode::<EventRecord>(&codec::encode(&routed)).unwrap(),
            routed
        );
        v1[0] = 9;
        assert!(codec::decode::<EventRecord>(&v1).is_err());
    }

    #[test]
    fn an_award_lot_as_an_index_is_refused_in_a_version_before_7() {
        let mut event = event();
        for award in &mut event.awards {
            award.lot = AwardLot::OfEvent(5);
        }
        let mut bytes = codec::encode(&event);
        assert_eq!(codec::decode::<EventRecord>(&bytes).unwrap(), event);
        for version in 1..7 {
            bytes[0] = version;
            let missing = [6, 5, 4, 3, 1, 0][usize::from(version - 1)];
            let old = &bytes[..bytes.len() - missing];
            assert!(
                matches!(
                    codec::decode::<EventRecord>(old),
                    Err(rewards_storage::CodecError::Corrupt(_))
                ),
                "{version}"
            );
        }
    }
}
