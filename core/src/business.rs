//! Businesses, their settings, merchants with commercial terms, and TAPs (terminals).

use crate::ids::{BusinessId, MerchantId, TapId};
use crate::money::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RewardResolution {
    /// Every eligible offer awards (stacking).
    #[default]
    All,
    /// Only the largest award.
    Highest,
    /// Only the eligible offer with the lowest priority number; ties by creation order.
    Priority,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpendModel {
    /// Front-end reduction: the POS takes the spent amount off what the customer pays.
    #[default]
    Pos,
    /// Back-end reduction: the customer pays in full and the spent amount is paid out.
    Payout,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProcessorMode {
    #[default]
    Award,
    Match,
    Claim,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReductionMethod {
    FrontEnd,
    BackEnd,
}

/// Business settings with the defaults of API.md.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BusinessSettings {
    pub reward_resolution: RewardResolution,
    pub spend_model: SpendModel,
    pub processor_mode: ProcessorMode,
    pub match_window_seconds: u32,
    pub referral_daily_limit: u32,
    pub estimate_ttl_seconds: u32,
    pub otp_ttl_seconds: u32,
    pub wallet_code_ttl_seconds: u32,
    /// In the purchase currency.
    pub amount_tolerance: Decimal,
    pub min_spend: Option<Money>,
    pub max_spend: Option<Money>,
}

impl Default for BusinessSettings {
    fn default() -> Self {
        BusinessSettings {
            reward_resolution: RewardResolution::All,
            spend_model: SpendModel::Pos,
            processor_mode: ProcessorMode::Award,
            match_window_seconds: 600,
            referral_daily_limit: 2,
            estimate_ttl_seconds: 900,
            otp_ttl_seconds: 300,
            wallet_code_ttl_seconds: 60,
            amount_tolerance: Decimal::new(1, 2),
            min_spend: None,
            max_spend: None,
        }
    }
}

impl BusinessSettings {
    /// The reduction method of a spend: the merchant's terms win over the business's spend model.
    pub fn reduction_method(&self, merchant: Option<&Merchant>) -> ReductionMethod {
        if let Some(method) = merchant.and_then(|m| m.commercial_terms.reduction_method) {
            return method;
        }
        match self.spend_model {
            SpendModel::Pos => ReductionMethod::FrontEnd,
            SpendModel::Payout => ReductionMethod::BackEnd,
        }
    }
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    pub currency: Currency,
    pub settings: BusinessSettings,
    /// 1 unit of the key currency = `rate` units of the business currency.
    pub exchange_rates: BTreeMap<String, Decimal>,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    Percent,
    Amount,
}

/// A fee: a percentage of an amount, or a fixed amount (in minor units of the business currency,
/// kept as a decimal so the percent form keeps its precision).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Fee {
    pub kind: FeeKind,
    pub value: Decimal,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommercialTerms {
    /// The share of awards at the merchant's TAPs that the merchant funds (0 to 100).
    pub award_contribution_percent: Decimal,
    pub contribution_fee: Option<Fee>,
    pub settlement_fee: Option<Fee>,
    pub reduction_method: Option<ReductionMethod>,
}

impl Default for CommercialTerms {
    fn default() -> Self {
        CommercialTerms {
            award_contribution_percent: Decimal::from(100),
            contribution_fee: None,
            settlement_fee: None,
            reduction_method: None,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub business_id: BusinessId,
    pub name: String,
    pub commercial_terms: CommercialTerms,
}

/// A terminal. Its code is unique within its business, not across businesses.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Tap {
    pub id: TapId,
    pub business_id: BusinessId,
    pub code: String,
    pub merchant_id: Option<MerchantId>,
    pub ip_address: Option<String>,
}
