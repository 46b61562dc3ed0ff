//! Contact JSON of API.md.

use rewards_core::contact::Contact;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Clone, Default, utoipa::ToSchema)]
pub struct PaymentMediumInput {
    #[schema(max_length = 256)]
    pub identifier: String,
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ContactBody {
    #[serde(default)]
    #[schema(max_length = 256)]
    pub code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub cim: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::list")]
    pub payment_media: Vec<PaymentMediumInput>,
    #[serde(default, deserialize_with = "crate::dto::object::values")]
    pub gift_cards: Vec<String>,
    #[serde(default)]
    pub referred_by: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SpendBlockBody {
    pub blocked: bool,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub reason: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SchemeActionBody {
    pub action: String,
    pub scheme_id: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub code: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct SessionBody {
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

pub fn render_contact(c: &Contact) -> Value {
    json!({
        "id": c.id.to_string(),
        "business_id": c.business_id.to_string(),
        "code": c.code,
        "cim": c.cim,
        "name": c.name,
        "email": c.email,
        "phone": c.phone,
        "payment_media": c.payment_media.iter().map(|m| json!({
            "identifier": m.identifier, "brand": m.brand, "type": m.kind,
        })).collect::<Vec<_>>(),
        "gift_cards": c.gift_cards,
        "referral_code": c.referral_code,
        "referred_by": c.referred_by.map(|r| r.to_string()),
        "wallet_id": c.wallet_id.to_string(),
        "wallet_code": c.wallet_code,
        "scheme_ids": c.scheme_ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "tier": c.rewards.tier,
        "spend_blocked": c.spend_blocked,
        "spend_block_reason": c.spend_block_reason,
        "created_at": c.created_at.to_rfc3339(),
    })
}
