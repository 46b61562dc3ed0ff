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
/// `after`, and returns the places after it. A wallet with more than `apart_above` open lots
/// (the setting `wallet_lots_apart_above`) stores them apart; one whose lots are apart takes
/// them back inline at half as many or fewer (the gap keeps a wallet near the limit from
/// moving its lots at every change).
pub(crate) fn put(
    set: &mut WriteSet,
    apart_above: usize,
    before: &Wallet,
    places: &LotPlaces,
    after: &Wallet,
) -> LotPlaces {
    let apart = if places.by_id.is_empty() {
        after.lots.len() > apart_above
    } else {
        after.lots.len() > apart_above / 2
    };
    if apart {
        return put_apart(set, before, places, after);
    }
    set.put(
        Space::Wallets,
        keys::wallet_key(after.id),
        &WalletRecord::from(after),
    );
    for (id, _) in &places.by_id {
        set.delete(Space::OpenLots, keys::open_lot_key(after.id, *id));
    }
    LotPlaces::default()
}

/// [`put`] for a wallet whose lots go apart. Lots that were inline (a wallet that just passed
/// the limit) have no places: all of them are written apart.
fn put_apart(set: &mut WriteSet, before: &Wallet, places: &LotPlaces, after: &Wallet) -> LotPlaces {
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
pub(crate) fn put_new(set: &mut WriteSet, apart_above: usize, wallet: &Wallet) {
    let empty = Wallet {
        lots: Vec::new(),
        ..wallet.clone()
    };
    put(set, apart_above, &empty, &LotPlaces::default(), wallet);
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
    // A wallet has its lots inline or apart, never both: a write that moves them does both
    // halves in one write set.
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

        // Spent down to a few lots: they go back inline and every lot apart is deleted.
        let mut small = spent.clone();
        spend(&mut small, (3..=35).map(|n| 100 * n).sum::<i64>() - 50);
        assert_eq!(small.lots.len(), 41 - 35);
        let (places, records) = write(&store, &spent, &places, &small);
        assert_eq!(places, LotPlaces::default());
        assert_eq!(records, 1 + 39);
        assert_eq!(
            load(&store, WalletId::from_bytes(ID_BYTES))
                .unwrap()
                .unwrap(),
            (small, places)
        );
    }

    #[test]
    fn a_wallet_of_the_first_format_reads_its_lots_inline_and_moves_them_apart_when_many() {
        let (_dir, store) = store();
        let mut wallet = new_wallet();
        award(&mut wallet, 1, APART_ABOVE as u8);
        // As format 1 stored it: the lots inside the wallet's record.
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
