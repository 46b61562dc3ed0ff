//! The JSON shapes of API.md and their conversion to and from the domain types.

pub mod business;
pub mod contact;
pub(crate) mod json_out;
pub mod offer;
pub mod purchase;

use rewards_core::money::decimal_input;
use rewards_core::{Currency, FieldError, Money, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

/// A decimal sent as a string or a number.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Dec(pub Decimal);

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        decimal_input::deserialize(d).map(Dec)
    }
}

/// A decimal in the OpenAPI document: the grammar `parse_decimal` accepts, as a string or a
/// JSON number.
impl utoipa::PartialSchema for Dec {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        decimal_schema("A decimal: an optional `-`, digits, an optional `.` and digits")
    }
}

impl utoipa::ToSchema for Dec {
    fn name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }
}

/// A decimal string (the grammar of [`rewards_core::money::parse_decimal`]) or a JSON number.
pub fn decimal_schema(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(DECIMAL_PATTERN))
                .max_length(Some(rewards_core::money::MAX_DECIMAL_CHARS)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .description(Some(description))
        .into()
}

/// What [`rewards_core::money::parse_decimal`] accepts, as a regular expression.
pub const DECIMAL_PATTERN: &str = r"^-?[0-9]+(\.[0-9]+)?$";

/// A decimal serializes as its normalized text, so `"1"`, `1` and `"1.00"` read the same: the
/// parsed request, not its bytes, is what an idempotent repeat is compared by.
impl serde::Serialize for Dec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.normalize().to_string())
    }
}

/// The canonical bytes of a parsed request: what its idempotency key's body hash is taken of
/// (unknown fields are gone, numbers are normalized).
pub fn canonical<T: serde::Serialize>(parsed: &T) -> Vec<u8> {
    crate::json_bytes(parsed)
}

/// Collects field errors so one response names every problem of a request.
#[derive(Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }
    pub fn take<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }
    pub fn finish(self) -> Result<(), rewards_core::DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(rewards_core::DomainError::ValidationFailed(self.0))
        }
    }
}

pub fn money(
    currency: Currency,
    field: &str,
    value: Option<Dec>,
) -> Result<Option<Money>, FieldError> {
    value.map(|v| currency.parse_amount(field, v.0)).transpose()
}

pub fn time(field: &str, value: Option<&str>) -> Result<Option<Timestamp>, FieldError> {
    value
        .map(|t| {
            Timestamp::parse_rfc3339(t)
                .ok_or_else(|| FieldError::new(field, "must be an RFC 3339 time"))
        })
        .transpose()
}

pub fn format_money(currency: Currency, amount: Money) -> String {
    currency.format(amount)
}

pub fn format_opt_money(currency: Currency, amount: Option<Money>) -> Option<String> {
    amount.map(|a| currency.format(a))
}

/// An external system or reference as given (a part of an idempotency key): refuses overlong
/// values, keeps the rest as it is.
pub fn key_part(field: &str, value: Option<&str>) -> Result<(), FieldError> {
    match value {
        Some(v) if v.chars().count() > crate::limits::MAX_TEXT_CHARS => Err(FieldError::new(
            field,
            format!(
                "must be at most {} characters",
                crate::limits::MAX_TEXT_CHARS
            ),
        )),
        _ => Ok(()),
    }
}

/// Trims a text field and refuses empty or overlong values.
pub fn text(field: &str, value: &str) -> Result<String, FieldError> {
    checked_text(value)
        .map(str::to_string)
        .map_err(|message| FieldError::new(field, message))
}

/// A text field trimmed, or what is wrong with it (empty, or overlong); allocates only for the
/// message.
pub fn checked_text(value: &str) -> Result<&str, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > crate::limits::MAX_TEXT_CHARS {
        return Err(format!(
            "must be at most {} characters",
            crate::limits::MAX_TEXT_CHARS
        ));
    }
    Ok(value)
}

pub fn parse_id<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, FieldError> {
    value
        .trim()
        .parse()
        .map_err(|_| FieldError::new(field, "is not a valid id"))
}

/// Nested objects of a request: serde would also read a struct from an array of its fields in
/// order (`"spend": ["all"]`), which no client means. Fields holding structs deserialize
/// through these, which accept only a JSON object (field paths still name the place).
pub mod object {
    use crate::limits::{MAX_LIST_ITEMS, MAX_SCHEME_CODES};
    use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    struct ObjectVisitor<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }

    /// A struct field: only an object.
    pub fn one<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
    }

    /// An optional struct field: `null`, absent (with `#[serde(default)]`) or an object.
    pub fn optional<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        struct OptionVisitor<T>(PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for OptionVisitor<T> {
            type Value = Option<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object or null")
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                one(d).map(Some)
            }
        }
        d.deserialize_option(OptionVisitor(PhantomData))
    }

    /// A list of structs: an array of at most [`MAX_LIST_ITEMS`] items, each an object.
    pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        struct Item<T>(T);
        impl<'de, T: DeserializeOwned> serde::Deserialize<'de> for Item<T> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                one(d).map(Item)
            }
        }
        bounded::<D, Item<T>>(d, MAX_LIST_ITEMS)
            .map(|items| items.into_iter().map(|Item(t)| t).collect())
    }

    /// A list of values (strings, numbers): at most [`MAX_LIST_ITEMS`] items.
    pub fn values<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        bounded(d, MAX_LIST_ITEMS)
    }

    /// A scheme's closed-loop codes: at most [`MAX_SCHEME_CODES`].
    pub fn codes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        bounded(d, MAX_SCHEME_CODES)
    }

    /// An array of at most `most` items, refused at its field beyond that (the rest of the
    /// array is not read).
    fn bounded<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
        d: D,
        most: usize,
    ) -> Result<Vec<T>, D::Error> {
        struct ListVisitor<T> {
            most: usize,
            item: PhantomData<T>,
        }
        impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {} items", self.most)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                // The hint is not trusted beyond a page.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element::<T>()? {
                    if items.len() == self.most {
                        return Err(serde::de::Error::custom(format!(
                            "at most {} items",
                            self.most
                        )));
                    }
                    items.push(item);
                }
                Ok(items)
            }
        }
        d.deserialize_seq(ListVisitor {
            most,
            item: PhantomData,
        })
    }
}
