//! Referral rules: a contact is referred once; a referrer refers at most a daily limit of contacts.

use serde::{Deserialize, Serialize};

/// How many referrals a referrer made on its latest day of referring.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ReferralCounter {}
