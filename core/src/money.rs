//! Money in a currency's minor units, and the one place where decimals are rounded to them.
//!
//! Amounts are computed in [`Decimal`] and rounded half away from zero to the currency's minor unit
//! once, at the end of each computation ([`Currency::round`]). Stored and posted amounts are
//! [`Money`]: an integer count of minor units, so ledger arithmetic is exact and cheap.
//!
//! Nothing in this module may overflow silently or panic on a caller's input: integer arithmetic
//! is checked, and the few money guards that stop on overflow say why a request cannot reach them.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use crate::error::FieldError;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::num::NonZeroU64;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// An ISO 4217 currency and the number of decimals of its minor unit.
///
/// Decoded currencies are checked like parsed ones (three ASCII capitals, at most
/// [`MAX_MINOR_UNITS`] decimals), so every `Currency` can format and round amounts.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "StoredCurrency")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

/// The most decimals a currency's minor unit may have: amounts below [`MAX_AMOUNT_UNITS`] then
/// still fit in an `i64` of minor units (10^10 x 10^8 < 2^63).
pub const MAX_MINOR_UNITS: u8 = 8;

/// A currency's fields as they are encoded, checked before they become a [`Currency`].
#[derive(Deserialize)]
#[serde(rename = "Currency")]
struct StoredCurrency {
    code: [u8; 3],
    minor_units: u8,
}

impl TryFrom<StoredCurrency> for Currency {
    type Error = String;

    fn try_from(stored: StoredCurrency) -> Result<Currency, String> {
        if !stored.code.iter().all(u8::is_ascii_uppercase) {
            return Err(format!(
                "currency code {:?} is not three capitals",
                stored.code
            ));
        }
        if stored.minor_units > MAX_MINOR_UNITS {
            return Err(format!(
                "currency with {} decimals, more than {MAX_MINOR_UNITS}",
                stored.minor_units
            ));
        }
        Ok(Currency {
            code: stored.code,
            minor_units: stored.minor_units,
        })
    }
}

/// Currencies whose minor unit is not 1/100. Every other code uses 2 (SPEC section 2).
const MINOR_UNIT_EXCEPTIONS: &[(&str, u8)] = &[
    ("BHD", 3),
    ("BIF", 0),
    ("CLF", 4),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("RWF", 0),
    ("TND", 3),
    ("UGX", 0),
    ("UYI", 0),
    ("UYW", 4),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

impl Currency {
    /// Parses a three-letter code (case-insensitive). Unknown but well-formed codes use 2 decimals.
    pub fn parse(code: &str) -> Option<Currency> {
        let &[a, b, c] = code.as_bytes() else {
            return None;
        };
        let upper = [a, b, c].map(|byte| byte.to_ascii_uppercase());
        if !upper.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        let minor_units = MINOR_UNIT_EXCEPTIONS
            .iter()
            .find(|(c, _)| c.as_bytes() == upper)
            .map_or(2, |(_, units)| *units);
        Some(Currency {
            code: upper,
            minor_units,
        })
    }

    pub fn code(&self) -> &str {
        // Parsing and decoding admit only ASCII capitals; "XXX" is ISO 4217's "no currency".
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }

    /// The largest amount below [`MAX_AMOUNT_UNITS`] whole units: the bound of every amount a
    /// caller gives or a purchase computes, in this currency's minor units.
    pub fn max_amount(&self) -> Money {
        // At most MAX_MINOR_UNITS decimals, so this fits (10^10 x 10^8 - 1 < 2^63).
        10i64
            .checked_pow(self.minor_units())
            .and_then(|scale| MAX_AMOUNT_UNITS.checked_mul(scale))
            .and_then(|bound| bound.checked_sub(1))
            .map_or(Money(i64::MAX), Money)
    }

    /// [`Currency::round`] of an amount whose size is not known to be bounded: `None` when it is
    /// not below [`MAX_AMOUNT_UNITS`] (either sign).
    pub fn checked_round(&self, amount: Decimal) -> Option<Money> {
        if amount.abs() < Decimal::from(MAX_AMOUNT_UNITS) {
            self.round_to_minor(amount)
        } else {
            None
        }
    }

    /// Rounds a decimal amount to this currency's minor unit, half away from zero. This is the only
    /// rounding of money in the system; call it once, at the end of a computation.
    ///
    /// The amount must be bounded: a caller's amount read by [`Currency::parse_amount`], or a
    /// share or bounded percentage of such amounts. Use [`Currency::checked_round`] for anything
    /// else.
    // Money guard: bounded amounts (see above) are far inside i64, so a request cannot reach the
    // panic; it stops a computation that went wrong instead of posting a wrong amount.
    #[allow(clippy::expect_used)]
    pub fn round(&self, amount: Decimal) -> Money {
        self.round_to_minor(amount)
            .expect("money amount out of range")
    }

    /// Rounds half away from zero to a count of minor units; `None` when that does not fit in an
    /// `i64`.
    fn round_to_minor(&self, amount: Decimal) -> Option<Money> {
        let rounded = amount
            .round_dp_with_strategy(self.minor_units(), RoundingStrategy::MidpointAwayFromZero);
        // round_dp never increases the scale, so scale up to exactly minor_units.
        let missing = self.minor_units().saturating_sub(rounded.scale());
        let mantissa = 10i128
            .checked_pow(missing)
            .and_then(|scale| rounded.mantissa().checked_mul(scale))?;
        i64::try_from(mantissa).ok().map(Money::from_minor)
    }

    /// The decimal value of an amount in minor units, with exactly `minor_units` decimals.
    pub fn to_decimal(&self, money: Money) -> Decimal {
        Decimal::new(money.0, self.minor_units())
    }

    /// Writes an amount with exactly the currency's number of decimals (`"5.00"`, `"120"`).
    pub fn format(&self, money: Money) -> String {
        // Integer formatting: this is on every answer's path, and equal to the decimal's text.
        use std::fmt::Write;
        let units = self.minor_units();
        let sign = if money.0 < 0 { "-" } else { "" };
        let magnitude = money.0.unsigned_abs();
        let mut out = String::with_capacity(24);
        // At most MAX_MINOR_UNITS decimals, so the power of ten fits; it is never zero.
        match 10u64.checked_pow(units).and_then(NonZeroU64::new) {
            Some(scale) if units > 0 => {
                let _ = write!(
                    out,
                    "{sign}{}.{:0width$}",
                    magnitude / scale,
                    magnitude % scale,
                    width = units as usize
                );
            }
            _ => {
                let _ = write!(out, "{sign}{magnitude}");
            }
        }
        out
    }

    /// Reads a caller-given money amount: refuses negatives and more decimals than the currency
    /// has, since either would mean something the caller did not intend.
    pub fn parse_amount(&self, field: &str, amount: Decimal) -> Result<Money, FieldError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(FieldError::new(field, "must not be negative"));
        }
        if amount.normalize().scale() > self.minor_units() {
            return Err(FieldError::new(
                field,
                format!(
                    "has more decimals than {} allows ({})",
                    self.code(),
                    self.minor_units()
                ),
            ));
        }
        if amount >= Decimal::from(MAX_AMOUNT_UNITS) {
            return Err(FieldError::new(
                field,
                format!("must be below {MAX_AMOUNT_UNITS}"),
            ));
        }
        Ok(self.round(amount))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Every amount a caller gives or a purchase computes is below this, in whole currency units
/// (SPEC section 12): far above any real purchase, far below where minor-unit arithmetic in i64
/// could overflow (10^10 units of a 4-decimal currency are 10^14 minor units; a million of them
/// still fit).
pub const MAX_AMOUNT_UNITS: i64 = 10_000_000_000;

/// An amount in minor units of a currency that the holder knows (a wallet's, a business's).
///
/// The count of minor units is private: amounts are made with [`Money::from_minor`] (or by
/// [`Currency`] from decimals) and combined with the checked methods, or with the operators where
/// both sides are bounded amounts. It is encoded as the bare `i64`.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    /// An amount of `minor` minor units (cents for EUR, yen for JPY).
    pub const fn from_minor(minor: i64) -> Money {
        Money(minor)
    }

    /// The count of minor units.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Money) -> Option<Money> {
        match self.0.checked_add(rhs.0) {
            Some(sum) => Some(Money(sum)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` on overflow.
    pub const fn checked_sub(self, rhs: Money) -> Option<Money> {
        match self.0.checked_sub(rhs.0) {
            Some(difference) => Some(Money(difference)),
            None => None,
        }
    }

    /// `-self`, or `None` for the one amount without a negation (`i64::MIN` minor units).
    pub const fn checked_neg(self) -> Option<Money> {
        match self.0.checked_neg() {
            Some(negated) => Some(Money(negated)),
            None => None,
        }
    }

    /// `self x factor`, or `None` on overflow.
    pub const fn checked_mul_i64(self, factor: i64) -> Option<Money> {
        match self.0.checked_mul(factor) {
            Some(product) => Some(Money(product)),
            None => None,
        }
    }

    /// `self / divisor` as a plain number, rounded towards zero (how many whole `divisor`s fit in
    /// `self`), or `None` for a zero divisor or on overflow.
    pub const fn checked_div(self, divisor: Money) -> Option<i64> {
        self.0.checked_div(divisor.0)
    }

    /// The sum of `amounts`, or `None` on overflow.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Money>) -> Option<Money> {
        amounts
            .into_iter()
            .try_fold(Money::ZERO, |total, amount| total.checked_add(amount))
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
    /// Zero when negative: the part of an amount that can be used.
    pub fn non_negative(self) -> Money {
        Money(self.0.max(0))
    }
}

// The operators stop on overflow instead of wrapping into wrong money (a guard that stays on in
// release builds). Every amount from a request is below MAX_AMOUNT_UNITS (at most 10^14 minor
// units), checked at the edge, so sums and differences of them are far inside i64 and a request
// cannot reach these panics; use the checked methods where an operand is not so bounded.

/// Panics on overflow; see the note above: request amounts are bounded by [`MAX_AMOUNT_UNITS`].
impl Add for Money {
    type Output = Money;
    #[allow(clippy::expect_used)] // money guard: bounded amounts cannot overflow
    fn add(self, rhs: Money) -> Money {
        self.checked_add(rhs).expect("money overflow")
    }
}
/// Panics on overflow; see the note above: request amounts are bounded by [`MAX_AMOUNT_UNITS`].
impl Sub for Money {
    type Output = Money;
    #[allow(clippy::expect_used)] // money guard: bounded amounts cannot overflow
    fn sub(self, rhs: Money) -> Money {
        self.checked_sub(rhs).expect("money overflow")
    }
}
/// Panics only for `i64::MIN` minor units, which no bounded amount (see [`MAX_AMOUNT_UNITS`]) is.
impl Neg for Money {
    type Output = Money;
    #[allow(clippy::expect_used)] // money guard: bounded amounts always have a negation
    fn neg(self) -> Money {
        self.checked_neg().expect("money overflow")
    }
}
impl AddAssign for Money {
    #[allow(clippy::arithmetic_side_effects)] // the guard of `+`: bounded amounts cannot overflow
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}
impl SubAssign for Money {
    #[allow(clippy::arithmetic_side_effects)] // the guard of `-`: bounded amounts cannot overflow
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}
/// Panics on overflow, like `+`; use [`Money::checked_sum`] for amounts that are not bounded.
impl Sum for Money {
    #[allow(clippy::arithmetic_side_effects)] // the guard of `+`: bounded amounts cannot overflow
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}
/// Panics on overflow, like `+`; use [`Money::checked_sum`] for amounts that are not bounded.
impl<'a> Sum<&'a Money> for Money {
    #[allow(clippy::arithmetic_side_effects)] // the guard of `+`: bounded amounts cannot overflow
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + *b)
    }
}

/// The longest decimal text accepted: far more digits than any bounded amount has.
pub const MAX_DECIMAL_CHARS: usize = 40;

/// Parses a decimal from its text, as clients send money and quantities: an optional `-`,
/// digits, and an optional `.` followed by digits; nothing else (no spaces, `+`, `_` or
/// exponents), at most [`MAX_DECIMAL_CHARS`] characters.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.len() > MAX_DECIMAL_CHARS {
        return None;
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    text.parse::<Decimal>().ok()
}

/// Serde helper for input decimals: accepts a decimal string (`"12.50"`) or a JSON number (`12.5`),
/// exactly (with serde_json's `arbitrary_precision`, numbers arrive as their literal text).
pub mod decimal_input {
    use super::parse_decimal;
    use rust_decimal::Decimal;
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use std::fmt;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        deserializer.deserialize_any(DecimalVisitor)
    }

    /// For `Option<Decimal>` fields: `null` or absent is `None`.
    pub mod option {
        use super::DecimalVisitor;
        use rust_decimal::Decimal;
        use serde::de::{Deserializer, Visitor};
        use std::fmt;

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Decimal>, D::Error> {
            struct OptionVisitor;
            impl<'de> Visitor<'de> for OptionVisitor {
                type Value = Option<Decimal>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a decimal string, a number or null")
                }
                fn visit_none<E>(self) -> Result<Self::Value, E> {
                    Ok(None)
                }
                fn visit_unit<E>(self) -> Result<Self::Value, E> {
                    Ok(None)
                }
                fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                    d.deserialize_any(DecimalVisitor).map(Some)
                }
            }
            deserializer.deserialize_option(OptionVisitor)
        }
    }

    pub(crate) struct DecimalVisitor;

    impl<'de> Visitor<'de> for DecimalVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal number or a string holding one")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            parse_decimal(v).ok_or_else(|| E::custom(format!("`{v}` is not a decimal number")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            Decimal::from_f64_retain(v)
                .filter(|d| d.abs() < Decimal::from(super::MAX_AMOUNT_UNITS))
                .ok_or_else(|| E::custom("number out of range"))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
            // serde_json with `arbitrary_precision` hands numbers over as a one-entry map whose
            // value is the number's literal text.
            // Anything else is an object where a number belongs: refused here, at the field,
            // without descending into it.
            match map.next_key::<String>()? {
                Some(key) if key == "$serde_json::private::Number" => {}
                _ => {
                    return Err(de::Error::custom(
                        "must be a decimal number or a string holding one",
                    ))
                }
            }
            let text: String = map.next_value()?;
            parse_decimal(&text)
                .ok_or_else(|| de::Error::custom(format!("`{text}` is not a decimal number")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn rounds_half_away_from_zero_to_minor_units() {
        let eur = Currency::parse("eur").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        for (currency, input, expected) in [
            (eur, "0.285", 29),
            (eur, "-0.285", -29),
            (eur, "0.284999", 28),
            (eur, "2", 200),
            (jpy, "12.5", 13),
            (kwd, "1.0005", 1001),
            (kwd, "7", 7000),
        ] {
            assert_eq!(
                currency.round(d(input)),
                Money(expected),
                "{input} in {currency}"
            );
        }
        assert_eq!(eur.format(Money(500)), "5.00");
        assert_eq!(jpy.format(Money(120)), "120");
        assert_eq!(kwd.format(Money(1)), "0.001");
        assert_eq!(Currency::parse("XYZ").unwrap().minor_units(), 2);
        assert!(Currency::parse("EU").is_none());
        assert!(Currency::parse("E1R").is_none());
    }

    #[test]
    fn parse_amount_refuses_negatives_and_excess_decimals() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(eur.parse_amount("a", d("5.10")).unwrap(), Money(510));
        assert_eq!(eur.parse_amount("a", d("5.100000")).unwrap(), Money(510));
        assert!(eur.parse_amount("a", d("-1")).is_err());
        assert!(eur.parse_amount("a", d("0.001")).is_err());
    }

    #[test]
    fn checked_arithmetic_says_none_where_the_operators_would_stop() {
        let max = Money(i64::MAX);
        assert_eq!(Money(2).checked_add(Money(3)), Some(Money(5)));
        assert_eq!(max.checked_add(Money(1)), None);
        assert_eq!(Money(2).checked_sub(Money(3)), Some(Money(-1)));
        assert_eq!(Money(i64::MIN).checked_sub(Money(1)), None);
        assert_eq!(Money(-7).checked_neg(), Some(Money(7)));
        assert_eq!(Money(i64::MIN).checked_neg(), None);
        assert_eq!(Money(7).checked_mul_i64(3), Some(Money(21)));
        assert_eq!(max.checked_mul_i64(2), None);
        assert_eq!(Money(607).checked_div(Money(200)), Some(3));
        assert_eq!(Money(1).checked_div(Money::ZERO), None);
        assert_eq!(Money::checked_sum([Money(1), Money(2)]), Some(Money(3)));
        assert_eq!(Money::checked_sum([max, Money(1)]), None);
        assert_eq!(Money::from_minor(-705).minor(), -705);
    }

    #[test]
    #[should_panic(expected = "money overflow")]
    fn the_operators_stop_instead_of_wrapping() {
        let _ = -Money(i64::MIN);
    }

    #[test]
    fn the_largest_amount_is_below_max_amount_units() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(eur.max_amount(), Money(999_999_999_999));
        assert_eq!(
            Currency::parse("CLF").unwrap().max_amount(),
            Money(99_999_999_999_999)
        );
        assert_eq!(
            Currency::parse("JPY").unwrap().max_amount(),
            Money(9_999_999_999)
        );
        assert_eq!(
            eur.checked_round(d("9999999999.99")),
            Some(eur.max_amount())
        );
        assert_eq!(eur.checked_round(d("10000000000")), None);
        assert_eq!(eur.checked_round(d("-10000000000")), None);
    }

    #[test]
    fn money_is_a_plain_number_and_a_read_currency_is_checked() {
        assert_eq!(serde_json::to_string(&Money(-705)).unwrap(), "-705");
        assert_eq!(serde_json::from_str::<Money>("705").unwrap(), Money(705));
        let kwd = Currency::parse("kwd").unwrap();
        let json = serde_json::to_string(&kwd).unwrap();
        assert_eq!(json, r#"{"code":[75,87,68],"minor_units":3}"#);
        assert_eq!(serde_json::from_str::<Currency>(&json).unwrap(), kwd);
        for refused in [
            r#"{"code":[107,119,100],"minor_units":3}"#,
            r#"{"code":[75,87,200],"minor_units":3}"#,
            r#"{"code":[75,87,68],"minor_units":9}"#,
        ] {
            assert!(
                serde_json::from_str::<Currency>(refused).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn decimal_input_accepts_strings_and_numbers() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(with = "decimal_input")]
            a: Decimal,
            #[serde(default, with = "decimal_input::option")]
            b: Option<Decimal>,
        }
        let t: T = serde_json::from_str(r#"{"a": 0.1, "b": "12.50"}"#).unwrap();
        assert_eq!(t.a, d("0.1"));
        assert_eq!(t.b, Some(d("12.50")));
        let t: T = serde_json::from_str(r#"{"a": "3", "b": null}"#).unwrap();
        assert_eq!(t.a, d("3"));
        assert_eq!(t.b, None);
        let t: T = serde_json::from_str(r#"{"a": 7}"#).unwrap();
        assert_eq!(t.b, None);
        assert!(serde_json::from_str::<T>(r#"{"a": "abc"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"a": true}"#).is_err());
    }
}
