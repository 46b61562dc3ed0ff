//! The customer events engine: mappings that turn a source's own JSON records (a Shopify order,
//! a fitness app's activity) into purchase or achievement bodies of the API (SPEC section 13).
//!
//! A mapping is a TOML file named after its source (`shopify.toml` maps `/v1/ingest/shopify`):
//!
//! ```toml
//! kind = "purchase"                 # or "achievement"
//! [fields]                          # target field = where its value comes from
//! reference_number = "/name"        # a JSON pointer into the record
//! external_reference = { pointer = "/id", as = "string" }
//! "identity.contact_code" = { pointer = ["/customer/id", "/email"], as = "string" }
//! classification = { pointer = "/type", map = { Run = "run", Ride = "ride" } }
//! [constants]
//! external_system = "shopify"
//! [defaults]                        # used when nothing above gave the field a value
//! currency = "EUR"
//! [[lines]]                         # a purchase's lines, from an array of the record
//! array = "/line_items"
//! fields = { sku = "/sku", quantity = "/quantity", unit_price = "/price" }
//! ```
//!
//! A field's value is the first of its pointers that holds something (JSON `null` and `""`
//! count as nothing), passed through its `map` (a value the map lacks takes the field's
//! `default`, else the record is refused) and its `as` conversion (`string`, `unix_seconds`,
//! `unix_millis`); a field with no value takes its `default`, else is left out. The mapped body
//! then goes through the same validation, identification and idempotency as the API's own
//! calls, so the mapping never decides what is valid.
//!
//! Mappings are read and checked once, at start-up: the shipped ones are compiled in, and the
//! files of `mappings_dir` add or override them. A file that does not parse stops start-up with
//! its name, line and column.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rewards_core::{DomainError, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The mappings shipped with the product, compiled into the binary: (source, TOML text).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "shopify",
        include_str!("../../configs/mappings/shopify.toml"),
    ),
    ("strava", include_str!("../../configs/mappings/strava.toml")),
];

/// What a mapped record becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Purchase,
    Achievement,
}

/// The fields a purchase body may be given (see `dto::purchase::PurchaseBody`).
const PURCHASE_FIELDS: &[&str] = &[
    "business_id",
    "identity.wallet_code",
    "identity.otp",
    "identity.contact_id",
    "identity.contact_code",
    "identity.cim",
    "identity.gift_card",
    "identity.payment_medium_identifier",
    "tap_code",
    "performed_on",
    "reference_number",
    "external_system",
    "external_reference",
    "classification",
    "currency",
    "discount_amount",
    "net_amount",
    "tax_amount",
    "total_amount",
    "payment_medium.identifier",
    "payment_medium.brand",
    "payment_medium.kind",
    "spend.amount",
    "spend.require_full",
    "origin",
];

/// The fields of one purchase line.
const LINE_FIELDS: &[&str] = &[
    "sku",
    "name",
    "family",
    "quantity",
    "unit_price",
    "tax_rate",
    "tax_amount",
];

/// The fields an achievement body may be given (see `http::events::AchievementBody`).
const ACHIEVEMENT_FIELDS: &[&str] = &[
    "business_id",
    "identity.wallet_code",
    "identity.otp",
    "identity.contact_id",
    "identity.contact_code",
    "identity.cim",
    "identity.gift_card",
    "identity.payment_medium_identifier",
    "kind",
    "classification",
    "amount",
    "product_sku",
    "payment_medium.identifier",
    "payment_medium.brand",
    "payment_medium.kind",
    "platform",
    "profile",
    "action",
    "url",
    "performed_on",
    "tap_code",
    "external_system",
    "external_reference",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    kind: Kind,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, FieldSpec>,
    #[serde(default)]
    constants: BTreeMap<String, toml::Value>,
    #[serde(default)]
    defaults: BTreeMap<String, toml::Value>,
    #[serde(default)]
    lines: Vec<LinesFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinesFile {
    array: String,
    #[serde(default)]
    fields: BTreeMap<String, FieldSpec>,
    #[serde(default)]
    constants: BTreeMap<String, toml::Value>,
    #[serde(default)]
    defaults: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FieldSpec {
    Pointer(String),
    Table(FieldTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldTable {
    #[serde(default)]
    pointer: Option<Pointers>,
    #[serde(default)]
    map: Option<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    default: Option<toml::Value>,
    #[serde(default, rename = "as")]
    convert: Option<Conversion>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Pointers {
    One(String),
    Many(Vec<String>),
}

/// How a source value is converted before it is given to its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conversion {
    /// A number or a boolean as its text (ids that a source sends as numbers).
    String,
    /// Seconds since 1970-01-01 UTC (a number or its text) as an RFC 3339 time.
    UnixSeconds,
    /// Milliseconds since 1970-01-01 UTC as an RFC 3339 time.
    UnixMillis,
}

/// One target field and where its value comes from.
#[derive(Debug)]
struct Field {
    target: Vec<String>,
    pointers: Vec<String>,
    map: Option<BTreeMap<String, Value>>,
    default: Option<Value>,
    convert: Option<Conversion>,
}

#[derive(Debug)]
struct Lines {
    array: String,
    fields: Vec<Field>,
    constants: Vec<(Vec<String>, Value)>,
    defaults: Vec<(Vec<String>, Value)>,
}

/// A checked mapping, ready to apply.
#[derive(Debug)]
pub struct Mapping {
    pub kind: Kind,
    fields: Vec<Field>,
    constants: Vec<(Vec<String>, Value)>,
    defaults: Vec<(Vec<String>, Value)>,
    lines: Vec<Lines>,
}

/// Every mapping by source name.
#[derive(Clone, Debug, Default)]
pub struct Mappings(HashMap<String, Arc<Mapping>>);

impl Mappings {
    /// The built-in mappings only.
    pub fn built_in() -> anyhow::Result<Mappings> {
        let mut all = HashMap::new();
        for (name, text) in BUILT_IN {
            let mapping =
                Mapping::parse(text).with_context(|| format!("built-in mapping {name}"))?;
            all.insert((*name).to_string(), Arc::new(mapping));
        }
        Ok(Mappings(all))
    }

    /// The built-in mappings, then every `{source}.toml` of `dir` (a directory that does not
    /// exist adds nothing). The first file that does not parse or check is the error.
    pub fn load(dir: &Path) -> anyhow::Result<Mappings> {
        let mut mappings = Mappings::built_in()?;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(mappings),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("reading mappings_dir {}", dir.display()))
            }
        };
        let mut paths: Vec<_> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            anyhow::ensure!(
                valid_source_name(name),
                "mapping file {}: a source name is letters, digits, '-' and '_'",
                path.display()
            );
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading mapping file {}", path.display()))?;
            let mapping = Mapping::parse(&text)
                .with_context(|| format!("mapping file {}", path.display()))?;
            mappings.0.insert(name.to_string(), Arc::new(mapping));
        }
        Ok(mappings)
    }

    pub fn get(&self, source: &str) -> Option<Arc<Mapping>> {
        self.0.get(source).cloned()
    }

    /// The source names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.keys().cloned().collect();
        names.sort();
        names
    }
}

fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Mapping {
    /// Parses and checks a mapping's TOML text. Errors name the line and column (TOML errors)
    /// or the field (checks).
    pub fn parse(text: &str) -> anyhow::Result<Mapping> {
        let file: MappingFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let allowed = match file.kind {
            Kind::Purchase => PURCHASE_FIELDS,
            Kind::Achievement => ACHIEVEMENT_FIELDS,
        };
        anyhow::ensure!(
            file.kind == Kind::Purchase || file.lines.is_empty(),
            "[[lines]]: only a purchase has lines"
        );
        let fields = fields(file.fields, allowed, "fields")?;
        let constants = values(file.constants, allowed, "constants")?;
        let defaults = values(file.defaults, allowed, "defaults")?;
        let mut lines = Vec::new();
        for (i, spec) in file.lines.into_iter().enumerate() {
            let place = format!("lines[{i}]");
            check_pointer(&spec.array).with_context(|| format!("{place}.array"))?;
            lines.push(Lines {
                array: spec.array,
                fields: fields_at(spec.fields, &place)?,
                constants: values(spec.constants, LINE_FIELDS, &format!("{place}.constants"))?,
                defaults: values(spec.defaults, LINE_FIELDS, &format!("{place}.defaults"))?,
            });
        }
        Ok(Mapping {
            kind: file.kind,
            fields,
            constants,
            defaults,
            lines,
        })
    }

    /// The API body of one source record, or the refusal of the record with the target
    /// field's path.
    pub fn apply(&self, record: &Value) -> Result<Value, DomainError> {
        if !record.is_object() {
            return Err(DomainError::validation("record", "must be a JSON object"));
        }
        let mut body = Map::new();
        for field in &self.fields {
            if let Some(value) = field.resolve(record, "")? {
                set(&mut body, &field.target, value);
            }
        }
        for (target, value) in &self.constants {
            set(&mut body, target, value.clone());
        }
        let mut lines = Vec::new();
        for spec in &self.lines {
            let items = match record.pointer(&spec.array) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(_) => {
                    return Err(DomainError::validation(
                        "lines",
                        format!("{} is not an array", spec.array),
                    ))
                }
            };
            if lines.len() + items.len() > crate::limits::MAX_PURCHASE_LINES {
                return Err(DomainError::validation(
                    "lines",
                    format!("at most {} lines", crate::limits::MAX_PURCHASE_LINES),
                ));
            }
            for item in items {
                let place = format!("lines[{}].", lines.len());
                let mut line = Map::new();
                for field in &spec.fields {
                    if let Some(value) = field.resolve(item, &place)? {
                        set(&mut line, &field.target, value);
                    }
                }
                for (target, value) in &spec.constants {
                    set(&mut line, target, value.clone());
                }
                for (target, value) in &spec.defaults {
                    if get(&line, target).is_none() {
                        set(&mut line, target, value.clone());
                    }
                }
                lines.push(Value::Object(line));
            }
        }
        if !lines.is_empty() {
            body.insert("lines".into(), Value::Array(lines));
        }
        for (target, value) in &self.defaults {
            if get(&body, target).is_none() {
                set(&mut body, target, value.clone());
            }
        }
        Ok(Value::Object(body))
    }
}

fn fields(
    specs: BTreeMap<String, FieldSpec>,
    allowed: &[&str],
    place: &str,
) -> anyhow::Result<Vec<Field>> {
    specs
        .into_iter()
        .map(|(target, spec)| {
            let path = target_path(&target, allowed)
                .with_context(|| format!("{place}: field \"{target}\""))?;
            Field::new(path, spec).with_context(|| format!("{place}: field \"{target}\""))
        })
        .collect()
}

fn fields_at(specs: BTreeMap<String, FieldSpec>, place: &str) -> anyhow::Result<Vec<Field>> {
    fields(specs, LINE_FIELDS, &format!("{place}.fields"))
}

fn values(
    specs: BTreeMap<String, toml::Value>,
    allowed: &[&str],
    place: &str,
) -> anyhow::Result<Vec<(Vec<String>, Value)>> {
    specs
        .into_iter()
        .map(|(target, value)| {
            let path = target_path(&target, allowed)
                .with_context(|| format!("{place}: field \"{target}\""))?;
            Ok((path, json_of(value)))
        })
        .collect()
}

/// A target such as `identity.contact_code`, checked against the fields the body has.
fn target_path(target: &str, allowed: &[&str]) -> anyhow::Result<Vec<String>> {
    if !allowed.contains(&target) {
        anyhow::bail!(
            "is not a field of the body; the fields are {}",
            allowed.join(", ")
        );
    }
    let path: Vec<String> = target.split('.').map(str::to_string).collect();
    anyhow::ensure!(
        path.iter().all(|segment| !segment.is_empty()),
        "has an empty segment"
    );
    Ok(path)
}

fn check_pointer(pointer: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        pointer.is_empty() || pointer.starts_with('/'),
        "\"{pointer}\" is not a JSON pointer (it starts with '/')"
    );
    Ok(())
}

/// A TOML value as JSON (a TOML date-time becomes its text).
fn json_of(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(json_of).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(key, value)| (key, json_of(value)))
                .collect(),
        ),
    }
}

impl Field {
    fn new(target: Vec<String>, spec: FieldSpec) -> anyhow::Result<Field> {
        let table = match spec {
            FieldSpec::Pointer(pointer) => FieldTable {
                pointer: Some(Pointers::One(pointer)),
                map: None,
                default: None,
                convert: None,
            },
            FieldSpec::Table(table) => table,
        };
        let pointers = match table.pointer {
            Some(Pointers::One(pointer)) => vec![pointer],
            Some(Pointers::Many(pointers)) => pointers,
            None => Vec::new(),
        };
        anyhow::ensure!(
            !pointers.is_empty() || table.default.is_some(),
            "needs a pointer or a default (a fixed value goes in [constants])"
        );
        for pointer in &pointers {
            check_pointer(pointer)?;
        }
        Ok(Field {
            target,
            pointers,
            map: table
                .map
                .map(|map| map.into_iter().map(|(k, v)| (k, json_of(v))).collect()),
            default: table.default.map(json_of),
            convert: table.convert,
        })
    }

    /// The field's value for `record`; `place` prefixes the field's path in a refusal.
    fn resolve(&self, record: &Value, place: &str) -> Result<Option<Value>, DomainError> {
        let name = || format!("{place}{}", self.target.join("."));
        let found = self
            .pointers
            .iter()
            .find_map(|pointer| match record.pointer(pointer) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(value) => Some((pointer, value)),
            });
        let Some((pointer, value)) = found else {
            return Ok(self.default.clone());
        };
        let value = match &self.map {
            None => value.clone(),
            Some(map) => match map.get(&key_text(value)) {
                Some(mapped) => mapped.clone(),
                None => match &self.default {
                    Some(default) => default.clone(),
                    None => {
                        return Err(DomainError::validation(
                            name(),
                            format!("the value {} of {pointer} has no mapping", brief(value)),
                        ))
                    }
                },
            },
        };
        match self.convert {
            None => Ok(Some(value)),
            Some(conversion) => convert(&value, conversion).map(Some).map_err(|message| {
                DomainError::validation(name(), format!("{pointer}: {message}"))
            }),
        }
    }
}

/// A value as a map key: a string as it is, anything else as its JSON text.
fn key_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value for a refusal's message: its JSON text, cut short.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The latest time a conversion accepts: 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

fn convert(value: &Value, conversion: Conversion) -> Result<Value, String> {
    match conversion {
        Conversion::String => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err("must be a string, a number or a boolean".into()),
        },
        Conversion::UnixSeconds | Conversion::UnixMillis => {
            let number = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or("must be a whole number of seconds or milliseconds since 1970")?;
            let millis = match conversion {
                Conversion::UnixSeconds => number.checked_mul(1000),
                _ => Some(number),
            }
            .filter(|m| (0..=MAX_UNIX_SECONDS * 1000 + 999).contains(m))
            .ok_or("is not a time between 1970 and 9999")?;
            Ok(Value::String(Timestamp::from_millis(millis).to_rfc3339()))
        }
    }
}

fn get<'a>(object: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut current = object;
    for key in parents {
        current = current.get(key)?.as_object()?;
    }
    current.get(last)
}

/// Sets `path` in `object`, making the objects on the way (a non-object on the way is
/// replaced: targets are checked at load, so only a mapping's own earlier field can be there).
fn set(object: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_built_in_mappings_parse() {
        let mappings = Mappings::built_in().unwrap();
        assert_eq!(mappings.names(), ["shopify", "strava"]);
    }

    #[test]
    fn pointers_maps_defaults_and_conversions() {
        let mapping = Mapping::parse(
            r#"
kind = "achievement"
[fields]
external_reference = { pointer = "/id", as = "string" }
"identity.contact_code" = { pointer = ["/user/code", "/user/id"], as = "string" }
classification = { pointer = "/type", map = { run = "workout", ride = "workout" } }
performed_on = { pointer = "/at", as = "unix_seconds" }
amount = { pointer = "/km", default = 0 }
[constants]
external_system = "fit"
[defaults]
action = "moved"
"#,
        )
        .unwrap();
        let body = mapping
            .apply(
                &json!({"id": 12345678901234567u64, "user": {"code": "", "id": 7},
                "type": "run", "at": 1700000000}),
            )
            .unwrap();
        assert_eq!(
            body,
            json!({"external_reference": "12345678901234567",
                "identity": {"contact_code": "7"}, "classification": "workout",
                "performed_on": "2023-11-14T22:13:20Z", "amount": 0,
                "external_system": "fit", "action": "moved"})
        );
        let refused = mapping
            .apply(&json!({"id": 1, "type": "swim"}))
            .unwrap_err();
        assert!(
            format!("{refused:?}").contains("classification"),
            "{refused:?}"
        );
        let refused = mapping
            .apply(&json!({"id": 1, "type": "run", "at": -5}))
            .unwrap_err();
        assert!(
            format!("{refused:?}").contains("performed_on"),
            "{refused:?}"
        );
        assert!(mapping.apply(&json!([1, 2])).is_err());
    }

    #[test]
    fn lines_come_from_arrays_with_their_own_defaults() {
        let mapping = Mapping::parse(
            r#"
kind = "purchase"
[fields]
total_amount = "/total"
[[lines]]
array = "/items"
fields = { sku = "/sku", quantity = "/qty", unit_price = "/price", tax_rate = { pointer = "/taxes/0/rate", default = 0 } }
[[lines]]
array = "/shipping"
fields = { name = "/title", unit_price = "/price" }
constants = { sku = "shipping", quantity = 1 }
"#,
        )
        .unwrap();
        let body = mapping
            .apply(&json!({"total": "12.00", "items": [
                {"sku": "A", "qty": 2, "price": "5.00", "taxes": [{"rate": 0.1}]},
                {"sku": "B", "qty": 1, "price": "1.00", "taxes": []}],
                "shipping": [{"title": "Post", "price": "1.00"}]}))
            .unwrap();
        assert_eq!(
            body["lines"],
            json!([
                {"sku": "A", "quantity": 2, "unit_price": "5.00", "tax_rate": 0.1},
                {"sku": "B", "quantity": 1, "unit_price": "1.00", "tax_rate": 0},
                {"name": "Post", "unit_price": "1.00", "sku": "shipping", "quantity": 1}
            ])
        );
        let refused = mapping.apply(&json!({"items": {"sku": "A"}})).unwrap_err();
        assert!(format!("{refused:?}").contains("lines"), "{refused:?}");
    }

    #[test]
    fn a_mapping_that_does_not_check_says_where() {
        let error =
            Mapping::parse("kind = \"purchase\"\n[fields]\ntotl_amount = \"/t\"\n").unwrap_err();
        assert!(format!("{error:#}").contains("totl_amount"), "{error:#}");
        let error = Mapping::parse("kind = \"purchase\"\n[fields\n").unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
        let error =
            Mapping::parse("kind = \"purchase\"\n[fields]\ntotal_amount = \"t\"\n").unwrap_err();
        assert!(format!("{error:#}").contains("JSON pointer"), "{error:#}");
        let error =
            Mapping::parse("kind = \"achievement\"\n[[lines]]\narray = \"/x\"\n").unwrap_err();
        assert!(format!("{error:#}").contains("lines"), "{error:#}");
    }
}
