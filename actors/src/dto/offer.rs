//! The offer JSON of API.md, parsed into a validated [`Offer`] and rendered back.

use super::{money, parse_id, text, time, Dec, Problems};
use rewards_core::offer::{
    AchievementConditions, AchievementKind, Award, AwardKind, Goal, Limits, MembershipGoal, Offer,
    Redemption, SpendConditions, Validity,
};
use rewards_core::{
    BusinessId, Currency, DomainError, MerchantId, Money, OfferId, SchemeId, Timestamp,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OfferBody {
    #[schema(max_length = 256)]
    pub name: String,
    #[serde(default)]
    pub scheme_id: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub merchant_id: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    pub goal: String,
    #[serde(default, deserialize_with = "crate::dto::object::one")]
    pub conditions: ConditionsBody,
    #[serde(deserialize_with = "crate::dto::object::one")]
    pub award: AwardBody,
    #[serde(default)]
    pub validity_days: Option<u32>,
    #[serde(default)]
    pub valid_until: Option<String>,
    #[serde(default)]
    pub redeem: Option<Redemption>,
    #[serde(default, deserialize_with = "crate::dto::object::one")]
    pub limits: LimitsBody,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ConditionsBody {
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub classifications: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub skus: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub families: Vec<String>,
    #[serde(default)]
    pub min_amount: Option<Dec>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub merchant_ids: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub tap_codes: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub payment_brands: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub days_of_week: Vec<u8>,
    #[serde(default)]
    pub time_from: Option<String>,
    #[serde(default)]
    pub time_to: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub tier_levels: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub visits: Option<VisitsBody>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub event_kinds: Vec<String>,
    #[serde(default)]
    pub cumulative_monthly_amount: Option<Dec>,
    #[serde(default)]
    pub membership: Option<String>,
    #[serde(default)]
    pub tier_level: Option<String>,
    #[serde(default)]
    pub award_referred: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VisitsBody {
    pub count: u32,
    pub period_days: u32,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct AwardBody {
    pub kind: String,
    #[serde(default)]
    pub amount: Option<Dec>,
    #[serde(default)]
    pub percent: Option<Dec>,
    #[serde(default)]
    pub step: Option<Dec>,
    #[serde(default)]
    pub cap: Option<Dec>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct LimitsBody {
    #[serde(default)]
    pub per_contact: Option<u32>,
    #[serde(default)]
    pub per_contact_monthly: Option<u32>,
    #[serde(default)]
    pub budget: Option<Dec>,
}

fn minutes(field: &str, text: &str) -> Result<u16, rewards_core::FieldError> {
    let err = || rewards_core::FieldError::new(field, "must be a time of day HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(err)?;
    let h: u16 = h.parse().map_err(|_| err())?;
    let m: u16 = m.parse().map_err(|_| err())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

fn format_minutes(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Where the new offer comes from: ids and order are given by the caller (the registry).
pub struct OfferOrigin {
    pub id: OfferId,
    pub business_id: BusinessId,
    pub created_seq: u64,
}

impl OfferBody {
    /// Validates the body into an offer; every problem is reported with its field path.
    pub fn into_offer(self, origin: OfferOrigin, currency: Currency) -> Result<Offer, DomainError> {
        let mut p = Problems::default();
        let name = p.take(text("name", &self.name)).unwrap_or_default();
        let scheme_id: Option<SchemeId> = self
            .scheme_id
            .as_deref()
            .and_then(|s| p.take(parse_id("scheme_id", s)));
        let merchant_id: Option<MerchantId> = self
            .merchant_id
            .as_deref()
            .and_then(|s| p.take(parse_id("merchant_id", s)));
        let active = match self.state.as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(_) => {
                p.add("state", "must be active or inactive");
                true
            }
        };
        let from = p.take(time("from", self.from.as_deref())).flatten();
        let to = p.take(time("to", self.to.as_deref())).flatten();
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                p.add("to", "must be after from");
            }
        }
        let c = self.conditions;
        let min_amount = p
            .take(money(currency, "conditions.min_amount", c.min_amount))
            .flatten();
        let merchant_ids: Vec<MerchantId> = c
            .merchant_ids
            .iter()
            .enumerate()
            .filter_map(|(i, m)| p.take(parse_id(&format!("conditions.merchant_ids[{i}]"), m)))
            .collect();
        for (i, day) in c.days_of_week.iter().enumerate() {
            if !(1..=7).contains(day) {
                p.add(
                    format!("conditions.days_of_week[{i}]"),
                    "must be 1 (Monday) to 7 (Sunday)",
                );
            }
        }
        let time_window = match (&c.time_from, &c.time_to) {
            (None, None) => None,
            (Some(f), Some(t)) => {
                let f = p.take(minutes("conditions.time_from", f));
                let t = p.take(minutes("conditions.time_to", t));
                f.zip(t)
            }
            (Some(_), None) => {
                p.add("conditions.time_to", "is required with time_from");
                None
            }
            (None, Some(_)) => {
                p.add("conditions.time_from", "is required with time_to");
                None
            }
        };
        let spend_conditions = SpendConditions {
            classifications: c.classifications.clone(),
            skus: c.skus.clone(),
            families: c.families.clone(),
            min_amount,
            merchant_ids,
            tap_codes: c.tap_codes.clone(),
            payment_brands: c.payment_brands.clone(),
            days_of_week: c.days_of_week.clone(),
            time_window,
            tier_levels: c.tier_levels.clone(),
        };
        let goal = match self.goal.as_str() {
            "spend" => Some(Goal::Spend(spend_conditions)),
            "visits" => match &c.visits {
                Some(v) if v.count >= 1 && v.period_days >= 1 => Some(Goal::Visits {
                    conditions: spend_conditions,
                    count: v.count,
                    period_days: v.period_days,
                }),
                Some(_) => {
                    p.add(
                        "conditions.visits",
                        "count and period_days must be at least 1",
                    );
                    None
                }
                None => {
                    p.add("conditions.visits", "is required for the visits goal");
                    None
                }
            },
            "achievement" => {
                let mut kinds = Vec::new();
                for (i, k) in c.event_kinds.iter().enumerate() {
                    match AchievementKind::parse(k) {
                        Some(k) => kinds.push(k),
                        None => p.add(
                            format!("conditions.event_kinds[{i}]"),
                            "must be achievement, financial_achievement, social_media or web",
                        ),
                    }
                }
                let cumulative = p
                    .take(money(
                        currency,
                        "conditions.cumulative_monthly_amount",
                        c.cumulative_monthly_amount,
                    ))
                    .flatten();
                Some(Goal::Achievement(AchievementConditions {
                    classifications: c.classifications.clone(),
                    event_kinds: kinds,
                    cumulative_monthly_amount: cumulative,
                    tier_levels: c.tier_levels.clone(),
                }))
            }
            "membership" => match c.membership.as_deref() {
                Some("sign_up") => Some(Goal::Membership(MembershipGoal::SignUp)),
                Some("referral") => Some(Goal::Membership(MembershipGoal::Referral {
                    award_referred: c.award_referred.unwrap_or(false),
                })),
                Some("tier_reached") => match &c.tier_level {
                    Some(level) => Some(Goal::Membership(MembershipGoal::TierReached {
                        level: level.clone(),
                    })),
                    None => {
                        p.add("conditions.tier_level", "is required for tier_reached");
                        None
                    }
                },
                _ => {
                    p.add(
                        "conditions.membership",
                        "must be sign_up, referral or tier_reached",
                    );
                    None
                }
            },
            _ => {
                p.add("goal", "must be spend, visits, achievement or membership");
                None
            }
        };
        let a = &self.award;
        let need = |p: &mut Problems, field: &str, v: Option<Dec>| -> Option<Money> {
            match v {
                None => {
                    p.add(format!("award.{field}"), "is required for this award kind");
                    None
                }
                Some(v) => p.take(currency.parse_amount(&format!("award.{field}"), v.0)),
            }
        };
        let kind = match a.kind.as_str() {
            "fixed" => need(&mut p, "amount", a.amount).map(|amount| AwardKind::Fixed { amount }),
            "percent" => match a.percent {
                Some(Dec(percent)) if percent > Decimal::ZERO && percent <= Decimal::from(1000) => {
                    Some(AwardKind::Percent { percent })
                }
                Some(_) => {
                    p.add("award.percent", "must be above 0 and at most 1000");
                    None
                }
                None => {
                    p.add("award.percent", "is required for this award kind");
                    None
                }
            },
            "per_unit" => {
                need(&mut p, "amount", a.amount).map(|amount| AwardKind::PerUnit { amount })
            }
            "step" => {
                let step = need(&mut p, "step", a.step);
                let amount = need(&mut p, "amount", a.amount);
                if step.is_some_and(|s| s.is_zero()) {
                    p.add("award.step", "must be above zero");
                }
                step.zip(amount)
                    .map(|(step, amount)| AwardKind::Step { step, amount })
            }
            _ => {
                p.add("award.kind", "must be fixed, percent, per_unit or step");
                None
            }
        };
        let cap = p.take(money(currency, "award.cap", a.cap)).flatten();
        let validity = match (self.validity_days, self.valid_until.as_deref()) {
            (None, None) => Validity::Forever,
            (Some(days), None) => {
                if days == 0 {
                    p.add("validity_days", "must be at least 1");
                }
                Validity::Days(days)
            }
            (None, Some(until)) => p
                .take(time("valid_until", Some(until)))
                .flatten()
                .map_or(Validity::Forever, Validity::Until),
            (Some(_), Some(_)) => {
                p.add("valid_until", "give validity_days or valid_until, not both");
                Validity::Forever
            }
        };
        let budget = p
            .take(money(currency, "limits.budget", self.limits.budget))
            .flatten();
        for (field, value) in [
            ("limits.per_contact", self.limits.per_contact),
            (
                "limits.per_contact_monthly",
                self.limits.per_contact_monthly,
            ),
        ] {
            if value == Some(0) {
                p.add(field, "must be at least 1");
            }
        }
        p.finish()?;
        // Both were checked above (a missing one is a field error already returned).
        let (Some(goal), Some(kind)) = (goal, kind) else {
            return Err(DomainError::validation("goal", "is required"));
        };
        Ok(Offer {
            id: origin.id,
            business_id: origin.business_id,
            name,
            scheme_id,
            active,
            priority: self.priority.unwrap_or(0),
            created_seq: origin.created_seq,
            merchant_id,
            from,
            to,
            goal,
            award: Award { kind, cap },
            validity,
            redeem: self.redeem.unwrap_or(Redemption::Deferred),
            limits: Limits {
                per_contact: self.limits.per_contact,
                per_contact_monthly: self.limits.per_contact_monthly,
                budget,
            },
        })
    }
}

/// Statistics shown with an offer.
#[derive(Copy, Clone, Default, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OfferStats {
    pub awarded_total: Money,
    pub award_count: u64,
}

fn opt_time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// The offer as API.md shows it.
pub fn render(offer: &Offer, currency: Currency, stats: OfferStats) -> Value {
    let m = |a: Money| currency.format(a);
    let mut conditions = serde_json::Map::new();
    let spend = |conditions: &mut serde_json::Map<String, Value>, c: &SpendConditions| {
        conditions.insert("classifications".into(), json!(c.classifications));
        conditions.insert("skus".into(), json!(c.skus));
        conditions.insert("families".into(), json!(c.families));
        conditions.insert("min_amount".into(), json!(c.min_amount.map(m)));
        conditions.insert(
            "merchant_ids".into(),
            json!(c
                .merchant_ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()),
        );
        conditions.insert("tap_codes".into(), json!(c.tap_codes));
        conditions.insert("payment_brands".into(), json!(c.payment_brands));
        conditions.insert("days_of_week".into(), json!(c.days_of_week));
        conditions.insert(
            "time_from".into(),
            json!(c.time_window.map(|(f, _)| format_minutes(f))),
        );
        conditions.insert(
            "time_to".into(),
            json!(c.time_window.map(|(_, t)| format_minutes(t))),
        );
        conditions.insert("tier_levels".into(), json!(c.tier_levels));
    };
    let goal = match &offer.goal {
        Goal::Spend(c) => {
            spend(&mut conditions, c);
            "spend"
        }
        Goal::Visits {
            conditions: c,
            count,
            period_days,
        } => {
            spend(&mut conditions, c);
            conditions.insert(
                "visits".into(),
                json!({"count": count, "period_days": period_days}),
            );
            "visits"
        }
        Goal::Achievement(c) => {
            conditions.insert("classifications".into(), json!(c.classifications));
            conditions.insert(
                "event_kinds".into(),
                json!(c.event_kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
            );
            conditions.insert(
                "cumulative_monthly_amount".into(),
                json!(c.cumulative_monthly_amount.map(m)),
            );
            conditions.insert("tier_levels".into(), json!(c.tier_levels));
            "achievement"
        }
        Goal::Membership(goal) => {
            match goal {
                MembershipGoal::SignUp => {
                    conditions.insert("membership".into(), json!("sign_up"));
                }
                MembershipGoal::Referral { award_referred } => {
                    conditions.insert("membership".into(), json!("referral"));
                    conditions.insert("award_referred".into(), json!(award_referred));
                }
                MembershipGoal::TierReached { level } => {
                    conditions.insert("membership".into(), json!("tier_reached"));
                    conditions.insert("tier_level".into(), json!(level));
                }
            }
            "membership"
        }
    };
    let mut award = serde_json::Map::new();
    match &offer.award.kind {
        AwardKind::Fixed { amount } => {
            award.insert("kind".into(), json!("fixed"));
            award.insert("amount".into(), json!(m(*amount)));
        }
        AwardKind::Percent { percent } => {
            award.insert("kind".into(), json!("percent"));
            award.insert("percent".into(), json!(percent.normalize().to_string()));
        }
        AwardKind::PerUnit { amount } => {
            award.insert("kind".into(), json!("per_unit"));
            award.insert("amount".into(), json!(m(*amount)));
        }
        AwardKind::Step { step, amount } => {
            award.insert("kind".into(), json!("step"));
            award.insert("step".into(), json!(m(*step)));
            award.insert("amount".into(), json!(m(*amount)));
        }
    }
    award.insert("cap".into(), json!(offer.award.cap.map(m)));
    let (validity_days, valid_until) = match offer.validity {
        Validity::Forever => (Value::Null, Value::Null),
        Validity::Days(d) => (json!(d), Value::Null),
        Validity::Until(t) => (Value::Null, json!(t.to_rfc3339())),
    };
    json!({
        "id": offer.id.to_string(),
        "business_id": offer.business_id.to_string(),
        "name": offer.name,
        "scheme_id": offer.scheme_id.map(|s| s.to_string()),
        "state": if offer.active { "active" } else { "inactive" },
        "priority": offer.priority,
        "merchant_id": offer.merchant_id.map(|s| s.to_string()),
        "from": opt_time(offer.from),
        "to": opt_time(offer.to),
        "goal": goal,
        "conditions": conditions,
        "award": award,
        "validity_days": validity_days,
        "valid_until": valid_until,
        "redeem": offer.redeem.as_str(),
        "limits": {
            "per_contact": offer.limits.per_contact,
            "per_contact_monthly": offer.limits.per_contact_monthly,
            "budget": offer.limits.budget.map(m),
        },
        "awarded_total": m(stats.awarded_total),
        "award_count": stats.award_count,
    })
}
