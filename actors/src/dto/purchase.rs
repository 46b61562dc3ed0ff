//! Purchase JSON of API.md: the submitted body and the purchase shown back.

use super::Dec;
use crate::events::{EventRecord, EventState};
use rewards_core::identity::IdentityInput;
use rewards_core::money::parse_decimal;
use rewards_core::purchase::{LineInput, PurchaseAmounts, PurchaseInput};
use rewards_core::wallet::{Balances, Wallet};
use rewards_core::{Currency, Money, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

#[derive(Deserialize, Clone)]
pub struct LineBody {
    pub sku: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub family: Option<String>,
    pub quantity: Dec,
    pub unit_price: Dec,
    #[serde(default)]
    pub tax_rate: Option<Dec>,
    #[serde(default)]
    pub tax_amount: Option<Dec>,
}

#[derive(Deserialize, Clone, Default)]
pub struct PaymentMediumBody {
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// `"all"` or an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendAmountBody {
    All,
    Amount(Decimal),
}

impl<'de> Deserialize<'de> for SpendAmountBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let text = match &value {
            Value::String(s) if s.trim() == "all" => return Ok(SpendAmountBody::All),
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(serde::de::Error::custom(
                    "must be \"all\" or a decimal amount",
                ))
            }
        };
        parse_decimal(&text)
            .map(SpendAmountBody::Amount)
            .ok_or_else(|| serde::de::Error::custom("must be \"all\" or a decimal amount"))
    }
}

#[derive(Deserialize, Clone)]
pub struct SpendBody {
    pub amount: SpendAmountBody,
    #[serde(default)]
    pub require_full: bool,
}

#[derive(Deserialize, Clone, Default)]
pub struct PurchaseBody {
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default)]
    pub identity: Option<IdentityInput>,
    #[serde(default)]
    pub tap_code: Option<String>,
    #[serde(default)]
    pub performed_on: Option<String>,
    #[serde(default)]
    pub reference_number: Option<String>,
    #[serde(default)]
    pub external_system: Option<String>,
    #[serde(default)]
    pub external_reference: Option<String>,
    #[serde(default)]
    pub classification: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Vec<LineBody>,
    #[serde(default)]
    pub discount_amount: Option<Dec>,
    #[serde(default)]
    pub net_amount: Option<Dec>,
    #[serde(default)]
    pub tax_amount: Option<Dec>,
    #[serde(default)]
    pub total_amount: Option<Dec>,
    #[serde(default)]
    pub payment_medium: Option<PaymentMediumBody>,
    #[serde(default)]
    pub spend: Option<SpendBody>,
    #[serde(default)]
    pub estimate_id: Option<String>,
    #[serde(default)]
    pub transaction_reference: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
}

impl PurchaseBody {
    pub fn purchase_input(&self) -> PurchaseInput {
        PurchaseInput {
            currency: self.currency.clone(),
            lines: self
                .lines
                .iter()
                .map(|l| LineInput {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    family: l.family.clone(),
                    quantity: l.quantity.0,
                    unit_price: l.unit_price.0,
                    tax_rate: l.tax_rate.map(|d| d.0),
                    tax_amount: l.tax_amount.map(|d| d.0),
                })
                .collect(),
            discount_amount: self.discount_amount.map(|d| d.0),
            net_amount: self.net_amount.map(|d| d.0),
            tax_amount: self.tax_amount.map(|d| d.0),
            total_amount: self.total_amount.map(|d| d.0),
        }
    }
}

pub fn render_amounts(currency: Currency, a: &PurchaseAmounts) -> Value {
    json!({
        "net": currency.format(a.net),
        "tax": currency.format(a.tax),
        "discount": currency.format(a.discount),
        "total": currency.format(a.total),
    })
}

pub fn render_balances(currency: Currency, balances: Balances, spendable: Money) -> Value {
    json!({
        "commerce": currency.format(balances.commerce),
        "open": currency.format(balances.open),
        "reserved": currency.format(balances.reserved),
        "spendable": currency.format(spendable),
    })
}

/// A unit price with at least its currency's decimals (`1.20`), more when it has them.
fn price(value: Decimal, currency: Currency) -> String {
    let mut value = value.normalize();
    if value.scale() < currency.minor_units() {
        value.rescale(currency.minor_units());
    }
    value.to_string()
}

fn opt_time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// The whole wallet object of API.md.
pub fn render_wallet(wallet: &Wallet, code: &str, now: Timestamp) -> Value {
    let c = wallet.currency;
    let lots: Vec<Value> = wallet
        .lots
        .iter()
        .filter(|l| l.remaining.is_positive() && !l.expired)
        .map(|l| {
            json!({
                "id": l.id.to_string(),
                "amount": c.format(l.amount),
                "remaining": c.format(l.remaining),
                "expires_at": opt_time(l.expires_at),
                "offer_id": l.offer_id.map(|o| o.to_string()),
                "event_id": l.event_id.to_string(),
            })
        })
        .collect();
    json!({
        "id": wallet.id.to_string(),
        "contact_id": wallet.contact_id.to_string(),
        "business_id": wallet.business_id.to_string(),
        "currency": c.code(),
        "code": code,
        "balances": {
            "commerce": c.format(wallet.unexpired_commerce(now)),
            "open": c.format(wallet.open),
            "reserved": c.format(wallet.reserved),
            "spendable": c.format(wallet.spendable(now).non_negative()),
        },
        "lots": lots,
    })
}

/// An event as API.md shows it; purchases carry their basket, amounts and spend.
pub fn render_event(event: &EventRecord, currency: Currency) -> Value {
    let c = currency;
    let awards: Vec<Value> = event
        .awards
        .iter()
        .map(|a| {
            json!({
                "offer_id": a.offer_id.to_string(),
                "amount": c.format(a.amount),
                "redeem": a.redeem.as_str(),
                "expires_at": opt_time(a.expires_at),
                "lot_id": a.lot_id.to_string(),
            })
        })
        .collect();
    let mut out = json!({
        "id": event.id.to_string(),
        "type": event.event_type.as_str(),
        "business_id": event.business_id.to_string(),
        "contact_id": event.contact_id.to_string(),
        "wallet_id": event.wallet_id.to_string(),
        "state": match event.state { EventState::Posted => "posted", EventState::Cancelled => "cancelled" },
        "origin": event.origin,
        "match_state": Value::Null,
        "performed_on": event.performed_on.to_rfc3339(),
        "created_at": event.created_at.to_rfc3339(),
        "reference_number": event.reference_number,
        "classification": event.classification,
        "tap_code": event.tap_code,
        "organisation_id": event.merchant_id.map_or(event.business_id.to_string(), |m| m.to_string()),
        "external_system": event.external_system,
        "external_reference": event.external_reference,
        "awards": awards,
        "wallet": render_balances(c, event.wallet_after, event.spendable_after),
        "claim_code": Value::Null,
    });
    let map = out.as_object_mut().expect("an object");
    if let Some(amount) = event.amount {
        map.insert("amount".into(), json!(c.format(amount)));
    }
    if let Some(p) = &event.purchase {
        let oc = p.original_currency;
        map.insert("currency".into(), json!(p.currency.code()));
        map.insert("original_currency".into(), json!(oc.code()));
        map.insert(
            "exchange_rate".into(),
            json!(p.exchange_rate.normalize().to_string()),
        );
        map.insert("amounts".into(), render_amounts(c, &p.amounts));
        map.insert(
            "original_amounts".into(),
            render_amounts(oc, &p.original_amounts),
        );
        let lines: Vec<Value> = p
            .lines
            .iter()
            .map(|l| {
                json!({
                    "sku": l.sku,
                    "name": l.name,
                    "family": l.family,
                    "quantity": l.quantity.normalize().to_string(),
                    "unit_price": price(l.unit_price, oc),
                    "net_amount": c.format(l.net),
                    "tax_amount": c.format(l.tax_amount),
                    "total_amount": c.format(l.total),
                })
            })
            .collect();
        map.insert("lines".into(), Value::Array(lines));
        map.insert(
            "spend".into(),
            match &event.spend {
                None => Value::Null,
                Some(s) => json!({
                    "requested": s.requested.map_or("all".to_string(), |r| c.format(r)),
                    "spent": c.format(s.spent),
                    "reduction_method": if s.front_end { "front_end" } else { "back_end" },
                }),
            },
        );
    }
    if let Some(pm) = &event.payment_medium {
        map.insert(
            "payment_medium".into(),
            json!({"identifier": pm.identifier, "brand": pm.brand, "type": pm.kind}),
        );
    }
    if event.state == EventState::Cancelled {
        map.insert("cancelled_at".into(), opt_time(event.cancelled_at));
        map.insert("cancel_reason".into(), json!(event.cancel_reason));
    }
    if !event.returns.returned_lines.is_empty() {
        map.insert(
            "returns".into(),
            json!({
                "returned_amount": c.format(event.returns.returned_amount),
                "clawed_back": c.format(event.returns.clawed_back),
                "refunded": c.format(event.returns.refunded),
            }),
        );
    }
    out
}
