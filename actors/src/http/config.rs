//! Business configuration: merchants, TAPs, exchange rates, schemes, tiers and offers. Each change
//! is written durably, then published as a new snapshot the hot path reads without waiting.

use actix_web::{web, HttpResponse};
use rewards_core::budget::BudgetTotals;
use rewards_core::business::{Merchant, Tap};
use rewards_core::scheme::Scheme;
use rewards_core::tier::{TierConfig, TierLevel};
use rewards_core::{Currency, DomainError, MerchantId, OfferId, SchemeId, TapId};
use rewards_storage::{Space, WriteSet};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

use super::json::{created, ok, parse};
use super::problem::ApiResult;
use super::{business_for, path_id};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::budgets::OfferRuntime;
use crate::clock;
use crate::dto::business::{
    render_merchant, render_scheme, render_tap, render_tiers, MerchantBody, RateBody, SchemeBody,
    TapBody, TiersBody,
};
use crate::dto::offer::{render, OfferBody, OfferOrigin, OfferStats};
use crate::dto::{parse_id, text};
use crate::registry::{BusinessEntry, OfferSet};
use crate::schema::{keys, ConfigRecord};

const CONFIG_ROLES: &[Role] = &[Role::Business];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/businesses/{b}/merchants",
        web::post().to(create_merchant),
    )
    .route("/v1/businesses/{b}/taps", web::post().to(create_tap))
    .route(
        "/v1/businesses/{b}/exchange-rates/{currency}",
        web::put().to(put_rate),
    )
    .route("/v1/businesses/{b}/schemes", web::post().to(create_scheme))
    .route("/v1/businesses/{b}/schemes", web::get().to(list_schemes))
    .route(
        "/v1/businesses/{b}/schemes/{s}/activate",
        web::post().to(activate_scheme),
    )
    .route(
        "/v1/businesses/{b}/schemes/{s}/deactivate",
        web::post().to(deactivate_scheme),
    )
    .route("/v1/businesses/{b}/tiers", web::put().to(put_tiers))
    .route("/v1/businesses/{b}/offers", web::post().to(create_offer))
    .route("/v1/businesses/{b}/offers/{o}", web::get().to(get_offer))
    .route(
        "/v1/businesses/{b}/offers/{o}/activate",
        web::post().to(activate_offer),
    )
    .route(
        "/v1/businesses/{b}/offers/{o}/deactivate",
        web::post().to(deactivate_offer),
    );
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/merchants",
    tag = "configuration",
    summary = "Add a merchant with its commercial terms",
    request_body = MerchantBody,
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 201, description = "The merchant", body = serde_json::Value),
    )
)]
async fn create_merchant(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, CONFIG_ROLES)?;
    let body: MerchantBody = parse(&body)?;
    let business = entry.business();
    let name = text("name", &body.name)?;
    let terms = body
        .commercial_terms
        .unwrap_or_default()
        .into_terms(business.currency)?;
    let merchant = Merchant {
        id: MerchantId::from_random(clock::id_bytes()),
        business_id: business.id,
        name,
        commercial_terms: terms,
    };
    let _guard = entry.config_lock.lock().await;
    app.write_config(
        keys::merchant_config_key(business.id, merchant.id),
        &ConfigRecord::Merchant(merchant.clone()),
    )
    .await?;
    let mut merchants = (**entry.merchants.read()).clone();
    merchants.insert(merchant.id, merchant.clone());
    *entry.merchants.write() = Arc::new(merchants);
    Ok(created(&render_merchant(&merchant)))
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/taps",
    tag = "configuration",
    summary = "Add a terminal (TAP) of the business",
    request_body = TapBody,
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 201, description = "The TAP", body = serde_json::Value),
    )
)]
async fn create_tap(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, CONFIG_ROLES)?;
    let body: TapBody = parse(&body)?;
    let business = entry.business();
    let code = text("code", &body.code)?;
    let merchant_id: Option<MerchantId> = body
        .merchant_id
        .as_deref()
        .map(|m| parse_id("merchant_id", m))
        .transpose()?;
    if let Some(m) = merchant_id {
        if !entry.merchants.read().contains_key(&m) {
            return Err(DomainError::validation(
                "merchant_id",
                "names no merchant of the business",
            )
            .into());
        }
    }
    let ip_address = body
        .ip_address
        .as_deref()
        .map(|ip| {
            ip.trim()
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| DomainError::validation("ip_address", "is not an IP address"))
        })
        .transpose()?;
    let tap = Tap {
        id: TapId::from_random(clock::id_bytes()),
        business_id: business.id,
        code: code.clone(),
        merchant_id,
        ip_address,
    };
    let _guard = entry.config_lock.lock().await;
    if entry.taps.read().iter().any(|t| t.code == code) {
        return Err(DomainError::AlreadyExists(format!("TAP code {code}")).into());
    }
    app.write_config(
        keys::tap_config_key(business.id, tap.id),
        &ConfigRecord::Tap(tap.clone()),
    )
    .await?;
    let mut taps = (**entry.taps.read()).clone();
    taps.push(tap.clone());
    *entry.taps.write() = Arc::new(taps);
    app.registry.add_tap_code(&tap.code, business.id);
    Ok(created(&render_tap(&tap)))
}

#[utoipa::path(
    put,
    path = "/v1/businesses/{b}/exchange-rates/{currency}",
    tag = "configuration",
    summary = "Set the exchange rate of a foreign currency",
    request_body = RateBody,
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("currency" = String, Path, description = "An ISO 4217 currency code"),
    ),
    responses(
        (status = 200, description = "The rate", body = serde_json::Value),
    )
)]
async fn put_rate(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (business_path, currency_path) = path.into_inner();
    let entry = business_for(&app, &principal, &business_path, CONFIG_ROLES)?;
    let body: RateBody = parse(&body)?;
    let currency = Currency::parse(currency_path.trim())
        .ok_or_else(|| DomainError::validation("currency", "must be an ISO 4217 code"))?;
    if currency == entry.business().currency {
        return Err(DomainError::validation(
            "currency",
            "is the business's own currency, whose rate is always 1",
        )
        .into());
    }
    let (min, max) = (
        rust_decimal::Decimal::new(1, crate::limits::MIN_EXCHANGE_RATE_SCALE),
        rust_decimal::Decimal::from(crate::limits::MAX_EXCHANGE_RATE),
    );
    if body.rate.0 < min || body.rate.0 > max || body.rate.0.normalize().scale() > 12 {
        return Err(DomainError::validation(
            "rate",
            format!("must be between {min} and {max}, with at most 12 decimals"),
        )
        .into());
    }
    let _guard = entry.config_lock.lock().await;
    let mut business = (*entry.business()).clone();
    business
        .exchange_rates
        .insert(currency.code().to_string(), body.rate.0);
    app.write_config(
        keys::business_config_key(business.id),
        &ConfigRecord::Business(business.clone()),
    )
    .await?;
    *entry.business.write() = Arc::new(business);
    Ok(ok(
        &json!({"currency": currency.code(), "rate": body.rate.0.normalize().to_string()}),
    ))
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/schemes",
    tag = "configuration",
    summary = "Create a reward scheme",
    request_body = SchemeBody,
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 201, description = "The scheme", body = serde_json::Value),
    )
)]
async fn create_scheme(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, CONFIG_ROLES)?;
    let body: SchemeBody = parse(&body)?;
    let (name, sign_up, active) = body.validate()?;
    let business = entry.business();
    let scheme = Scheme {
        id: SchemeId::from_random(clock::id_bytes()),
        business_id: business.id,
        name,
        sign_up,
        active,
    };
    let _guard = entry.config_lock.lock().await;
    let mut set = WriteSet::new();
    set.put(
        Space::Config,
        keys::scheme_config_key(business.id, scheme.id),
        &ConfigRecord::Scheme(scheme.clone()),
    );
    let mut codes: Vec<String> = body.codes.iter().map(|c| c.trim().to_string()).collect();
    codes.sort();
    codes.dedup();
    for code in &codes {
        set.put(
            Space::Config,
            keys::scheme_code_key(business.id, scheme.id, code),
            &ConfigRecord::SchemeCode {
                scheme_id: scheme.id,
                code: code.clone(),
                used_by: None,
            },
        );
    }
    app.write(set).await?;
    let mut schemes = (**entry.schemes.read()).clone();
    schemes.push(scheme.clone());
    *entry.schemes.write() = Arc::new(schemes);
    let mut body = render_scheme(&scheme);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("codes_imported".into(), json!(codes.len()));
    }
    Ok(created(&body))
}

#[utoipa::path(
    get,
    path = "/v1/businesses/{b}/schemes",
    tag = "configuration",
    summary = "The business's schemes",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 200, description = "The schemes", body = serde_json::Value),
    )
)]
async fn list_schemes(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business, Role::Pos])?;
    let items: Vec<_> = entry.schemes.read().iter().map(render_scheme).collect();
    Ok(ok(&json!({"items": items})))
}

async fn set_scheme_state(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
    active: bool,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (b, s) = path.into_inner();
    let entry = business_for(&app, &principal, &b, CONFIG_ROLES)?;
    let id: SchemeId = path_id(&s, "scheme")?;
    let _guard = entry.config_lock.lock().await;
    let mut scheme = entry.scheme(id).ok_or(DomainError::NotFound("scheme"))?;
    scheme.active = active;
    app.write_config(
        keys::scheme_config_key(scheme.business_id, scheme.id),
        &ConfigRecord::Scheme(scheme.clone()),
    )
    .await?;
    let schemes: Vec<Scheme> = entry
        .schemes
        .read()
        .iter()
        .map(|s| {
            if s.id == id {
                scheme.clone()
            } else {
                s.clone()
            }
        })
        .collect();
    *entry.schemes.write() = Arc::new(schemes);
    Ok(ok(&render_scheme(&scheme)))
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/schemes/{s}/activate",
    tag = "configuration",
    summary = "Activate a scheme",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("s" = uuid::Uuid, Path, description = "The scheme's id"),
    ),
    responses(
        (status = 200, description = "The scheme", body = serde_json::Value),
    )
)]
async fn activate_scheme(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    set_scheme_state(app, principal, path, true).await
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/schemes/{s}/deactivate",
    tag = "configuration",
    summary = "Deactivate a scheme",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("s" = uuid::Uuid, Path, description = "The scheme's id"),
    ),
    responses(
        (status = 200, description = "The scheme", body = serde_json::Value),
    )
)]
async fn deactivate_scheme(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    set_scheme_state(app, principal, path, false).await
}

#[utoipa::path(
    put,
    path = "/v1/businesses/{b}/tiers",
    tag = "configuration",
    summary = "Set the tier levels",
    request_body = TiersBody,
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 200, description = "The tiers", body = serde_json::Value),
    )
)]
async fn put_tiers(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, CONFIG_ROLES)?;
    let body: TiersBody = parse(&body)?;
    let levels = body
        .levels
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            Ok(TierLevel {
                name: text(&format!("levels[{i}].name"), &l.name)?,
                value_units: l.value_units.0,
            })
        })
        .collect::<Result<Vec<_>, rewards_core::FieldError>>()?;
    let tiers = TierConfig::new(
        body.period_days,
        body.conversion_rate
            .map_or(rust_decimal::Decimal::ONE, |d| d.0),
        levels,
    )?;
    let business = entry.business();
    let _guard = entry.config_lock.lock().await;
    app.write_config(
        keys::tiers_config_key(business.id),
        &ConfigRecord::Tiers(business.id, tiers.clone()),
    )
    .await?;
    let rendered = render_tiers(&tiers);
    *entry.tiers.write() = Some(Arc::new(tiers));
    Ok(ok(&rendered))
}

fn offer_stats(runtime: &OfferRuntime) -> OfferStats {
    let totals = runtime.budget.totals();
    OfferStats {
        awarded_total: totals.awarded_total,
        award_count: totals.award_count,
    }
}

/// Publishes a new offer set with `runtime` added or replacing the offer of the same id.
fn publish_offer(entry: &BusinessEntry, runtime: Arc<OfferRuntime>) {
    let current = entry.offers.read().clone();
    let mut runtimes: HashMap<OfferId, Arc<OfferRuntime>> = current.by_id.clone();
    runtimes.insert(runtime.offer.id, runtime);
    *entry.offers.write() = Arc::new(OfferSet::from_runtimes(runtimes.into_values()));
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/offers",
    tag = "configuration",
    summary = "Create a reward offer",
    request_body = OfferBody,
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 201, description = "The offer", body = serde_json::Value),
    )
)]
async fn create_offer(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, CONFIG_ROLES)?;
    let body: OfferBody = parse(&body)?;
    let business = entry.business();
    let _guard = entry.config_lock.lock().await;
    let created_seq = entry
        .offers
        .read()
        .by_id
        .values()
        .map(|r| r.offer.created_seq)
        .max()
        .unwrap_or(0)
        + 1;
    let offer = body.into_offer(
        OfferOrigin {
            id: OfferId::from_random(clock::id_bytes()),
            business_id: business.id,
            created_seq,
        },
        business.currency,
    )?;
    if let Some(s) = offer.scheme_id {
        if entry.scheme(s).is_none() {
            return Err(
                DomainError::validation("scheme_id", "names no scheme of the business").into(),
            );
        }
    }
    if let Some(m) = offer.merchant_id {
        if !entry.merchants.read().contains_key(&m) {
            return Err(DomainError::validation(
                "merchant_id",
                "names no merchant of the business",
            )
            .into());
        }
    }
    app.write_config(
        keys::offer_config_key(business.id, offer.id),
        &ConfigRecord::Offer(offer.clone()),
    )
    .await?;
    let runtime = Arc::new(OfferRuntime::new(offer, BudgetTotals::default()));
    let rendered = render(&runtime.offer, business.currency, offer_stats(&runtime));
    publish_offer(&entry, runtime);
    Ok(created(&rendered))
}

fn find_offer(entry: &BusinessEntry, id: &str) -> ApiResult<Arc<OfferRuntime>> {
    let id: OfferId = path_id(id, "offer")?;
    entry
        .offers
        .read()
        .by_id
        .get(&id)
        .cloned()
        .ok_or_else(|| DomainError::NotFound("offer").into())
}

#[utoipa::path(
    get,
    path = "/v1/businesses/{b}/offers/{o}",
    tag = "configuration",
    summary = "An offer with its statistics",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("o" = uuid::Uuid, Path, description = "The offer's id"),
    ),
    responses(
        (status = 200, description = "The offer", body = serde_json::Value),
    )
)]
async fn get_offer(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (b, o) = path.into_inner();
    let entry = business_for(&app, &principal, &b, CONFIG_ROLES)?;
    let runtime = find_offer(&entry, &o)?;
    Ok(ok(&render(
        &runtime.offer,
        entry.business().currency,
        offer_stats(&runtime),
    )))
}

async fn set_offer_state(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
    active: bool,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (b, o) = path.into_inner();
    let entry = business_for(&app, &principal, &b, CONFIG_ROLES)?;
    let _guard = entry.config_lock.lock().await;
    let runtime = find_offer(&entry, &o)?;
    let mut offer = (*runtime.offer).clone();
    offer.active = active;
    app.write_config(
        keys::offer_config_key(offer.business_id, offer.id),
        &ConfigRecord::Offer(offer.clone()),
    )
    .await?;
    let updated = Arc::new(runtime.with_offer(offer));
    let rendered = render(
        &updated.offer,
        entry.business().currency,
        offer_stats(&updated),
    );
    publish_offer(&entry, updated);
    Ok(ok(&rendered))
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/offers/{o}/activate",
    tag = "configuration",
    summary = "Activate an offer",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("o" = uuid::Uuid, Path, description = "The offer's id"),
    ),
    responses(
        (status = 200, description = "The offer", body = serde_json::Value),
    )
)]
async fn activate_offer(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    set_offer_state(app, principal, path, true).await
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/offers/{o}/deactivate",
    tag = "configuration",
    summary = "Deactivate an offer",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("o" = uuid::Uuid, Path, description = "The offer's id"),
    ),
    responses(
        (status = 200, description = "The offer", body = serde_json::Value),
    )
)]
async fn deactivate_offer(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    set_offer_state(app, principal, path, false).await
}
