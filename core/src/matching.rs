//! The match book of one business on one terminal (SPEC section 7): POS purchases waiting for
//! their processor transaction, processor transactions waiting for their POS purchase, and
//! unclaimed processor purchases waiting for their contact.
//!
//! Every decision is a pure function of the book, the entry and the time: a router actor owns
//! one book per business on its TAP code and calls these in order, so a POS purchase and its
//! transaction arriving at the same instant match exactly once.
//!
//! An entry that a decision hands out (matched or claimed) is *in flight* until the caller says
//! whether the change it started became durable: [`MatchBook::settle`] removes it for good,
//! [`MatchBook::abort`] puts it back as it was. While in flight nothing else can take it.

use std::collections::{BTreeSet, HashMap};

use crate::claim::ClaimCode;
use crate::ids::EventId;
use crate::money::Money;
use crate::time::Timestamp;

/// Which side of a match an entry is.
#[derive(Copy, Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// A POS purchase waiting for its processor transaction.
    Pos,
    /// A processor transaction.
    Transaction,
}

/// Where an entry stands.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum EntryState {
    /// Waiting for its counterpart until its deadline.
    Pending,
    /// A processor transaction nobody matched: waits for its contact to claim it.
    Unclaimed,
    /// Handed out by a match or a claim; `was` is the state an abort restores.
    InFlight { was: Resting },
}

/// The states an entry rests in between decisions.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Resting {
    Pending,
    Unclaimed,
}

impl Resting {
    fn state(self) -> EntryState {
        match self {
            Resting::Pending => EntryState::Pending,
            Resting::Unclaimed => EntryState::Unclaimed,
        }
    }
}

/// An entry of the book.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    pub id: EventId,
    pub side: Side,
    /// In the business currency.
    pub total: Money,
    /// When the purchase was performed (the caller's time).
    pub at: Timestamp,
    /// The processor's reference: a transaction's own, or the one a POS purchase names.
    pub transaction_reference: Option<String>,
    /// The receipt number, which a claim by receipt may name.
    pub reference_number: Option<String>,
    /// A pending entry stops waiting for its counterpart at this time.
    pub deadline: Timestamp,
    pub claim_code: Option<ClaimCode>,
    pub state: EntryState,
}

/// The answer to a new POS purchase or transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Placement {
    /// It completes a match with this waiting entry, which is now in flight.
    Matched(EventId),
    /// Nothing matches: it waits in the book, pending.
    Pending,
}

/// What the window's end did to an entry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Expiry {
    /// A POS purchase left without its transaction: it is gone from the book.
    Unmatched(EventId),
    /// A transaction left without its POS purchase: it is now unclaimed with this code.
    Unclaimed(EventId, ClaimCode),
}

/// Why a claim took nothing.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ClaimRefusal {
    /// No unclaimed purchase fits.
    NotFound,
    /// The purchase is being claimed (or was just claimed) by someone else.
    AlreadyClaimed,
}

/// What a claim names.
#[derive(Clone, Debug)]
pub enum ClaimBy<'a> {
    Code(ClaimCode),
    Receipt {
        total: Money,
        at: Timestamp,
        reference_number: Option<&'a str>,
    },
}

/// The entries of one business on one TAP code, indexed by total.
#[derive(Default, Debug, Clone)]
pub struct MatchBook {
    entries: HashMap<EventId, Entry>,
    by_total: HashMap<Money, Vec<EventId>>,
    /// Entries that carry a transaction reference, by it.
    by_reference: HashMap<String, Vec<EventId>>,
    /// Pending entries by deadline: the window ends in order, without a scan.
    deadlines: BTreeSet<(Timestamp, EventId)>,
    counts: Counts,
}

/// How many entries rest in each state (in-flight ones count where they came from).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Counts {
    pub pending_pos: usize,
    pub pending_transactions: usize,
    pub unclaimed: usize,
}

fn distance(a: Timestamp, b: Timestamp) -> i64 {
    a.0.abs_diff(b.0).min(i64::MAX as u64) as i64
}

fn within(a: Timestamp, b: Timestamp, window_seconds: u32) -> bool {
    distance(a, b) <= i64::from(window_seconds) * 1000
}

fn unindex<K: std::hash::Hash + Eq + ?Sized, Q: std::hash::Hash + Eq + std::borrow::Borrow<K>>(
    index: &mut HashMap<Q, Vec<EventId>>,
    key: &K,
    id: EventId,
) {
    if let Some(ids) = index.get_mut(key) {
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

/// Does POS purchase `pos` match processor transaction `transaction` (SPEC section 7)? A POS
/// purchase that names the processor's transaction reference matches only that transaction,
/// whatever its total and time; one that names none matches on the same total with times at
/// most the window apart. Both are on the same TAP: the book is one TAP's.
pub fn matches(pos: &Entry, transaction: &Entry, window_seconds: u32) -> bool {
    match pos.transaction_reference.as_deref() {
        Some(reference) => transaction.transaction_reference.as_deref() == Some(reference),
        None => pos.total == transaction.total && within(pos.at, transaction.at, window_seconds),
    }
}

impl MatchBook {
    pub fn new() -> MatchBook {
        MatchBook::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, id: EventId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// How many entries rest in each state, kept as they change.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn count(&mut self, entry: &Entry, delta: isize) {
        let resting = match entry.state {
            EntryState::Pending => Resting::Pending,
            EntryState::Unclaimed => Resting::Unclaimed,
            EntryState::InFlight { was } => was,
        };
        let counter = match (resting, entry.side) {
            (Resting::Pending, Side::Pos) => &mut self.counts.pending_pos,
            (Resting::Pending, Side::Transaction) => &mut self.counts.pending_transactions,
            (Resting::Unclaimed, _) => &mut self.counts.unclaimed,
        };
        *counter = counter.wrapping_add_signed(delta);
    }

    /// The earliest deadline of a pending entry: when [`MatchBook::expire`] has work.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Moves an entry to `state`, keeping the deadline index (pending entries only).
    fn set_state(&mut self, id: EventId, state: EntryState) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if entry.state == EntryState::Pending {
            self.deadlines.remove(&(entry.deadline, id));
        }
        if state == EntryState::Pending {
            self.deadlines.insert((entry.deadline, id));
        }
        entry.state = state;
    }

    /// Puts an entry back as it is stored (start-up); its state must be a resting one.
    pub fn restore(&mut self, entry: Entry) {
        assert!(
            !matches!(entry.state, EntryState::InFlight { .. }),
            "only resting entries are stored"
        );
        self.insert(entry);
    }

    fn insert(&mut self, entry: Entry) {
        let ids = self.by_total.entry(entry.total).or_default();
        if !ids.contains(&entry.id) {
            ids.push(entry.id);
        }
        if let Some(reference) = &entry.transaction_reference {
            let ids = self.by_reference.entry(reference.clone()).or_default();
            if !ids.contains(&entry.id) {
                ids.push(entry.id);
            }
        }
        self.count(&entry, 1);
        if entry.state == EntryState::Pending {
            self.deadlines.insert((entry.deadline, entry.id));
        }
        if let Some(old) = self.entries.insert(entry.id, entry) {
            self.count(&old, -1);
        }
    }

    fn remove(&mut self, id: EventId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.count(&entry, -1);
        self.deadlines.remove(&(entry.deadline, id));
        unindex(&mut self.by_total, &entry.total, id);
        if let Some(reference) = &entry.transaction_reference {
            unindex(&mut self.by_reference, reference, id);
        }
        Some(entry)
    }

    /// The waiting entry of side `wanted` that best matches `new` (see [`matches`]). The closest
    /// in time wins; ties go to the smaller id, so the decision does not depend on map order.
    fn best_counterpart(&self, new: &Entry, wanted: Side, window_seconds: u32) -> Option<EventId> {
        let by_total = self.by_total.get(&new.total).into_iter().flatten();
        let by_reference = new
            .transaction_reference
            .as_ref()
            .and_then(|r| self.by_reference.get(r))
            .into_iter()
            .flatten();
        by_total
            .chain(by_reference)
            .filter_map(|id| self.entries.get(id))
            .filter(|e| e.side == wanted && e.state == EntryState::Pending)
            .filter(|e| match new.side {
                Side::Pos => matches(new, e, window_seconds),
                Side::Transaction => matches(e, new, window_seconds),
            })
            .min_by_key(|e| (distance(e.at, new.at), e.id))
            .map(|e| e.id)
    }

    /// A new POS purchase or transaction arrives: it completes a match with the best waiting
    /// counterpart, or waits. Call [`MatchBook::expire`] first so that nothing whose window
    /// ended can match.
    pub fn place(&mut self, mut new: Entry, window_seconds: u32) -> Placement {
        assert!(
            !self.entries.contains_key(&new.id),
            "an entry is placed once"
        );
        let wanted = match new.side {
            Side::Pos => Side::Transaction,
            Side::Transaction => Side::Pos,
        };
        match self.best_counterpart(&new, wanted, window_seconds) {
            Some(id) => {
                self.set_state(
                    id,
                    EntryState::InFlight {
                        was: Resting::Pending,
                    },
                );
                Placement::Matched(id)
            }
            None => {
                new.state = EntryState::Pending;
                self.insert(new);
                Placement::Pending
            }
        }
    }

    /// A processor purchase that waits for its contact from the start (award mode without a
    /// known card, claim mode).
    pub fn add_unclaimed(&mut self, mut entry: Entry, code: ClaimCode) {
        assert!(
            !self.entries.contains_key(&entry.id),
            "an entry is placed once"
        );
        entry.state = EntryState::Unclaimed;
        entry.claim_code = Some(code);
        self.insert(entry);
    }

    /// Ends the wait of every pending entry whose deadline is at or before `now`: POS purchases
    /// leave the book unmatched, transactions stay as unclaimed with a code from `codes`.
    pub fn expire(&mut self, now: Timestamp, mut codes: impl FnMut() -> ClaimCode) -> Vec<Expiry> {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(side) = self.entries.get(&id).map(|e| e.side) else {
                self.deadlines.remove(&(deadline, id));
                continue;
            };
            match side {
                Side::Pos => {
                    self.remove(id);
                    expired.push(Expiry::Unmatched(id));
                }
                Side::Transaction => {
                    let code = codes();
                    self.set_state(id, EntryState::Unclaimed);
                    if let Some(entry) = self.entries.get_mut(&id) {
                        entry.claim_code = Some(code);
                    }
                    self.counts.pending_transactions -= 1;
                    self.counts.unclaimed += 1;
                    expired.push(Expiry::Unclaimed(id, code));
                }
            }
        }
        expired
    }

    /// A contact claims an unclaimed purchase by its code or by its receipt; the one it takes
    /// is in flight until settled. A receipt must name the total, a time within the window and,
    /// if given, the receipt number; the closest in time wins.
    pub fn claim(
        &mut self,
        by: &ClaimBy<'_>,
        window_seconds: u32,
    ) -> Result<EventId, ClaimRefusal> {
        let found = match by {
            ClaimBy::Code(code) => self
                .entries
                .values()
                .find(|e| e.claim_code == Some(*code) && e.side == Side::Transaction)
                .map(|e| (e.id, e.state)),
            ClaimBy::Receipt {
                total,
                at,
                reference_number,
            } => self
                .by_total
                .get(total)
                .into_iter()
                .flatten()
                .filter_map(|id| self.entries.get(id))
                .filter(|e| {
                    e.side == Side::Transaction
                        && e.state == EntryState::Unclaimed
                        && within(e.at, *at, window_seconds)
                        && reference_number.is_none_or(|r| e.reference_number.as_deref() == Some(r))
                })
                .min_by_key(|e| (distance(e.at, *at), e.id))
                .map(|e| (e.id, e.state)),
        };
        match found {
            Some((id, EntryState::Unclaimed)) => {
                self.set_state(
                    id,
                    EntryState::InFlight {
                        was: Resting::Unclaimed,
                    },
                );
                Ok(id)
            }
            Some((_, EntryState::InFlight { .. })) => Err(ClaimRefusal::AlreadyClaimed),
            // A pending transaction has no code yet; a receipt only finds unclaimed ones.
            Some((_, EntryState::Pending)) | None => Err(ClaimRefusal::NotFound),
        }
    }

    /// The change an in-flight entry started is durable: it leaves the book.
    pub fn settle(&mut self, id: EventId) -> Option<Entry> {
        match self.entries.get(&id).map(|e| e.state) {
            Some(EntryState::InFlight { .. }) => self.remove(id),
            _ => None,
        }
    }

    /// The change an in-flight entry started failed: it rests again as it was.
    pub fn abort(&mut self, id: EventId) {
        if let Some(EntryState::InFlight { was }) = self.entries.get(&id).map(|e| e.state) {
            self.set_state(id, was.state());
        }
    }

    /// Takes out a resting entry whose placement could not be made durable.
    pub fn forget(&mut self, id: EventId) -> Option<Entry> {
        self.remove(id)
    }
}
