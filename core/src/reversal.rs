//! Void and ad hoc return arithmetic (SPEC section 8).
//!
//! A return applies the returned share of the purchase total (`returned total / purchase total`)
//! to the purchase's awards (clawed back) and to its spend (refunded), each rounded once to the
//! minor unit.

use crate::error::DomainError;
use crate::money::{Currency, Money};
use crate::purchase::ValidatedLine;
use rust_decimal::Decimal;

/// `amount x numerator / denominator`, rounded once, half away from zero. The numerator is a part
/// of the denominator: a zero denominator gives zero, and a part larger than the whole counts as
/// the whole, so the share is never more than the amount.
pub fn share_of(amount: Money, numerator: Money, denominator: Money, currency: Currency) -> Money {
    let whole = i128::from(denominator.minor());
    if whole == 0 {
        return Money::ZERO;
    }
    let part = i128::from(numerator.minor()).clamp(-whole.abs(), whole.abs());
    // Exact in i128: each factor is below 2^63 in magnitude, so the product is below 2^126.
    let product = i128::from(amount.minor()) * part;
    let (quotient, remainder) = (product / whole, product % whole);
    // Minor units are integers: away from zero when the remainder is at least half the divisor.
    let rounded = if remainder.abs() * 2 >= whole.abs() {
        quotient + product.signum() * whole.signum()
    } else {
        quotient
    };
    let _ = currency;
    // At most the amount in magnitude; only i64::MIN taken -1 times is out of range.
    i64::try_from(rounded).map_or(Money::from_minor(i64::MAX), Money::from_minor)
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
