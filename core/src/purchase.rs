//! Purchases: validation of a submitted basket into a [`ValidatedPurchase`] with its amounts.
//!
//! Aggregation, amounts, tolerance checks and currency conversion follow SPEC section 5. Money is
//! rounded once per computation: line amounts are rounded, purchase amounts are sums of rounded line
//! amounts, converted amounts are converted from the unrounded original and rounded once.

use crate::error::DomainError;
use crate::identity::Identity;
use crate::money::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One basket line as submitted (after JSON parsing, before validation).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct LineInput {
    pub sku: String,
    pub name: Option<String>,
    pub family: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub tax_rate: Option<Decimal>,
    pub tax_amount: Option<Decimal>,
}

/// The money part of a submitted purchase.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PurchaseInput {
    /// `None`: the business currency.
    pub currency: Option<String>,
    pub lines: Vec<LineInput>,
    pub discount_amount: Option<Decimal>,
    pub net_amount: Option<Decimal>,
    pub tax_amount: Option<Decimal>,
    pub total_amount: Option<Decimal>,
}

/// What validation needs to know about the business.
#[derive(Clone, Debug)]
pub struct PurchaseContext<'a> {
    pub currency: Currency,
    /// 1 unit of the key currency = rate units of the business currency.
    pub exchange_rates: &'a BTreeMap<String, Decimal>,
    /// In the purchase currency.
    pub amount_tolerance: Decimal,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct PurchaseAmounts {
    pub net: Money,
    pub tax: Money,
    pub discount: Money,
    pub total: Money,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum LineTax {
    Rate(Decimal),
    Amount(Decimal),
}

/// An aggregated, validated line. Amounts are in the business currency; `original` in the
/// purchase currency.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ValidatedLine {
    pub sku: String,
    pub name: Option<String>,
    pub family: Option<String>,
    pub quantity: Decimal,
    /// In the purchase currency, as given.
    pub unit_price: Decimal,
    pub tax: LineTax,
    pub net: Money,
    pub tax_amount: Money,
    pub total: Money,
    pub original_net: Money,
    pub original_tax: Money,
    pub original_total: Money,
}

/// A purchase whose basket and amounts are known to be consistent. Only [`validate_purchase`]
/// builds one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ValidatedPurchase {
    pub identity: Identity,
    /// The business currency, in which `amounts` and line amounts are.
    pub currency: Currency,
    pub original_currency: Currency,
    /// 1 unit of the original currency = `exchange_rate` business currency (1 when the same).
    pub exchange_rate: Decimal,
    pub lines: Vec<ValidatedLine>,
    pub amounts: PurchaseAmounts,
    pub original_amounts: PurchaseAmounts,
    _private: (),
}

/// Validates and computes a purchase (SPEC section 5). Field paths in errors name the input
/// (`lines[1].quantity`).
pub fn validate_purchase(
    identity: Identity,
    input: &PurchaseInput,
    context: &PurchaseContext<'_>,
) -> Result<ValidatedPurchase, DomainError> {
    let _ = (identity, input, context);
    Err(DomainError::validation("lines", "not yet implemented"))
}
