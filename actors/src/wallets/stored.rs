//! A wallet as it is stored: its state in `wallets`, with its open lots inline while they are
//! few, each apart in `open_lots` once they are many.
//!
//! A wallet gains a lot with every award and keeps it until it is spent or expires, so a wallet
//! that is rarely spent from grows with its history, and writing it whole on every purchase
//! would cost more with each lot. Past `wallet_lots_apart_above` lots a change writes the wallet's state
//! without its lots, plus the lots it added or changed, and deletes the lots it closed. A small
//! wallet stays one record: one key is cheaper to write, checkpoint and compact than a key per
//! lot (with lots apart, `rewards-load`'s wallets of about a dozen lots cost 5 to 17 % more CPU
//! per purchase, measured).
//!
//! Lots are spent earliest expiry first, and in the order the wallet gained them when expiries
//! tie, so each lot stored apart keeps its place (`order`) and a wallet is read back with its
//! lots in that order. A resident wallet remembers each lot's place ([`LotPlaces`]) to write a
//! changed lot under the place it had.

use rewards_core::wallet::{Lot, Wallet};
use rewards_core::WalletId;
use rewards_storage::{Space, Store, StoreError, WriteSet};

use crate::schema::{keys, LotRecord, OpenLotRecord, WalletRecord};

/// The places of a wallet's lots when they are stored apart, in the order of the wallet's lots
/// (empty while they are inline), and the place the next new lot gets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LotPlaces {
    places: Vec<u64>,
    next: u64,
}

fn put_lot(set: &mut WriteSet, wallet: WalletId, place: u64, lot: &Lot) {
    set.put(
        Space::OpenLots,
        keys::open_lot_key(wallet, lot.id),
        &OpenLotRecord {
            order: place,
            lot: LotRecord::from(lot),
        },
    );
}

/// Adds to `set` what turns the stored `before` (with `places` for its lots) into `after`, and
/// returns the places after it. A wallet with more than `apart_above` open lots (the setting
/// `wallet_lots_apart_above`) stores them apart; one whose lots are apart takes them back
/// inline at half as many or fewer (the gap keeps a wallet near the limit from moving its lots
/// at every change).
pub(crate) fn put(
    set: &mut WriteSet,
    apart_above: usize,
    before: &Wallet,
    places: &LotPlaces,
    after: &Wallet,
) -> LotPlaces {
    let was_apart = !places.places.is_empty();
    let apart = if was_apart {
        after.lots.len() > apart_above / 2
    } else {
        after.lots.len() > apart_above
    };
    if !apart {
        set.put(
            Space::Wallets,
            keys::wallet_key(after.id),
            &WalletRecord::from(after),
        );
        if was_apart {
            for lot in &before.lots {
                set.delete(Space::OpenLots, keys::open_lot_key(after.id, lot.id));
            }
        }
        return LotPlaces::default();
    }
    set.put(
        Space::Wallets,
        keys::wallet_key(after.id),
        &WalletRecord::of(after, true),
    );
    if !was_apart {
        // Moving apart: every lot, in the wallet's order.
        for (place, lot) in (0u64..).zip(&after.lots) {
            put_lot(set, after.id, place, lot);
        }
        return LotPlaces {
            places: (0..after.lots.len() as u64).collect(),
            next: after.lots.len() as u64,
        };
    }
    // The core appends lots and removes closed ones without reordering the rest, so one walk
    // over both lists in step finds the lots a change closed (in `before` only), changed and
    // added (at the end of `after`). A lot met again after it was passed over is deleted, then
    // written again with a new place: a change that reorders lots costs writes, never a lot.
    let mut kept = Vec::with_capacity(after.lots.len());
    let mut next = places.next;
    let mut old = before.lots.iter().zip(&places.places).peekable();
    for lot in &after.lots {
        loop {
            match old.peek() {
                Some((was, place)) if was.id == lot.id => {
                    if *was != lot {
                        put_lot(set, after.id, **place, lot);
                    }
                    kept.push(**place);
                    old.next();
                    break;
                }
                Some((was, _)) => {
                    set.delete(Space::OpenLots, keys::open_lot_key(after.id, was.id));
                    old.next();
                }
                None => {
                    put_lot(set, after.id, next, lot);
                    kept.push(next);
                    next += 1;
                    break;
                }
            }
        }
    }
    for (was, _) in old {
        set.delete(Space::OpenLots, keys::open_lot_key(after.id, was.id));
    }
    LotPlaces { places: kept, next }
}

/// Writes a new wallet (nothing of it stored yet). With no places, [`put`] reads nothing of
/// `before`, so the wallet stands in for it.
pub(crate) fn put_new(set: &mut WriteSet, apart_above: usize, wallet: &Wallet) {
    put(set, apart_above, wallet, &LotPlaces::default(), wallet);
}

/// Reads a wallet with its lots in their order, and their places when they are apart (only
/// then is `open_lots` read). For the wallet's own actor, which is its only writer: nothing
/// changes the wallet between the two reads.
pub(crate) fn load(store: &Store, id: WalletId) -> Result<Option<(Wallet, LotPlaces)>, StoreError> {
    let Some(record) = store.get::<WalletRecord>(Space::Wallets, &keys::wallet_key(id))? else {
        return Ok(None);
    };
    Ok(Some(with_lots(store, record)?))
}

/// The wallet of `record` with its lots, reading them from `open_lots` when they are apart.
fn with_lots(store: &Store, record: WalletRecord) -> Result<(Wallet, LotPlaces), StoreError> {
    if !record.lots_apart {
        return Ok((Wallet::from(record), LotPlaces::default()));
    }
    let id = record.id;
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
    // A wallet goes apart with more lots than half the limit (at least 2), and each lot has a
    // place of its own: anything else is damage, and reading on would lose or reorder money.
    let distinct = apart
        .windows(2)
        .all(|pair| matches!(pair, [a, b] if a.0 != b.0));
    if apart.is_empty() || !distinct {
        return Err(StoreError::Io(format!(
            "wallet {id}: its lots stored apart are missing or share a place"
        )));
    }
    let next = apart.last().map_or(0, |(place, _)| place.saturating_add(1));
    let places = apart.iter().map(|(place, _)| *place).collect();
    wallet.lots = apart.into_iter().map(|(_, lot)| lot).collect();
    Ok((wallet, LotPlaces { places, next }))
}

/// Reads a wallet with its lots (for answers and reports), while its actor may be writing it:
/// a wallet whose lots are apart is read as its record, its lots, then its record again, and
/// read again if the record changed in between, so the lots and the balances are of one
/// change.
pub(crate) fn read(store: &Store, id: WalletId) -> Result<Option<Wallet>, StoreError> {
    let key = keys::wallet_key(id);
    let mut attempts = 0;
    loop {
        let Some(record) = store.get::<WalletRecord>(Space::Wallets, &key)? else {
            return Ok(None);
        };
        if !record.lots_apart {
            return Ok(Some(Wallet::from(record)));
        }
        let (wallet, _) = with_lots(store, record.clone())?;
        let again = store.get::<WalletRecord>(Space::Wallets, &key)?;
        if again.as_ref() == Some(&record) {
            return Ok(Some(wallet));
        }
        attempts += 1;
        if attempts == 100 {
            // A wallet written this often would be read stale, never torn: refuse instead.
            return Err(StoreError::Io(format!(
                "wallet {id} changed under each of {attempts} reads"
            )));
        }
    }
}

/// The wallets that `open_lots` holds lots for, with how many: the audit checks them against
/// the wallets whose records say their lots are apart.
pub(crate) fn wallets_with_lots_apart(
    store: &Store,
) -> Result<std::collections::BTreeMap<Vec<u8>, usize>, StoreError> {
    let mut found = std::collections::BTreeMap::new();
    store.for_each_raw(Space::OpenLots, &[], |key, _| {
        let wallet = key.get(..16).unwrap_or(key).to_vec();
        *found.entry(wallet).or_insert(0) += 1;
        Ok(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewards_core::offer::Redemption;
    use rewards_core::wallet::{AwardInput, Funding};
    use rewards_core::{BusinessId, ContactId, Currency, EventId, LotId, Money, Timestamp};
    use rewards_storage::StoreOptions;

    const ID_BYTES: [u8; 16] = [3; 16];
    const APART_ABOVE: usize = 32;

    fn new_wallet() -> Wallet {
        Wallet::new(
            WalletId::from_bytes(ID_BYTES),
            ContactId::from_bytes([2; 16]),
            BusinessId::from_bytes([1; 16]),
            Currency::parse("EUR").unwrap(),
        )
    }

    /// Awards lots `from..=to` (lot `n` holds n.00), all without expiry.
    fn award(wallet: &mut Wallet, from: u8, to: u8) {
        for n in from..=to {
            wallet
                .award(
                    &AwardInput {
                        event_id: EventId::from_bytes([n; 16]),
                        // Lot ids out of the order the lots are gained in, as derived ids are.
                        lot_id: LotId::from_bytes([255 - n; 16]),
                        offer_id: None,
                        amount: Money::from_minor(100 * i64::from(n)),
                        expires_at: None,
                        redeem: Redemption::Deferred,
                        funding: Funding::Business,
                    },
                    Timestamp(1_000),
                )
                .unwrap();
        }
    }

    /// Spends `minor` units, the lots it empties closed as a purchase closes them.
    fn spend(wallet: &mut Wallet, minor: i64) {
        wallet
            .redeem(Money::from_minor(minor), None, Timestamp(2_000))
            .unwrap();
        wallet.take_closed_lots();
    }

    /// Writes the change from `before` to `after`; returns the places and the records written.
    fn write(
        store: &Store,
        before: &Wallet,
        places: &LotPlaces,
        after: &Wallet,
    ) -> (LotPlaces, usize) {
        let mut set = WriteSet::new();
        let places = put(&mut set, APART_ABOVE, before, places, after);
        let records = set.len();
        store.write(set).unwrap();
        (places, records)
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_small_wallet_is_one_record() {
        let (_dir, store) = store();
        let empty = new_wallet();
        let mut wallet = empty.clone();
        award(&mut wallet, 1, APART_ABOVE as u8);
        let (places, records) = write(&store, &empty, &LotPlaces::default(), &wallet);
        assert_eq!((places.clone(), records), (LotPlaces::default(), 1));
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (wallet, places)
        );
    }

    #[test]
    fn a_large_wallet_writes_the_lots_a_change_touched_and_reads_back_in_its_order() {
        let (_dir, store) = store();
        let empty = new_wallet();
        let mut wallet = empty.clone();
        award(&mut wallet, 1, 40);
        let (places, records) = write(&store, &empty, &LotPlaces::default(), &wallet);
        assert_eq!(records, 1 + 40, "the wallet's state and each lot");
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (wallet.clone(), places.clone())
        );

        // One more award: the state and that lot alone.
        let mut after = wallet.clone();
        award(&mut after, 41, 41);
        let (places, records) = write(&store, &wallet, &places, &after);
        assert_eq!(records, 2);
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (after.clone(), places.clone())
        );

        // A spend that closes the first two lots (1.00 and 2.00) and takes 0.50 of the third:
        // two deletions and one rewrite, and what is left keeps the order it was gained in.
        let mut spent = after.clone();
        spend(&mut spent, 350);
        assert_eq!(spent.lots.len(), 39);
        let (places, records) = write(&store, &after, &places, &spent);
        assert_eq!(records, 1 + 2 + 1);
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (spent.clone(), places.clone())
        );

        // Lots out of the order they were stored in (the core does not do this today): the
        // lots passed over are deleted and written again, and the wallet reads back as it was.
        let mut reordered = spent.clone();
        reordered.lots.swap(0, 5);
        let (reordered_places, _) = write(&store, &spent, &places, &reordered);
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (reordered.clone(), reordered_places.clone())
        );
        let (places, _) = write(&store, &reordered, &reordered_places, &spent);
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (spent.clone(), places.clone())
        );

        // Between half the limit and the limit a wallet keeps the layout it has: apart here.
        let mut band = spent.clone();
        spend(&mut band, (3..=23).map(|n| 100 * n).sum::<i64>() - 50);
        assert_eq!(band.lots.len(), APART_ABOVE / 2 + 2);
        let (places, records) = write(&store, &spent, &places, &band);
        assert_eq!(records, 1 + 21, "the state and the 21 lots closed");
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (band.clone(), places.clone())
        );
        let spent = band;

        // Spent down to a few lots: they go back inline and every lot apart is deleted.
        let mut small = spent.clone();
        spend(&mut small, (24..=35).map(|n| 100 * n).sum());
        assert_eq!(small.lots.len(), 41 - 35);
        let (places, records) = write(&store, &spent, &places, &small);
        assert_eq!(places, LotPlaces::default());
        assert_eq!(
            records,
            1 + 18,
            "the state with its lots inline, and 18 deletions"
        );
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (small, places)
        );
    }

    #[test]
    fn a_wallet_with_its_lots_inline_moves_them_apart_when_it_has_many() {
        let (_dir, store) = store();
        let mut wallet = new_wallet();
        award(&mut wallet, 1, APART_ABOVE as u8);
        // Stored whole, as a small wallet (or any of format 1) is.
        let mut set = WriteSet::new();
        set.put(
            Space::Wallets,
            keys::wallet_key(WalletId::from_bytes(ID_BYTES)),
            &WalletRecord::from(&wallet),
        );
        store.write(set).unwrap();
        let (read, places) = load(&store, WalletId::from_bytes(ID_BYTES))
            .unwrap()
            .unwrap();
        assert_eq!(read, wallet);
        assert_eq!(places, LotPlaces::default());

        let mut after = read.clone();
        award(&mut after, APART_ABOVE as u8 + 1, APART_ABOVE as u8 + 1);
        let (places, records) = write(&store, &read, &places, &after);
        assert_eq!(records, 1 + APART_ABOVE + 1, "every lot written apart");
        let stored: WalletRecord = store
            .get(
                Space::Wallets,
                &keys::wallet_key(WalletId::from_bytes(ID_BYTES)),
            )
            .unwrap()
            .unwrap();
        assert!(stored.lots.is_empty());
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (after, places)
        );
    }
}
