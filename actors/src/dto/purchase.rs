//! Purchase JSON of API.md: the submitted body and the purchase shown back.

use super::json_out::{self, Obj};
use super::Dec;
use crate::events::{EventRecord, EventState, MatchState};
use crate::router::records::{RouteRecord, RouteState};
use rewards_core::identity::IdentityInput;
use rewards_core::matching::Side;
use rewards_core::money::parse_decimal;
use rewards_core::purchase::{LineInput, PurchaseAmounts, PurchaseInput, ValidatedPurchase};
use rewards_core::wallet::{Balances, Wallet};
use rewards_core::{Currency, Money, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

#[derive(Deserialize, Serialize, Clone, utoipa::ToSchema)]
pub struct LineBody {
    #[schema(max_length = 256)]
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

impl LineBody {
    /// What the edge checks of a basket before validation: its size and every line's SKU.
    pub fn check_all(lines: &[LineBody]) -> Result<(), rewards_core::DomainError> {
        use crate::limits::MAX_PURCHASE_LINES;
        if lines.len() > MAX_PURCHASE_LINES {
            return Err(rewards_core::DomainError::validation(
                "lines",
                format!("at most {MAX_PURCHASE_LINES} lines"),
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            // The field's path is written only for an error: valid baskets allocate nothing here.
            if let Err(message) = super::checked_text(&line.sku) {
                return Err(
                    rewards_core::FieldError::new(format!("lines[{i}].sku"), message).into(),
                );
            }
        }
        Ok(())
    }

    /// The line as the core reads it, its texts moved rather than copied.
    pub fn into_input(self) -> LineInput {
        LineInput {
            sku: self.sku,
            name: self.name,
            family: self.family,
            quantity: self.quantity.0,
            unit_price: self.unit_price.0,
            tax_rate: self.tax_rate.map(|d| d.0),
            tax_amount: self.tax_amount.map(|d| d.0),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Default, utoipa::ToSchema)]
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

impl utoipa::PartialSchema for SpendAmountBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["all"])),
            )
            .item(super::decimal_schema("An amount to spend"))
            .description(Some("`\"all\"` (everything spendable) or an amount"))
            .into()
    }
}

impl utoipa::ToSchema for SpendAmountBody {}

impl Serialize for SpendAmountBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SpendAmountBody::All => s.serialize_str("all"),
            SpendAmountBody::Amount(d) => s.serialize_str(&d.normalize().to_string()),
        }
    }
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

#[derive(Deserialize, Serialize, Clone, utoipa::ToSchema)]
pub struct SpendBody {
    pub amount: SpendAmountBody,
    #[serde(default)]
    pub require_full: bool,
}

#[derive(Deserialize, Serialize, Clone, Default, utoipa::ToSchema)]
pub struct PurchaseBody {
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub identity: Option<IdentityInput>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub tap_code: Option<String>,
    #[serde(default)]
    pub performed_on: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub reference_number: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_reference: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub classification: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::list")]
    #[schema(max_items = 1000)]
    pub lines: Vec<LineBody>,
    #[serde(default)]
    pub discount_amount: Option<Dec>,
    #[serde(default)]
    pub net_amount: Option<Dec>,
    #[serde(default)]
    pub tax_amount: Option<Dec>,
    #[serde(default)]
    pub total_amount: Option<Dec>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub payment_medium: Option<PaymentMediumBody>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub spend: Option<SpendBody>,
    #[serde(default)]
    pub estimate_id: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub transaction_reference: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
}

impl PurchaseBody {
    /// The purchase as the core reads it. Its lines are moved out of the body (a purchase's
    /// texts are copied nowhere on the way to the wallet actor): what needs the body whole,
    /// such as its canonical form for the idempotency key, reads it before.
    pub fn take_purchase_input(&mut self) -> PurchaseInput {
        PurchaseInput {
            currency: self.currency.clone(),
            lines: std::mem::take(&mut self.lines)
                .into_iter()
                .map(LineBody::into_input)
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
/// A unit price with trailing zeros dropped but at least the currency's minor digits.
fn price_decimal(value: Decimal, currency: Currency) -> Decimal {
    let mut value = value.normalize();
    if value.scale() < currency.minor_units() {
        value.rescale(currency.minor_units());
    }
    value
}

/// The whole wallet object of API.md, serialized straight from the wallet (no JSON tree: a
/// wallet with many lots is read often).
pub fn render_wallet<'a>(wallet: &'a Wallet, code: &'a str, now: Timestamp) -> WalletView<'a> {
    let c = wallet.currency;
    WalletView {
        id: IdText(wallet.id.0),
        contact_id: IdText(wallet.contact_id.0),
        business_id: IdText(wallet.business_id.0),
        currency: wallet.currency.code(),
        code,
        balances: BalancesView {
            commerce: MoneyView(c, wallet.unexpired_commerce(now)),
            open: MoneyView(c, wallet.open),
            reserved: MoneyView(c, wallet.reserved),
            spendable: MoneyView(c, wallet.spendable(now).non_negative()),
        },
        lots: LotsView(wallet),
    }
}

#[derive(Serialize)]
pub struct WalletView<'a> {
    id: IdText,
    contact_id: IdText,
    business_id: IdText,
    currency: &'a str,
    code: &'a str,
    balances: BalancesView,
    lots: LotsView<'a>,
}

#[derive(Serialize)]
struct LotView {
    id: IdText,
    amount: MoneyView,
    remaining: MoneyView,
    expires_at: Option<TimeView>,
    offer_id: Option<IdText>,
    event_id: IdText,
}

/// The lots with money left, one by one as a sequence.
struct LotsView<'a>(&'a Wallet);

impl Serialize for LotsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0.currency;
        s.collect_seq(
            self.0
                .lots
                .iter()
                .filter(|l| l.remaining.is_positive() && !l.expired)
                .map(|l| LotView {
                    id: IdText(l.id.0),
                    amount: MoneyView(c, l.amount),
                    remaining: MoneyView(c, l.remaining),
                    expires_at: l.expires_at.map(TimeView),
                    offer_id: l.offer_id.map(|o| IdText(o.0)),
                    event_id: IdText(l.event_id.0),
                }),
        )
    }
}

/// An event as API.md shows it; purchases carry their basket, amounts and spend. Serialized
/// straight from the record (no intermediate JSON tree: this is on every purchase's path).
pub fn render_event(event: &EventRecord, currency: Currency) -> EventView<'_> {
    EventView { event, currency }
}

pub struct EventView<'a> {
    event: &'a EventRecord,
    currency: Currency,
}

impl EventView<'_> {
    /// The event object of API.md, written member by member (see [`super::json_out`]): every
    /// purchase answers with one, so it skips serde's per-field machinery.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let event = self.event;
        let c = self.currency;
        let purchase = event.purchase.as_ref();
        let route = event.route.as_ref();
        let cancelled = event.state == EventState::Cancelled;
        let mut o = Obj::begin(out);
        id(&mut o, "id", event.id.0);
        o.plain("type", event.event_type.as_str());
        id(&mut o, "business_id", event.business_id.0);
        id(&mut o, "contact_id", event.contact_id.0);
        id(&mut o, "wallet_id", event.wallet_id.0);
        o.plain("state", if cancelled { "cancelled" } else { "posted" });
        o.text("origin", &event.origin);
        o.opt_plain(
            "match_state",
            route.and_then(|r| r.match_state).map(MatchState::as_str),
        );
        if let Some(reference) = route.and_then(|r| r.transaction_reference.as_deref()) {
            o.text("transaction_reference", reference);
        }
        time(&mut o, "performed_on", event.performed_on);
        time(&mut o, "created_at", event.created_at);
        o.opt_text("reference_number", event.reference_number.as_deref());
        o.opt_text("classification", event.classification.as_deref());
        o.opt_text("tap_code", event.tap_code.as_deref());
        id(
            &mut o,
            "organisation_id",
            event.merchant_id.map_or(event.business_id.0, |m| m.0),
        );
        o.text("external_system", &event.external_system);
        o.opt_text("external_reference", event.external_reference.as_deref());
        if let Some(amount) = event.amount {
            money(&mut o, "amount", c, amount);
        }
        if let Some(p) = purchase {
            o.plain("currency", p.currency.code());
            o.plain("original_currency", p.original_currency.code());
            decimal(&mut o, "exchange_rate", p.exchange_rate.normalize());
            o.with("amounts", |out| write_amounts(out, c, &p.amounts));
            o.with("original_amounts", |out| {
                write_amounts(out, p.original_currency, &p.original_amounts)
            });
            o.with("lines", |out| write_lines(out, c, p));
        }
        if purchase.is_some() || event.of_event.is_some() {
            match &event.spend {
                Some(spend) => o.with("spend", |out| {
                    let mut s = Obj::begin(out);
                    match spend.requested {
                        Some(requested) => money(&mut s, "requested", c, requested),
                        None => s.plain("requested", "all"),
                    }
                    money(&mut s, "spent", c, spend.spent);
                    let method = if spend.front_end {
                        "front_end"
                    } else {
                        "back_end"
                    };
                    s.plain("reduction_method", method);
                    s.end();
                }),
                None => o.null("spend"),
            }
        }
        if let Some(medium) = &event.payment_medium {
            o.with("payment_medium", |out| {
                let mut m = Obj::begin(out);
                m.opt_text("identifier", medium.identifier.as_deref());
                m.opt_text("brand", medium.brand.as_deref());
                m.opt_text("type", medium.kind.as_deref());
                m.end();
            });
        }
        o.with("awards", |out| {
            json_out::array(out, &event.awards, |out, award| {
                let mut a = Obj::begin(out);
                id(&mut a, "offer_id", award.offer_id.0);
                money(&mut a, "amount", c, award.amount);
                a.plain("redeem", award.redeem.as_str());
                match award.expires_at {
                    Some(at) => time(&mut a, "expires_at", at),
                    None => a.null("expires_at"),
                }
                id(&mut a, "lot_id", award.lot_id(event.id).0);
                a.end();
            })
        });
        o.with("wallet", |out| {
            let mut w = Obj::begin(out);
            money(&mut w, "commerce", c, event.wallet_after.commerce);
            money(&mut w, "open", c, event.wallet_after.open);
            money(&mut w, "reserved", c, event.wallet_after.reserved);
            money(&mut w, "spendable", c, event.spendable_after);
            w.end();
        });
        o.opt_text("claim_code", route.and_then(|r| r.claim_code.as_deref()));
        if cancelled {
            match event.cancelled_at {
                Some(at) => time(&mut o, "cancelled_at", at),
                None => o.null("cancelled_at"),
            }
            o.opt_text("cancel_reason", event.cancel_reason.as_deref());
        }
        if !event.returns.returned_lines.is_empty() {
            o.with("returns", |out| {
                let mut r = Obj::begin(out);
                money(&mut r, "returned_amount", c, event.returns.returned_amount);
                money(&mut r, "clawed_back", c, event.returns.clawed_back);
                money(&mut r, "refunded", c, event.returns.refunded);
                r.end();
            });
        }
        // An achievement's kind and details, and a statement's period and KPIs, beside the
        // event's own members.
        if let Some(a) = &event.achievement {
            o.plain("kind", a.kind.as_str());
            o.opt_text("product_sku", a.product_sku.as_deref());
            o.opt_text("platform", a.platform.as_deref());
            o.opt_text("profile", a.profile.as_deref());
            o.opt_text("action", a.action.as_deref());
            o.opt_text("url", a.url.as_deref());
        }
        if let Some(statement) = &event.statement {
            o.text("period", &statement.period);
            o.with("kpis", |out| {
                json_out::array(out, &statement.kpis, |out, kpi| {
                    let mut k = Obj::begin(out);
                    k.text("name", &kpi.name);
                    k.opt_text("product_sku", kpi.product_sku.as_deref());
                    decimal(&mut k, "value", kpi.value.normalize());
                    k.end();
                })
            });
        }
        if let Some(of_event) = event.of_event {
            id(&mut o, "purchase_id", of_event.0);
        }
        if let Some(referral) = &event.referral {
            let (referrer_event, referred_event) = if event.contact_id == referral.referrer_id {
                (event.id, referral.other_event_id)
            } else {
                (referral.other_event_id, event.id)
            };
            o.with("referral", |out| {
                let mut r = Obj::begin(out);
                id(&mut r, "referrer_contact_id", referral.referrer_id.0);
                id(&mut r, "referred_contact_id", referral.referred_id.0);
                id(&mut r, "referrer_event_id", referrer_event.0);
                id(&mut r, "referred_event_id", referred_event.0);
                r.end();
            });
        }
        o.end();
    }

    /// [`EventView::write_json`] into a buffer of its own.
    pub fn to_json(&self) -> Vec<u8> {
        // A purchase's answer is one to two KiB: one allocation, rarely a second.
        let mut out = Vec::with_capacity(1536);
        self.write_json(&mut out);
        out
    }
}

/// For the answers that embed events in larger JSON (lists, webhooks): the bytes of
/// [`EventView::write_json`], taken as they are.
impl Serialize for EventView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = String::from_utf8(self.to_json()).map_err(serde::ser::Error::custom)?;
        serde_json::value::RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

fn money(o: &mut Obj, key: &str, currency: Currency, amount: Money) {
    let mut buffer = [0u8; MONEY_TEXT_BYTES];
    match money_text(currency, amount, &mut buffer) {
        Some(text) => o.plain(key, text),
        None => o.plain(key, &currency.format(amount)),
    }
}

fn id(o: &mut Obj, key: &str, id: uuid::Uuid) {
    let mut buffer = uuid::Uuid::encode_buffer();
    o.plain(key, id.hyphenated().encode_lower(&mut buffer));
}

fn time(o: &mut Obj, key: &str, at: Timestamp) {
    let mut buffer = [0u8; rewards_core::time::RFC3339_TEXT_BYTES];
    match at.rfc3339_text(&mut buffer) {
        Some(text) => o.plain(key, text),
        None => o.plain(key, &at.to_rfc3339()),
    }
}

fn decimal(o: &mut Obj, key: &str, value: Decimal) {
    let mut buffer = [0u8; MONEY_TEXT_BYTES];
    if let Some(text) = decimal_text(value, &mut buffer) {
        return o.plain(key, text);
    }
    match StackText::of(&value) {
        Some(text) => o.plain(key, text.as_str()),
        None => o.plain(key, &value.to_string()),
    }
}

fn write_amounts(out: &mut Vec<u8>, c: Currency, a: &PurchaseAmounts) {
    let mut o = Obj::begin(out);
    money(&mut o, "net", c, a.net);
    money(&mut o, "tax", c, a.tax);
    money(&mut o, "discount", c, a.discount);
    money(&mut o, "total", c, a.total);
    o.end();
}

fn write_lines(out: &mut Vec<u8>, c: Currency, p: &ValidatedPurchase) {
    json_out::array(out, &p.lines, |out, l| {
        let mut o = Obj::begin(out);
        o.text("sku", &l.sku);
        o.opt_text("name", l.name.as_deref());
        o.opt_text("family", l.family.as_deref());
        decimal(&mut o, "quantity", l.quantity.normalize());
        decimal(
            &mut o,
            "unit_price",
            price_decimal(l.unit_price, p.original_currency),
        );
        money(&mut o, "net_amount", c, l.net);
        money(&mut o, "tax_amount", c, l.tax_amount);
        money(&mut o, "total_amount", c, l.total);
        o.end();
    });
}

struct MoneyView(Currency, Money);

impl Serialize for MoneyView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0u8; MONEY_TEXT_BYTES];
        match money_text(self.0, self.1, &mut buffer) {
            Some(text) => s.serialize_str(text),
            // Not reached for bounded amounts; the allocating form says the same.
            None => s.serialize_str(&self.0.format(self.1)),
        }
    }
}

/// Room for any i64 amount with its sign, a point and up to 19 decimals.
const MONEY_TEXT_BYTES: usize = 48;

/// `Currency::format` without an allocation or the formatting machinery: every answer shows
/// a dozen amounts or more. A test compares the two over many amounts and every currency
/// scale.
fn money_text(
    currency: Currency,
    money: Money,
    buffer: &mut [u8; MONEY_TEXT_BYTES],
) -> Option<&str> {
    let units = usize::try_from(currency.minor_units()).ok()?;
    let minor = money.minor();
    scaled_text(minor < 0, minor.unsigned_abs(), units, buffer)
}

/// `magnitude` shown with `scale` digits after the point (none when `scale` is 0), at least
/// one before it, and a minus sign when `negative`: the text of an amount in minor units and
/// of a decimal's mantissa and scale. Written from the right end of `buffer`, digit by digit;
/// `None` when it does not fit.
fn scaled_text(negative: bool, magnitude: u64, scale: usize, buffer: &mut [u8]) -> Option<&str> {
    let mut at = buffer.len();
    let mut put = |byte: u8| -> Option<()> {
        at = at.checked_sub(1)?;
        *buffer.get_mut(at)? = byte;
        Some(())
    };
    let mut rest = magnitude;
    for _ in 0..scale {
        put(b'0' + (rest % 10) as u8)?;
        rest /= 10;
    }
    if scale > 0 {
        put(b'.')?;
    }
    loop {
        put(b'0' + (rest % 10) as u8)?;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        put(b'-')?;
    }
    std::str::from_utf8(buffer.get(at..)?).ok()
}

/// A decimal as its `Display` writes it, when its mantissa fits in 64 bits (every quantity,
/// price and rate a purchase carries): the digits written directly, without the formatting
/// machinery.
fn decimal_text(value: Decimal, buffer: &mut [u8; MONEY_TEXT_BYTES]) -> Option<&str> {
    let magnitude = u64::try_from(value.mantissa().unsigned_abs()).ok()?;
    let scale = usize::try_from(value.scale()).ok()?;
    scaled_text(value.is_sign_negative(), magnitude, scale, buffer)
}

/// An id written as its canonical text from a stack buffer.
struct IdText(uuid::Uuid);

impl Serialize for IdText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buffer = uuid::Uuid::encode_buffer();
        s.serialize_str(self.0.hyphenated().encode_lower(&mut buffer))
    }
}

struct TimeView(Timestamp);

impl Serialize for TimeView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0u8; rewards_core::time::RFC3339_TEXT_BYTES];
        match self.0.rfc3339_text(&mut buffer) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&self.0.to_rfc3339()),
        }
    }
}

/// Text formatted into a stack buffer: a decimal's digits without a `String` each.
struct StackText {
    bytes: [u8; 64],
    length: usize,
}

impl StackText {
    /// `value` as its `Display` writes it, or `None` if that does not fit.
    fn of(value: &impl std::fmt::Display) -> Option<StackText> {
        use std::fmt::Write;
        let mut text = StackText {
            bytes: [0; 64],
            length: 0,
        };
        write!(text, "{value}").ok()?;
        Some(text)
    }

    fn as_str(&self) -> &str {
        self.bytes
            .get(..self.length)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or_default()
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, part: &str) -> std::fmt::Result {
        let end = self.length + part.len();
        self.bytes
            .get_mut(self.length..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(part.as_bytes());
        self.length = end;
        Ok(())
    }
}

/// A decimal written as its `Display` writes it (normalized by the caller where wanted).
struct DecimalView(Decimal);

impl Serialize for DecimalView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match StackText::of(&self.0) {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.serialize_str(&self.0.to_string()),
        }
    }
}

#[derive(Serialize)]
struct AmountsView {
    net: MoneyView,
    tax: MoneyView,
    discount: MoneyView,
    total: MoneyView,
}

fn amounts_view(c: Currency, a: &PurchaseAmounts) -> AmountsView {
    AmountsView {
        net: MoneyView(c, a.net),
        tax: MoneyView(c, a.tax),
        discount: MoneyView(c, a.discount),
        total: MoneyView(c, a.total),
    }
}

#[derive(Serialize)]
struct AwardView {
    offer_id: IdText,
    amount: MoneyView,
    redeem: &'static str,
    expires_at: Option<TimeView>,
    lot_id: IdText,
}

#[derive(Serialize)]
struct LineView<'a> {
    sku: &'a str,
    name: &'a Option<String>,
    family: &'a Option<String>,
    quantity: DecimalView,
    unit_price: DecimalView,
    net_amount: MoneyView,
    tax_amount: MoneyView,
    total_amount: MoneyView,
}

/// A basket's lines, serialized one by one as a sequence (no vector of views).
struct LinesView<'a>(Currency, &'a ValidatedPurchase);

impl Serialize for LinesView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let LinesView(c, p) = *self;
        s.collect_seq(p.lines.iter().map(|l| LineView {
            sku: &l.sku,
            name: &l.name,
            family: &l.family,
            quantity: DecimalView(l.quantity.normalize()),
            unit_price: DecimalView(price_decimal(l.unit_price, p.original_currency)),
            net_amount: MoneyView(c, l.net),
            tax_amount: MoneyView(c, l.tax_amount),
            total_amount: MoneyView(c, l.total),
        }))
    }
}

#[derive(Serialize)]
struct SpendView {
    requested: String,
    spent: MoneyView,
    reduction_method: &'static str,
}

#[derive(Serialize)]
struct BalancesView {
    commerce: MoneyView,
    open: MoneyView,
    reserved: MoneyView,
    spendable: MoneyView,
}

#[derive(Serialize)]
struct PaymentMediumView<'a> {
    identifier: &'a Option<String>,
    brand: &'a Option<String>,
    #[serde(rename = "type")]
    kind: &'a Option<String>,
}

/// A purchase that processor routing still holds (waiting for its match or its claim, or
/// unmatched), shown like a purchase: no contact until it is claimed, no awards yet.
pub fn render_route(record: &RouteRecord, currency: Currency) -> RouteJson<'_> {
    let p = &record.purchase;
    let pos = record.pos.as_ref();
    RouteJson {
        id: record.id.to_string(),
        event_type: "purchase",
        business_id: record.business_id.to_string(),
        contact_id: pos.map(|pos| pos.contact_id.to_string()),
        wallet_id: None,
        state: "posted",
        origin: pos.map_or("processor", |pos| pos.origin.as_str()),
        match_state: match (record.side, record.state) {
            (_, RouteState::PendingMatch) => Some(MatchState::Pending.as_str()),
            (Side::Pos, RouteState::Unmatched) => Some(MatchState::Unmatched.as_str()),
            _ => None,
        },
        transaction_reference: record.transaction_reference.as_deref(),
        performed_on: TimeView(record.performed_on),
        created_at: TimeView(record.created_at),
        reference_number: &record.reference_number,
        tap_code: &record.tap_code,
        organisation_id: record
            .merchant_id
            .map_or(record.business_id.to_string(), |m| m.to_string()),
        currency: p.currency.code(),
        original_currency: p.original_currency.code(),
        exchange_rate: DecimalView(p.exchange_rate.normalize()),
        amounts: amounts_view(currency, &p.amounts),
        original_amounts: amounts_view(p.original_currency, &p.original_amounts),
        lines: LinesView(currency, p),
        spend: None,
        payment_medium: record.payment_medium.as_ref().map(|pm| PaymentMediumView {
            identifier: &pm.identifier,
            brand: &pm.brand,
            kind: &pm.kind,
        }),
        awards: [],
        wallet: None,
        claim_code: record.claim_code.map(|c| c.to_string()),
    }
}

#[derive(Serialize)]
pub struct RouteJson<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    business_id: String,
    contact_id: Option<String>,
    wallet_id: Option<String>,
    state: &'static str,
    origin: &'a str,
    match_state: Option<&'static str>,
    transaction_reference: Option<&'a str>,
    performed_on: TimeView,
    created_at: TimeView,
    reference_number: &'a Option<String>,
    tap_code: &'a str,
    organisation_id: String,
    currency: &'a str,
    original_currency: &'a str,
    exchange_rate: DecimalView,
    amounts: AmountsView,
    original_amounts: AmountsView,
    lines: LinesView<'a>,
    spend: Option<SpendView>,
    payment_medium: Option<PaymentMediumView<'a>>,
    awards: [AwardView; 0],
    wallet: Option<BalancesView>,
    claim_code: Option<String>,
}

/// A basket's lines as the purchase shows them (an estimate shows the same).
pub fn render_lines(currency: Currency, purchase: &ValidatedPurchase) -> Value {
    crate::json_value(&LinesView(currency, purchase))
}

/// A basket's amounts, in the business currency and as sent.
pub fn render_purchase_amounts(currency: Currency, purchase: &ValidatedPurchase) -> (Value, Value) {
    (
        crate::json_value(&amounts_view(currency, &purchase.amounts)),
        crate::json_value(&amounts_view(currency, &purchase.original_amounts)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let values = [
            Decimal::MAX,
            Decimal::MIN,
            Decimal::ZERO,
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::new(123_456_789, 4),
            Decimal::new(i64::MAX, 10),
            Decimal::new(i64::MIN, 0),
        ];
        for value in values {
            for value in [value, value.normalize()] {
                let text = StackText::of(&value).expect("any decimal fits");
                assert_eq!(text.as_str(), value.to_string());
            }
        }
    }

    #[test]
    fn decimals_with_small_mantissas_are_written_as_display_writes_them() {
        let mut values = vec![
            Decimal::ZERO,
            -Decimal::ZERO,
            Decimal::new(0, 5),
            Decimal::new(-0, 3).normalize(),
            Decimal::new(1, 28),
            Decimal::new(-1, 28),
            Decimal::new(5, 3),
            Decimal::new(123_456_789, 4),
            Decimal::new(i64::MAX, 10),
            Decimal::new(i64::MIN, 0),
            Decimal::new(i64::MIN + 1, 19),
            Decimal::from(u64::MAX),
            Decimal::from(u64::MAX) + Decimal::ONE,
            Decimal::MAX,
            Decimal::MIN,
        ];
        for scale in 0..=28 {
            values.extend((0..400).map(|i| Decimal::new(i * 104_729 - 20_000_000, scale)));
        }
        let mut negative_zero = Decimal::ZERO;
        negative_zero.set_sign_negative(true);
        values.push(negative_zero);
        for value in values {
            for value in [value, value.normalize()] {
                let mut buffer = [0u8; MONEY_TEXT_BYTES];
                let expected = value.to_string();
                match decimal_text(value, &mut buffer) {
                    Some(text) => assert_eq!(text, expected, "{value:?}"),
                    // Only a mantissa past 64 bits takes the formatting machinery.
                    None => assert!(value.mantissa().unsigned_abs() > u128::from(u64::MAX)),
                }
            }
        }
    }

    #[test]
    fn amounts_are_written_as_currency_format_writes_them() {
        let mut amounts: Vec<i64> = vec![0, 1, -1, 9, 10, 99, 100, 101, -105, 123_456_789];
        amounts.extend([
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
            10_i64.pow(18),
            -(10_i64.pow(15)),
        ]);
        amounts.extend((0..2000).map(|i| i * 7919 - 5_000_000));
        for code in ["JPY", "EUR", "BHD", "CLF"] {
            let currency = Currency::parse(code).expect("a known currency");
            for &minor in &amounts {
                let money = Money::from_minor(minor);
                let mut buffer = [0u8; MONEY_TEXT_BYTES];
                assert_eq!(
                    money_text(currency, money, &mut buffer),
                    Some(currency.format(money).as_str()),
                    "{minor} {code}"
                );
            }
        }
    }

    /// The event's JSON as the derived serde views wrote it before the hand-written writer:
    /// the oracle the writer is compared with, byte for byte.
    mod serde_oracle {
        use super::super::*;

        /// An event's awards, serialized one by one as a sequence.
        struct AwardsView<'a>(
            Currency,
            rewards_core::EventId,
            &'a [crate::events::AwardRecord],
        );

        impl Serialize for AwardsView<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let AwardsView(c, event, awards) = *self;
                s.collect_seq(awards.iter().map(|a| AwardView {
                    offer_id: IdText(a.offer_id.0),
                    amount: MoneyView(c, a.amount),
                    redeem: a.redeem.as_str(),
                    expires_at: a.expires_at.map(TimeView),
                    lot_id: IdText(a.lot_id(event).0),
                }))
            }
        }

        #[derive(Serialize)]
        struct ReturnsView {
            returned_amount: MoneyView,
            clawed_back: MoneyView,
            refunded: MoneyView,
        }

        #[derive(Serialize)]
        struct EventJson<'a> {
            id: IdText,
            #[serde(rename = "type")]
            event_type: &'static str,
            business_id: IdText,
            contact_id: IdText,
            wallet_id: IdText,
            state: &'static str,
            origin: &'a str,
            match_state: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            transaction_reference: Option<&'a str>,
            performed_on: TimeView,
            created_at: TimeView,
            reference_number: &'a Option<String>,
            classification: &'a Option<String>,
            tap_code: &'a Option<String>,
            organisation_id: IdText,
            external_system: &'a str,
            external_reference: &'a Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            amount: Option<MoneyView>,
            #[serde(skip_serializing_if = "Option::is_none")]
            currency: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            original_currency: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            exchange_rate: Option<DecimalView>,
            #[serde(skip_serializing_if = "Option::is_none")]
            amounts: Option<AmountsView>,
            #[serde(skip_serializing_if = "Option::is_none")]
            original_amounts: Option<AmountsView>,
            #[serde(skip_serializing_if = "Option::is_none")]
            lines: Option<LinesView<'a>>,
            /// Present (possibly null) on purchases only.
            #[serde(skip_serializing_if = "Option::is_none")]
            spend: Option<Option<SpendView>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            payment_medium: Option<PaymentMediumView<'a>>,
            awards: AwardsView<'a>,
            wallet: BalancesView,
            claim_code: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cancelled_at: Option<Option<TimeView>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cancel_reason: Option<&'a Option<String>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            returns: Option<ReturnsView>,
            /// An achievement's kind and details, beside the event's own fields.
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            achievement: Option<AchievementView<'a>>,
            /// A financial statement's period and KPIs.
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            statement: Option<StatementView<'a>>,
            /// The purchase a spend request spent on.
            #[serde(skip_serializing_if = "Option::is_none")]
            purchase_id: Option<IdText>,
            /// A referral's two contacts and two events (one on each side's wallet).
            #[serde(skip_serializing_if = "Option::is_none")]
            referral: Option<ReferralView>,
        }

        #[derive(Serialize)]
        struct ReferralView {
            referrer_contact_id: IdText,
            referred_contact_id: IdText,
            referrer_event_id: IdText,
            referred_event_id: IdText,
        }

        #[derive(Serialize)]
        struct StatementView<'a> {
            period: &'a str,
            kpis: Vec<KpiView<'a>>,
        }

        #[derive(Serialize)]
        struct KpiView<'a> {
            name: &'a str,
            product_sku: &'a Option<String>,
            value: DecimalView,
        }

        #[derive(Serialize)]
        struct AchievementView<'a> {
            kind: &'static str,
            product_sku: &'a Option<String>,
            platform: &'a Option<String>,
            profile: &'a Option<String>,
            action: &'a Option<String>,
            url: &'a Option<String>,
        }

        /// The event's JSON as serde wrote it before [`EventView::write_json`].
        pub(super) fn serde_bytes(this: &EventView) -> Vec<u8> {
            {
                let event = this.event;
                let c = this.currency;
                let purchase = event.purchase.as_ref();
                let cancelled = event.state == EventState::Cancelled;
                let view = EventJson {
                    id: IdText(event.id.0),
                    event_type: event.event_type.as_str(),
                    business_id: IdText(event.business_id.0),
                    contact_id: IdText(event.contact_id.0),
                    wallet_id: IdText(event.wallet_id.0),
                    state: if cancelled { "cancelled" } else { "posted" },
                    origin: &event.origin,
                    match_state: event
                        .route
                        .as_ref()
                        .and_then(|r| r.match_state)
                        .map(MatchState::as_str),
                    transaction_reference: event
                        .route
                        .as_ref()
                        .and_then(|r| r.transaction_reference.as_deref()),
                    performed_on: TimeView(event.performed_on),
                    created_at: TimeView(event.created_at),
                    reference_number: &event.reference_number,
                    classification: &event.classification,
                    tap_code: &event.tap_code,
                    organisation_id: IdText(event.merchant_id.map_or(event.business_id.0, |m| m.0)),
                    external_system: &event.external_system,
                    external_reference: &event.external_reference,
                    amount: event.amount.map(|a| MoneyView(c, a)),
                    currency: purchase.map(|p| p.currency.code()),
                    original_currency: purchase.map(|p| p.original_currency.code()),
                    exchange_rate: purchase.map(|p| DecimalView(p.exchange_rate.normalize())),
                    amounts: purchase.map(|p| amounts_view(c, &p.amounts)),
                    original_amounts: purchase
                        .map(|p| amounts_view(p.original_currency, &p.original_amounts)),
                    lines: purchase.map(|p| LinesView(c, p)),
                    spend: (purchase.is_some() || event.of_event.is_some()).then(|| {
                        event.spend.as_ref().map(|s| SpendView {
                            requested: s.requested.map_or("all".to_string(), |r| c.format(r)),
                            spent: MoneyView(c, s.spent),
                            reduction_method: if s.front_end { "front_end" } else { "back_end" },
                        })
                    }),
                    payment_medium: event.payment_medium.as_ref().map(|pm| PaymentMediumView {
                        identifier: &pm.identifier,
                        brand: &pm.brand,
                        kind: &pm.kind,
                    }),
                    awards: AwardsView(c, event.id, &event.awards),
                    wallet: BalancesView {
                        commerce: MoneyView(c, event.wallet_after.commerce),
                        open: MoneyView(c, event.wallet_after.open),
                        reserved: MoneyView(c, event.wallet_after.reserved),
                        spendable: MoneyView(c, event.spendable_after),
                    },
                    claim_code: event.route.as_ref().and_then(|r| r.claim_code.as_deref()),
                    cancelled_at: cancelled.then(|| event.cancelled_at.map(TimeView)),
                    cancel_reason: cancelled.then_some(&event.cancel_reason),
                    returns: (!event.returns.returned_lines.is_empty()).then_some(ReturnsView {
                        returned_amount: MoneyView(c, event.returns.returned_amount),
                        clawed_back: MoneyView(c, event.returns.clawed_back),
                        refunded: MoneyView(c, event.returns.refunded),
                    }),
                    achievement: event.achievement.as_ref().map(|a| AchievementView {
                        kind: a.kind.as_str(),
                        product_sku: &a.product_sku,
                        platform: &a.platform,
                        profile: &a.profile,
                        action: &a.action,
                        url: &a.url,
                    }),
                    purchase_id: event.of_event.map(|id| IdText(id.0)),
                    referral: event.referral.as_ref().map(|r| {
                        let (referrer_event, referred_event) = if event.contact_id == r.referrer_id
                        {
                            (event.id, r.other_event_id)
                        } else {
                            (r.other_event_id, event.id)
                        };
                        ReferralView {
                            referrer_contact_id: IdText(r.referrer_id.0),
                            referred_contact_id: IdText(r.referred_id.0),
                            referrer_event_id: IdText(referrer_event.0),
                            referred_event_id: IdText(referred_event.0),
                        }
                    }),
                    statement: event.statement.as_ref().map(|st| StatementView {
                        period: &st.period,
                        kpis: st
                            .kpis
                            .iter()
                            .map(|k| KpiView {
                                name: &k.name,
                                product_sku: &k.product_sku,
                                value: DecimalView(k.value.normalize()),
                            })
                            .collect(),
                    }),
                };
                serde_json::to_vec(&view).unwrap()
            }
        }
    }

    use crate::events::EventType;
    use crate::events::{
        AchievementRecord, AwardLot, AwardRecord, KpiRecord, PaymentMediumRecord, ReferralRecord,
        ReturnsRecord, RouteFacts, SpendRecord, StatementRecord,
    };
    use rewards_core::offer::{AchievementKind, Redemption};
    use rewards_core::{BusinessId, ContactId, EventId, LotId, MerchantId, OfferId, WalletId};

    fn money(minor: i64) -> Money {
        Money::from_minor(minor)
    }

    fn plain_event(event_type: EventType) -> EventRecord {
        let mut event = EventRecord::posted(
            EventId::from_bytes([1; 16]),
            event_type,
            BusinessId::from_bytes([2; 16]),
            ContactId::from_bytes([3; 16]),
            WalletId::from_bytes([4; 16]),
            Timestamp(1_700_000_001_000),
        );
        event.performed_on = Timestamp(1_700_000_000_123);
        event
    }

    fn line(sku: &str, name: Option<&str>, quantity: Decimal, price: Decimal) -> LineInput {
        LineInput {
            sku: sku.into(),
            name: name.map(Into::into),
            family: Some("fam\\ily".into()),
            quantity,
            unit_price: price,
            tax_rate: Some(Decimal::new(5, 2)),
            tax_amount: None,
        }
    }

    /// Events with every member the answer can have, in every state that changes its shape.
    fn events() -> Vec<EventRecord> {
        let eur = Currency::parse("EUR").unwrap();
        let mut purchase = plain_event(EventType::Purchase);
        purchase.origin = "pos \"front\"\n".into();
        purchase.classification = Some("grocery".into());
        purchase.reference_number = Some("R-1".into());
        purchase.tap_code = Some("T\u{1}".into());
        purchase.merchant_id = Some(MerchantId::from_bytes([5; 16]));
        purchase.external_system = "erp".into();
        purchase.external_reference = Some("ext-é".into());
        let rates = std::collections::BTreeMap::from([("USD".to_string(), Decimal::new(915, 3))]);
        let input = PurchaseInput {
            currency: Some("USD".into()),
            lines: vec![
                line(
                    "sku-1",
                    Some("Milk"),
                    Decimal::new(2000, 3),
                    Decimal::new(120, 2),
                ),
                line("sku\"2", None, Decimal::new(15, 1), Decimal::new(7, 0)),
            ],
            discount_amount: Some(Decimal::new(10, 2)),
            ..PurchaseInput::default()
        };
        let context = rewards_core::purchase::PurchaseContext {
            currency: eur,
            exchange_rates: &rates,
            amount_tolerance: Decimal::new(1, 2),
        };
        let identity = rewards_core::identity::Identity::WalletCode("W".into());
        purchase.purchase = Some(
            rewards_core::purchase::validate_purchase(identity, input, &context)
                .expect("a valid purchase"),
        );
        purchase.payment_medium = Some(PaymentMediumRecord {
            identifier: Some("4111".into()),
            brand: None,
            kind: Some("card".into()),
        });
        purchase.awards = vec![
            AwardRecord {
                offer_id: OfferId::from_bytes([6; 16]),
                amount: money(150),
                redeem: Redemption::Deferred,
                expires_at: Some(Timestamp(1_800_000_000_000)),
                lot: AwardLot::Stated(LotId::from_bytes([7; 16])),
                merchant_id: None,
            },
            AwardRecord {
                offer_id: OfferId::from_bytes([8; 16]),
                amount: money(5),
                redeem: Redemption::Instant,
                expires_at: None,
                lot: AwardLot::OfEvent(1),
                merchant_id: None,
            },
        ];
        purchase.spend = Some(SpendRecord {
            requested: None,
            spent: money(300),
            front_end: true,
        });
        purchase.wallet_after = rewards_core::wallet::Balances {
            commerce: money(150),
            open: money(-5),
            reserved: money(0),
        };
        purchase.spendable_after = money(145);
        let mut routed = purchase.clone();
        routed.route = Some(RouteFacts {
            match_state: Some(MatchState::Matched),
            claim_code: Some("ABCD-EFGH".into()),
            transaction_reference: Some("tx-1".into()),
            processor_id: None,
        });
        routed.spend = Some(SpendRecord {
            requested: Some(money(250)),
            spent: money(250),
            front_end: false,
        });
        let mut no_spend = purchase.clone();
        no_spend.spend = None;
        no_spend.payment_medium = None;
        let mut cancelled = purchase.clone();
        cancelled.state = EventState::Cancelled;
        cancelled.cancelled_at = Some(Timestamp(1_700_000_100_000));
        cancelled.cancel_reason = Some("duplicate".into());
        cancelled.returns = ReturnsRecord {
            returned_lines: vec![("sku-1".into(), Decimal::ONE)],
            returned_amount: money(648),
            clawed_back: money(40),
            refunded: money(0),
        };
        let mut cancelled_bare = plain_event(EventType::Topup);
        cancelled_bare.state = EventState::Cancelled;
        cancelled_bare.amount = Some(money(1000));
        let mut spend_request = plain_event(EventType::SpendRequest);
        spend_request.of_event = Some(EventId::from_bytes([10; 16]));
        spend_request.amount = Some(money(700));
        let mut spend_request_spent = spend_request.clone();
        spend_request_spent.spend = Some(SpendRecord {
            requested: Some(money(700)),
            spent: money(700),
            front_end: false,
        });
        let mut achievement = plain_event(EventType::Achievement);
        achievement.achievement = Some(AchievementRecord {
            kind: AchievementKind::SocialMedia,
            product_sku: None,
            platform: Some("social".into()),
            profile: Some("@me".into()),
            action: Some("like".into()),
            url: Some("https://example.org/a?b=\"c\"".into()),
        });
        let mut statement = plain_event(EventType::FinancialStatement);
        statement.statement = Some(StatementRecord {
            period: "2026-11".into(),
            kpis: vec![
                KpiRecord {
                    name: "balance".into(),
                    product_sku: Some("loan-1".into()),
                    value: Decimal::new(1_250_000, 4),
                },
                KpiRecord {
                    name: "count".into(),
                    product_sku: None,
                    value: Decimal::new(-3, 0),
                },
            ],
        });
        let mut referrer = plain_event(EventType::Referral);
        referrer.referral = Some(ReferralRecord {
            referrer_id: ContactId::from_bytes([3; 16]),
            referred_id: ContactId::from_bytes([11; 16]),
            other_event_id: EventId::from_bytes([12; 16]),
        });
        let mut referred = referrer.clone();
        referred.contact_id = ContactId::from_bytes([11; 16]);
        vec![
            purchase,
            routed,
            no_spend,
            cancelled,
            cancelled_bare,
            spend_request,
            spend_request_spent,
            achievement,
            statement,
            referrer,
            referred,
            plain_event(EventType::SignUp),
        ]
    }

    #[test]
    fn the_event_writer_writes_what_serde_wrote_byte_for_byte() {
        for currency in ["EUR", "JPY", "BHD"] {
            let currency = Currency::parse(currency).unwrap();
            for event in events() {
                let view = render_event(&event, currency);
                let written = view.to_json();
                let expected = serde_oracle::serde_bytes(&view);
                assert_eq!(
                    String::from_utf8(written.clone()).unwrap(),
                    String::from_utf8(expected).unwrap(),
                    "{:?}",
                    event.event_type
                );
                // Embedded in larger JSON (lists, webhooks) it stays the same object.
                let embedded = serde_json::to_vec(&[&view]).unwrap();
                assert_eq!(embedded, [b"[", &written[..], b"]"].concat());
                let tree = crate::json_value(&view);
                assert_eq!(tree, serde_json::from_slice::<Value>(&written).unwrap());
            }
        }
    }
}
