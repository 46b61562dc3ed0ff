//! Reward offers: what earns an award, how much, for how long, and within which limits.
//!
//! This is the validated, domain form of an offer; the HTTP layer parses the JSON of API.md into it.

use crate::ids::{BusinessId, MerchantId, OfferId, SchemeId};
use crate::money::Money;
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub business_id: BusinessId,
    pub name: String,
    pub scheme_id: Option<SchemeId>,
    pub active: bool,
    /// Lower numbers win under `priority` resolution.
    pub priority: i32,
    /// Creation order within the business: breaks priority ties.
    pub created_seq: u64,
    /// A merchant-funded offer: only purchases at this merchant qualify, and the merchant funds it.
    pub merchant_id: Option<MerchantId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub goal: Goal,
    pub award: Award,
    pub validity: Validity,
    pub redeem: Redemption,
    pub limits: Limits,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum Goal {
    /// Purchases.
    Spend(SpendConditions),
    /// Every `count`-th qualifying purchase within `period_days` days.
    Visits {
        conditions: SpendConditions,
        count: u32,
        period_days: u32,
    },
    /// Achievement-kind events.
    Achievement(AchievementConditions),
    Membership(MembershipGoal),
}

/// Conditions on a purchase. Empty lists and `None` mean "any"; every condition present must hold.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct SpendConditions {
    pub classifications: Vec<String>,
    /// When SKUs or families are given, the eligible amount is the total of the matching lines.
    pub skus: Vec<String>,
    pub families: Vec<String>,
    /// Minimum eligible amount, in the business currency.
    pub min_amount: Option<Money>,
    pub merchant_ids: Vec<MerchantId>,
    pub tap_codes: Vec<String>,
    pub payment_brands: Vec<String>,
    /// ISO weekdays, 1 = Monday.
    pub days_of_week: Vec<u8>,
    /// Minutes since midnight UTC, `[from, to)`; a window with `from > to` wraps past midnight.
    pub time_window: Option<(u16, u16)>,
    pub tier_levels: Vec<String>,
}

#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub enum AchievementKind {
    #[default]
    Achievement,
    FinancialAchievement,
    SocialMedia,
    Web,
}

impl AchievementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AchievementKind::Achievement => "achievement",
            AchievementKind::FinancialAchievement => "financial_achievement",
            AchievementKind::SocialMedia => "social_media",
            AchievementKind::Web => "web",
        }
    }
    pub fn parse(text: &str) -> Option<AchievementKind> {
        Some(match text {
            "achievement" => AchievementKind::Achievement,
            "financial_achievement" => AchievementKind::FinancialAchievement,
            "social_media" => AchievementKind::SocialMedia,
            "web" => AchievementKind::Web,
            _ => return None,
        })
    }
}

#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct AchievementConditions {
    pub classifications: Vec<String>,
    pub event_kinds: Vec<AchievementKind>,
    /// Once the qualifying amounts of a calendar month reach this, award once for that month.
    pub cumulative_monthly_amount: Option<Money>,
    pub tier_levels: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MembershipGoal {
    /// Fires when the contact is created (offer without a scheme) or joins the offer's scheme.
    SignUp,
    /// The referrer is awarded; the referred contact too when `award_referred`.
    Referral { award_referred: bool },
    /// The contact reaches the tier level of this name.
    TierReached { level: String },
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Award {
    pub kind: AwardKind,
    /// At most this much per event.
    pub cap: Option<Money>,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum AwardKind {
    Fixed {
        amount: Money,
    },
    /// `percent` of the eligible amount (10 = 10 %).
    Percent {
        percent: Decimal,
    },
    /// `amount` per eligible unit (quantity).
    PerUnit {
        amount: Money,
    },
    /// For every `step` of eligible amount, `amount`: floor(eligible / step) x amount.
    Step {
        step: Money,
        amount: Money,
    },
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Validity {
    Forever,
    Days(u32),
    Until(Timestamp),
}

impl Validity {
    /// The expiry of a lot awarded at `now`.
    pub fn expires_at(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Validity::Forever => None,
            Validity::Days(days) => Some(now.plus_days(i64::from(days))),
            Validity::Until(at) => Some(at),
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Redemption {
    /// Stays in commerce until spent.
    Deferred,
    /// Redeemed at once: spendable on the current purchase.
    Instant,
    /// Redeemed at once and paid out by the payout run in the payout spend model.
    Auto,
}

impl Redemption {
    pub fn as_str(self) -> &'static str {
        match self {
            Redemption::Deferred => "deferred",
            Redemption::Instant => "instant",
            Redemption::Auto => "auto",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    pub per_contact: Option<u32>,
    pub per_contact_monthly: Option<u32>,
    /// The sum of awards the offer may give, in the business currency.
    pub budget: Option<Money>,
}
