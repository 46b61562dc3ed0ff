//! The wallet ledger: data-driven cases for each operation, and a state machine run against a
//! deliberately simple reference model (conservation, no double spend, exactly-once expiry and
//! hold resolution).

use proptest::prelude::*;
use rewards_core::offer::Redemption;
use rewards_core::wallet::{
    audit, AwardInput, Entries, EntryKind, Funding, LedgerEntry, SpendAmount, SpendRequest, Wallet,
};
use rewards_core::*;

const DAY: i64 = 86_400_000;

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn new_wallet() -> Wallet {
    Wallet::new(
        WalletId::from_bytes([1; 16]),
        ContactId::from_bytes([2; 16]),
        BusinessId::from_bytes([3; 16]),
        eur(),
    )
}

fn event(n: u64) -> EventId {
    let mut b = [7u8; 16];
    b[..8].copy_from_slice(&n.to_be_bytes());
    EventId::from_bytes(b)
}

fn estimate(n: u64) -> EstimateId {
    let mut b = [9u8; 16];
    b[..8].copy_from_slice(&n.to_be_bytes());
    EstimateId::from_bytes(b)
}

fn award(n: u64, amount: i64, expires_at: Option<i64>, redeem: Redemption) -> AwardInput {
    AwardInput {
        event_id: event(n),
        lot_id: LotId::for_event(event(n), 0),
        offer_id: None,
        amount: Money::from_minor(amount),
        expires_at: expires_at.map(Timestamp),
        redeem,
        funding: Funding::Business,
    }
}

fn spend(n: u64, amount: SpendAmount, require_full: bool, limit: i64) -> SpendRequest {
    SpendRequest {
        event_id: event(n),
        amount,
        require_full,
        limit: Money::from_minor(limit),
        min_spend: None,
        max_spend: None,
        blocked: false,
        hold: None,
    }
}

#[test]
fn award_kinds_land_in_commerce_or_open() {
    // (redemption, expected commerce, expected open, entry kinds)
    let cases = [
        (Redemption::Deferred, 500, 0, vec![EntryKind::Award]),
        (
            Redemption::Instant,
            0,
            500,
            vec![EntryKind::Award, EntryKind::Redeem],
        ),
        (
            Redemption::Auto,
            0,
            500,
            vec![EntryKind::Award, EntryKind::Redeem],
        ),
    ];
    for (redeem, commerce, open, kinds) in cases {
        let mut w = new_wallet();
        let entries = w.award(&award(1, 500, None, redeem), Timestamp(0)).unwrap();
        let b = w.balances();
        assert_eq!(
            (b.commerce, b.open),
            (Money::from_minor(commerce), Money::from_minor(open)),
            "{redeem:?}"
        );
        assert_eq!(entries.iter().map(|e| e.kind).collect::<Vec<_>>(), kinds);
        audit(&w, &entries).unwrap();
    }
}

#[test]
fn spend_takes_earliest_expiry_first_then_no_expiry_then_open() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.award(&award(1, 300, None, Redemption::Deferred), Timestamp(0))
            .unwrap(),
    );
    all.extend(
        w.award(
            &award(2, 200, Some(10 * DAY), Redemption::Deferred),
            Timestamp(0),
        )
        .unwrap(),
    );
    all.extend(
        w.award(
            &award(3, 100, Some(5 * DAY), Redemption::Deferred),
            Timestamp(0),
        )
        .unwrap(),
    );
    all.extend(
        w.top_up(Money::from_minor(1000), event(4), Timestamp(0))
            .unwrap(),
    );
    let out = w
        .spend(
            &spend(5, SpendAmount::Exact(Money::from_minor(350)), false, 10_000),
            Timestamp(1),
        )
        .unwrap();
    all.extend(out.entries.clone());
    assert_eq!(out.spent, Money::from_minor(350));
    // 100 from the lot expiring first, 200 from the next, 50 from the lot without expiry.
    let remaining: Vec<i64> = w.lots.iter().map(|l| l.remaining.minor()).collect();
    assert_eq!(remaining, vec![250, 0, 0]);
    assert_eq!(w.open, Money::from_minor(1000));
    audit(&w, &all).unwrap();
}

#[test]
fn spend_rules() {
    struct Case {
        name: &'static str,
        open: i64,
        amount: SpendAmount,
        require_full: bool,
        limit: i64,
        min: Option<i64>,
        max: Option<i64>,
        blocked: bool,
        expected: Result<i64, &'static str>,
    }
    let base = |name, amount, expected| Case {
        name,
        open: 1000,
        amount,
        require_full: false,
        limit: 5000,
        min: None,
        max: None,
        blocked: false,
        expected,
    };
    let cases = vec![
        base(
            "partial",
            SpendAmount::Exact(Money::from_minor(2000)),
            Ok(1000),
        ),
        Case {
            require_full: true,
            ..base(
                "all or nothing",
                SpendAmount::Exact(Money::from_minor(2000)),
                Err("insufficient_funds"),
            )
        },
        base("all", SpendAmount::All, Ok(1000)),
        Case {
            limit: 400,
            ..base("never above the purchase total", SpendAmount::All, Ok(400))
        },
        Case {
            blocked: true,
            ..base(
                "spend-blocked",
                SpendAmount::Exact(Money::from_minor(10)),
                Err("spend_blocked"),
            )
        },
        Case {
            max: Some(500),
            ..base(
                "above the maximum",
                SpendAmount::Exact(Money::from_minor(600)),
                Err("spend_limit"),
            )
        },
        Case {
            max: Some(500),
            ..base("all is capped at the maximum", SpendAmount::All, Ok(500))
        },
        Case {
            min: Some(300),
            ..base(
                "below the minimum",
                SpendAmount::Exact(Money::from_minor(200)),
                Err("spend_limit"),
            )
        },
        Case {
            open: 0,
            ..base("nothing to spend", SpendAmount::All, Ok(0))
        },
    ];
    for c in cases {
        let mut w = new_wallet();
        if c.open > 0 {
            w.top_up(Money::from_minor(c.open), event(1), Timestamp(0))
                .unwrap();
        }
        let before = w.clone();
        let request = SpendRequest {
            min_spend: c.min.map(Money::from_minor),
            max_spend: c.max.map(Money::from_minor),
            blocked: c.blocked,
            ..spend(2, c.amount, c.require_full, c.limit)
        };
        let result = w
            .spend(&request, Timestamp(1))
            .map(|o| o.spent.minor())
            .map_err(|e| e.code());
        assert_eq!(result, c.expected, "{}", c.name);
        if c.expected.is_err() {
            assert_eq!(w, before, "{}: a refusal changes nothing", c.name);
        }
    }
}

#[test]
fn nothing_is_spendable_while_open_is_negative() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.award(&award(1, 500, None, Redemption::Instant), Timestamp(0))
            .unwrap(),
    );
    all.extend(
        w.spend(&spend(2, SpendAmount::All, false, 500), Timestamp(0))
            .unwrap()
            .entries,
    );
    all.extend(
        w.award(&award(3, 200, None, Redemption::Deferred), Timestamp(0))
            .unwrap(),
    );
    let claw = w.clawback_event(event(1), Timestamp(1));
    all.extend(claw.entries.clone());
    assert_eq!(claw.total, Money::from_minor(500));
    assert_eq!(w.open, Money::from_minor(-500));
    assert_eq!(w.spendable(Timestamp(1)), Money::ZERO);
    let out = w
        .spend(&spend(4, SpendAmount::All, false, 1000), Timestamp(1))
        .unwrap();
    assert_eq!(out.spent, Money::ZERO);
    audit(&w, &all).unwrap();
}

#[test]
fn holds_resolve_once_and_capture_spends_up_to_the_hold() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.top_up(Money::from_minor(1000), event(1), Timestamp(0))
            .unwrap(),
    );
    all.extend(
        w.hold(estimate(1), Money::from_minor(600), Timestamp(0))
            .unwrap(),
    );
    assert_eq!(w.spendable(Timestamp(0)), Money::from_minor(400));
    assert_eq!(
        w.hold(estimate(2), Money::from_minor(500), Timestamp(0))
            .unwrap_err()
            .code(),
        "insufficient_funds"
    );
    let request = SpendRequest {
        hold: Some(estimate(1)),
        ..spend(2, SpendAmount::Exact(Money::from_minor(250)), true, 1000)
    };
    let out = w.spend(&request, Timestamp(1)).unwrap();
    all.extend(out.entries.clone());
    let kinds: Vec<_> = out.entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EntryKind::Capture, EntryKind::Release, EntryKind::Spend]
    );
    assert_eq!((w.open, w.reserved), (Money::from_minor(750), Money::ZERO));
    assert_eq!(
        w.release(estimate(1), Timestamp(2)).unwrap_err().code(),
        "invalid_state"
    );
    assert_eq!(
        w.spend(&request, Timestamp(2)).unwrap_err().code(),
        "invalid_state"
    );
    audit(&w, &all).unwrap();
}

#[test]
fn lots_expire_exactly_once() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.award(
            &award(1, 300, Some(DAY), Redemption::Deferred),
            Timestamp(0),
        )
        .unwrap(),
    );
    assert_eq!(
        w.spendable(Timestamp(DAY)),
        Money::ZERO,
        "an expired lot is not spendable"
    );
    let first = w.expire_due(Timestamp(DAY));
    assert_eq!(first.len(), 1);
    all.extend(first);
    assert!(w.expire_due(Timestamp(2 * DAY)).is_empty());
    assert_eq!(w.balances().commerce, Money::ZERO);
    audit(&w, &all).unwrap();
}

#[test]
fn payouts_refunds_and_top_ups() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.top_up(Money::from_minor(1000), event(1), Timestamp(0))
            .unwrap(),
    );
    assert_eq!(
        w.top_up(Money::from_minor(0), event(2), Timestamp(0))
            .unwrap_err()
            .code(),
        "validation_failed"
    );
    let (paid, entries) = w
        .payout(Some(Money::from_minor(300)), event(3), Timestamp(0))
        .unwrap();
    all.extend(entries);
    assert_eq!(paid, Money::from_minor(300));
    assert_eq!(
        w.payout(Some(Money::from_minor(800)), event(4), Timestamp(0))
            .unwrap_err()
            .code(),
        "insufficient_funds"
    );
    all.extend(
        w.refund(Money::from_minor(50), event(5), Timestamp(0))
            .unwrap(),
    );
    let (paid, entries) = w.payout(None, event(6), Timestamp(0)).unwrap();
    all.extend(entries);
    assert_eq!(paid, Money::from_minor(750));
    assert_eq!(w.open, Money::ZERO);
    all.extend(
        w.award(&award(7, 120, None, Redemption::Auto), Timestamp(0))
            .unwrap(),
    );
    all.extend(
        w.top_up(Money::from_minor(30), event(8), Timestamp(0))
            .unwrap(),
    );
    let (paid, entries) = w.payout_auto(event(9), Timestamp(0));
    all.extend(entries);
    assert_eq!(
        paid,
        Money::from_minor(120),
        "only money from auto redemptions"
    );
    assert_eq!(w.open, Money::from_minor(30));
    audit(&w, &all).unwrap();
}

// ---- state machine against a reference model ----

#[derive(Clone, Debug)]
enum Op {
    Award {
        amount: i64,
        expiry_days: Option<i64>,
        redeem: u8,
    },
    Redeem {
        amount: i64,
    },
    Spend {
        amount: Option<i64>,
        require_full: bool,
        limit: i64,
    },
    Hold {
        amount: i64,
    },
    Release {
        index: usize,
    },
    Capture {
        index: usize,
        amount: Option<i64>,
    },
    Expire,
    Void {
        index: usize,
    },
    Refund {
        amount: i64,
    },
    TopUp {
        amount: i64,
    },
    Payout {
        amount: Option<i64>,
    },
    Advance {
        days: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..2000i64, proptest::option::of(1..20i64), 0..3u8)
            .prop_map(|(amount, expiry_days, redeem)| Op::Award { amount, expiry_days, redeem }),
        1 => (1..2000i64).prop_map(|amount| Op::Redeem { amount }),
        3 => (proptest::option::of(0..3000i64), any::<bool>(), 0..4000i64)
            .prop_map(|(amount, require_full, limit)| Op::Spend { amount, require_full, limit }),
        2 => (0..1500i64).prop_map(|amount| Op::Hold { amount }),
        1 => (0..8usize).prop_map(|index| Op::Release { index }),
        1 => (0..8usize, proptest::option::of(0..2000i64)).prop_map(|(index, amount)| Op::Capture { index, amount }),
        1 => Just(Op::Expire),
        1 => (0..16usize).prop_map(|index| Op::Void { index }),
        1 => (0..500i64).prop_map(|amount| Op::Refund { amount }),
        2 => (1..2000i64).prop_map(|amount| Op::TopUp { amount }),
        1 => proptest::option::of(1..1500i64).prop_map(|amount| Op::Payout { amount }),
        2 => (0..6i64).prop_map(|days| Op::Advance { days }),
    ]
}

/// The model: plain integers and a list of lots, with the rules written as directly as possible.
#[derive(Clone, Debug, Default)]
struct ModelLot {
    event: u64,
    remaining: i64,
    redeemed: i64,
    clawed_open: i64,
    expires_at: Option<i64>,
    expired: bool,
}

#[derive(Clone, Debug, Default)]
struct Model {
    lots: Vec<ModelLot>,
    open: i64,
    holds: Vec<(u64, i64)>,
    auto_payable: i64,
}

impl Model {
    fn reserved(&self) -> i64 {
        self.holds.iter().map(|h| h.1).sum()
    }
    fn live(&self, now: i64) -> i64 {
        self.lots
            .iter()
            .filter(|l| !l.expired && l.expires_at.is_none_or(|e| e > now))
            .map(|l| l.remaining)
            .sum()
    }
    fn spendable(&self, now: i64, held: i64) -> i64 {
        if self.open < 0 {
            0
        } else {
            (self.live(now) + self.open - self.reserved() + held).max(0)
        }
    }
    fn take_from_lots(&mut self, mut amount: i64, now: i64) {
        let mut order: Vec<usize> = (0..self.lots.len())
            .filter(|&i| {
                let l = &self.lots[i];
                !l.expired && l.remaining > 0 && l.expires_at.is_none_or(|e| e > now)
            })
            .collect();
        order.sort_by_key(|&i| {
            (
                self.lots[i].expires_at.is_none(),
                self.lots[i].expires_at,
                i,
            )
        });
        for i in order {
            let take = amount.min(self.lots[i].remaining);
            self.lots[i].remaining -= take;
            self.lots[i].redeemed += take;
            self.open += take;
            amount -= take;
        }
        assert_eq!(amount, 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn wallet_agrees_with_model_and_conserves_money(ops in proptest::collection::vec(op(), 1..60)) {
        let mut wallet = new_wallet();
        let mut model = Model::default();
        let mut entries: Vec<LedgerEntry> = Vec::new();
        let mut now = 0i64;
        let mut next = 0u64;
        let mut awarded_events: Vec<u64> = Vec::new();
        let mut estimates: Vec<u64> = Vec::new();
        let mut clawed_back = false;
        for op in ops {
            next += 1;
            let t = Timestamp(now);
            let result: Result<Entries, DomainError> = match op.clone() {
                Op::Award { amount, expiry_days, redeem } => {
                    let redeem = [Redemption::Deferred, Redemption::Instant, Redemption::Auto][redeem as usize];
                    let expires_at = expiry_days.map(|d| now + d * DAY);
                    let mut lot = ModelLot { event: next, remaining: amount, expires_at, ..Default::default() };
                    if redeem != Redemption::Deferred {
                        lot.remaining = 0;
                        lot.redeemed = amount;
                        model.open += amount;
                        if redeem == Redemption::Auto { model.auto_payable += amount; }
                    }
                    model.lots.push(lot);
                    awarded_events.push(next);
                    wallet.award(&award(next, amount, expires_at, redeem), t)
                }
                Op::Redeem { amount } => {
                    let r = wallet.redeem(Money::from_minor(amount), Some(event(next)), t);
                    if amount <= model.live(now) {
                        model.take_from_lots(amount, now);
                        prop_assert!(r.is_ok());
                    } else {
                        prop_assert_eq!(r.as_ref().unwrap_err().code(), "insufficient_funds");
                    }
                    r
                }
                Op::Spend { amount, require_full, limit } => {
                    let available = model.spendable(now, 0);
                    let requested = amount.unwrap_or(available.min(limit));
                    let spent = requested.min(available).min(limit);
                    let request = spend(next, amount.map_or(SpendAmount::All, |a| SpendAmount::Exact(Money::from_minor(a))), require_full, limit);
                    let r = wallet.spend(&request, t);
                    if require_full && spent < requested {
                        prop_assert_eq!(r.as_ref().unwrap_err().code(), "insufficient_funds");
                    } else {
                        let out = r.as_ref().unwrap();
                        prop_assert_eq!(out.spent, Money::from_minor(spent));
                        model.take_from_lots(spent.min(model.live(now)), now);
                        model.open -= spent;
                        if spent > 0 { model.auto_payable = model.auto_payable.min(model.open); }
                    }
                    r.map(|o| o.entries)
                }
                Op::Hold { amount } => {
                    let r = wallet.hold(estimate(next), Money::from_minor(amount), t);
                    if amount <= model.spendable(now, 0) {
                        prop_assert!(r.is_ok());
                        model.holds.push((next, amount));
                        estimates.push(next);
                    } else {
                        prop_assert_eq!(r.as_ref().unwrap_err().code(), "insufficient_funds");
                    }
                    r
                }
                Op::Release { index } => {
                    let Some(&e) = estimates.get(index) else { continue };
                    let r = wallet.release(estimate(e), t);
                    match model.holds.iter().position(|h| h.0 == e) {
                        Some(i) => { model.holds.remove(i); prop_assert!(r.is_ok()); }
                        None => prop_assert_eq!(r.as_ref().unwrap_err().code(), "invalid_state"),
                    }
                    r
                }
                Op::Capture { index, amount } => {
                    let Some(&e) = estimates.get(index) else { continue };
                    let request = SpendRequest {
                        hold: Some(estimate(e)),
                        ..spend(next, amount.map_or(SpendAmount::All, |a| SpendAmount::Exact(Money::from_minor(a))), false, 1_000_000)
                    };
                    let r = wallet.spend(&request, t);
                    match model.holds.iter().position(|h| h.0 == e) {
                        Some(i) => {
                            let held = model.holds[i].1;
                            let available = model.spendable(now, held);
                            let spent = amount.unwrap_or(available).min(available);
                            model.holds.remove(i);
                            prop_assert_eq!(r.as_ref().unwrap().spent, Money::from_minor(spent));
                            model.take_from_lots(spent.min(model.live(now)), now);
                            model.open -= spent;
                            if spent > 0 { model.auto_payable = model.auto_payable.min(model.open); }
                        }
                        None => prop_assert_eq!(r.as_ref().unwrap_err().code(), "invalid_state"),
                    }
                    r.map(|o| o.entries)
                }
                Op::Expire => {
                    for l in model.lots.iter_mut() {
                        if !l.expired && l.expires_at.is_some_and(|e| e <= now) {
                            l.expired = true;
                            l.remaining = 0;
                        }
                    }
                    Ok(wallet.expire_due(t))
                }
                Op::Void { index } => {
                    let Some(&e) = awarded_events.get(index) else { continue };
                    for l in model.lots.iter_mut().filter(|l| l.event == e) {
                        let from_open = l.redeemed - l.clawed_open;
                        l.remaining = 0;
                        l.clawed_open += from_open;
                        model.open -= from_open;
                        if from_open > 0 {
                            clawed_back = true;
                            model.auto_payable = model.auto_payable.min(model.open.max(0));
                        }
                    }
                    Ok(wallet.clawback_event(event(e), t).entries)
                }
                Op::Refund { amount } => {
                    model.open += amount;
                    wallet.refund(Money::from_minor(amount), event(next), t)
                }
                Op::TopUp { amount } => {
                    model.open += amount;
                    wallet.top_up(Money::from_minor(amount), event(next), t)
                }
                Op::Payout { amount } => {
                    let payable = model.open.min(model.spendable(now, 0)).max(0);
                    let r = wallet.payout(amount.map(Money::from_minor), event(next), t);
                    match amount {
                        Some(a) if a > payable => prop_assert_eq!(r.as_ref().unwrap_err().code(), "insufficient_funds"),
                        // Paying out nothing is refused, not recorded as 0.00.
                        None if payable == 0 => prop_assert_eq!(r.as_ref().unwrap_err().code(), "insufficient_funds"),
                        _ => {
                            let paid = amount.unwrap_or(payable);
                            prop_assert_eq!(r.as_ref().unwrap().0, Money::from_minor(paid));
                            model.open -= paid;
                            if paid > 0 { model.auto_payable = model.auto_payable.min(model.open); }
                        }
                    }
                    r.map(|(_, e)| e)
                }
                Op::Advance { days } => {
                    now += days * DAY;
                    continue;
                }
            };
            if let Ok(new_entries) = result {
                for e in &new_entries {
                    let sum: Money = e.postings.iter().map(|p| p.amount).sum();
                    prop_assert!(sum.is_zero(), "entry {:?} does not balance", e);
                }
                entries.extend(new_entries);
            }
            let t = Timestamp(now);
            prop_assert_eq!(audit(&wallet, &entries), Ok(()));
            let b = wallet.balances();
            let model_commerce: i64 = model.lots.iter().map(|l| l.remaining).sum();
            prop_assert_eq!(b.commerce, Money::from_minor(model_commerce), "commerce after {:?}", op);
            prop_assert_eq!(b.open, Money::from_minor(model.open), "open after {:?}", op);
            prop_assert_eq!(b.reserved, Money::from_minor(model.reserved()), "reserved after {:?}", op);
            prop_assert_eq!(wallet.spendable(t), Money::from_minor(model.spendable(now, 0)));
            prop_assert!(!wallet.spendable(t).is_negative());
            prop_assert!(!b.open.is_negative() || clawed_back, "open went negative without a claw-back");
            prop_assert_eq!(wallet.auto_payable, Money::from_minor(model.auto_payable));
        }
        // Exactly once: no lot expired twice, no hold resolved twice.
        for lot in &wallet.lots {
            let expiries = entries.iter().filter(|e| e.kind == EntryKind::Expire && e.lot_id == Some(lot.id)).count();
            prop_assert!(expiries <= 1);
        }
        for e in &estimates {
            let resolutions = entries
                .iter()
                .filter(|x| x.estimate_id == Some(estimate(*e)) && matches!(x.kind, EntryKind::Release | EntryKind::Capture))
                .map(|x| x.event_id)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            prop_assert!(resolutions <= 1, "hold {} resolved {} times", e, resolutions);
        }
    }
}

#[test]
fn closed_lots_leave_the_wallet_and_come_back_to_be_clawed_back() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.award(&award(1, 500, None, Redemption::Instant), Timestamp(0))
            .unwrap(),
    );
    all.extend(
        w.award(&award(2, 300, None, Redemption::Deferred), Timestamp(0))
            .unwrap(),
    );
    let closed = w.take_closed_lots();
    assert_eq!(closed.len(), 1, "the instant lot is fully redeemed");
    assert_eq!(w.lots.len(), 1, "the deferred lot stays");
    assert!(w.take_closed_lots().is_empty());
    // Without its lot, the event has nothing to claw back; with it restored, all of it.
    let mut without = w.clone();
    assert_eq!(
        without.clawback_event(event(1), Timestamp(1)).total,
        Money::ZERO
    );
    w.restore_lots(closed);
    let claw = w.clawback_event(event(1), Timestamp(1));
    all.extend(claw.entries);
    assert_eq!(claw.total, Money::from_minor(500));
    assert_eq!(w.open, Money::ZERO);
    audit(&w, &all).unwrap();
}

#[test]
fn a_reversed_top_up_leaves_open_and_may_take_it_below_zero() {
    let mut w = new_wallet();
    let mut all = Vec::new();
    all.extend(
        w.top_up(Money::from_minor(1000), event(1), Timestamp(0))
            .unwrap(),
    );
    let out = w
        .spend(
            &spend(2, SpendAmount::Exact(Money::from_minor(400)), false, 10_000),
            Timestamp(1),
        )
        .unwrap();
    all.extend(out.entries);
    let reversed = w.reverse_top_up(Money::from_minor(1000), event(1), Timestamp(2));
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0].kind, EntryKind::Clawback);
    all.extend(reversed);
    assert_eq!(w.open, Money::from_minor(-400));
    assert_eq!(w.spendable(Timestamp(3)), Money::ZERO);
    assert!(w
        .reverse_top_up(Money::ZERO, event(1), Timestamp(3))
        .is_empty());
    audit(&w, &all).unwrap();
}
