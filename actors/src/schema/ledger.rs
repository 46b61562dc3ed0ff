//! Format 2 of [`LedgerEntriesRecord`]: each entry written against the one before it.
//!
//! The entries one operation posts repeat most of what they hold: a purchase's award and redeem
//! pairs share the event, the time and consecutive sequence numbers, each lot is the event's
//! own (its id derived from the event's), and each entry's balances are the last one's moved by
//! its postings. Format 1 wrote all of it whole, about 70 bytes an entry and ten entries for a
//! purchase with instant awards: a quarter of what a purchase put in the log. Format 2 writes
//! each of those parts as one byte when it follows from the entry before, and the value itself
//! when it does not; the encoder checks every part it leaves out by computing it back, so an
//! entry that breaks a pattern is written whole, never read back different.
//!
//! Layout (bincode 2, as every record): a sequence of entries, each with, in order:
//! - the sequence number: `Implied` (the previous entry's plus one) or `Stated(u64)`;
//! - the kind and the amount, as in format 1;
//! - the event: `Implied` (the previous entry's) or `Stated(Option<EventId>)`;
//! - the lot: none, `OfEvent(index)` (`LotId::for_event` of this entry's event) or `Stated(id)`;
//! - the estimate, as in format 1;
//! - the time: `Implied` (the previous entry's) or `Stated(Timestamp)`;
//! - the postings, as in format 1;
//! - the balances after: `Implied` (the previous entry's plus this entry's postings on the
//!   wallet's commerce, open and reserved accounts) or `Stated(balances)`.
//!
//! The first entry states all of them: there is no entry before it.

use rewards_core::{EstimateId, EventId, LotId, Money, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

use super::records::{
    AccountRecord, BalancesRecord, EntryKindRecord, LedgerEntriesRecord, LedgerEntryRecord,
    PostingRecord,
};
use super::relative::{deserialize_seq, implied, lot_index, serialize_seq, Compact, Relative};

/// Format 1: every entry whole. Read by `decode_old`.
#[derive(Serialize, Deserialize)]
pub(super) struct WholeEntries(pub Vec<LedgerEntryRecord>);

#[derive(Serialize, Deserialize)]
enum LotPart {
    None,
    /// The `index`-th lot of the entry's event: `LotId::for_event(event, index)`.
    OfEvent(u32),
    Stated(LotId),
}

#[derive(Serialize, Deserialize)]
struct CompactEntry {
    seq: Relative<u64>,
    kind: EntryKindRecord,
    amount: Money,
    event_id: Relative<Option<EventId>>,
    lot_id: LotPart,
    estimate_id: Option<EstimateId>,
    at: Relative<Timestamp>,
    #[serde(deserialize_with = "rewards_core::wallet::seq_via_vec")]
    postings: SmallVec<[PostingRecord; 3]>,
    balances_after: Relative<BalancesRecord>,
}

/// `before`'s balances moved by `postings` on the wallet's accounts; `None` on an overflow.
fn balances_moved(before: &BalancesRecord, postings: &[PostingRecord]) -> Option<BalancesRecord> {
    let mut after = *before;
    for posting in postings {
        let account = match posting.account {
            AccountRecord::Commerce => &mut after.commerce,
            AccountRecord::Open => &mut after.open,
            AccountRecord::Reserved => &mut after.reserved,
            _ => continue,
        };
        *account = account.checked_add(posting.amount)?;
    }
    Some(after)
}

impl Compact for CompactEntry {
    type Whole = LedgerEntryRecord;

    fn of(entry: &LedgerEntryRecord, before: Option<&LedgerEntryRecord>) -> CompactEntry {
        let lot_id = match (entry.lot_id, entry.event_id) {
            (None, _) => LotPart::None,
            (Some(lot), Some(event)) => match lot_index(event, lot) {
                Some(index) => LotPart::OfEvent(index),
                None => LotPart::Stated(lot),
            },
            (Some(lot), None) => LotPart::Stated(lot),
        };
        CompactEntry {
            seq: implied(entry.seq, before.and_then(|b| b.seq.checked_add(1))),
            kind: entry.kind,
            amount: entry.amount,
            event_id: implied(entry.event_id, before.map(|b| b.event_id)),
            lot_id,
            estimate_id: entry.estimate_id,
            at: implied(entry.at, before.map(|b| b.at)),
            postings: entry.postings.clone(),
            balances_after: implied(
                entry.balances_after,
                before.and_then(|b| balances_moved(&b.balances_after, &entry.postings)),
            ),
        }
    }

    fn resolve(self, before: Option<&LedgerEntryRecord>) -> Result<LedgerEntryRecord, String> {
        fn part<T>(part: Relative<T>, before: Option<T>, name: &str) -> Result<T, String> {
            match part {
                Relative::Stated(value) => Ok(value),
                Relative::Implied => {
                    before.ok_or_else(|| format!("a ledger entry's {name} follows from nothing"))
                }
            }
        }
        let seq = part(
            self.seq,
            before.and_then(|b| b.seq.checked_add(1)),
            "sequence",
        )?;
        let event_id = part(self.event_id, before.map(|b| b.event_id), "event")?;
        let lot_id = match self.lot_id {
            LotPart::None => None,
            LotPart::Stated(lot) => Some(lot),
            LotPart::OfEvent(index) => Some(LotId::for_event(
                event_id.ok_or("a ledger entry's lot is of no event")?,
                index,
            )),
        };
        let at = part(self.at, before.map(|b| b.at), "time")?;
        let balances_after = part(
            self.balances_after,
            before.and_then(|b| balances_moved(&b.balances_after, &self.postings)),
            "balances",
        )?;
        Ok(LedgerEntryRecord {
            seq,
            kind: self.kind,
            amount: self.amount,
            event_id,
            lot_id,
            estimate_id: self.estimate_id,
            at,
            postings: self.postings,
            balances_after,
        })
    }
}

impl Serialize for LedgerEntriesRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_seq::<CompactEntry, S>(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for LedgerEntriesRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_seq::<CompactEntry, D>(deserializer, "a sequence of ledger entries")
            .map(LedgerEntriesRecord)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rewards_storage::codec;

    use super::*;

    const ACCOUNTS: [AccountRecord; 5] = [
        AccountRecord::Commerce,
        AccountRecord::Open,
        AccountRecord::Reserved,
        AccountRecord::AwardFunding,
        AccountRecord::Holds,
    ];

    /// Entries that mostly follow from the one before, as an operation's do, and now and then
    /// break each pattern: a gap in the sequence, another event or time, a lot of no event or
    /// of another, balances that are not the postings' sum, amounts near the limits.
    fn entries() -> impl Strategy<Value = Vec<LedgerEntryRecord>> {
        let entry = (
            (any::<bool>(), any::<u64>()),
            (any::<bool>(), prop::option::of(any::<[u8; 16]>())),
            (0u8..4, any::<u32>(), any::<[u8; 16]>()),
            (any::<bool>(), any::<i64>()),
            prop::collection::vec((0usize..5, any::<i64>(), -1_000i64..1_000), 0..4),
            (any::<bool>(), any::<[i64; 3]>()),
            prop::option::of(any::<[u8; 16]>()),
        );
        prop::collection::vec(entry, 0..12).prop_map(|parts| {
            let mut out: Vec<LedgerEntryRecord> = Vec::new();
            for (seq, event, lot, at, postings, balances, estimate) in parts {
                let before = out.last();
                let seq = match (seq.0, before) {
                    (true, Some(b)) => b.seq.wrapping_add(1),
                    _ => seq.1,
                };
                let event_id = match (event.0, before) {
                    (true, Some(b)) => b.event_id,
                    _ => event.1.map(EventId::from_bytes),
                };
                let lot_id = match (lot.0, event_id) {
                    (0, _) => None,
                    (1, Some(event)) => Some(LotId::for_event(event, lot.1)),
                    _ => Some(LotId::from_bytes(lot.2)),
                };
                let at = match (at.0, before) {
                    (true, Some(b)) => b.at,
                    _ => Timestamp(at.1),
                };
                let postings: SmallVec<[PostingRecord; 3]> = postings
                    .into_iter()
                    .map(|(account, big, small)| PostingRecord {
                        account: ACCOUNTS[account % ACCOUNTS.len()],
                        amount: Money::from_minor(if small % 7 == 0 { big } else { small }),
                    })
                    .collect();
                let stated = BalancesRecord {
                    commerce: Money::from_minor(balances.1[0]),
                    open: Money::from_minor(balances.1[1]),
                    reserved: Money::from_minor(balances.1[2]),
                };
                let balances_after = match before {
                    Some(b) if balances.0 => {
                        balances_moved(&b.balances_after, &postings).unwrap_or(stated)
                    }
                    _ => stated,
                };
                out.push(LedgerEntryRecord {
                    seq,
                    kind: EntryKindRecord::Award,
                    amount: Money::from_minor(at.0 / 3),
                    event_id,
                    lot_id,
                    estimate_id: estimate.map(EstimateId::from_bytes),
                    at,
                    postings,
                    balances_after,
                });
            }
            out
        })
    }

    proptest! {
        #[test]
        fn entries_read_back_as_they_were_written(entries in entries()) {
            let record = LedgerEntriesRecord(entries);
            let bytes = codec::encode(&record);
            prop_assert_eq!(codec::decode::<LedgerEntriesRecord>(&bytes).unwrap(), record.clone());
            // Never larger than format 1 but for the parts' tags.
            let whole = codec::encode(&WholeEntries(record.0.clone()));
            prop_assert!(bytes.len() <= whole.len() + 5 * record.0.len());
        }
    }

    /// Format 1's bytes of the same entries, to compare sizes.
    impl rewards_storage::Record for WholeEntries {
        const VERSION: u8 = 1;
    }

    #[test]
    fn a_purchases_entries_take_a_third_of_format_1() {
        let event = EventId::from_bytes([7; 16]);
        let mut entries = Vec::new();
        let mut balances = BalancesRecord::default();
        for (i, amount) in [380i64, 20, 52, 15].into_iter().enumerate() {
            let lot = LotId::for_event(event, i as u32);
            for (kind, postings) in [
                (
                    EntryKindRecord::Award,
                    [
                        (AccountRecord::Commerce, amount),
                        (AccountRecord::AwardFunding, -amount),
                    ],
                ),
                (
                    EntryKindRecord::Redeem,
                    [
                        (AccountRecord::Commerce, -amount),
                        (AccountRecord::Open, amount),
                    ],
                ),
            ] {
                let postings: SmallVec<[PostingRecord; 3]> = postings
                    .iter()
                    .map(|(account, amount)| PostingRecord {
                        account: *account,
                        amount: Money::from_minor(*amount),
                    })
                    .collect();
                balances = balances_moved(&balances, &postings).unwrap();
                entries.push(LedgerEntryRecord {
                    seq: 240 + entries.len() as u64,
                    kind,
                    amount: Money::from_minor(amount),
                    event_id: Some(event),
                    lot_id: Some(lot),
                    estimate_id: None,
                    at: Timestamp(1_796_657_205_176),
                    postings,
                    balances_after: balances,
                });
            }
        }
        let record = LedgerEntriesRecord(entries);
        let compact = codec::encode(&record).len();
        let whole = codec::encode(&WholeEntries(record.0.clone())).len();
        assert!(compact * 3 <= whole, "{compact} bytes against {whole}");
    }
}
