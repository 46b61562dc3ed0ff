//! Offer budgets shared by every wallet: atomic reservations that never overshoot.
//!
//! A purchase reserves the amount of each award it wants to give; the reservation fails when it
//! does not fit in what is left. The caller commits a reservation once the event is durable, or
//! releases it when the event is refused. Clawed-back awards are given back.

use crate::money::Money;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Budget {
    /// `None`: no budget, only statistics.
    limit: Option<i64>,
    /// Reserved and committed amounts together: what is no longer available.
    used: AtomicI64,
    awarded_total: AtomicI64,
    award_count: AtomicU64,
}

/// The persistent part of a budget.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct BudgetTotals {
    pub awarded_total: Money,
    pub award_count: u64,
}

impl Budget {
    pub fn new(limit: Option<Money>, totals: BudgetTotals) -> Budget {
        Budget {
            limit: limit.map(Money::minor),
            used: AtomicI64::new(totals.awarded_total.minor()),
            awarded_total: AtomicI64::new(totals.awarded_total.minor()),
            award_count: AtomicU64::new(totals.award_count),
        }
    }

    /// Reserves `amount` if it fits entirely in what is left.
    pub fn try_reserve(&self, amount: Money) -> bool {
        let Some(limit) = self.limit else {
            self.used.fetch_add(amount.minor(), Ordering::AcqRel);
            return true;
        };
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let next = used + amount.minor();
            if next > limit {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => used = actual,
            }
        }
    }

    /// A reserved award was given: it counts in the offer's totals.
    pub fn commit(&self, amount: Money) {
        self.awarded_total
            .fetch_add(amount.minor(), Ordering::AcqRel);
        self.award_count.fetch_add(1, Ordering::AcqRel);
    }

    /// A reserved award was not given after all.
    pub fn release(&self, amount: Money) {
        self.used.fetch_sub(amount.minor(), Ordering::AcqRel);
    }

    /// A given award was clawed back: its amount is available again.
    pub fn give_back(&self, amount: Money) {
        self.used.fetch_sub(amount.minor(), Ordering::AcqRel);
        self.awarded_total
            .fetch_sub(amount.minor(), Ordering::AcqRel);
    }

    pub fn used(&self) -> Money {
        Money::from_minor(self.used.load(Ordering::Acquire))
    }

    pub fn limit(&self) -> Option<Money> {
        self.limit.map(Money::from_minor)
    }

    pub fn totals(&self) -> BudgetTotals {
        BudgetTotals {
            awarded_total: Money::from_minor(self.awarded_total.load(Ordering::Acquire)),
            award_count: self.award_count.load(Ordering::Acquire),
        }
    }
}
