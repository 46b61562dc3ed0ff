//! Purchases: validation of a submitted basket into a [`ValidatedPurchase`] with its amounts.
//!
//! Aggregation, amounts, tolerance checks and currency conversion follow SPEC section 5. Money is
//! rounded once per computation: line amounts are rounded, purchase amounts are sums of rounded line
//! amounts, converted amounts are converted from the unrounded original and rounded once.

use crate::error::{DomainError, FieldError};
use crate::identity::Identity;
use crate::money::{Currency, Money, MAX_AMOUNT_UNITS};
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
/// (and [`ValidatedPurchase::from_total`]) build one: other crates cannot write it as a literal.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
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
}

/// Validates and computes a purchase (SPEC section 5). Field paths in errors name the input
/// (`lines[1].quantity`); every problem of the request is reported at once.
///
/// Lines with neither a tax rate nor a tax amount carry no tax. Two lines merge when they have
/// the same SKU, unit price and tax (the same rate, or both a tax amount); merged tax amounts add.
///
/// The input is taken by value: its lines' texts move into the validated lines.
pub fn validate_purchase(
    identity: Identity,
    mut input: PurchaseInput,
    context: &PurchaseContext<'_>,
) -> Result<ValidatedPurchase, DomainError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let business_currency = context.currency;
    let (original_currency, exchange_rate) = match input.currency.as_deref() {
        None => (business_currency, Decimal::ONE),
        Some(code) => match Currency::parse(code) {
            None => return Err(DomainError::UnknownCurrency(code.to_string())),
            Some(c) if c == business_currency => (c, Decimal::ONE),
            Some(c) => match context.exchange_rates.get(c.code()) {
                Some(rate) if *rate > Decimal::ZERO => (c, *rate),
                _ => return Err(DomainError::UnknownCurrency(c.code().to_string())),
            },
        },
    };

    // Aggregate first, in input order, so the result does not depend on line order beyond the
    // order of first appearance (which only affects presentation).
    let mut merged: Vec<MergedLine> = Vec::with_capacity(input.lines.len());
    for (i, line) in input.lines.iter_mut().enumerate() {
        let before = errors.len();
        if line.sku.trim().is_empty() {
            errors.push(FieldError::new(
                format!("lines[{i}].sku"),
                "must not be empty",
            ));
        }
        if line.quantity <= Decimal::ZERO {
            errors.push(FieldError::new(
                format!("lines[{i}].quantity"),
                "must be above zero",
            ));
        } else if let Err(message) = bounded(line.quantity, Decimal::from(MAX_QUANTITY)) {
            errors.push(FieldError::new(format!("lines[{i}].quantity"), message));
        }
        if line.unit_price.is_sign_negative() && !line.unit_price.is_zero() {
            errors.push(FieldError::new(
                format!("lines[{i}].unit_price"),
                "must not be negative",
            ));
        } else if let Err(message) = bounded(line.unit_price, max_amount()) {
            errors.push(FieldError::new(format!("lines[{i}].unit_price"), message));
        }
        for (field, value, max) in [
            ("tax_rate", line.tax_rate, Decimal::from(MAX_TAX_RATE)),
            ("tax_amount", line.tax_amount, max_amount()),
        ] {
            if let Some(Err(message)) = value.map(|v| bounded(v.abs(), max)) {
                errors.push(FieldError::new(format!("lines[{i}].{field}"), message));
            }
        }
        let tax = match (line.tax_rate, line.tax_amount) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    format!("lines[{i}].tax_rate"),
                    "give tax_rate or tax_amount, not both",
                ));
                TaxInput::None
            }
            (Some(rate), None) if rate.is_sign_negative() && !rate.is_zero() => {
                errors.push(FieldError::new(
                    format!("lines[{i}].tax_rate"),
                    "must not be negative",
                ));
                TaxInput::None
            }
            (None, Some(amount)) if amount.is_sign_negative() && !amount.is_zero() => {
                errors.push(FieldError::new(
                    format!("lines[{i}].tax_amount"),
                    "must not be negative",
                ));
                TaxInput::None
            }
            (Some(rate), None) => TaxInput::Rate(rate.normalize()),
            (None, Some(amount)) => TaxInput::Amount(amount),
            (None, None) => TaxInput::None,
        };
        if errors.len() > before {
            continue;
        }
        let sku = line.sku.trim();
        let price = line.unit_price.normalize();
        match merged
            .iter_mut()
            .find(|m| m.sku == sku && m.unit_price == price && m.tax.same_kind(&tax))
        {
            Some(m) => {
                m.quantity += line.quantity;
                if let (TaxInput::Amount(total), TaxInput::Amount(more)) = (&mut m.tax, &tax) {
                    *total += *more;
                }
            }
            // The first of the merged lines gives its texts, moved, not copied.
            None => merged.push(MergedLine {
                sku: trimmed(std::mem::take(&mut line.sku)),
                name: line.name.take(),
                family: line.family.take(),
                quantity: line.quantity,
                unit_price: price,
                tax,
            }),
        }
    }

    let discount = input.discount_amount.unwrap_or(Decimal::ZERO);
    if input.lines.is_empty() && input.total_amount.is_none() {
        errors.push(FieldError::new(
            "total_amount",
            "is required when there are no lines",
        ));
    }
    for (field, value) in [
        ("net_amount", input.net_amount),
        ("tax_amount", input.tax_amount),
        ("total_amount", input.total_amount),
        ("discount_amount", input.discount_amount),
    ] {
        if value.is_some_and(|v| v.is_sign_negative() && !v.is_zero()) {
            errors.push(FieldError::new(field, "must not be negative"));
        } else if let Some(Err(message)) = value.map(|v| bounded(v, max_amount())) {
            errors.push(FieldError::new(field, message));
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::ValidationFailed(errors));
    }

    let converting = original_currency != business_currency;
    let mut lines = Vec::with_capacity(merged.len());
    let mut original = PurchaseAmounts::default();
    let mut converted = PurchaseAmounts::default();
    let too_large = || {
        DomainError::validation(
            "lines",
            format!("the purchase's amounts must be below {MAX_AMOUNT_UNITS}"),
        )
    };
    for m in merged {
        // Inputs are bounded, so these products are far inside Decimal's range; the results
        // are bounded again before they become money.
        let net_exact = m.quantity.checked_mul(m.unit_price).ok_or_else(too_large)?;
        let tax_exact = match m.tax {
            TaxInput::Rate(rate) => net_exact.checked_mul(rate).ok_or_else(too_large)?,
            TaxInput::Amount(amount) => amount,
            TaxInput::None => Decimal::ZERO,
        };
        let round = |currency: Currency, amount: Decimal, rate: Decimal| {
            amount
                .checked_mul(rate)
                .and_then(|a| currency.checked_round(a))
                .ok_or_else(too_large)
        };
        let original_net = round(original_currency, net_exact, Decimal::ONE)?;
        let original_tax = round(original_currency, tax_exact, Decimal::ONE)?;
        // In the business currency the conversion is the identity: the same amounts, rounded
        // once (and not computed twice).
        let (net, tax_amount) = if converting {
            (
                round(business_currency, net_exact, exchange_rate)?,
                round(business_currency, tax_exact, exchange_rate)?,
            )
        } else {
            (original_net, original_tax)
        };
        original.net += original_net;
        original.tax += original_tax;
        converted.net += net;
        converted.tax += tax_amount;
        lines.push(ValidatedLine {
            sku: m.sku,
            name: m.name,
            family: m.family,
            quantity: m.quantity.normalize(),
            unit_price: m.unit_price,
            tax: match m.tax {
                TaxInput::Rate(r) => LineTax::Rate(r),
                TaxInput::Amount(a) => LineTax::Amount(a),
                TaxInput::None => LineTax::Amount(Decimal::ZERO),
            },
            net,
            tax_amount,
            total: net + tax_amount,
            original_net,
            original_tax,
            original_total: original_net + original_tax,
        });
    }

    let convert = |amount: Decimal| {
        amount
            .checked_mul(exchange_rate)
            .and_then(|a| business_currency.checked_round(a))
            .ok_or_else(too_large)
    };
    if lines.is_empty() {
        // A purchase without a basket is its total: all net, no tax.
        let total = input.total_amount.ok_or_else(too_large)?;
        original.net = original_currency
            .checked_round(total)
            .ok_or_else(too_large)?;
        converted.net = convert(total)?;
    }
    original.discount = original_currency
        .checked_round(discount)
        .ok_or_else(too_large)?;
    converted.discount = convert(discount)?;
    // Sums of bounded lines fit in i64; the purchase as a whole is bounded like its parts.
    for (amounts, currency) in [
        (&original, original_currency),
        (&converted, business_currency),
    ] {
        if amounts.net + amounts.tax > currency.max_amount() {
            return Err(too_large());
        }
    }
    let original_gross = original.net + original.tax;
    if original.discount > original_gross {
        return Err(DomainError::validation(
            "discount_amount",
            "must not be above the purchase amount",
        ));
    }
    original.total = original_gross - original.discount;
    converted.total = converted.net + converted.tax - converted.discount;

    let tolerance = context.amount_tolerance.abs();
    for (field, given, computed) in [
        ("net_amount", input.net_amount, original.net),
        ("tax_amount", input.tax_amount, original.tax),
        ("total_amount", input.total_amount, original.total),
    ] {
        if let Some(given) = given {
            let computed = original_currency.to_decimal(computed);
            if (given - computed).abs() > tolerance {
                return Err(DomainError::AmountsInconsistent {
                    field: field.to_string(),
                    given: given.normalize().to_string(),
                    computed: computed.to_string(),
                });
            }
        }
    }

    Ok(ValidatedPurchase {
        identity,
        currency: business_currency,
        original_currency,
        exchange_rate,
        lines,
        amounts: converted,
        original_amounts: original,
    })
}

/// The largest quantity of one line.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// The largest tax rate (1000 %).
pub const MAX_TAX_RATE: i64 = 10;
/// The most decimals of a quantity, a unit price or a rate.
pub const MAX_INPUT_SCALE: u32 = 6;

/// `text` without its surrounding white space, reusing its allocation when it has none.
fn trimmed(text: String) -> String {
    if text.trim().len() == text.len() {
        text
    } else {
        text.trim().to_string()
    }
}

fn max_amount() -> Decimal {
    Decimal::from(MAX_AMOUNT_UNITS)
}

/// A caller's decimal within its bound: below `max`, with at most [`MAX_INPUT_SCALE`] decimals.
fn bounded(value: Decimal, max: Decimal) -> Result<(), String> {
    if value > max {
        return Err(format!("must be at most {max}"));
    }
    if value.normalize().scale() > MAX_INPUT_SCALE {
        return Err(format!("must have at most {MAX_INPUT_SCALE} decimals"));
    }
    Ok(())
}

enum TaxInput {
    Rate(Decimal),
    Amount(Decimal),
    None,
}

impl TaxInput {
    /// Lines merge when their tax is of the same kind: the same rate, or both amounts.
    fn same_kind(&self, other: &TaxInput) -> bool {
        match (self, other) {
            (TaxInput::Rate(a), TaxInput::Rate(b)) => a == b,
            (TaxInput::Amount(_), TaxInput::Amount(_)) | (TaxInput::None, TaxInput::None) => true,
            _ => false,
        }
    }
}

/// Lines with the same SKU, unit price and tax, added up, with the first one's texts (the SKU
/// trimmed).
struct MergedLine {
    sku: String,
    name: Option<String>,
    family: Option<String>,
    quantity: Decimal,
    unit_price: Decimal,
    tax: TaxInput,
}

impl ValidatedPurchase {
    /// A purchase known only by its total (a card transaction without a basket).
    pub fn from_total(identity: Identity, currency: Currency, total: Money) -> ValidatedPurchase {
        let amounts = PurchaseAmounts {
            net: total,
            tax: Money::ZERO,
            discount: Money::ZERO,
            total,
        };
        ValidatedPurchase {
            identity,
            currency,
            original_currency: currency,
            exchange_rate: Decimal::ONE,
            lines: Vec::new(),
            amounts,
            original_amounts: amounts,
        }
    }
}
