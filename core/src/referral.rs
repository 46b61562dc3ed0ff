//! Referral rules: a contact is referred once; a referrer refers at most a daily limit of contacts
//! per UTC calendar day (SPEC section 4).

use crate::error::DomainError;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// How many referrals a referrer made on its latest day of referring.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ReferralCounter {
    pub day: i64,
    pub count: u32,
}

impl ReferralCounter {
    /// May the referrer refer one more contact at `now`?
    pub fn check(&self, daily_limit: u32, now: Timestamp) -> Result<(), DomainError> {
        let today = if self.day == now.day_key() {
            self.count
        } else {
            0
        };
        if today >= daily_limit {
            return Err(DomainError::ReferralLimitExceeded);
        }
        Ok(())
    }

    pub fn record(&mut self, now: Timestamp) {
        let day = now.day_key();
        if self.day != day {
            self.day = day;
            self.count = 0;
        }
        self.count += 1;
    }
}

/// A contact that was already referred cannot be referred again, nor refer itself.
pub fn check_referred(
    referrer: crate::ContactId,
    referred: crate::ContactId,
    already_referred_by: Option<crate::ContactId>,
) -> Result<(), DomainError> {
    if referrer == referred {
        return Err(DomainError::validation(
            "referred",
            "a contact cannot refer itself",
        ));
    }
    if already_referred_by.is_some() {
        return Err(DomainError::AlreadyReferred);
    }
    Ok(())
}
