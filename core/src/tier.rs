//! Tiers: value units over a rolling period or a lifetime, and the level they reach.
//!
//! Units are kept in one bucket per UTC day, so memory is bounded by the period, not by the number
//! of purchases. A tier rises at once and falls when units leave the period.

use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TierLevel {
    pub name: String,
    pub value_units: Decimal,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TierConfig {
    /// Rolling period in days; 0 counts units for a lifetime.
    pub period_days: u32,
    /// Value units per unit of business currency.
    pub conversion_rate: Decimal,
    /// Sorted by threshold, lowest first.
    pub levels: Vec<TierLevel>,
}

impl TierConfig {
    /// Sorts levels by threshold; refuses duplicate names and negative thresholds.
    pub fn new(
        period_days: u32,
        conversion_rate: Decimal,
        mut levels: Vec<TierLevel>,
    ) -> Result<TierConfig, crate::DomainError> {
        if conversion_rate <= Decimal::ZERO {
            return Err(crate::DomainError::validation(
                "conversion_rate",
                "must be above zero",
            ));
        }
        for (i, level) in levels.iter().enumerate() {
            if level.name.trim().is_empty() {
                return Err(crate::DomainError::validation(
                    format!("levels[{i}].name"),
                    "must not be empty",
                ));
            }
            if level.value_units.is_sign_negative() {
                return Err(crate::DomainError::validation(
                    format!("levels[{i}].value_units"),
                    "must not be negative",
                ));
            }
            if levels.iter().take(i).any(|l| l.name == level.name) {
                return Err(crate::DomainError::validation(
                    format!("levels[{i}].name"),
                    "is used twice",
                ));
            }
        }
        levels.sort_by_key(|l| l.value_units);
        Ok(TierConfig {
            period_days,
            conversion_rate,
            levels,
        })
    }

    /// The highest level whose threshold `units` meet.
    pub fn level_for(&self, units: Decimal) -> Option<&TierLevel> {
        self.levels.iter().rev().find(|l| units >= l.value_units)
    }

    /// The tier `progress` gives at `now`: what counts in the period then (a tier falls as
    /// units leave it), and for a contact with no units the level whose threshold is 0, if
    /// there is one.
    pub fn tier_at(&self, progress: &TierProgress, now: Timestamp) -> Option<String> {
        self.level_for(progress.units(self.period_days, now))
            .map(|l| l.name.clone())
    }

    pub fn rank(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }
}

/// A contact's value units still counting towards its tier.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct TierProgress {
    /// (UTC day, units) in day order.
    pub days: Vec<(i64, Decimal)>,
}

impl TierProgress {
    /// Units counting at `now` for a period of `period_days` (0: lifetime).
    pub fn units(&self, period_days: u32, now: Timestamp) -> Decimal {
        let first_day = first_day(period_days, now);
        let today = now.day_key();
        // Units dated in the future count from their day, not before (a lifetime's running
        // total is kept on day 0).
        self.days
            .iter()
            .filter(|(day, _)| *day >= first_day && (*day <= today || period_days == 0))
            .map(|(_, units)| *units)
            .sum()
    }

    /// Adds (or, for a void, removes) units at time `at`, and forgets days that left the period.
    pub fn add(&mut self, config: &TierConfig, units: Decimal, at: Timestamp, now: Timestamp) {
        let day = at.day_key();
        match self.days.iter_mut().find(|(d, _)| *d == day) {
            Some((_, u)) => *u += units,
            None => {
                self.days.push((day, units));
                self.days.sort_by_key(|(d, _)| *d);
            }
        }
        if config.period_days == 0 {
            // Lifetime: one running total is enough.
            let total: Decimal = self.days.iter().map(|(_, u)| *u).sum();
            self.days = vec![(0, total)];
        } else {
            let first = first_day(config.period_days, now);
            self.days.retain(|(d, _)| *d >= first);
        }
    }
}

fn first_day(period_days: u32, now: Timestamp) -> i64 {
    if period_days == 0 {
        i64::MIN
    } else {
        now.day_key() - i64::from(period_days) + 1
    }
}

/// The value units of a purchase total (in business currency units).
pub fn value_units(config: &TierConfig, total: Decimal) -> Decimal {
    total * config.conversion_rate
}

/// The tier a contact has at `now`, and whether it rose above `previous` (a tier-reached event).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TierChange {
    pub tier: Option<String>,
    /// The level reached, when the tier rose.
    pub reached: Option<String>,
}

pub fn recompute(
    config: &TierConfig,
    progress: &TierProgress,
    previous: Option<&str>,
    now: Timestamp,
) -> TierChange {
    let tier = config
        .level_for(progress.units(config.period_days, now))
        .map(|l| l.name.clone());
    let old_rank = previous.and_then(|p| config.rank(p));
    let new_rank = tier.as_deref().and_then(|t| config.rank(t));
    let reached = match (old_rank, new_rank) {
        (_, None) => None,
        (None, Some(_)) => tier.clone(),
        (Some(old), Some(new)) if new > old => tier.clone(),
        _ => None,
    };
    TierChange { tier, reached }
}
