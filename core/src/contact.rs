//! Contacts: a business's customers, their identifiers and the reward state that follows them.

use crate::engine::OfferCounters;
use crate::ids::{BusinessId, ContactId, SchemeId, WalletId};
use crate::referral::ReferralCounter;
use crate::tier::TierProgress;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PaymentMedium {
    pub identifier: String,
    pub brand: Option<String>,
    pub kind: Option<String>,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub business_id: BusinessId,
    pub code: Option<String>,
    pub cim: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub payment_media: Vec<PaymentMedium>,
    pub gift_cards: Vec<String>,
    pub referral_code: String,
    pub wallet_id: WalletId,
    /// The static 16-digit wallet code.
    pub wallet_code: String,
    pub scheme_ids: Vec<SchemeId>,
    pub spend_blocked: bool,
    pub spend_block_reason: Option<String>,
    /// The contact that referred this one, once a referral was accepted.
    pub referred_by: Option<ContactId>,
    pub created_at: Timestamp,
    pub rewards: ContactRewards,
}

/// What the rewards engine remembers about a contact: its tier, its progress towards tiers, and
/// per-offer counters for limits, visits and monthly targets.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct ContactRewards {
    pub tier: Option<String>,
    pub tier_progress: TierProgress,
    pub counters: OfferCounters,
    pub referrals: ReferralCounter,
}
