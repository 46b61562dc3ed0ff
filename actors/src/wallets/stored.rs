//! A wallet as it is stored: its state in `wallets`, each open lot apart in `open_lots`.
//!
//! A wallet gathers a lot with every award and keeps it until it is spent or expires, so its
//! whole state grows with its history. Writing it whole on every purchase made the wallet the
//! largest record a purchase wrote. Now a change writes the wallet's state without its lots,
//! plus the lots it added or changed, and deletes the lots it closed.
//!
//! Lots are spent earliest expiry first, and in the order the wallet gained them when expiries
//! tie, so each stored lot keeps its place (`order`) and a wallet is read back with its lots in
//! that order. A resident wallet remembers each lot's place ([`LotPlaces`]) to write a changed
//! lot under the place it had.

use rewards_core::wallet::{Lot, Wallet};
use rewards_core::{LotId, WalletId};
use rewards_storage::{Space, Store, StoreError, WriteSet};

use crate::schema::{keys, LotRecord, OpenLotRecord, WalletRecord};

/// The place of each of a wallet's lots that is stored apart, by lot id (sorted), and the
/// place the next new lot gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LotPlaces {
    by_id: Vec<(LotId, u64)>,
    next: u64,
}

impl LotPlaces {
    fn of(&self, lot: LotId) -> Option<u64> {
        self.by_id
            .binary_search_by_key(&lot, |(id, _)| *id)
            .ok()
            .and_then(|i| self.by_id.get(i))
            .map(|(_, place)| *place)
    }
}

/// The wallet's state without its lots.
fn state_record(wallet: &Wallet) -> WalletRecord {
    let Wallet {
        id,
        contact_id,
        business_id,
        currency,
        lots: _,
        open,
        reserved,
        holds,
        auto_payable,
        next_seq,
    } = wallet;
    WalletRecord {
        id: *id,
        contact_id: *contact_id,
        business_id: *business_id,
        currency: *currency,
        lots: Vec::new(),
        open: *open,
        reserved: *reserved,
        holds: holds.iter().map(Into::into).collect(),
        auto_payable: *auto_payable,
        next_seq: *next_seq,
    }
}

/// Adds to `set` what turns the stored `before` (whose lots stored apart have `places`) into
/// `after`, and returns the places after it. A wallet read from a record of format 1 has its
/// lots inline and no places: all of them are written apart.
pub(crate) fn put(
    set: &mut WriteSet,
    before: &Wallet,
    places: &LotPlaces,
    after: &Wallet,
) -> LotPlaces {
    set.put(
        Space::Wallets,
        keys::wallet_key(after.id),
        &state_record(after),
    );
    let mut before_lots: Vec<&Lot> = before.lots.iter().collect();
    before_lots.sort_unstable_by_key(|lot| lot.id);
    let unchanged = |lot: &Lot| {
        before_lots
            .binary_search_by_key(&lot.id, |l| l.id)
            .ok()
            .and_then(|i| before_lots.get(i))
            .is_some_and(|old| *old == lot)
    };
    // The lots keep their places, and new ones go after them, as long as the wallet's order
    // agrees with the stored one (the core only appends lots and removes them); if it ever
    // does not, every lot is written again in the wallet's order.
    let mut kept = Vec::with_capacity(after.lots.len());
    let mut last = None;
    let mut new_before = false;
    let mut in_order = true;
    for lot in &after.lots {
        if let Some(place) = places.of(lot.id) {
            in_order &= !new_before && last.is_none_or(|l| place > l);
            last = Some(place);
            kept.push(Some(place));
        } else {
            new_before = true;
            kept.push(None);
        }
    }
    let mut next = places.next;
    let mut by_id = Vec::with_capacity(after.lots.len());
    for (lot, place) in after.lots.iter().zip(kept) {
        let place = match place {
            Some(place) if in_order => {
                if unchanged(lot) {
                    by_id.push((lot.id, place));
                    continue;
                }
                place
            }
            _ => {
                next += 1;
                next - 1
            }
        };
        set.put(
            Space::OpenLots,
            keys::open_lot_key(after.id, lot.id),
            &OpenLotRecord {
                order: place,
                lot: LotRecord::from(lot),
            },
        );
        by_id.push((lot.id, place));
    }
    by_id.sort_unstable_by_key(|(id, _)| *id);
    for (id, _) in &places.by_id {
        if by_id.binary_search_by_key(id, |(i, _)| *i).is_err() {
            set.delete(Space::OpenLots, keys::open_lot_key(after.id, *id));
        }
    }
    LotPlaces { by_id, next }
}

/// Writes a new wallet (nothing of it stored yet).
pub(crate) fn put_new(set: &mut WriteSet, wallet: &Wallet) {
    let empty = Wallet {
        lots: Vec::new(),
        ..wallet.clone()
    };
    put(set, &empty, &LotPlaces::default(), wallet);
}

/// Reads a wallet with its lots in their order, and the places of those stored apart.
pub(crate) fn load(store: &Store, id: WalletId) -> Result<Option<(Wallet, LotPlaces)>, StoreError> {
    let Some(record) = store.get::<WalletRecord>(Space::Wallets, &keys::wallet_key(id))? else {
        return Ok(None);
    };
    let mut wallet = Wallet::from(record);
    let mut apart: Vec<(u64, Lot)> = Vec::new();
    store.for_each::<OpenLotRecord>(
        Space::OpenLots,
        &keys::open_lots_prefix(id),
        |_, record| {
            apart.push((record.order, Lot::from(record.lot)));
            Ok(())
        },
    )?;
    apart.sort_unstable_by_key(|(place, _)| *place);
    let next = apart.last().map_or(0, |(place, _)| place + 1);
    let mut by_id: Vec<(LotId, u64)> = apart.iter().map(|(place, lot)| (lot.id, *place)).collect();
    by_id.sort_unstable_by_key(|(id, _)| *id);
    // Lots still inline (format 1) come first: a wallet has them only until its next write.
    wallet.lots.extend(apart.into_iter().map(|(_, lot)| lot));
    Ok(Some((wallet, LotPlaces { by_id, next })))
}

/// Reads a wallet with its lots (for answers and reports).
pub(crate) fn read(store: &Store, id: WalletId) -> Result<Option<Wallet>, StoreError> {
    Ok(load(store, id)?.map(|(wallet, _)| wallet))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewards_core::offer::Redemption;
    use rewards_core::wallet::{AwardInput, Funding};
    use rewards_core::{BusinessId, ContactId, Currency, EventId, Money, Timestamp};
    use rewards_storage::StoreOptions;

    fn award(wallet: &mut Wallet, n: u8, expires_at: Option<Timestamp>) {
        let event_id = EventId::from_bytes([n; 16]);
        wallet
            .award(
                &AwardInput {
                    event_id,
                    // Lot ids out of the order the lots are gained in, as derived ids are.
                    lot_id: LotId::from_bytes([200 - n; 16]),
                    offer_id: None,
                    amount: Money::from_minor(100 * i64::from(n)),
                    expires_at,
                    redeem: Redemption::Deferred,
                    funding: Funding::Business,
                },
                Timestamp(1_000),
            )
            .unwrap();
    }

    fn write(
        store: &Store,
        before: &Wallet,
        places: &LotPlaces,
        after: &Wallet,
    ) -> (LotPlaces, usize) {
        let mut set = WriteSet::new();
        let places = put(&mut set, before, places, after);
        let records = set.len();
        store.write(set).unwrap();
        (places, records)
    }

    #[test]
    fn a_change_writes_the_lots_it_touched_and_the_wallet_reads_back_in_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let id = WalletId::from_bytes([3; 16]);
        let empty = Wallet::new(
            id,
            ContactId::from_bytes([2; 16]),
            BusinessId::from_bytes([1; 16]),
            Currency::parse("EUR").unwrap(),
        );
        let mut wallet = empty.clone();
        for n in 1..=4 {
            award(&mut wallet, n, None);
        }
        let (places, records) = write(&store, &empty, &LotPlaces::default(), &wallet);
        assert_eq!(records, 1 + 4, "the wallet's state and each new lot");
        let (read, read_places) = load(&store, id).unwrap().unwrap();
        assert_eq!(read, wallet);
        assert_eq!(read_places, places);

        // One more award: the state and that lot alone.
        let mut after = wallet.clone();
        award(&mut after, 5, None);
        let (places, records) = write(&store, &wallet, &places, &after);
        assert_eq!(records, 2);
        assert_eq!(
            load(&store, id).unwrap().unwrap(),
            (after.clone(), places.clone())
        );

        // A spend that closes the first lot and takes part of the second: one deletion, one
        // rewrite, and the order of what is left stays the order the lots were gained in.
        let mut spent = after.clone();
        spent
            .redeem(Money::from_minor(150), None, Timestamp(2_000))
            .unwrap();
        let closed = spent.take_closed_lots();
        assert_eq!(closed.len(), 1);
        let (places, records) = write(&store, &after, &places, &spent);
        assert_eq!(records, 1 + 1 + 1);
        let (read, read_places) = load(&store, id).unwrap().unwrap();
        assert_eq!(read, spent);
        assert_eq!(read_places, places);
    }

    #[test]
    fn a_wallet_of_the_first_format_moves_its_lots_apart_at_its_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let id = WalletId::from_bytes([3; 16]);
        let mut wallet = Wallet::new(
            id,
            ContactId::from_bytes([2; 16]),
            BusinessId::from_bytes([1; 16]),
            Currency::parse("EUR").unwrap(),
        );
        for n in 1..=3 {
            award(&mut wallet, n, Some(Timestamp(10_000)));
        }
        // As format 1 stored it: the lots inside the wallet's record.
        let mut set = WriteSet::new();
        set.put(
            Space::Wallets,
            keys::wallet_key(id),
            &WalletRecord::from(&wallet),
        );
        store.write(set).unwrap();
        let (read, places) = load(&store, id).unwrap().unwrap();
        assert_eq!(read, wallet);
        assert_eq!(places, LotPlaces::default());

        let mut after = read.clone();
        award(&mut after, 4, Some(Timestamp(10_000)));
        let (places, records) = write(&store, &read, &places, &after);
        assert_eq!(records, 1 + 4, "every lot written apart");
        let stored: WalletRecord = store
            .get(Space::Wallets, &keys::wallet_key(id))
            .unwrap()
            .unwrap();
        assert!(stored.lots.is_empty());
        assert_eq!(load(&store, id).unwrap().unwrap(), (after, places));
    }
}
