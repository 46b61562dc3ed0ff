//! Commercial terms applied to awards and spends: settlement entries per merchant (SPEC section 10).
//!
//! For an award A at a merchant: `awards_funded = A x contribution %`, `contribution_fees` = the
//! fee's percent of the whole award or its fixed amount. For a spend S: `spends = S`,
//! `settlement_fees` = the fee's percent of S or its fixed amount. A void negates the entries.

use crate::business::{CommercialTerms, Fee, FeeKind};
use crate::ids::{EventId, MerchantId};
use crate::money::{Currency, Money};
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SettlementEntry {
    pub merchant_id: MerchantId,
    pub event_id: EventId,
    pub at: Timestamp,
    pub awards_funded: Money,
    pub contribution_fees: Money,
    pub settlement_fees: Money,
    pub spends: Money,
}

fn fee_amount(fee: Option<&Fee>, base: Money, currency: Currency) -> Money {
    match fee {
        None => Money::ZERO,
        Some(Fee {
            kind: FeeKind::Percent,
            value,
        }) => currency.round(currency.to_decimal(base) * *value / Decimal::ONE_HUNDRED),
        Some(Fee {
            kind: FeeKind::Amount,
            value,
        }) => currency.round(*value),
    }
}

/// The settlement of one event at a merchant: its awards (each charged its fee) and its spend.
pub fn settle(
    terms: &CommercialTerms,
    merchant_id: MerchantId,
    event_id: EventId,
    at: Timestamp,
    awards: &[Money],
    spent: Money,
    currency: Currency,
) -> Option<SettlementEntry> {
    let mut entry = SettlementEntry {
        merchant_id,
        event_id,
        at,
        awards_funded: Money::ZERO,
        contribution_fees: Money::ZERO,
        settlement_fees: Money::ZERO,
        spends: Money::ZERO,
    };
    for award in awards.iter().filter(|a| a.is_positive()) {
        entry.awards_funded += currency.round(
            currency.to_decimal(*award) * terms.award_contribution_percent / Decimal::ONE_HUNDRED,
        );
        entry.contribution_fees += fee_amount(terms.contribution_fee.as_ref(), *award, currency);
    }
    if spent.is_positive() {
        entry.spends = spent;
        entry.settlement_fees = fee_amount(terms.settlement_fee.as_ref(), spent, currency);
    }
    let empty = entry.awards_funded.is_zero()
        && entry.contribution_fees.is_zero()
        && entry.spends.is_zero()
        && entry.settlement_fees.is_zero();
    (!empty).then_some(entry)
}

impl SettlementEntry {
    /// The entry that cancels this one (a void).
    pub fn reversal(&self, at: Timestamp) -> SettlementEntry {
        SettlementEntry {
            merchant_id: self.merchant_id,
            event_id: self.event_id,
            at,
            awards_funded: -self.awards_funded,
            contribution_fees: -self.contribution_fees,
            settlement_fees: -self.settlement_fees,
            spends: -self.spends,
        }
    }
}

/// `part / whole` of an amount, rounded once; nothing when `whole` is not positive.
fn scaled(amount: Money, part: Money, whole: Money, currency: Currency) -> Money {
    if !whole.is_positive() || part.is_zero() {
        return Money::ZERO;
    }
    if part >= whole {
        return amount;
    }
    currency
        .round(currency.to_decimal(amount) * currency.to_decimal(part) / currency.to_decimal(whole))
}

impl SettlementEntry {
    /// The share of this (posted) entry that `awards` (clawed back of the awarded total) and
    /// `spend` (refunded of the spent amount) stand for: the award parts scale with the first,
    /// the spend parts with the second. Returns reverse the difference of two shares, so that
    /// however many there are, a void reverses exactly what is left.
    pub fn share(
        &self,
        awards: (Money, Money),
        spend: (Money, Money),
        currency: Currency,
    ) -> SettlementEntry {
        SettlementEntry {
            merchant_id: self.merchant_id,
            event_id: self.event_id,
            at: self.at,
            awards_funded: scaled(self.awards_funded, awards.0, awards.1, currency),
            contribution_fees: scaled(self.contribution_fees, awards.0, awards.1, currency),
            settlement_fees: scaled(self.settlement_fees, spend.0, spend.1, currency),
            spends: scaled(self.spends, spend.0, spend.1, currency),
        }
    }

    /// `self - other`, field by field, at `at`.
    pub fn minus(&self, other: &SettlementEntry, at: Timestamp) -> SettlementEntry {
        SettlementEntry {
            merchant_id: self.merchant_id,
            event_id: self.event_id,
            at,
            awards_funded: self.awards_funded - other.awards_funded,
            contribution_fees: self.contribution_fees - other.contribution_fees,
            settlement_fees: self.settlement_fees - other.settlement_fees,
            spends: self.spends - other.spends,
        }
    }

    /// Whether every amount is zero (nothing to record).
    pub fn is_empty(&self) -> bool {
        self.awards_funded.is_zero()
            && self.contribution_fees.is_zero()
            && self.settlement_fees.is_zero()
            && self.spends.is_zero()
    }
}

/// One merchant's line of a settlement report.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SettlementLine {
    pub merchant_id: Option<MerchantId>,
    pub awards_funded: Money,
    pub contribution_fees: Money,
    pub settlement_fees: Money,
    pub spends: Money,
}

impl SettlementLine {
    /// Positive: the merchant owes the business.
    pub fn net(&self) -> Money {
        self.awards_funded + self.contribution_fees + self.settlement_fees - self.spends
    }
}

/// Sums entries per merchant, in order of first appearance.
pub fn summarize<'a>(
    entries: impl IntoIterator<Item = &'a SettlementEntry>,
) -> Vec<SettlementLine> {
    let mut lines: Vec<SettlementLine> = Vec::new();
    for e in entries {
        let merchant_id = Some(e.merchant_id);
        if !lines.iter().any(|l| l.merchant_id == merchant_id) {
            lines.push(SettlementLine {
                merchant_id,
                ..Default::default()
            });
        }
        // Found: it was there or was just pushed.
        let Some(line) = lines.iter_mut().find(|l| l.merchant_id == merchant_id) else {
            continue;
        };
        line.awards_funded += e.awards_funded;
        line.contribution_fees += e.contribution_fees;
        line.settlement_fees += e.settlement_fees;
        line.spends += e.spends;
    }
    lines
}
