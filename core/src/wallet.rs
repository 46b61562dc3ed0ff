//! The wallet ledger: award lots, open and reserved balances, and every operation on them as
//! double-entry postings (SPEC sections 3 and 10).

use crate::error::DomainError;
use crate::ids::{
    BusinessId, ContactId, EntryId, EstimateId, EventId, LotId, MerchantId, OfferId, WalletId,
};
use crate::money::{Currency, Money};
use crate::offer::Redemption;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use smallvec::{smallvec, SmallVec};

/// Who pays for an award.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Funding {
    Business,
    Merchant(MerchantId),
}

/// Awarded money not yet redeemed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Lot {
    pub id: LotId,
    pub amount: Money,
    /// What is still in commerce: amount minus what was redeemed, expired or clawed back.
    pub remaining: Money,
    pub expires_at: Option<Timestamp>,
    pub offer_id: Option<OfferId>,
    pub event_id: EventId,
    pub funding: Funding,
    /// Set by the expiry entry, which happens once per lot.
    pub expired: bool,
    /// Moved to open by redemption.
    pub redeemed: Money,
    /// Debited by the expiry entry.
    pub expired_amount: Money,
    /// Clawed back from this lot's remaining money.
    pub clawed_back_commerce: Money,
    /// Clawed back from open for this lot's redeemed money.
    pub clawed_back_open: Money,
}

impl Lot {
    fn is_spendable(&self, now: Timestamp) -> bool {
        !self.expired && self.remaining.is_positive() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// Spendable money reserved by a purchase estimate.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hold {
    pub estimate_id: EstimateId,
    pub amount: Money,
}

/// The accounts postings are made on: the wallet's own three, and the business's counterparty
/// accounts.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Account {
    Commerce,
    Open,
    Reserved,
    AwardFunding,
    MerchantFunding(MerchantId),
    SpendSettlement,
    Expiry,
    Payouts,
    TopUps,
    /// The counterpart of reserved money while it is held.
    Holds,
}

impl Account {
    pub fn is_wallet(self) -> bool {
        matches!(self, Account::Commerce | Account::Open | Account::Reserved)
    }
}

/// One side of an entry: a signed amount on an account (positive increases the account).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Posting {
    pub account: Account,
    pub amount: Money,
}

/// An entry's postings: two, or three for a claw-back from both commerce and open, so they are
/// kept inline, without an allocation of their own.
pub type Postings = SmallVec<[Posting; 3]>;

/// The entries one operation posts: usually one or two, kept inline.
pub type Entries = SmallVec<[LedgerEntry; 2]>;

#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum EntryKind {
    Award,
    Redeem,
    Spend,
    Hold,
    Release,
    Capture,
    Expire,
    Clawback,
    Refund,
    Topup,
    Payout,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Award => "award",
            EntryKind::Redeem => "redeem",
            EntryKind::Spend => "spend",
            EntryKind::Hold => "hold",
            EntryKind::Release => "release",
            EntryKind::Capture => "capture",
            EntryKind::Expire => "expire",
            EntryKind::Clawback => "clawback",
            EntryKind::Refund => "refund",
            EntryKind::Topup => "topup",
            EntryKind::Payout => "payout",
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Balances {
    pub commerce: Money,
    pub open: Money,
    pub reserved: Money,
}

/// Reads a sequence into a `SmallVec` through a `Vec`. serde's `Vec` reserves at most about a
/// megabyte up front whatever length the input declares; `SmallVec` reserves the declared
/// length, so a corrupt record could ask for gigabytes before its decoding fails. For
/// `#[serde(deserialize_with = "...")]`; the bytes are a sequence either way.
pub fn seq_via_vec<'de, D, A>(deserializer: D) -> Result<SmallVec<A>, D::Error>
where
    D: serde::Deserializer<'de>,
    A: smallvec::Array,
    A::Item: Deserialize<'de>,
{
    Vec::<A::Item>::deserialize(deserializer).map(SmallVec::from_vec)
}

/// A double-entry ledger entry of one wallet. Its postings sum to zero.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Per wallet, from 0, without gaps.
    pub seq: u64,
    pub kind: EntryKind,
    /// Positive; the kind gives the direction.
    pub amount: Money,
    pub event_id: Option<EventId>,
    pub lot_id: Option<LotId>,
    pub estimate_id: Option<EstimateId>,
    pub at: Timestamp,
    #[serde(deserialize_with = "seq_via_vec")]
    pub postings: Postings,
    pub balances_after: Balances,
}

impl LedgerEntry {
    pub fn id(&self, wallet: WalletId) -> EntryId {
        EntryId::for_wallet(wallet, self.seq)
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Wallet {
    pub id: WalletId,
    pub contact_id: ContactId,
    pub business_id: BusinessId,
    pub currency: Currency,
    pub lots: Vec<Lot>,
    pub open: Money,
    pub reserved: Money,
    pub holds: Vec<Hold>,
    /// Open money from `auto` redemptions not yet paid out (the payout spend model's run).
    pub auto_payable: Money,
    /// The sequence number of the next ledger entry.
    pub next_seq: u64,
}

/// An award to credit to a wallet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AwardInput {
    pub event_id: EventId,
    pub lot_id: LotId,
    pub offer_id: Option<OfferId>,
    pub amount: Money,
    pub expires_at: Option<Timestamp>,
    pub redeem: Redemption,
    pub funding: Funding,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SpendAmount {
    /// As much as possible.
    All,
    Exact(Money),
}

/// A request to pay (part of) a purchase from the wallet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SpendRequest {
    pub event_id: EventId,
    pub amount: SpendAmount,
    /// Refuse with `insufficient_funds` rather than spend less than requested.
    pub require_full: bool,
    /// The most this spend may take: the purchase total, or what is left to spend on it.
    pub limit: Money,
    pub min_spend: Option<Money>,
    pub max_spend: Option<Money>,
    /// The contact is spend-blocked.
    pub blocked: bool,
    /// Capture this estimate's hold: its money counts as spendable, the unused part is released.
    pub hold: Option<EstimateId>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SpendOutcome {
    pub spent: Money,
    pub entries: Entries,
}

/// What a claw-back took, and from where.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ClawbackOutcome {
    /// Per offer, the amount taken back (to return to the offer's budget and totals).
    pub by_offer: Vec<(Option<OfferId>, Money)>,
    pub total: Money,
    pub entries: Entries,
}

fn funding_account(funding: Funding) -> Account {
    match funding {
        Funding::Business => Account::AwardFunding,
        Funding::Merchant(m) => Account::MerchantFunding(m),
    }
}

fn insufficient(currency: Currency, requested: Money, available: Money) -> DomainError {
    DomainError::InsufficientFunds {
        requested: currency.format(requested),
        available: currency.format(available),
    }
}

impl Wallet {
    pub fn new(
        id: WalletId,
        contact_id: ContactId,
        business_id: BusinessId,
        currency: Currency,
    ) -> Wallet {
        Wallet {
            id,
            contact_id,
            business_id,
            currency,
            lots: Vec::new(),
            open: Money::ZERO,
            reserved: Money::ZERO,
            holds: Vec::new(),
            auto_payable: Money::ZERO,
            next_seq: 0,
        }
    }

    pub fn balances(&self) -> Balances {
        Balances {
            commerce: self.lots.iter().map(|l| l.remaining).sum(),
            open: self.open,
            reserved: self.reserved,
        }
    }

    /// Money in lots that can still be spent at `now`.
    pub fn unexpired_commerce(&self, now: Timestamp) -> Money {
        self.lots
            .iter()
            .filter(|l| l.is_spendable(now))
            .map(|l| l.remaining)
            .sum()
    }

    /// `commerce (unexpired) + open - reserved`; nothing while open is negative.
    pub fn spendable(&self, now: Timestamp) -> Money {
        self.spendable_with_hold(now, Money::ZERO)
    }

    fn spendable_with_hold(&self, now: Timestamp, held: Money) -> Money {
        if self.open.is_negative() {
            return Money::ZERO;
        }
        (self.unexpired_commerce(now) + self.open - self.reserved + held).non_negative()
    }

    pub fn hold_amount(&self, estimate: EstimateId) -> Option<Money> {
        self.holds
            .iter()
            .find(|h| h.estimate_id == estimate)
            .map(|h| h.amount)
    }

    /// Records one entry after the state has changed: checks that it balances and that the
    /// wallet's own accounts are within their bounds.
    #[allow(clippy::too_many_arguments)]
    fn post(
        &mut self,
        kind: EntryKind,
        amount: Money,
        event_id: Option<EventId>,
        lot_id: Option<LotId>,
        estimate_id: Option<EstimateId>,
        at: Timestamp,
        postings: Postings,
    ) -> LedgerEntry {
        let sum: Money = postings.iter().map(|p| p.amount).sum();
        assert!(
            sum.is_zero(),
            "ledger entry {kind:?} does not balance: {postings:?}"
        );
        assert!(
            amount.is_positive(),
            "ledger entry {kind:?} with amount {amount:?}"
        );
        let balances = self.balances();
        assert!(
            !balances.commerce.is_negative(),
            "negative commerce balance"
        );
        assert!(
            !balances.reserved.is_negative(),
            "negative reserved balance"
        );
        let entry = LedgerEntry {
            seq: self.next_seq,
            kind,
            amount,
            event_id,
            lot_id,
            estimate_id,
            at,
            postings,
            balances_after: balances,
        };
        self.next_seq += 1;
        entry
    }

    /// Credits an award as a new commerce lot; `instant` and `auto` redeem it at once.
    pub fn award(&mut self, input: &AwardInput, now: Timestamp) -> Result<Entries, DomainError> {
        if !input.amount.is_positive() {
            return Err(DomainError::validation(
                "amount",
                "an award must be above zero",
            ));
        }
        if self.lots.iter().any(|l| l.id == input.lot_id) {
            return Err(DomainError::AlreadyExists(format!("lot {}", input.lot_id)));
        }
        self.lots.push(Lot {
            id: input.lot_id,
            amount: input.amount,
            remaining: input.amount,
            expires_at: input.expires_at,
            offer_id: input.offer_id,
            event_id: input.event_id,
            funding: input.funding,
            expired: false,
            redeemed: Money::ZERO,
            expired_amount: Money::ZERO,
            clawed_back_commerce: Money::ZERO,
            clawed_back_open: Money::ZERO,
        });
        let mut entries = smallvec![self.post(
            EntryKind::Award,
            input.amount,
            Some(input.event_id),
            Some(input.lot_id),
            None,
            now,
            smallvec![
                Posting {
                    account: Account::Commerce,
                    amount: input.amount,
                },
                Posting {
                    account: funding_account(input.funding),
                    amount: -input.amount,
                },
            ],
        )];
        if matches!(input.redeem, Redemption::Instant | Redemption::Auto) {
            let index = self.lots.len().saturating_sub(1);
            entries.extend(self.redeem_lot(index, input.amount, Some(input.event_id), now));
            if input.redeem == Redemption::Auto {
                self.auto_payable += input.amount;
            }
        }
        Ok(entries)
    }

    /// Moves `amount` of the lot at `index` from commerce to open; `None` (nothing moved) for an
    /// index with no lot, which callers never pass.
    fn redeem_lot(
        &mut self,
        index: usize,
        amount: Money,
        event_id: Option<EventId>,
        now: Timestamp,
    ) -> Option<LedgerEntry> {
        let lot = self.lots.get_mut(index)?;
        assert!(amount <= lot.remaining, "redeeming more than a lot holds");
        lot.remaining -= amount;
        lot.redeemed += amount;
        let lot_id = lot.id;
        self.open += amount;
        Some(self.post(
            EntryKind::Redeem,
            amount,
            event_id,
            Some(lot_id),
            None,
            now,
            smallvec![
                Posting {
                    account: Account::Commerce,
                    amount: -amount,
                },
                Posting {
                    account: Account::Open,
                    amount,
                },
            ],
        ))
    }

    /// Spendable lots in redemption order: earliest expiry first, lots without expiry last.
    fn redemption_order(&self, now: Timestamp) -> Vec<usize> {
        let mut order: Vec<(bool, Option<Timestamp>, usize)> = self
            .lots
            .iter()
            .enumerate()
            .filter(|(_, lot)| lot.is_spendable(now))
            .map(|(i, lot)| (lot.expires_at.is_none(), lot.expires_at, i))
            .collect();
        // The index makes every key distinct, so an unstable sort gives the one order.
        order.sort_unstable();
        order.into_iter().map(|(_, _, i)| i).collect()
    }

    fn redeem_up_to(
        &mut self,
        amount: Money,
        event_id: Option<EventId>,
        now: Timestamp,
    ) -> Entries {
        let mut left = amount;
        let mut entries = Entries::new();
        for index in self.redemption_order(now) {
            if !left.is_positive() {
                break;
            }
            let Some(remaining) = self.lots.get(index).map(|lot| lot.remaining) else {
                continue;
            };
            let take = left.min(remaining);
            entries.extend(self.redeem_lot(index, take, event_id, now));
            left -= take;
        }
        entries
    }

    /// Moves money from commerce lots to open, earliest expiry first.
    pub fn redeem(
        &mut self,
        amount: Money,
        event_id: Option<EventId>,
        now: Timestamp,
    ) -> Result<Entries, DomainError> {
        let available = self.unexpired_commerce(now);
        if !amount.is_positive() {
            return Err(DomainError::validation("amount", "must be above zero"));
        }
        if amount > available {
            return Err(insufficient(self.currency, amount, available));
        }
        Ok(self.redeem_up_to(amount, event_id, now))
    }

    /// Pays (part of) a purchase: redeems what it needs from commerce lots first, then debits
    /// open. Refusals change nothing.
    pub fn spend(
        &mut self,
        request: &SpendRequest,
        now: Timestamp,
    ) -> Result<SpendOutcome, DomainError> {
        if request.blocked {
            return Err(DomainError::SpendBlocked);
        }
        let held = match request.hold {
            Some(estimate) => Some(self.hold_amount(estimate).ok_or_else(|| {
                DomainError::InvalidState("the estimate's hold is already resolved".into())
            })?),
            None => None,
        };
        let available = self.spendable_with_hold(now, held.unwrap_or(Money::ZERO));
        let requested = match request.amount {
            SpendAmount::Exact(amount) => {
                if amount.is_negative() {
                    return Err(DomainError::validation(
                        "spend.amount",
                        "must not be negative",
                    ));
                }
                if request.max_spend.is_some_and(|max| amount > max) {
                    return Err(DomainError::SpendLimit(format!(
                        "at most {} may be spent per purchase",
                        self.currency.format(request.max_spend.unwrap_or_default())
                    )));
                }
                amount
            }
            SpendAmount::All => {
                let all = available.min(request.limit.non_negative());
                request.max_spend.map_or(all, |max| all.min(max))
            }
        };
        let spent = requested.min(available).min(request.limit.non_negative());
        if request.require_full && spent < requested {
            return Err(insufficient(self.currency, requested, spent));
        }
        if spent.is_positive() && request.min_spend.is_some_and(|min| spent < min) {
            return Err(DomainError::SpendLimit(format!(
                "at least {} must be spent per purchase",
                self.currency.format(request.min_spend.unwrap_or_default())
            )));
        }

        let mut entries = Entries::new();
        if let (Some(estimate), Some(held)) = (request.hold, held) {
            self.holds.retain(|h| h.estimate_id != estimate);
            let captured = spent.min(held);
            let released = held - captured;
            if captured.is_positive() {
                entries.push(self.unreserve(
                    EntryKind::Capture,
                    captured,
                    Some(request.event_id),
                    estimate,
                    now,
                ));
            }
            if released.is_positive() {
                entries.push(self.unreserve(
                    EntryKind::Release,
                    released,
                    Some(request.event_id),
                    estimate,
                    now,
                ));
            }
        }
        if spent.is_positive() {
            let from_commerce = spent.min(self.unexpired_commerce(now));
            entries.extend(self.redeem_up_to(from_commerce, Some(request.event_id), now));
            self.open -= spent;
            assert!(!self.open.is_negative(), "a spend made open negative");
            self.auto_payable = self.auto_payable.min(self.open);
            entries.push(self.post(
                EntryKind::Spend,
                spent,
                Some(request.event_id),
                None,
                None,
                now,
                smallvec![
                    Posting {
                        account: Account::Open,
                        amount: -spent,
                    },
                    Posting {
                        account: Account::SpendSettlement,
                        amount: spent,
                    },
                ],
            ));
        }
        Ok(SpendOutcome { spent, entries })
    }

    /// Ends (part of) a hold: a capture or a release moves money out of reserved.
    fn unreserve(
        &mut self,
        kind: EntryKind,
        amount: Money,
        event_id: Option<EventId>,
        estimate: EstimateId,
        now: Timestamp,
    ) -> LedgerEntry {
        self.reserved -= amount;
        self.post(
            kind,
            amount,
            event_id,
            None,
            Some(estimate),
            now,
            smallvec![
                Posting {
                    account: Account::Reserved,
                    amount: -amount,
                },
                Posting {
                    account: Account::Holds,
                    amount,
                },
            ],
        )
    }

    /// Reserves spendable money for an estimate until it is released or captured.
    pub fn hold(
        &mut self,
        estimate: EstimateId,
        amount: Money,
        now: Timestamp,
    ) -> Result<Entries, DomainError> {
        if self.hold_amount(estimate).is_some() {
            return Err(DomainError::InvalidState(
                "the estimate already holds money".into(),
            ));
        }
        if amount.is_negative() {
            return Err(DomainError::validation("amount", "must not be negative"));
        }
        let available = self.spendable(now);
        if amount > available {
            return Err(insufficient(self.currency, amount, available));
        }
        self.holds.push(Hold {
            estimate_id: estimate,
            amount,
        });
        if amount.is_zero() {
            return Ok(Entries::new());
        }
        self.reserved += amount;
        Ok(smallvec![self.post(
            EntryKind::Hold,
            amount,
            None,
            None,
            Some(estimate),
            now,
            smallvec![
                Posting {
                    account: Account::Reserved,
                    amount,
                },
                Posting {
                    account: Account::Holds,
                    amount: -amount,
                },
            ],
        )])
    }

    /// Gives an estimate's held money back to spendable. A hold is resolved at most once.
    pub fn release(
        &mut self,
        estimate: EstimateId,
        now: Timestamp,
    ) -> Result<Entries, DomainError> {
        let amount = self.hold_amount(estimate).ok_or_else(|| {
            DomainError::InvalidState("the estimate's hold is already resolved".into())
        })?;
        self.holds.retain(|h| h.estimate_id != estimate);
        if amount.is_zero() {
            return Ok(Entries::new());
        }
        Ok(smallvec![self.unreserve(
            EntryKind::Release,
            amount,
            None,
            estimate,
            now,
        )])
    }

    /// Debits every lot past its expiry, exactly once per lot.
    pub fn expire_due(&mut self, now: Timestamp) -> Entries {
        let mut entries = Entries::new();
        for index in 0..self.lots.len() {
            let Some(lot) = self.lots.get_mut(index) else {
                continue;
            };
            if lot.expired || lot.expires_at.is_none_or(|at| at > now) {
                continue;
            }
            lot.expired = true;
            let amount = lot.remaining;
            if amount.is_zero() {
                continue;
            }
            lot.remaining = Money::ZERO;
            lot.expired_amount = amount;
            let lot_id = lot.id;
            let event_id = lot.event_id;
            entries.push(self.post(
                EntryKind::Expire,
                amount,
                Some(event_id),
                Some(lot_id),
                None,
                now,
                smallvec![
                    Posting {
                        account: Account::Commerce,
                        amount: -amount,
                    },
                    Posting {
                        account: Account::Expiry,
                        amount,
                    },
                ],
            ));
        }
        entries
    }

    /// Takes back up to `amount` of one lot's award: from what remains of it in commerce first,
    /// then from open for what was redeemed (open may go negative).
    fn clawback_lot(
        &mut self,
        index: usize,
        amount: Money,
        event_id: EventId,
        now: Timestamp,
    ) -> Option<LedgerEntry> {
        let lot = self.lots.get_mut(index)?;
        let from_commerce = amount.min(lot.remaining);
        let from_open = (amount - from_commerce).min(lot.redeemed - lot.clawed_back_open);
        let total = from_commerce + from_open;
        if !total.is_positive() {
            return None;
        }
        lot.remaining -= from_commerce;
        lot.clawed_back_commerce += from_commerce;
        lot.clawed_back_open += from_open;
        let (lot_id, funding) = (lot.id, lot.funding);
        self.open -= from_open;
        if from_open.is_positive() {
            self.auto_payable = self.auto_payable.min(self.open.non_negative());
        }
        let mut postings = Postings::new();
        if from_commerce.is_positive() {
            postings.push(Posting {
                account: Account::Commerce,
                amount: -from_commerce,
            });
        }
        if from_open.is_positive() {
            postings.push(Posting {
                account: Account::Open,
                amount: -from_open,
            });
        }
        postings.push(Posting {
            account: funding_account(funding),
            amount: total,
        });
        Some(self.post(
            EntryKind::Clawback,
            total,
            Some(event_id),
            Some(lot_id),
            None,
            now,
            postings,
        ))
    }

    /// Reverses the awards of a voided event: every lot it created loses what remains of it, and
    /// what was already redeemed or spent is clawed back from open.
    pub fn clawback_event(&mut self, event_id: EventId, now: Timestamp) -> ClawbackOutcome {
        self.clawback_share(event_id, None, now)
    }

    /// Claws back `numerator / denominator` of each award of an event (an ad hoc return), rounded
    /// to the minor unit; `None` claws back everything that is left of them (a void).
    pub fn clawback_share(
        &mut self,
        event_id: EventId,
        share: Option<(Money, Money)>,
        now: Timestamp,
    ) -> ClawbackOutcome {
        let mut outcome = ClawbackOutcome::default();
        for index in 0..self.lots.len() {
            let Some(lot) = self.lots.get(index) else {
                continue;
            };
            if lot.event_id != event_id {
                continue;
            }
            let outstanding = lot.remaining + lot.redeemed - lot.clawed_back_open;
            let amount = match share {
                None => outstanding,
                Some((numerator, denominator)) => {
                    crate::reversal::share_of(lot.amount, numerator, denominator, self.currency)
                        .min(outstanding)
                }
            };
            let offer = lot.offer_id;
            if let Some(entry) = self.clawback_lot(index, amount, event_id, now) {
                outcome.total += entry.amount;
                outcome.by_offer.push((offer, entry.amount));
                outcome.entries.push(entry);
            }
        }
        outcome
    }

    /// Credits spent money back to open (a voided or returned purchase's spend).
    pub fn refund(
        &mut self,
        amount: Money,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<Entries, DomainError> {
        if amount.is_negative() {
            return Err(DomainError::validation("amount", "must not be negative"));
        }
        if amount.is_zero() {
            return Ok(Entries::new());
        }
        self.open += amount;
        Ok(smallvec![self.post(
            EntryKind::Refund,
            amount,
            Some(event_id),
            None,
            None,
            now,
            smallvec![
                Posting {
                    account: Account::Open,
                    amount,
                },
                Posting {
                    account: Account::SpendSettlement,
                    amount: -amount,
                },
            ],
        )])
    }

    /// Credits external money to open.
    pub fn top_up(
        &mut self,
        amount: Money,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<Entries, DomainError> {
        if !amount.is_positive() {
            return Err(DomainError::validation("amount", "must be above zero"));
        }
        self.open += amount;
        Ok(smallvec![self.post(
            EntryKind::Topup,
            amount,
            Some(event_id),
            None,
            None,
            now,
            smallvec![
                Posting {
                    account: Account::Open,
                    amount,
                },
                Posting {
                    account: Account::TopUps,
                    amount: -amount,
                },
            ],
        )])
    }

    /// Takes back a voided top-up: its amount leaves open (which may go negative, as a claw-back
    /// may), back to the top-ups account.
    pub fn reverse_top_up(&mut self, amount: Money, event_id: EventId, now: Timestamp) -> Entries {
        if !amount.is_positive() {
            return Entries::new();
        }
        self.open -= amount;
        self.auto_payable = self.auto_payable.min(self.open.non_negative());
        smallvec![self.post(
            EntryKind::Clawback,
            amount,
            Some(event_id),
            None,
            None,
            now,
            smallvec![
                Posting {
                    account: Account::Open,
                    amount: -amount,
                },
                Posting {
                    account: Account::TopUps,
                    amount,
                },
            ],
        )]
    }

    /// Open money that may leave the wallet: not held by estimates, nothing while open is negative.
    pub fn payable(&self, now: Timestamp) -> Money {
        self.open.min(self.spendable(now)).non_negative()
    }

    /// Pays open money out to the contact's payment method; `None` pays out all payable money.
    pub fn payout(
        &mut self,
        amount: Option<Money>,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<(Money, Entries), DomainError> {
        let payable = self.payable(now);
        let amount = match amount {
            Some(a) if !a.is_positive() => {
                return Err(DomainError::validation("amount", "must be above zero"));
            }
            Some(a) if a > payable => return Err(insufficient(self.currency, a, payable)),
            Some(a) => a,
            None => payable,
        };
        // Nothing to pay out is refused: a payout of 0.00 would be a record of nothing.
        if amount.is_zero() {
            return Err(insufficient(self.currency, amount, payable));
        }
        self.open -= amount;
        self.auto_payable = self.auto_payable.min(self.open);
        let entry = self.post(
            EntryKind::Payout,
            amount,
            Some(event_id),
            None,
            None,
            now,
            smallvec![
                Posting {
                    account: Account::Open,
                    amount: -amount,
                },
                Posting {
                    account: Account::Payouts,
                    amount,
                },
            ],
        );
        Ok((amount, smallvec![entry]))
    }

    /// Removes the lots with nothing left in commerce (redeemed, expired or clawed back in full),
    /// so the wallet's state stays small however many awards it received. The caller keeps them:
    /// they are needed again only to reverse their event, after [`Wallet::restore_lots`].
    pub fn take_closed_lots(&mut self) -> Vec<Lot> {
        let count = self.lots.iter().filter(|l| l.remaining.is_zero()).count();
        if count == 0 {
            return Vec::new();
        }
        // In place, keeping the order (a lot owns no heap memory, so its clone is a copy): a
        // partition into two new vectors allocated twice on every purchase that closed a lot,
        // and each instant redemption closes one.
        let mut closed = Vec::with_capacity(count);
        self.lots.retain(|lot| {
            let open = !lot.remaining.is_zero();
            if !open {
                closed.push(lot.clone());
            }
            open
        });
        closed
    }

    /// Puts closed lots back (to claw back an event's awards). A lot still in the wallet wins.
    pub fn restore_lots(&mut self, lots: Vec<Lot>) {
        for lot in lots {
            assert!(lot.remaining.is_zero(), "only closed lots are restored");
            if !self.lots.iter().any(|l| l.id == lot.id) {
                self.lots.push(lot);
            }
        }
    }

    /// Pays out the open money that came from `auto` redemptions (the payout model's run).
    pub fn payout_auto(&mut self, event_id: EventId, now: Timestamp) -> (Money, Entries) {
        let amount = self.auto_payable.min(self.payable(now));
        if !amount.is_positive() {
            return (Money::ZERO, Entries::new());
        }
        // Positive and within what is payable: the payout is never refused.
        let Ok((paid, entries)) = self.payout(Some(amount), event_id, now) else {
            return (Money::ZERO, Entries::new());
        };
        self.auto_payable -= paid.min(self.auto_payable);
        (paid, entries)
    }
}

/// Checks a wallet against every entry it ever made: each entry balances, sequence numbers have
/// no gaps, and each wallet account's postings sum to the wallet's balance.
pub fn audit(wallet: &Wallet, entries: &[LedgerEntry]) -> Result<(), String> {
    let mut sums = Balances::default();
    for (i, entry) in entries.iter().enumerate() {
        if entry.seq != i as u64 {
            return Err(format!("entry {i} has sequence number {}", entry.seq));
        }
        let total: Money = entry.postings.iter().map(|p| p.amount).sum();
        if !total.is_zero() {
            return Err(format!("entry {} does not balance", entry.seq));
        }
        for posting in &entry.postings {
            match posting.account {
                Account::Commerce => sums.commerce += posting.amount,
                Account::Open => sums.open += posting.amount,
                Account::Reserved => sums.reserved += posting.amount,
                _ => {}
            }
        }
        if sums != entry.balances_after {
            return Err(format!(
                "entry {} balances_after differ from its postings",
                entry.seq
            ));
        }
    }
    if sums != wallet.balances() {
        return Err(format!(
            "wallet balances {:?} differ from the sums of postings {:?}",
            wallet.balances(),
            sums
        ));
    }
    if wallet.next_seq != entries.len() as u64 {
        return Err("the wallet's next sequence number does not follow its entries".into());
    }
    Ok(())
}
