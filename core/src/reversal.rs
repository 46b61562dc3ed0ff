//! Void and ad hoc return arithmetic (SPEC section 8).
//!
//! A return applies the returned share of the purchase total (`returned total / purchase total`)
//! to the purchase's awards (clawed back) and to its spend (refunded), each rounded once to the
//! minor unit.

use crate::error::DomainError;
use crate::money::{Currency, Money};
use crate::purchase::ValidatedLine;
use rust_decimal::Decimal;

/// `amount x numerator / denominator`, rounded once. A zero denominator gives zero.
pub fn share_of(amount: Money, numerator: Money, denominator: Money, currency: Currency) -> Money {
    if denominator.is_zero() {
        return Money::ZERO;
    }
    let exact = Decimal::from(amount.minor()) * Decimal::from(numerator.minor())
        / Decimal::from(denominator.minor());
    // Minor units are integers: round the exact minor-unit value half away from zero.
    let minor =
        exact.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let _ = currency;
    Money(i64::try_from(minor.mantissa() / 10i128.pow(minor.scale())).expect("in range"))
}

/// What a return of some lines takes back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReturnPlan {
    /// Returned quantity per SKU in this return.
    pub lines: Vec<(String, Decimal)>,
    /// The returned share of the purchase total, in the business currency.
    pub returned_amount: Money,
    /// The part of the purchase's spend to refund.
    pub refund: Money,
}

/// Plans a return of `request` (SKU, quantity) against a purchase's lines, given what earlier
/// returns took. A line cannot be returned beyond its quantity.
pub fn plan_return(
    lines: &[ValidatedLine],
    already_returned: &[(String, Decimal)],
    request: &[(String, Decimal)],
    purchase_total: Money,
    spent: Money,
    already_refunded: Money,
    currency: Currency,
) -> Result<ReturnPlan, DomainError> {
    let mut returned_gross = Decimal::ZERO;
    let mut planned: Vec<(String, Decimal)> = Vec::new();
    for (i, (sku, quantity)) in request.iter().enumerate() {
        if *quantity <= Decimal::ZERO {
            return Err(DomainError::validation(
                format!("lines[{i}].quantity"),
                "must be above zero",
            ));
        }
        let matching: Vec<&ValidatedLine> = lines.iter().filter(|l| &l.sku == sku).collect();
        if matching.is_empty() {
            return Err(DomainError::ReturnExceedsPurchase { sku: sku.clone() });
        }
        let bought: Decimal = matching.iter().map(|l| l.quantity).sum();
        let before: Decimal = already_returned
            .iter()
            .chain(planned.iter())
            .filter(|(s, _)| s == sku)
            .map(|(_, q)| *q)
            .sum();
        if before + quantity > bought {
            return Err(DomainError::ReturnExceedsPurchase { sku: sku.clone() });
        }
        // The returned value of a SKU is its share of the SKU's line totals.
        let line_total: Decimal = matching.iter().map(|l| currency.to_decimal(l.total)).sum();
        returned_gross += line_total * quantity / bought;
        planned.push((sku.clone(), *quantity));
    }
    let returned_amount = currency.round(returned_gross).min(purchase_total);
    let refund = share_of(spent, returned_amount, purchase_total, currency)
        .min(spent - already_refunded)
        .non_negative();
    Ok(ReturnPlan {
        lines: planned,
        returned_amount,
        refund,
    })
}
