//! Customer events other than purchases (SPEC section 4): achievements, financial statements,
//! referrals and spend requests against posted purchases.

use actix_web::{web, HttpRequest, HttpResponse};
use rewards_core::offer::AchievementKind;
use rewards_core::wallet::SpendAmount;
use rewards_core::{DomainError, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::json::parse;
use super::problem::ApiResult;
use super::purchases::{answer, once, tap_of};
use super::{named_business, require_role};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::clock;
use crate::dto::purchase::PaymentMediumBody;
use crate::dto::{canonical, key_part, text, Dec, Problems};
use crate::events::{AchievementRecord, KpiRecord, PaymentMediumRecord, StatementRecord};
use crate::idempotency::IdempotencyKey;
use crate::identities::identify;
use crate::wallets::{self, AchievementJob, Command, Reply, SpendRequestJob, StatementJob};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/achievements", web::post().to(post_achievement))
        .route("/v1/financial-statements", web::post().to(post_statement))
        .route("/v1/spend-requests", web::post().to(post_spend_request))
        .route("/v1/referrals", web::post().to(post_referral));
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct AchievementBody {
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub identity: Option<rewards_core::identity::IdentityInput>,
    /// `achievement` (the default), `financial_achievement`, `social_media` or `web`.
    #[serde(default)]
    pub kind: Option<String>,
    /// What was achieved (`top_up`, `loan_balance`, `like`...): offers match on it; an unknown
    /// classification is simply a new one. Required.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub classification: String,
    /// An amount in the business currency (a financial achievement's balance, a top-up).
    #[serde(default)]
    pub amount: Option<Dec>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub product_sku: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub payment_medium: Option<PaymentMediumBody>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub platform: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub profile: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub action: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub url: Option<String>,
    #[serde(default)]
    pub performed_on: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub tap_code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_reference: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/achievements",
    tag = "purchases",
    summary = "An achievement of a contact (a top-up, a loan balance, a like, a visited page): achievement offers award on it",
    request_body = AchievementBody,
    responses((status = 201, description = "The achievement event with its awards", body = serde_json::Value))
)]
async fn post_achievement(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    let peer = crate::http::client_ip(&request);
    answer(submit_achievement(&app, &principal, &body, peer.as_deref()).await)
}

fn optional_text(fields: &mut Problems, name: &str, value: &Option<String>) -> Option<String> {
    value.as_deref().and_then(|v| fields.take(text(name, v)))
}

/// An event body's identity: its problems are added to `fields`.
fn identity_field(
    fields: &mut Problems,
    identity: &Option<rewards_core::identity::IdentityInput>,
) -> ApiResult<Option<rewards_core::identity::Identity>> {
    side_field(fields, "identity", identity)
}

/// An event body's `performed_on` (now when absent).
fn performed_on_field(fields: &mut Problems, value: Option<&str>) -> Option<Timestamp> {
    match value {
        Some(t) => fields
            .take(crate::dto::time("performed_on", Some(t)))
            .flatten(),
        None => Some(clock::now()),
    }
}

/// The external system and reference of an event (parts of its idempotency key), and the key.
fn event_key<T: Serialize>(
    fields: &mut Problems,
    business: rewards_core::BusinessId,
    system: Option<&str>,
    reference: Option<&str>,
    body: &T,
) -> (String, Option<IdempotencyKey>) {
    fields.take(key_part("external_system", system));
    fields.take(key_part("external_reference", reference));
    let system = system.unwrap_or_default().to_string();
    let key = reference.map(|reference| {
        IdempotencyKey::new(business, "event", &system, reference, &canonical(body))
    });
    (system, key)
}

/// Runs an event exactly once by its key: its contact is identified once the key is claimed (a
/// repeat is answered from the store without using a one-time code again), the command `make`
/// builds goes to that contact's wallet actor, and a one-time code the event took is given back
/// if it failed.
async fn submit_to_contact<F>(
    app: &Arc<App>,
    key: Option<IdempotencyKey>,
    business: rewards_core::BusinessId,
    identity: rewards_core::identity::Identity,
    principal: &Principal,
    make: F,
) -> ApiResult<(Reply, bool)>
where
    F: FnOnce(Option<IdempotencyKey>, rewards_core::identity::Identity) -> Command,
{
    let presented_by = principal.key_id;
    once(app, key, move |idempotency| async move {
        let identified = identify(app, business, &identity, presented_by)?;
        let result = wallets::call(app, identified.contact, make(idempotency, identity)).await;
        identified.settle(app, result)
    })
    .await
}

pub(super) async fn submit_achievement(
    app: &Arc<App>,
    principal: &Principal,
    raw: &[u8],
    peer: Option<&str>,
) -> ApiResult<(Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let body: AchievementBody = parse(raw)?;
    let snapshot = named_business(app, principal, body.business_id.as_deref())?;
    let business_id = snapshot.business.id;
    let currency = snapshot.business.currency;
    let mut fields = Problems::default();
    let identity = identity_field(&mut fields, &body.identity)?;
    let kind = match body.kind.as_deref() {
        None => Some(AchievementKind::Achievement),
        Some(kind) => {
            let parsed = AchievementKind::parse(kind);
            if parsed.is_none() {
                fields.add(
                    "kind",
                    "must be achievement, financial_achievement, social_media or web",
                );
            }
            parsed
        }
    };
    let classification = fields.take(text("classification", &body.classification));
    fields.take(key_part("classification", Some(&body.classification)));
    let amount = body
        .amount
        .and_then(|d| fields.take(currency.parse_amount("amount", d.0)));
    let details = AchievementRecord {
        kind: kind.unwrap_or_default(),
        product_sku: optional_text(&mut fields, "product_sku", &body.product_sku),
        platform: optional_text(&mut fields, "platform", &body.platform),
        profile: optional_text(&mut fields, "profile", &body.profile),
        action: optional_text(&mut fields, "action", &body.action),
        url: optional_text(&mut fields, "url", &body.url),
    };
    let performed_on = performed_on_field(&mut fields, body.performed_on.as_deref());
    let (external_system, key) = event_key(
        &mut fields,
        business_id,
        body.external_system.as_deref(),
        body.external_reference.as_deref(),
        &body,
    );
    let tap = tap_of(&snapshot, body.tap_code.as_deref(), peer)?;
    fields.finish()?;
    let (Some(identity), Some(classification), Some(performed_on)) =
        (identity, classification, performed_on)
    else {
        return Err(DomainError::validation("body", "is not a valid achievement").into());
    };
    let merchant_id = tap
        .as_ref()
        .and_then(|t| t.merchant_id)
        .or(principal.merchant_id);
    let payment_medium = body.payment_medium.as_ref().map(|m| PaymentMediumRecord {
        identifier: m.identifier.clone(),
        brand: m.brand.clone(),
        kind: m.kind.clone(),
    });

    let external_reference = body.external_reference.clone();
    submit_to_contact(
        app,
        key,
        business_id,
        identity,
        principal,
        move |idempotency, identity| {
            Command::Achievement(Box::new(AchievementJob {
                snapshot,
                event_id: app.placement.event_id(),
                classification,
                amount,
                details,
                performed_on,
                tap_code: tap.map(|t| t.code),
                merchant_id,
                payment_medium,
                identity,
                origin: "pos".into(),
                external_system,
                external_reference,
                idempotency,
            }))
        },
    )
    .await
}

/// KPIs per statement.
pub const MAX_KPIS: usize = 100;

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct KpiBody {
    #[serde(default)]
    #[schema(max_length = 256)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub product_sku: Option<String>,
    pub value: Dec,
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct StatementBody {
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub identity: Option<rewards_core::identity::IdentityInput>,
    /// What the statement is of (`loan`, `savings`...). Required.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub classification: String,
    /// The month, `YYYY-MM`. One statement per contact, classification and period.
    #[serde(default)]
    #[schema(max_length = 7)]
    pub period: String,
    #[serde(default, deserialize_with = "crate::dto::object::list")]
    #[schema(max_items = 100)]
    pub kpis: Vec<KpiBody>,
    #[serde(default)]
    pub performed_on: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_reference: Option<String>,
}

/// `YYYY-MM` with a month from 01 to 12.
fn period(value: &str) -> Result<String, rewards_core::FieldError> {
    let bytes = value.as_bytes();
    let valid = bytes.len() == 7
        && bytes.get(4) == Some(&b'-')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || b.is_ascii_digit())
        && matches!(
            value.get(5..7).and_then(|m| m.parse::<u8>().ok()),
            Some(1..=12)
        );
    if valid {
        Ok(value.to_string())
    } else {
        Err(rewards_core::FieldError::new(
            "period",
            "must be a month, YYYY-MM",
        ))
    }
}

#[utoipa::path(
    post,
    path = "/v1/financial-statements",
    tag = "purchases",
    summary = "A contact's key performance indicators for a month; one per classification and period",
    request_body = StatementBody,
    responses((status = 201, description = "The financial statement event", body = serde_json::Value))
)]
async fn post_statement(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    answer(submit_statement(&app, &principal, &body).await)
}

async fn submit_statement(
    app: &Arc<App>,
    principal: &Principal,
    raw: &[u8],
) -> ApiResult<(Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let body: StatementBody = parse(raw)?;
    let snapshot = named_business(app, principal, body.business_id.as_deref())?;
    let business_id = snapshot.business.id;
    let mut fields = Problems::default();
    let identity = identity_field(&mut fields, &body.identity)?;
    let classification = fields.take(text("classification", &body.classification));
    let month = fields.take(period(body.period.trim()));
    if body.kpis.is_empty() {
        fields.add("kpis", "name at least one KPI");
    }
    if body.kpis.len() > MAX_KPIS {
        fields.add("kpis", format!("at most {MAX_KPIS} KPIs"));
    }
    let mut kpis = Vec::with_capacity(body.kpis.len().min(MAX_KPIS));
    for (i, kpi) in body.kpis.iter().take(MAX_KPIS).enumerate() {
        let name = fields.take(text(&format!("kpis[{i}].name"), &kpi.name));
        let product_sku = kpi
            .product_sku
            .as_deref()
            .and_then(|p| fields.take(text(&format!("kpis[{i}].product_sku"), p)));
        if let Some(name) = name {
            kpis.push(KpiRecord {
                name,
                product_sku,
                value: kpi.value.0,
            });
        }
    }
    let performed_on = performed_on_field(&mut fields, body.performed_on.as_deref());
    let (external_system, key) = event_key(
        &mut fields,
        business_id,
        body.external_system.as_deref(),
        body.external_reference.as_deref(),
        &body,
    );
    fields.finish()?;
    let (Some(identity), Some(classification), Some(month), Some(performed_on)) =
        (identity, classification, month, performed_on)
    else {
        return Err(DomainError::validation("body", "is not a valid statement").into());
    };

    let external_reference = body.external_reference.clone();
    submit_to_contact(
        app,
        key,
        business_id,
        identity,
        principal,
        move |idempotency, identity| {
            Command::Statement(Box::new(StatementJob {
                snapshot,
                event_id: app.placement.event_id(),
                classification,
                statement: StatementRecord {
                    period: month,
                    kpis,
                },
                performed_on,
                identity,
                external_system,
                external_reference,
                idempotency,
            }))
        },
    )
    .await
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct SpendRequestBody {
    #[serde(default)]
    pub business_id: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub identity: Option<rewards_core::identity::IdentityInput>,
    /// The contact's posted purchase the money is spent on.
    #[serde(default)]
    pub purchase_id: String,
    pub amount: crate::dto::purchase::SpendAmountBody,
    /// Refuse (`insufficient_funds`) rather than spend less than asked.
    #[serde(default)]
    pub require_full: bool,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_reference: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/spend-requests",
    tag = "purchases",
    summary = "Spend wallet money on a posted purchase, up to what is left of its total",
    request_body = SpendRequestBody,
    responses((status = 201, description = "`{id, purchase_id, requested, spent, reduction_method, wallet}`", body = serde_json::Value))
)]
async fn post_spend_request(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    answer(submit_spend_request(&app, &principal, &body).await)
}

async fn submit_spend_request(
    app: &Arc<App>,
    principal: &Principal,
    raw: &[u8],
) -> ApiResult<(Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let body: SpendRequestBody = parse(raw)?;
    let snapshot = named_business(app, principal, body.business_id.as_deref())?;
    let business_id = snapshot.business.id;
    let currency = snapshot.business.currency;
    let mut fields = Problems::default();
    let identity = identity_field(&mut fields, &body.identity)?;
    let purchase_id: Option<rewards_core::EventId> =
        fields.take(crate::dto::parse_id("purchase_id", &body.purchase_id));
    let amount = match body.amount {
        crate::dto::purchase::SpendAmountBody::All => Some(SpendAmount::All),
        crate::dto::purchase::SpendAmountBody::Amount(d) => {
            match fields.take(currency.parse_amount("amount", d)) {
                Some(m) if m.is_positive() => Some(SpendAmount::Exact(m)),
                Some(_) => {
                    fields.add("amount", "must be above zero");
                    None
                }
                None => None,
            }
        }
    };
    let (external_system, key) = event_key(
        &mut fields,
        business_id,
        body.external_system.as_deref(),
        body.external_reference.as_deref(),
        &body,
    );
    fields.finish()?;
    let (Some(identity), Some(purchase_id), Some(amount)) = (identity, purchase_id, amount) else {
        return Err(DomainError::validation("body", "is not a valid spend request").into());
    };
    let (require_full, external_reference) = (body.require_full, body.external_reference.clone());
    submit_to_contact(
        app,
        key,
        business_id,
        identity,
        principal,
        move |idempotency, identity| {
            Command::SpendOnPurchase(Box::new(SpendRequestJob {
                snapshot,
                event_id: app.placement.event_id(),
                purchase_id,
                amount,
                require_full,
                identity,
                external_system,
                external_reference,
                idempotency,
            }))
        },
    )
    .await
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct ReferralBody {
    #[serde(default)]
    pub business_id: Option<String>,
    /// The contact who introduces the other. Required.
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub referrer: Option<rewards_core::identity::IdentityInput>,
    /// The contact introduced: referred once. Required.
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    pub referred: Option<rewards_core::identity::IdentityInput>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub external_reference: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/referrals",
    tag = "purchases",
    summary = "A referral: the referrer introduces the referred contact (referred once; a daily limit per referrer); referral offers award both",
    request_body = ReferralBody,
    responses((status = 201, description = "The referrer's referral event with its awards; `referral` names both sides and both events", body = serde_json::Value))
)]
async fn post_referral(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    answer(submit_referral(&app, &principal, &body).await)
}

/// An identity field named `name`: its problems are added to `fields`.
fn side_field(
    fields: &mut Problems,
    name: &str,
    identity: &Option<rewards_core::identity::IdentityInput>,
) -> ApiResult<Option<rewards_core::identity::Identity>> {
    match identity {
        Some(identity) => match identity.validate(name) {
            Ok(identity) => Ok(Some(identity)),
            Err(DomainError::ValidationFailed(errors)) => {
                fields.0.extend(errors);
                Ok(None)
            }
            Err(error) => Err(error.into()),
        },
        None => {
            fields.add(name, "exactly one identity is required");
            Ok(None)
        }
    }
}

async fn submit_referral(
    app: &Arc<App>,
    principal: &Principal,
    raw: &[u8],
) -> ApiResult<(Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let body: ReferralBody = parse(raw)?;
    let snapshot = named_business(app, principal, body.business_id.as_deref())?;
    let business_id = snapshot.business.id;
    let mut fields = Problems::default();
    let referrer = side_field(&mut fields, "referrer", &body.referrer)?;
    let referred = side_field(&mut fields, "referred", &body.referred)?;
    let (external_system, key) = event_key(
        &mut fields,
        business_id,
        body.external_system.as_deref(),
        body.external_reference.as_deref(),
        &body,
    );
    fields.finish()?;
    let (Some(referrer), Some(referred)) = (referrer, referred) else {
        return Err(DomainError::validation("body", "is not a valid referral").into());
    };
    let external_reference = body.external_reference.clone();
    let presented_by = principal.key_id;
    // The whole referral, its idempotency claim included, runs in a task of its own: a client
    // that goes away neither stops it half way nor frees its key while it runs.
    let app = app.clone();
    let task = actix::spawn(async move {
        let app = &app;
        once(app, key, move |idempotency| async move {
            let referrer = identify(app, business_id, &referrer, presented_by)?;
            let referred = match identify(app, business_id, &referred, presented_by) {
                Ok(referred) => referred,
                Err(error) => return referrer.settle(app, Err(error)),
            };
            let result = wallets::refer(
                app,
                snapshot,
                referrer.contact,
                referred.contact,
                external_system,
                external_reference,
                idempotency,
            )
            .await
            .map(|(reply, _)| reply);
            let result = referred.settle(app, result);
            referrer.settle(app, result)
        })
        .await
    });
    task.await
        .map_err(|_| crate::error::Failure::Internal("the referral's task stopped".into()))?
}
