//! Settlement entries between a business and its merchants, written in the commit of the event
//! they settle (SPEC section 10): an event at a merchant records what the merchant funds of its
//! awards and the fees, and the wallet money spent there; a return takes back its share, a
//! void what is left.

use rewards_core::settlement::{settle, SettlementEntry};

use super::*;
use crate::schema::keys::{SETTLEMENT_RETURN, SETTLEMENT_VOID};
use crate::schema::SettlementRecord;

impl WalletActor {
    /// A new event's settlement with its merchant, if it has a merchant and something to
    /// settle.
    pub(super) fn settle_new(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        event: &EventRecord,
    ) {
        let Some(merchant_id) = event.merchant_id else {
            return;
        };
        let Some(merchant) = snapshot.merchants.get(&merchant_id) else {
            return;
        };
        let awards: Vec<Money> = event.awards.iter().map(|a| a.amount).collect();
        let entry = settle(
            &merchant.commercial_terms,
            merchant_id,
            event.id,
            event.created_at,
            &awards,
            spent_of(event),
            snapshot.business.currency,
        );
        // Written with the business's index entry of the event (`put_event`).
        if let Some(entry) = entry {
            change.settlements.push(entry);
        }
    }

    /// The settlement entry an event wrote when it was posted (in flight or stored).
    fn posted_settlement(&self, event: &EventRecord) -> Result<Option<SettlementEntry>, Failure> {
        let Some(merchant) = event.merchant_id else {
            return Ok(None);
        };
        if let Some(entry) = self
            .recent
            .as_ref()
            .and_then(|r| r.settlements.get(&event.id))
        {
            return Ok(Some(entry.clone()));
        }
        let key = keys::business_index_key(event.business_id, event.created_at, event.id);
        let value = self.app.store.get_raw(Space::EventIndex, &key)?;
        let entry = value.as_deref().and_then(index_settlement);
        Ok(entry.filter(|e| e.merchant_id == merchant))
    }

    /// A return's settlement: the share of the event's entry that its clawed-back awards and
    /// refunded spend stand for, taken back. `before` is what was clawed back and refunded
    /// before this return; `event` has this return in its totals.
    pub(super) fn settle_return(
        &self,
        change: &mut Change,
        event: &EventRecord,
        before: (Money, Money),
        return_id: EventId,
        now: Timestamp,
        currency: rewards_core::Currency,
    ) -> Result<(), Failure> {
        let Some(posted) = self.posted_settlement(event)? else {
            return Ok(());
        };
        let (awarded, spent) = (awarded_of(event), spent_of(event));
        let earlier = posted.share((before.0, awarded), (before.1, spent), currency);
        let now_taken = posted.share(
            (event.returns.clawed_back, awarded),
            (event.returns.refunded, spent),
            currency,
        );
        let entry = earlier.minus(&now_taken, now);
        if !entry.is_empty() {
            put(
                change,
                event.business_id,
                &entry,
                SETTLEMENT_RETURN,
                Some(return_id),
            );
        }
        Ok(())
    }

    /// A void's settlement: what the event's entry still holds after its returns, taken back.
    pub(super) fn settle_void(
        &self,
        change: &mut Change,
        event: &EventRecord,
        now: Timestamp,
        currency: rewards_core::Currency,
    ) -> Result<(), Failure> {
        let Some(posted) = self.posted_settlement(event)? else {
            return Ok(());
        };
        let taken = posted.share(
            (event.returns.clawed_back, awarded_of(event)),
            (event.returns.refunded, spent_of(event)),
            currency,
        );
        let entry = taken.minus(&posted, now);
        if !entry.is_empty() {
            put(change, event.business_id, &entry, SETTLEMENT_VOID, None);
        }
        Ok(())
    }
}

/// The value of a business's index entry of an event: the event's id, then its settlement
/// entry with its merchant when it has one (a posted event's own entry is kept there rather than
/// as a record of its own: one record fewer per purchase).
pub(crate) fn index_value(id: EventId, settlement: Option<&SettlementEntry>) -> Vec<u8> {
    let mut value = id.as_bytes().to_vec();
    if let Some(entry) = settlement {
        value.extend(rewards_storage::codec::encode(&SettlementRecord::from(
            entry,
        )));
    }
    value
}

/// The settlement entry of a business's index entry's value, if it carries one.
pub(crate) fn index_settlement(value: &[u8]) -> Option<SettlementEntry> {
    let record = value.get(16..).filter(|rest| !rest.is_empty())?;
    rewards_storage::codec::decode::<SettlementRecord>(record)
        .ok()
        .map(SettlementEntry::from)
}

fn awarded_of(event: &EventRecord) -> Money {
    event.awards.iter().map(|a| a.amount).sum()
}

fn spent_of(event: &EventRecord) -> Money {
    event.spend.as_ref().map_or(Money::ZERO, |s| s.spent)
}

fn put(
    change: &mut Change,
    business: rewards_core::BusinessId,
    entry: &SettlementEntry,
    kind: u8,
    return_id: Option<EventId>,
) {
    change.set.put(
        Space::EventIndex,
        keys::settlement_key(
            business,
            entry.merchant_id,
            entry.at,
            entry.event_id,
            kind,
            return_id,
        ),
        &SettlementRecord::from(entry),
    );
}
