//! The rewards engine: given an event, the contact's reward state and the active offers, the
//! awards and counter updates, deterministically (SPEC section 9).
//!
//! The engine decides; it changes nothing. Offer budgets are shared across wallets, so the caller
//! passes a [`BudgetGate`] that reserves budget for each award the engine wants to give; an award
//! that does not fit is not given at all, and the offer counts as not eligible.

use crate::business::RewardResolution;
use crate::ids::{MerchantId, OfferId, SchemeId};
use crate::money::{Currency, Money};
use crate::offer::{
    AchievementConditions, AchievementKind, AwardKind, Goal, MembershipGoal, Offer, Redemption,
    SpendConditions,
};
use crate::purchase::ValidatedLine;
use crate::scheme::Scheme;
use crate::time::{Timestamp, MILLIS_PER_DAY};
use crate::wallet::Funding;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What one contact has done towards one offer.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct OfferCounter {
    /// Awards given by this offer to this contact, ever.
    pub awards_total: u32,
    /// The calendar month of `awards_month` (see [`Timestamp::month_key`]).
    pub month: u32,
    pub awards_month: u32,
    /// Qualifying purchases since the last visits award (pruned to the period).
    pub visits: Vec<Timestamp>,
    /// The month of the cumulative target progress below.
    pub cumulative_month: u32,
    pub cumulative_amount: Money,
    pub cumulative_awarded: bool,
}

impl OfferCounter {
    fn awards_in_month(&self, month: u32) -> u32 {
        if self.month == month {
            self.awards_month
        } else {
            0
        }
    }

    fn record_award(&mut self, month: u32) {
        if self.month != month {
            self.month = month;
            self.awards_month = 0;
        }
        self.awards_month += 1;
        self.awards_total += 1;
    }
}

/// Per-offer counters of one contact (limits, visits, monthly targets).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct OfferCounters {
    pub entries: Vec<(OfferId, OfferCounter)>,
}

impl OfferCounters {
    pub fn get(&self, offer: OfferId) -> Option<&OfferCounter> {
        self.entries
            .iter()
            .find(|(id, _)| *id == offer)
            .map(|(_, c)| c)
    }

    /// Replaces the counters of the offers in `updates`.
    pub fn apply(&mut self, updates: &[(OfferId, OfferCounter)]) {
        for (offer, counter) in updates {
            match self.entries.iter_mut().find(|(id, _)| id == offer) {
                Some((_, existing)) => *existing = counter.clone(),
                None => self.entries.push((*offer, counter.clone())),
            }
        }
    }

    /// Removes one award of `offer` given at `at` (a voided event).
    pub fn remove_award(&mut self, offer: OfferId, at: Timestamp) {
        if let Some((_, c)) = self.entries.iter_mut().find(|(id, _)| *id == offer) {
            c.awards_total = c.awards_total.saturating_sub(1);
            if c.month == at.month_key() {
                c.awards_month = c.awards_month.saturating_sub(1);
            }
            if c.cumulative_month == at.month_key() {
                c.cumulative_awarded = false;
            }
        }
    }
}

/// A purchase as the engine sees it.
#[derive(Copy, Clone, Debug)]
pub struct PurchaseFacts<'a> {
    pub performed_on: Timestamp,
    pub classification: Option<&'a str>,
    pub merchant_id: Option<MerchantId>,
    pub tap_code: Option<&'a str>,
    pub payment_brand: Option<&'a str>,
    pub lines: &'a [ValidatedLine],
    /// The purchase total in the business currency.
    pub total: Money,
}

#[derive(Copy, Clone, Debug)]
pub struct AchievementFacts<'a> {
    pub kind: AchievementKind,
    pub classification: Option<&'a str>,
    pub amount: Option<Money>,
    pub performed_on: Timestamp,
}

#[derive(Copy, Clone, Debug)]
pub enum EventFacts<'a> {
    Purchase(PurchaseFacts<'a>),
    Achievement(AchievementFacts<'a>),
    /// The contact was created (`None`) or joined a scheme.
    SignUp {
        scheme_id: Option<SchemeId>,
    },
    /// A referral: the referrer's side or the referred contact's side.
    Referral {
        referrer: bool,
    },
    TierReached {
        level: &'a str,
    },
}

/// The contact's side of an evaluation.
#[derive(Copy, Clone, Debug)]
pub struct ContactFacts<'a> {
    pub tier: Option<&'a str>,
    pub scheme_ids: &'a [SchemeId],
    pub counters: &'a OfferCounters,
}

/// The business's side of an evaluation.
#[derive(Copy, Clone, Debug)]
pub struct EngineContext<'a> {
    pub currency: Currency,
    pub resolution: RewardResolution,
    pub schemes: &'a [Scheme],
    pub now: Timestamp,
}

/// Reserves offer budget for an award; `false` means the award does not fit and is not given.
pub trait BudgetGate {
    fn try_reserve(&mut self, offer: &Offer, amount: Money) -> bool;
}

/// A gate for offers without shared budgets (tests, estimates that reserve nothing).
pub struct Unlimited;

impl BudgetGate for Unlimited {
    fn try_reserve(&mut self, _: &Offer, _: Money) -> bool {
        true
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProposedAward {
    pub offer_id: OfferId,
    pub amount: Money,
    pub redeem: Redemption,
    pub expires_at: Option<Timestamp>,
    pub funding: Funding,
    /// Whether a budget was reserved for it (the caller commits or releases it).
    pub budgeted: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Evaluation {
    pub awards: Vec<ProposedAward>,
    /// New counter values to apply when the event commits.
    pub counters: Vec<(OfferId, OfferCounter)>,
}

struct Candidate<'o> {
    offer: &'o Offer,
    amount: Money,
    counter: OfferCounter,
}

/// Evaluates one event against the active offers.
pub fn evaluate(
    context: &EngineContext<'_>,
    event: &EventFacts<'_>,
    contact: &ContactFacts<'_>,
    offers: &[Arc<Offer>],
    gate: &mut dyn BudgetGate,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    // Sized for every offer at once: growing it one candidate at a time reallocated it.
    let mut candidates: Vec<Candidate<'_>> = Vec::with_capacity(offers.len());
    let now = context.now;
    // Computed once: most offers without SKU conditions need the purchase's whole quantity.
    let purchase_quantity: Decimal = match event {
        EventFacts::Purchase(p) => p.lines.iter().map(|l| l.quantity).sum(),
        _ => Decimal::ZERO,
    };
    for offer in offers {
        let offer: &Offer = offer;
        if !offer_applies(context, contact, offer, now) {
            continue;
        }
        let mut counter = contact.counters.get(offer.id).cloned().unwrap_or_default();
        if limits_reached(offer, &counter, now) {
            continue;
        }
        let Some(amount) = goal_award(
            context,
            event,
            contact,
            offer,
            purchase_quantity,
            &mut counter,
            &mut evaluation,
        ) else {
            continue;
        };
        // An award is an amount a purchase computes: like every such amount it is below
        // MAX_AMOUNT_UNITS (so balances that sum awards stay far inside i64). An award beyond
        // that gives nothing rather than an amount no purchase could justify.
        if amount.is_positive() && amount <= context.currency.max_amount() {
            candidates.push(Candidate {
                offer,
                amount,
                counter,
            });
        }
    }
    match context.resolution {
        RewardResolution::All => {}
        RewardResolution::Highest => candidates.sort_by(|a, b| {
            b.amount
                .cmp(&a.amount)
                .then(a.offer.created_seq.cmp(&b.offer.created_seq))
        }),
        RewardResolution::Priority => candidates.sort_by(|a, b| {
            a.offer
                .priority
                .cmp(&b.offer.priority)
                .then(a.offer.created_seq.cmp(&b.offer.created_seq))
        }),
    }
    // Progress counters were recorded while evaluating; an awarded offer's counter replaces its
    // progress entry. Most events record no progress, so this stays a short list.
    let progress = std::mem::take(&mut evaluation.counters);
    let month = now.month_key();
    evaluation.awards.reserve(candidates.len());
    for mut candidate in candidates {
        let budgeted = candidate.offer.limits.budget.is_some();
        if !gate.try_reserve(candidate.offer, candidate.amount) {
            continue;
        }
        let offer = candidate.offer;
        candidate.counter.record_award(month);
        if matches!(offer.goal, Goal::Visits { .. }) {
            candidate.counter.visits.clear();
        }
        if let Goal::Achievement(AchievementConditions {
            cumulative_monthly_amount: Some(_),
            ..
        }) = offer.goal
        {
            candidate.counter.cumulative_awarded = true;
        }
        if keeps_counter(offer) {
            evaluation.counters.push((offer.id, candidate.counter));
        }
        evaluation.awards.push(ProposedAward {
            offer_id: offer.id,
            amount: candidate.amount,
            redeem: offer.redeem,
            expires_at: offer.validity.expires_at(now),
            funding: offer
                .merchant_id
                .map_or(Funding::Business, Funding::Merchant),
            budgeted,
        });
        if context.resolution != RewardResolution::All {
            break;
        }
    }
    for (offer, counter) in progress {
        if !evaluation.counters.iter().any(|(id, _)| *id == offer) {
            evaluation.counters.push((offer, counter));
        }
    }
    evaluation
}

/// Whether an offer needs a per-contact counter: limits, visits and monthly targets do; an offer
/// without them would only make every contact's state grow with every offer it ever earned.
fn keeps_counter(offer: &Offer) -> bool {
    offer.limits.per_contact.is_some()
        || offer.limits.per_contact_monthly.is_some()
        || matches!(offer.goal, Goal::Visits { .. })
        || matches!(
            offer.goal,
            Goal::Achievement(AchievementConditions {
                cumulative_monthly_amount: Some(_),
                ..
            })
        )
}

fn set_counter(counters: &mut Vec<(OfferId, OfferCounter)>, offer: OfferId, counter: OfferCounter) {
    match counters.iter_mut().find(|(id, _)| *id == offer) {
        Some((_, c)) => *c = counter,
        None => counters.push((offer, counter)),
    }
}

/// Active, within its window, and open to this contact through its scheme.
fn offer_applies(
    context: &EngineContext<'_>,
    contact: &ContactFacts<'_>,
    offer: &Offer,
    now: Timestamp,
) -> bool {
    if !offer.active || offer.from.is_some_and(|f| now < f) || offer.to.is_some_and(|t| now >= t) {
        return false;
    }
    match offer.scheme_id {
        None => true,
        Some(scheme) => {
            let active = context.schemes.iter().any(|s| s.id == scheme && s.active);
            active && contact.scheme_ids.contains(&scheme)
        }
    }
}

fn limits_reached(offer: &Offer, counter: &OfferCounter, now: Timestamp) -> bool {
    offer
        .limits
        .per_contact
        .is_some_and(|max| counter.awards_total >= max)
        || offer
            .limits
            .per_contact_monthly
            .is_some_and(|max| counter.awards_in_month(now.month_key()) >= max)
}

/// The award an offer's goal gives for this event, if it is met. Progress counters (visits,
/// cumulative amounts) move even when no award results; they are recorded in `evaluation`.
fn goal_award(
    context: &EngineContext<'_>,
    event: &EventFacts<'_>,
    contact: &ContactFacts<'_>,
    offer: &Offer,
    purchase_quantity: Decimal,
    counter: &mut OfferCounter,
    evaluation: &mut Evaluation,
) -> Option<Money> {
    match (&offer.goal, event) {
        (Goal::Spend(conditions), EventFacts::Purchase(p)) => {
            let (amount, quantity) = eligible(conditions, offer, contact, p, purchase_quantity)?;
            award_amount(offer, amount, quantity)
        }
        (
            Goal::Visits {
                conditions,
                count,
                period_days,
            },
            EventFacts::Purchase(p),
        ) => {
            let (amount, quantity) = eligible(conditions, offer, contact, p, purchase_quantity)?;
            let cutoff = context.now.0 - i64::from(*period_days) * MILLIS_PER_DAY;
            counter.visits.retain(|t| t.0 > cutoff);
            counter.visits.push(context.now);
            set_counter(&mut evaluation.counters, offer.id, counter.clone());
            if counter.visits.len() < *count as usize {
                return None;
            }
            award_amount(offer, amount, quantity)
        }
        (Goal::Achievement(conditions), EventFacts::Achievement(a)) => {
            if !conditions.classifications.is_empty()
                && !a
                    .classification
                    .is_some_and(|c| conditions.classifications.iter().any(|x| x == c))
            {
                return None;
            }
            if !conditions.event_kinds.is_empty() && !conditions.event_kinds.contains(&a.kind) {
                return None;
            }
            if !tier_matches(&conditions.tier_levels, contact.tier) {
                return None;
            }
            let amount = a.amount.unwrap_or(Money::ZERO);
            if let Some(target) = conditions.cumulative_monthly_amount {
                let month = a.performed_on.month_key();
                if counter.cumulative_month != month {
                    counter.cumulative_month = month;
                    counter.cumulative_amount = Money::ZERO;
                    counter.cumulative_awarded = false;
                }
                counter.cumulative_amount += amount;
                set_counter(&mut evaluation.counters, offer.id, counter.clone());
                if counter.cumulative_awarded || counter.cumulative_amount < target {
                    return None;
                }
                return award_amount(offer, counter.cumulative_amount, Decimal::ONE);
            }
            award_amount(offer, amount, Decimal::ONE)
        }
        (Goal::Membership(MembershipGoal::SignUp), EventFacts::SignUp { scheme_id }) => {
            (offer.scheme_id == *scheme_id)
                .then(|| award_amount(offer, Money::ZERO, Decimal::ONE))
                .flatten()
        }
        (
            Goal::Membership(MembershipGoal::Referral { award_referred }),
            EventFacts::Referral { referrer },
        ) => (*referrer || *award_referred)
            .then(|| award_amount(offer, Money::ZERO, Decimal::ONE))
            .flatten(),
        (
            Goal::Membership(MembershipGoal::TierReached { level }),
            EventFacts::TierReached { level: reached },
        ) => (level == reached)
            .then(|| award_amount(offer, Money::ZERO, Decimal::ONE))
            .flatten(),
        _ => None,
    }
}

fn tier_matches(levels: &[String], tier: Option<&str>) -> bool {
    levels.is_empty() || tier.is_some_and(|t| levels.iter().any(|l| l == t))
}

/// The eligible amount and quantity of a purchase for spend conditions, if they all hold.
fn eligible(
    c: &SpendConditions,
    offer: &Offer,
    contact: &ContactFacts<'_>,
    p: &PurchaseFacts<'_>,
    purchase_quantity: Decimal,
) -> Option<(Money, Decimal)> {
    if let Some(merchant) = offer.merchant_id {
        if p.merchant_id != Some(merchant) {
            return None;
        }
    }
    if !c.classifications.is_empty()
        && !p
            .classification
            .is_some_and(|x| c.classifications.iter().any(|y| y == x))
    {
        return None;
    }
    if !c.merchant_ids.is_empty() && !p.merchant_id.is_some_and(|m| c.merchant_ids.contains(&m)) {
        return None;
    }
    if !c.tap_codes.is_empty()
        && !p
            .tap_code
            .is_some_and(|t| c.tap_codes.iter().any(|y| y == t))
    {
        return None;
    }
    if !c.payment_brands.is_empty()
        && !p
            .payment_brand
            .is_some_and(|b| c.payment_brands.iter().any(|y| y.eq_ignore_ascii_case(b)))
    {
        return None;
    }
    if !c.days_of_week.is_empty() && !c.days_of_week.contains(&p.performed_on.iso_weekday()) {
        return None;
    }
    if let Some((from, to)) = c.time_window {
        let minute = p.performed_on.minute_of_day();
        let inside = if from <= to {
            minute >= from && minute < to
        } else {
            minute >= from || minute < to
        };
        if !inside {
            return None;
        }
    }
    if !tier_matches(&c.tier_levels, contact.tier) {
        return None;
    }
    let (amount, quantity) = if c.skus.is_empty() && c.families.is_empty() {
        (p.total, purchase_quantity)
    } else {
        let mut amount = Money::ZERO;
        let mut quantity = Decimal::ZERO;
        for line in p.lines {
            let sku_match = c.skus.contains(&line.sku);
            let family_match = line
                .family
                .as_deref()
                .is_some_and(|f| c.families.iter().any(|x| x == f));
            if sku_match || family_match {
                amount += line.total;
                quantity += line.quantity;
            }
        }
        if quantity.is_zero() {
            return None;
        }
        (amount, quantity)
    };
    if c.min_amount.is_some_and(|min| amount < min) {
        return None;
    }
    Some((amount, quantity))
}

/// Rounds a decimal count of minor units half away from zero; `None` when it does not fit.
fn round_minor(minor: Decimal) -> Option<Money> {
    let rounded =
        minor.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    // With no decimals left the mantissa is the integer (a scale above zero keeps only zeros).
    let whole = 10i128
        .checked_pow(rounded.scale())
        .and_then(|scale| rounded.mantissa().checked_div(scale))?;
    i64::try_from(whole).ok().map(Money::from_minor)
}

/// The award of an offer's kind for an eligible amount and quantity, rounded once and limited to
/// the offer's cap; `None` when it is too large for any amount of money (a quantity or step
/// multiple of a huge award) and the offer has no cap.
pub fn award_amount(offer: &Offer, eligible: Money, quantity: Decimal) -> Option<Money> {
    match (uncapped_award(offer, eligible, quantity), offer.award.cap) {
        (Some(award), cap) => Some(cap.map_or(award, |cap| award.min(cap))),
        // Too large for any amount of money is above every cap.
        (None, cap) => cap,
    }
}

fn uncapped_award(offer: &Offer, eligible: Money, quantity: Decimal) -> Option<Money> {
    match &offer.award.kind {
        AwardKind::Fixed { amount } => Some(*amount),
        // Computed in minor units: `x / 100` is a change of scale, exact and far cheaper than a
        // decimal division; the one rounding is to whole minor units.
        AwardKind::Percent { percent } => {
            let mut minor = Decimal::from(eligible.minor()).checked_mul(*percent)?;
            let scale = minor.scale().saturating_add(2);
            if scale > 28 || minor.set_scale(scale).is_err() {
                minor = minor.checked_div(Decimal::ONE_HUNDRED)?;
            }
            round_minor(minor)
        }
        AwardKind::PerUnit { amount } => {
            round_minor(Decimal::from(amount.minor()).checked_mul(quantity)?)
        }
        AwardKind::Step { step, amount } => {
            if step.is_positive() {
                amount.checked_mul_i64(eligible.checked_div(*step)?)
            } else {
                Some(Money::ZERO)
            }
        }
    }
}
