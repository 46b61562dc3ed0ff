//! Money in a currency's minor units, and the one place where decimals are rounded to them.
//!
//! Amounts are computed in [`Decimal`] and rounded half away from zero to the currency's minor unit
//! once, at the end of each computation ([`Currency::round`]). Stored and posted amounts are
//! [`Money`]: an integer count of minor units, so ledger arithmetic is exact and cheap.

use crate::error::FieldError;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// An ISO 4217 currency and the number of decimals of its minor unit.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
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
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let upper = [
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ];
        let upper_str = std::str::from_utf8(&upper).expect("ascii");
        let minor_units = MINOR_UNIT_EXCEPTIONS
            .iter()
            .find(|(c, _)| *c == upper_str)
            .map_or(2, |(_, units)| *units);
        Some(Currency {
            code: upper,
            minor_units,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("currency codes are ascii")
    }

    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }

    /// [`Currency::round`] of an amount whose size is not known to be bounded: `None` when it is
    /// not below [`MAX_AMOUNT_UNITS`] (either sign).
    pub fn checked_round(&self, amount: Decimal) -> Option<Money> {
        (amount.abs() < Decimal::from(MAX_AMOUNT_UNITS)).then(|| self.round(amount))
    }

    /// Rounds a decimal amount to this currency's minor unit, half away from zero. This is the only
    /// rounding of money in the system; call it once, at the end of a computation.
    pub fn round(&self, amount: Decimal) -> Money {
        let rounded = amount
            .round_dp_with_strategy(self.minor_units(), RoundingStrategy::MidpointAwayFromZero);
        let mut mantissa = rounded.mantissa();
        // round_dp never increases the scale, so scale up to exactly minor_units.
        for _ in rounded.scale()..self.minor_units() {
            mantissa *= 10;
        }
        Money(i64::try_from(mantissa).expect("money amount out of range"))
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
        if units == 0 {
            let _ = write!(out, "{sign}{magnitude}");
        } else {
            let scale = 10u64.pow(units);
            let _ = write!(
                out,
                "{sign}{}.{:0width$}",
                magnitude / scale,
                magnitude % scale,
                width = units as usize
            );
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
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct Money(pub i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn minor(self) -> i64 {
        self.0
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

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.checked_add(rhs.0).expect("money overflow"))
    }
}
impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.checked_sub(rhs.0).expect("money overflow"))
    }
}
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}
impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}
impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}
impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}
impl<'a> Sum<&'a Money> for Money {
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
