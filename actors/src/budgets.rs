//! Offers at run time: the offer and its shared budget, and the gate through which the engine
//! reserves budget for the awards it wants to give.

use rewards_core::budget::{Budget, BudgetTotals};
use rewards_core::engine::BudgetGate;
use rewards_core::offer::Offer;
use rewards_core::{Money, OfferId};
use std::collections::HashMap;
use std::sync::Arc;

pub struct OfferRuntime {
    pub offer: Arc<Offer>,
    /// Shared by every version of the offer (activation does not reset reservations or totals).
    pub budget: Arc<Budget>,
}

impl OfferRuntime {
    pub fn new(offer: Offer, totals: BudgetTotals) -> OfferRuntime {
        let budget = Arc::new(Budget::new(offer.limits.budget, totals));
        OfferRuntime {
            offer: Arc::new(offer),
            budget,
        }
    }

    /// A new version of the offer (its state changed) keeping its budget.
    pub fn with_offer(&self, offer: Offer) -> OfferRuntime {
        OfferRuntime {
            offer: Arc::new(offer),
            budget: self.budget.clone(),
        }
    }
}

/// Reserves budget on the offers' shared runtimes and remembers what it reserved, so the caller
/// commits it when the event is durable or releases it when the event is refused. What is still
/// here when it is dropped is released: an early return can never leave budget reserved.
pub struct Reservations<'a> {
    offers: &'a HashMap<OfferId, Arc<OfferRuntime>>,
    reserved: Vec<(Arc<OfferRuntime>, Money)>,
}

impl<'a> Reservations<'a> {
    pub fn new(offers: &'a HashMap<OfferId, Arc<OfferRuntime>>) -> Self {
        Reservations {
            offers,
            reserved: Vec::new(),
        }
    }
}

impl Drop for Reservations<'_> {
    fn drop(&mut self) {
        for (runtime, amount) in self.reserved.drain(..) {
            runtime.budget.release(amount);
        }
    }
}

impl BudgetGate for Reservations<'_> {
    fn try_reserve(&mut self, offer: &Offer, amount: Money) -> bool {
        let Some(runtime) = self.offers.get(&offer.id) else {
            return false;
        };
        if runtime.budget.try_reserve(amount) {
            self.reserved.push((runtime.clone(), amount));
            true
        } else {
            false
        }
    }
}

/// Reservations taken out of their gate until the event's fate is known: [`Held::commit`] once
/// it is durable; dropped (or [`Held::release`]d) otherwise, which gives the budget back.
#[derive(Default)]
pub struct Held(Vec<(Arc<OfferRuntime>, Money)>);

impl Held {
    /// Takes over what `gate` reserved.
    pub fn absorb(&mut self, gate: &mut Reservations<'_>) {
        self.0.append(&mut gate.reserved);
    }

    pub fn commit(mut self) {
        for (runtime, amount) in std::mem::take(&mut self.0) {
            runtime.budget.commit(amount);
        }
    }

    pub fn release(self) {
        // Dropping releases.
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for (runtime, amount) in self.0.drain(..) {
            runtime.budget.release(amount);
        }
    }
}
