//! Business, settings, merchant, TAP, scheme and tier JSON of API.md.

use super::{money, text, Dec, Problems};
use rewards_core::business::{
    Business, BusinessSettings, CommercialTerms, Fee, FeeKind, Merchant, ProcessorMode,
    ReductionMethod, RewardResolution, SpendModel, Tap,
};
use rewards_core::scheme::{Scheme, SignUp};
use rewards_core::tier::TierConfig;
use rewards_core::{Currency, DomainError};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct BusinessBody {
    #[schema(max_length = 256)]
    pub name: String,
    pub currency: String,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub settings: Option<SettingsPatch>,
}

/// Any subset of the settings; `min_spend`/`max_spend` may be set to null explicitly.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct SettingsPatch {
    pub reward_resolution: Option<RewardResolution>,
    pub spend_model: Option<SpendModel>,
    pub processor_mode: Option<ProcessorMode>,
    pub match_window_seconds: Option<u32>,
    pub referral_daily_limit: Option<u32>,
    pub estimate_ttl_seconds: Option<u32>,
    #[schema(minimum = 1, maximum = 3600)]
    pub otp_ttl_seconds: Option<u32>,
    #[schema(minimum = 1, maximum = 3600)]
    pub wallet_code_ttl_seconds: Option<u32>,
    pub amount_tolerance: Option<Dec>,
    #[serde(default, deserialize_with = "nullable")]
    pub min_spend: Option<Option<Dec>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_spend: Option<Option<Dec>>,
}

/// Absent: `None`; `null`: `Some(None)`; a value: `Some(Some(v))`.
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Dec>>, D::Error> {
    Option::<Dec>::deserialize(d).map(Some)
}

impl SettingsPatch {
    pub fn apply(
        self,
        settings: &BusinessSettings,
        currency: Currency,
    ) -> Result<BusinessSettings, DomainError> {
        let mut s = settings.clone();
        let mut p = Problems::default();
        if let Some(v) = self.reward_resolution {
            s.reward_resolution = v;
        }
        if let Some(v) = self.spend_model {
            s.spend_model = v;
        }
        if let Some(v) = self.processor_mode {
            s.processor_mode = v;
        }
        // One-time codes live in memory: at most an hour, so a business cannot keep the table
        // of live codes full.
        const MAX_CODE_TTL_SECONDS: u32 = 3600;
        for (field, value, target, min, max) in [
            (
                "settings.match_window_seconds",
                self.match_window_seconds,
                &mut s.match_window_seconds,
                0,
                u32::MAX,
            ),
            (
                "settings.referral_daily_limit",
                self.referral_daily_limit,
                &mut s.referral_daily_limit,
                0,
                u32::MAX,
            ),
            (
                "settings.estimate_ttl_seconds",
                self.estimate_ttl_seconds,
                &mut s.estimate_ttl_seconds,
                1,
                u32::MAX,
            ),
            (
                "settings.otp_ttl_seconds",
                self.otp_ttl_seconds,
                &mut s.otp_ttl_seconds,
                1,
                MAX_CODE_TTL_SECONDS,
            ),
            (
                "settings.wallet_code_ttl_seconds",
                self.wallet_code_ttl_seconds,
                &mut s.wallet_code_ttl_seconds,
                1,
                MAX_CODE_TTL_SECONDS,
            ),
        ] {
            if let Some(v) = value {
                if v < min {
                    p.add(field, format!("must be at least {min}"));
                } else if v > max {
                    p.add(field, format!("must be at most {max}"));
                }
                *target = v;
            }
        }
        if let Some(Dec(t)) = self.amount_tolerance {
            if t.is_sign_negative() {
                p.add("settings.amount_tolerance", "must not be negative");
            }
            s.amount_tolerance = t;
        }
        if let Some(v) = self.min_spend {
            s.min_spend = p.take(money(currency, "settings.min_spend", v)).flatten();
        }
        if let Some(v) = self.max_spend {
            s.max_spend = p.take(money(currency, "settings.max_spend", v)).flatten();
        }
        if let (Some(min), Some(max)) = (s.min_spend, s.max_spend) {
            if min > max {
                p.add("settings.max_spend", "must not be below min_spend");
            }
        }
        p.finish()?;
        Ok(s)
    }
}

pub fn render_settings(s: &BusinessSettings, currency: Currency) -> Value {
    let name = |v: &dyn erased::AsName| v.name();
    json!({
        "reward_resolution": name(&s.reward_resolution),
        "spend_model": name(&s.spend_model),
        "processor_mode": name(&s.processor_mode),
        "match_window_seconds": s.match_window_seconds,
        "referral_daily_limit": s.referral_daily_limit,
        "estimate_ttl_seconds": s.estimate_ttl_seconds,
        "otp_ttl_seconds": s.otp_ttl_seconds,
        "wallet_code_ttl_seconds": s.wallet_code_ttl_seconds,
        "amount_tolerance": s.amount_tolerance.normalize().to_string(),
        "min_spend": s.min_spend.map(|m| currency.format(m)),
        "max_spend": s.max_spend.map(|m| currency.format(m)),
    })
}

mod erased {
    use super::*;
    /// The JSON name of a settings enum (its serde name).
    pub trait AsName {
        fn name(&self) -> Value;
    }
    impl<T: serde::Serialize> AsName for T {
        fn name(&self) -> Value {
            crate::json_value(self)
        }
    }
}

pub fn render_business(b: &Business) -> Value {
    json!({
        "id": b.id.to_string(),
        "name": b.name,
        "currency": b.currency.code(),
        "settings": render_settings(&b.settings, b.currency),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct FeeBody {
    #[serde(rename = "type")]
    pub kind: FeeKind,
    pub value: Dec,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct TermsBody {
    #[serde(default)]
    pub award_contribution_percent: Option<Dec>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub contribution_fee: Option<FeeBody>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub settlement_fee: Option<FeeBody>,
    #[serde(default)]
    pub reduction_method: Option<ReductionMethod>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct MerchantBody {
    #[schema(max_length = 256)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub commercial_terms: Option<TermsBody>,
}

impl TermsBody {
    pub fn into_terms(self, currency: Currency) -> Result<CommercialTerms, DomainError> {
        let mut p = Problems::default();
        let percent = self
            .award_contribution_percent
            .map_or(Decimal::from(100), |d| d.0);
        if percent < Decimal::ZERO || percent > Decimal::from(100) {
            p.add(
                "commercial_terms.award_contribution_percent",
                "must be between 0 and 100",
            );
        }
        let mut fee = |field: &str, body: Option<FeeBody>| -> Option<Fee> {
            let body = body?;
            let value = body.value.0;
            if value.is_sign_negative() {
                p.add(
                    format!("commercial_terms.{field}.value"),
                    "must not be negative",
                );
            }
            // A percentage of at most 100, an amount within the bound of every amount: fees
            // computed from them stay bounded too.
            let bound = match body.kind {
                FeeKind::Percent => Decimal::from(100),
                FeeKind::Amount => Decimal::from(rewards_core::money::MAX_AMOUNT_UNITS),
            };
            if value > bound {
                p.add(
                    format!("commercial_terms.{field}.value"),
                    format!("must be at most {bound}"),
                );
            }
            if body.kind == FeeKind::Amount && value.normalize().scale() > currency.minor_units() {
                p.add(
                    format!("commercial_terms.{field}.value"),
                    "has more decimals than the currency allows",
                );
            }
            Some(Fee {
                kind: body.kind,
                value,
            })
        };
        let contribution_fee = fee("contribution_fee", self.contribution_fee);
        let settlement_fee = fee("settlement_fee", self.settlement_fee);
        p.finish()?;
        Ok(CommercialTerms {
            award_contribution_percent: percent,
            contribution_fee,
            settlement_fee,
            reduction_method: self.reduction_method,
        })
    }
}

fn render_fee(fee: &Option<Fee>) -> Value {
    match fee {
        None => Value::Null,
        Some(f) => json!({
            "type": match f.kind { FeeKind::Percent => "percent", FeeKind::Amount => "amount" },
            "value": f.value.normalize().to_string(),
        }),
    }
}

pub fn render_merchant(m: &Merchant) -> Value {
    let t = &m.commercial_terms;
    json!({
        "id": m.id.to_string(),
        "business_id": m.business_id.to_string(),
        "name": m.name,
        "commercial_terms": {
            "award_contribution_percent": t.award_contribution_percent.normalize().to_string(),
            "contribution_fee": render_fee(&t.contribution_fee),
            "settlement_fee": render_fee(&t.settlement_fee),
            "reduction_method": t.reduction_method.map(|r| match r {
                ReductionMethod::FrontEnd => "front_end",
                ReductionMethod::BackEnd => "back_end",
            }),
        },
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TapBody {
    #[schema(max_length = 256)]
    pub code: String,
    #[serde(default)]
    pub merchant_id: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
}

pub fn render_tap(t: &Tap) -> Value {
    json!({
        "id": t.id.to_string(),
        "business_id": t.business_id.to_string(),
        "code": t.code,
        "organisation_id": t.merchant_id.map_or(t.business_id.to_string(), |m| m.to_string()),
        "merchant_id": t.merchant_id.map(|m| m.to_string()),
        "ip_address": t.ip_address,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RateBody {
    pub rate: Dec,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SchemeBody {
    #[schema(max_length = 256)]
    pub name: String,
    pub sign_up: String,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub email_domains: Vec<String>,
    #[serde(default, deserialize_with = "crate::dto::object::codes")]
    #[schema(max_items = 100000)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub state: Option<String>,
}

impl SchemeBody {
    /// The scheme's sign-up rule and state; codes are returned apart (they are stored one by one).
    pub fn validate(&self) -> Result<(String, SignUp, bool), DomainError> {
        let mut p = Problems::default();
        let name = p.take(text("name", &self.name)).unwrap_or_default();
        let sign_up = match self.sign_up.as_str() {
            "auto" => SignUp::Auto,
            "self" => SignUp::SelfService,
            "email_domain" => {
                if self.email_domains.is_empty() {
                    p.add("email_domains", "at least one domain is required");
                }
                SignUp::EmailDomain(
                    self.email_domains
                        .iter()
                        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                        .collect(),
                )
            }
            "code" => SignUp::Code,
            _ => {
                p.add("sign_up", "must be auto, self, email_domain or code");
                SignUp::SelfService
            }
        };
        for (i, code) in self.codes.iter().enumerate() {
            if code.trim().is_empty() {
                p.add(format!("codes[{i}]"), "must not be empty");
            }
        }
        let active = match self.state.as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(_) => {
                p.add("state", "must be active or inactive");
                true
            }
        };
        p.finish()?;
        Ok((name, sign_up, active))
    }
}

pub fn render_scheme(s: &Scheme) -> Value {
    let (sign_up, domains) = match &s.sign_up {
        SignUp::Auto => ("auto", Vec::new()),
        SignUp::SelfService => ("self", Vec::new()),
        SignUp::EmailDomain(d) => ("email_domain", d.clone()),
        SignUp::Code => ("code", Vec::new()),
    };
    json!({
        "id": s.id.to_string(),
        "business_id": s.business_id.to_string(),
        "name": s.name,
        "sign_up": sign_up,
        "email_domains": domains,
        "state": if s.active { "active" } else { "inactive" },
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TiersBody {
    pub period_days: u32,
    #[serde(default)]
    pub conversion_rate: Option<Dec>,
    #[serde(deserialize_with = "crate::dto::object::list")]
    pub levels: Vec<LevelBody>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LevelBody {
    #[schema(max_length = 256)]
    pub name: String,
    pub value_units: Dec,
}

pub fn render_tiers(t: &TierConfig) -> Value {
    json!({
        "period_days": t.period_days,
        "conversion_rate": t.conversion_rate.normalize().to_string(),
        "levels": t.levels.iter().map(|l| json!({
            "name": l.name,
            "value_units": l.value_units.normalize().to_string(),
        })).collect::<Vec<_>>(),
    })
}
