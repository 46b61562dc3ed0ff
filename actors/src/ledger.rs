//! Ledger entries and closed lots in the store. The entries one operation posts are one record,
//! keyed by wallet and the first entry's sequence number; the lots it closed are one record per
//! event. Fewer, larger records keep the store's write path short.

use std::collections::BTreeMap;

use rewards_core::wallet::{LedgerEntry, Lot};
use rewards_core::{EventId, LotId, WalletId};
use rewards_storage::{Space, Store, StoreError, WriteSet};

use crate::schema::{keys, LedgerEntriesRecord, LotRecord, LotsRecord};

/// Writes the entries of one operation (consecutive sequence numbers of one wallet).
pub fn put_entries(set: &mut WriteSet, wallet: WalletId, entries: &[LedgerEntry]) {
    if let Some(first) = entries.first() {
        debug_assert!(entries
            .windows(2)
            .all(|w| matches!(w, [a, b] if b.seq == a.seq + 1)));
        set.put(
            Space::Ledger,
            keys::ledger_key(wallet, first.seq),
            &LedgerEntriesRecord::from(entries),
        );
    }
}

/// One page of a wallet's entries, newest first, below sequence number `before`. The second value
/// is the cursor of the next page (the last entry's sequence number), if there may be more.
pub fn page(
    store: &Store,
    wallet: WalletId,
    before: Option<u64>,
    limit: usize,
) -> Result<(Vec<LedgerEntry>, Option<u64>), StoreError> {
    let cursor = before.map(|seq| keys::ledger_key(wallet, seq));
    // Each record holds at least one entry, so `limit` records are enough for a page; a record
    // that starts below the cursor may hold entries at or above it, which are skipped.
    let (groups, _) = store.page::<LedgerEntriesRecord>(
        Space::Ledger,
        &keys::ledger_prefix(wallet),
        cursor.as_deref(),
        true,
        limit,
    )?;
    let mut entries = Vec::with_capacity(limit);
    for (_, group) in groups {
        for entry in Vec::<LedgerEntry>::from(group).into_iter().rev() {
            if before.is_some_and(|b| entry.seq >= b) {
                continue;
            }
            if entries.len() == limit {
                let next = entries.last().map(|e: &LedgerEntry| e.seq);
                return Ok((entries, next));
            }
            entries.push(entry);
        }
    }
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten()
        .filter(|&seq| seq > 0);
    Ok((entries, next))
}

/// A closed lot that was redeemed in full, nothing expired or clawed back: its state follows
/// from its award (see [`plain_lot`]), so it is not stored. Most closed lots are these (instant
/// awards, and deferred ones spent later).
pub fn is_plain(lot: &Lot) -> bool {
    lot.remaining.is_zero()
        && lot.redeemed == lot.amount
        && lot.expired_amount.is_zero()
        && lot.clawed_back_commerce.is_zero()
        && lot.clawed_back_open.is_zero()
}

/// The closed lot of an award that was redeemed in full (what [`is_plain`] leaves unstored).
pub fn plain_lot(event: EventId, award: &crate::events::AwardRecord) -> Lot {
    Lot {
        id: award.lot_id(event),
        amount: award.amount,
        remaining: rewards_core::Money::ZERO,
        expires_at: award.expires_at,
        offer_id: Some(award.offer_id),
        event_id: event,
        funding: award.merchant_id.map_or(
            rewards_core::wallet::Funding::Business,
            rewards_core::wallet::Funding::Merchant,
        ),
        expired: false,
        redeemed: award.amount,
        expired_amount: rewards_core::Money::ZERO,
        clawed_back_commerce: rewards_core::Money::ZERO,
        clawed_back_open: rewards_core::Money::ZERO,
    }
}

/// Writes the lots closed by one operation that are not plain, one record per event; `version`
/// orders the records of one event (the wallet's next sequence number at the time), so a later
/// state of a lot wins.
pub fn put_closed_lots(set: &mut WriteSet, wallet: WalletId, version: u64, lots: &[Lot]) {
    let mut by_event: BTreeMap<EventId, LotsRecord> = BTreeMap::new();
    for lot in lots.iter().filter(|l| !is_plain(l)) {
        by_event
            .entry(lot.event_id)
            .or_insert_with(|| LotsRecord(Vec::new()))
            .0
            .push(LotRecord::from(lot));
    }
    for (event, lots) in by_event {
        set.put(Space::Lots, keys::lots_key(wallet, event, version), &lots);
    }
}

/// The closed lots of an event, in their latest stored state.
pub fn closed_lots(
    store: &Store,
    wallet: WalletId,
    event: EventId,
) -> Result<BTreeMap<LotId, Lot>, StoreError> {
    let mut lots = BTreeMap::new();
    store.for_each::<LotsRecord>(
        Space::Lots,
        &keys::lots_prefix(wallet, event),
        |_, group| {
            for lot in Vec::<Lot>::from(group) {
                lots.insert(lot.id, lot);
            }
            Ok(())
        },
    )?;
    Ok(lots)
}
