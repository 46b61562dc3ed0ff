//! The match book of processor routing: cases for each rule of SPEC section 7, and a state
//! machine that drives random arrivals, expiries, claims, settlements and aborts and checks that
//! no transaction is matched twice and every entry ends matched, unmatched or claimed exactly
//! once.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use rewards_core::claim::ClaimCode;
use rewards_core::matching::{
    ClaimBy, ClaimRefusal, Counts, Entry, EntryState, Expiry, MatchBook, Placement, Resting, Side,
};
use rewards_core::*;

const WINDOW: u32 = 600;
const SECOND: i64 = 1000;

fn id(n: u64) -> EventId {
    let mut b = [5u8; 16];
    b[..8].copy_from_slice(&n.to_be_bytes());
    EventId::from_bytes(b)
}

fn code(n: u64) -> ClaimCode {
    let b = n.to_be_bytes();
    ClaimCode::from_random([b[3], b[4], b[5], b[6], b[7]])
}

fn entry(n: u64, side: Side, total: i64, at_seconds: i64, reference: Option<&str>) -> Entry {
    Entry {
        id: id(n),
        side,
        total: Money::from_minor(total),
        at: Timestamp(at_seconds * SECOND),
        transaction_reference: reference.map(str::to_string),
        reference_number: None,
        deadline: Timestamp(at_seconds * SECOND + i64::from(WINDOW) * SECOND),
        claim_code: None,
        state: EntryState::Pending,
    }
}

#[test]
fn whichever_arrives_second_completes_the_match() {
    // (first, second, expected placement of the second)
    let cases = [
        // POS first, then its transaction.
        (
            entry(1, Side::Pos, 4200, 100, None),
            entry(2, Side::Transaction, 4200, 130, Some("NET-1")),
            Placement::Matched(id(1)),
        ),
        // Transaction first, then the POS purchase.
        (
            entry(1, Side::Transaction, 4200, 100, Some("NET-1")),
            entry(2, Side::Pos, 4200, 90, None),
            Placement::Matched(id(1)),
        ),
        // Another total: no match.
        (
            entry(1, Side::Pos, 4200, 100, None),
            entry(2, Side::Transaction, 4201, 100, Some("NET-1")),
            Placement::Pending,
        ),
        // Outside the window: no match.
        (
            entry(1, Side::Pos, 4200, 100, None),
            entry(2, Side::Transaction, 4200, 100 + 601, Some("NET-1")),
            Placement::Pending,
        ),
        // At the window's edge: a match.
        (
            entry(1, Side::Pos, 4200, 100, None),
            entry(2, Side::Transaction, 4200, 100 + 600, Some("NET-1")),
            Placement::Matched(id(1)),
        ),
        // A POS purchase naming the transaction matches it whatever its total and time.
        (
            entry(1, Side::Transaction, 4200, 100, Some("NET-1")),
            entry(2, Side::Pos, 4000, 5000, Some("NET-1")),
            Placement::Matched(id(1)),
        ),
        // A POS purchase naming another transaction does not match this one.
        (
            entry(1, Side::Pos, 4200, 100, Some("NET-2")),
            entry(2, Side::Transaction, 4200, 100, Some("NET-1")),
            Placement::Pending,
        ),
        // Two of the same side never match.
        (
            entry(1, Side::Pos, 4200, 100, None),
            entry(2, Side::Pos, 4200, 100, None),
            Placement::Pending,
        ),
    ];
    for (first, second, expected) in cases {
        let mut book = MatchBook::new();
        assert_eq!(book.place(first.clone(), WINDOW), Placement::Pending);
        assert_eq!(
            book.place(second.clone(), WINDOW),
            expected,
            "{first:?} then {second:?}"
        );
    }
}

#[test]
fn the_closest_in_time_matches_and_a_reference_picks_its_transaction() {
    let mut book = MatchBook::new();
    book.place(entry(1, Side::Transaction, 500, 100, Some("A")), WINDOW);
    book.place(entry(2, Side::Transaction, 500, 160, Some("B")), WINDOW);
    assert_eq!(
        book.place(entry(3, Side::Pos, 500, 150, None), WINDOW),
        Placement::Matched(id(2))
    );
    // Transaction 2 is in flight: a second POS purchase cannot take it too.
    assert_eq!(
        book.place(entry(4, Side::Pos, 500, 160, Some("B")), WINDOW),
        Placement::Pending
    );
    assert_eq!(
        book.place(entry(5, Side::Pos, 500, 160, Some("A")), WINDOW),
        Placement::Matched(id(1))
    );
}

#[test]
fn the_window_ends_in_unmatched_and_unclaimed_and_claims_are_decided_once() {
    let mut book = MatchBook::new();
    book.place(entry(1, Side::Pos, 700, 0, None), WINDOW);
    let mut tx = entry(2, Side::Transaction, 900, 0, Some("T"));
    tx.reference_number = Some("R-9".into());
    book.place(tx, WINDOW);
    assert_eq!(book.next_deadline(), Some(Timestamp(600 * SECOND)));
    assert!(book.expire(Timestamp(599 * SECOND), || code(1)).is_empty());
    let expired = book.expire(Timestamp(600 * SECOND), || code(7));
    assert_eq!(
        expired,
        vec![Expiry::Unmatched(id(1)), Expiry::Unclaimed(id(2), code(7))]
    );
    assert_eq!(book.len(), 1);
    // A wrong receipt finds nothing, the right one takes it, a second claim is refused.
    let wrong = ClaimBy::Receipt {
        total: Money::from_minor(900),
        at: Timestamp(0),
        reference_number: Some("R-1"),
    };
    assert_eq!(book.claim(&wrong, WINDOW), Err(ClaimRefusal::NotFound));
    let right = ClaimBy::Receipt {
        total: Money::from_minor(900),
        at: Timestamp(30 * SECOND),
        reference_number: Some("R-9"),
    };
    assert_eq!(book.claim(&right, WINDOW), Ok(id(2)));
    assert_eq!(
        book.claim(&ClaimBy::Code(code(7)), WINDOW),
        Err(ClaimRefusal::AlreadyClaimed)
    );
    // The claim failed to commit: the purchase can be claimed again, by its code.
    book.abort(id(2));
    assert_eq!(book.claim(&ClaimBy::Code(code(7)), WINDOW), Ok(id(2)));
    assert!(book.settle(id(2)).is_some());
    assert!(book.is_empty());
    assert_eq!(
        book.claim(&ClaimBy::Code(code(7)), WINDOW),
        Err(ClaimRefusal::NotFound)
    );
}

#[derive(Clone, Debug)]
enum Op {
    Pos {
        total: i64,
        at: i64,
        reference: Option<u8>,
    },
    Transaction {
        total: i64,
        at: i64,
        reference: u8,
    },
    Unclaimed {
        total: i64,
        at: i64,
    },
    Advance {
        seconds: i64,
    },
    ClaimCode {
        pick: usize,
    },
    ClaimReceipt {
        total: i64,
        at: i64,
    },
    Settle {
        pick: usize,
    },
    Abort {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let total = 1i64..4;
    let at = -700i64..700;
    prop_oneof![
        3 => (total.clone(), at.clone(), proptest::option::of(0u8..4))
            .prop_map(|(total, at, reference)| Op::Pos { total, at, reference }),
        3 => (total.clone(), at.clone(), 0u8..4)
            .prop_map(|(total, at, reference)| Op::Transaction { total, at, reference }),
        1 => (total.clone(), at.clone()).prop_map(|(total, at)| Op::Unclaimed { total, at }),
        2 => (0i64..400).prop_map(|seconds| Op::Advance { seconds }),
        2 => any::<usize>().prop_map(|pick| Op::ClaimCode { pick }),
        1 => (total, at).prop_map(|(total, at)| Op::ClaimReceipt { total, at }),
        3 => any::<usize>().prop_map(|pick| Op::Settle { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Abort { pick }),
    ]
}

/// How each entry ended, as the caller of the book would record it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Matched,
    Unmatched,
    Claimed,
}

/// What an in-flight hand-out was for, so settling it records the right end.
#[derive(Clone, Copy, Debug)]
enum Handout {
    /// A match: the waiting entry and the one that arrived (not in the book).
    Match {
        waiting: EventId,
        arrived: EventId,
    },
    Claim(EventId),
}

struct Run {
    book: MatchBook,
    now: i64,
    next: u64,
    placed: HashMap<EventId, Entry>,
    ended: HashMap<EventId, End>,
    in_flight: Vec<Handout>,
    codes: Vec<ClaimCode>,
    next_code: u64,
}

impl Run {
    fn new_entry(&mut self, side: Side, total: i64, at: i64, reference: Option<String>) -> Entry {
        self.next += 1;
        Entry {
            id: id(self.next),
            side,
            total: Money::from_minor(total),
            at: Timestamp((self.now + at) * SECOND),
            transaction_reference: reference,
            reference_number: Some(format!("R{}", total)),
            deadline: Timestamp(self.now * SECOND + i64::from(WINDOW) * SECOND),
            claim_code: None,
            state: EntryState::Pending,
        }
    }

    fn fresh_code(&mut self) -> ClaimCode {
        self.next_code += 1;
        let c = code(self.next_code);
        self.codes.push(c);
        c
    }

    fn expire(&mut self) {
        let mut codes = Vec::new();
        let now = Timestamp(self.now * SECOND);
        let mut supply = {
            let start = self.next_code;
            let mut n = 0;
            move || {
                n += 1;
                code(start + n)
            }
        };
        for expiry in self.book.expire(now, &mut supply) {
            match expiry {
                Expiry::Unmatched(id) => self.end(id, End::Unmatched),
                Expiry::Unclaimed(id, c) => {
                    assert_eq!(self.placed[&id].side, Side::Transaction);
                    codes.push(c);
                }
            }
        }
        self.next_code += codes.len() as u64;
        self.codes.extend(codes);
    }

    fn end(&mut self, id: EventId, end: End) {
        assert!(self.placed.contains_key(&id), "{id} was never placed");
        if let Some(before) = self.ended.insert(id, end) {
            panic!("{id} ended twice: {before:?}, then {end:?}");
        }
    }

    fn place(&mut self, entry: Entry) {
        self.expire();
        self.placed.insert(entry.id, entry.clone());
        let arrived = entry.id;
        match self.book.place(entry.clone(), WINDOW) {
            Placement::Matched(waiting) => {
                let other = self.placed[&waiting].clone();
                assert_ne!(other.side, entry.side);
                let (pos, tx) = if entry.side == Side::Pos {
                    (&entry, &other)
                } else {
                    (&other, &entry)
                };
                match &pos.transaction_reference {
                    Some(r) => assert_eq!(tx.transaction_reference.as_ref(), Some(r)),
                    None => {
                        assert_eq!(pos.total, tx.total);
                        assert!((pos.at.0 - tx.at.0).abs() <= i64::from(WINDOW) * SECOND);
                    }
                }
                assert!(
                    !self.ended.contains_key(&waiting),
                    "{waiting} matched after it ended"
                );
                assert!(
                    !self.in_flight.iter().any(|h| matches!(h, Handout::Match { waiting: w, .. } | Handout::Match { arrived: w, .. } if *w == waiting)
                        || matches!(h, Handout::Claim(c) if *c == waiting)),
                    "{waiting} handed out twice"
                );
                self.in_flight.push(Handout::Match { waiting, arrived });
            }
            Placement::Pending => {
                assert_eq!(
                    self.book.get(arrived).map(|e| e.state),
                    Some(EntryState::Pending)
                );
            }
        }
    }

    fn claim(&mut self, by: ClaimBy<'_>) {
        self.expire();
        match self.book.claim(&by, WINDOW) {
            Ok(id) => {
                assert_eq!(self.placed[&id].side, Side::Transaction);
                assert!(!self.ended.contains_key(&id));
                assert!(
                    !self
                        .in_flight
                        .iter()
                        .any(|h| matches!(h, Handout::Claim(c) if *c == id)
                            || matches!(h, Handout::Match { waiting, .. } if *waiting == id)),
                    "{id} handed out twice"
                );
                self.in_flight.push(Handout::Claim(id));
            }
            Err(ClaimRefusal::AlreadyClaimed) => {
                assert!(
                    !self.in_flight.is_empty(),
                    "already claimed, yet nothing in flight"
                );
            }
            Err(ClaimRefusal::NotFound) => {}
        }
    }

    fn settle(&mut self, pick: usize) {
        if self.in_flight.is_empty() {
            return;
        }
        let handout = self.in_flight.remove(pick % self.in_flight.len());
        match handout {
            Handout::Match { waiting, arrived } => {
                assert!(self.book.settle(waiting).is_some());
                self.end(waiting, End::Matched);
                self.end(arrived, End::Matched);
            }
            Handout::Claim(id) => {
                assert!(self.book.settle(id).is_some());
                self.end(id, End::Claimed);
            }
        }
    }

    fn abort(&mut self, pick: usize) {
        if self.in_flight.is_empty() {
            return;
        }
        let handout = self.in_flight.remove(pick % self.in_flight.len());
        match handout {
            // The arrival that completed the match was never placed: its caller failed.
            Handout::Match { waiting, arrived } => {
                self.book.abort(waiting);
                self.placed.remove(&arrived);
            }
            Handout::Claim(id) => self.book.abort(id),
        }
    }

    /// Every live entry is in the book exactly when it has not ended.
    fn check(&self) {
        for id in self.placed.keys() {
            let in_book = self.book.get(*id).is_some();
            let ended = self.ended.contains_key(id);
            let arrived_in_flight = self
                .in_flight
                .iter()
                .any(|h| matches!(h, Handout::Match { arrived, .. } if arrived == id));
            assert!(
                in_book != ended || arrived_in_flight,
                "{id}: in the book {in_book}, ended {ended}"
            );
        }
        // The kept counts equal a recount.
        let mut recount = Counts::default();
        for entry in self.book.entries() {
            let resting = match entry.state {
                EntryState::InFlight { was } => was,
                EntryState::Pending => Resting::Pending,
                EntryState::Unclaimed => Resting::Unclaimed,
            };
            match (resting, entry.side) {
                (Resting::Pending, Side::Pos) => recount.pending_pos += 1,
                (Resting::Pending, Side::Transaction) => recount.pending_transactions += 1,
                (Resting::Unclaimed, _) => recount.unclaimed += 1,
            }
        }
        assert_eq!(self.book.counts(), recount);
        // The deadline index holds exactly the pending entries.
        let earliest = self
            .book
            .entries()
            .filter(|e| e.state == EntryState::Pending)
            .map(|e| e.deadline)
            .min();
        assert_eq!(self.book.next_deadline(), earliest);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_entry_ends_once_and_nothing_matches_twice(ops in proptest::collection::vec(op(), 1..80)) {
        let mut run = Run {
            book: MatchBook::new(),
            now: 10_000,
            next: 0,
            placed: HashMap::new(),
            ended: HashMap::new(),
            in_flight: Vec::new(),
            codes: Vec::new(),
            next_code: 0,
        };
        for op in ops {
            match op {
                Op::Pos { total, at, reference } => {
                    let e = run.new_entry(Side::Pos, total, at, reference.map(|r| format!("N{r}")));
                    run.place(e);
                }
                Op::Transaction { total, at, reference } => {
                    let e = run.new_entry(Side::Transaction, total, at, Some(format!("N{reference}")));
                    run.place(e);
                }
                Op::Unclaimed { total, at } => {
                    let e = run.new_entry(Side::Transaction, total, at, None);
                    run.placed.insert(e.id, e.clone());
                    let c = run.fresh_code();
                    run.book.add_unclaimed(e, c);
                }
                Op::Advance { seconds } => {
                    run.now += seconds;
                    run.expire();
                }
                Op::ClaimCode { pick } => {
                    if !run.codes.is_empty() {
                        let c = run.codes[pick % run.codes.len()];
                        run.claim(ClaimBy::Code(c));
                    }
                }
                Op::ClaimReceipt { total, at } => {
                    let reference = format!("R{total}");
                    let at = Timestamp((run.now + at) * SECOND);
                    run.claim(ClaimBy::Receipt { total: Money::from_minor(total), at, reference_number: Some(&reference) });
                }
                Op::Settle { pick } => run.settle(pick),
                Op::Abort { pick } => run.abort(pick),
            }
            run.check();
        }
        // Drain: settle what is in flight, let every window end, claim everything left.
        while !run.in_flight.is_empty() {
            run.settle(0);
        }
        run.now += i64::from(WINDOW) * 2;
        run.expire();
        for c in run.codes.clone() {
            run.claim(ClaimBy::Code(c));
            while !run.in_flight.is_empty() {
                run.settle(0);
            }
        }
        prop_assert!(run.book.is_empty(), "left in the book: {:?}", run.book.entries().collect::<Vec<_>>());
        let placed: HashSet<EventId> = run.placed.keys().copied().collect();
        let ended: HashSet<EventId> = run.ended.keys().copied().collect();
        prop_assert_eq!(placed, ended);
        let matched = run.ended.values().filter(|e| **e == End::Matched).count();
        prop_assert_eq!(matched % 2, 0, "matches come in pairs");
    }
}
