//! A business's webhook subscriptions and their deliveries (see [`crate::webhooks`]).

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use rewards_core::{DomainError, FieldError, WebhookId};
use rewards_storage::{Space, WriteSet};
use serde::Deserialize;

use super::json::{created, ok, parse};
use super::problem::ApiResult;
use super::{business_for, page_body, path_id, PageQuery};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::clock;
use crate::schema::{keys, ConfigRecord};
use crate::webhooks::{DeliveryRecord, Webhook, EVENT_KINDS};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/businesses/{b}/webhooks",
        web::post().to(create_webhook),
    )
    .route("/v1/businesses/{b}/webhooks", web::get().to(list_webhooks))
    .route(
        "/v1/businesses/{b}/webhooks/{id}",
        web::delete().to(delete_webhook),
    )
    .route(
        "/v1/businesses/{b}/webhooks/{id}/deliveries",
        web::get().to(list_deliveries),
    );
}

const ROLES: &[Role] = &[Role::Business];
/// Subscriptions per business.
pub const MAX_WEBHOOKS: usize = 20;
const MAX_URL_CHARS: usize = 2048;
const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// An `http` or `https` URL the deliveries are POSTed to.
    #[schema(max_length = 2048)]
    pub url: String,
    /// Event kinds: `purchase.posted`, `purchase.cancelled`, `estimate.approved`,
    /// `estimate.rejected`.
    #[schema(max_items = 4)]
    pub events: Vec<String>,
    /// Signs every delivery (`X-Rewards-Signature`); 16 to 256 characters, never shown again.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: String,
}

fn check(body: WebhookBody) -> Result<(String, Vec<String>, String), DomainError> {
    let mut errors = Vec::new();
    let url = body.url.trim().to_string();
    if url.chars().count() > MAX_URL_CHARS {
        errors.push(FieldError::new(
            "url",
            format!("at most {MAX_URL_CHARS} characters"),
        ));
    } else {
        match reqwest::Url::parse(&url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
            _ => errors.push(FieldError::new("url", "must be an http or https URL")),
        }
    }
    let mut events: Vec<String> = Vec::new();
    if body.events.is_empty() {
        errors.push(FieldError::new("events", "name at least one event kind"));
    }
    for (i, kind) in body.events.iter().enumerate() {
        if !EVENT_KINDS.contains(&kind.as_str()) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                format!("must be one of {}", EVENT_KINDS.join(", ")),
            ));
        } else if !events.contains(kind) {
            events.push(kind.clone());
        }
    }
    let secret_chars = body.secret.chars().count();
    if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&secret_chars) {
        errors.push(FieldError::new(
            "secret",
            format!("{MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"),
        ));
    }
    if errors.is_empty() {
        Ok((url, events, body.secret))
    } else {
        Err(DomainError::ValidationFailed(errors))
    }
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/webhooks",
    tag = "configuration",
    summary = "Subscribe a URL to event kinds; deliveries are signed with the secret",
    request_body = WebhookBody,
    params(("b" = uuid::Uuid, Path, description = "The business's id")),
    responses((status = 201, description = "The subscription (without its secret)", body = serde_json::Value))
)]
async fn create_webhook(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, ROLES)?;
    let body: WebhookBody = parse(&body)?;
    let (url, events, secret) = check(body)?;
    let business = entry.business();
    let webhook = Webhook {
        id: WebhookId::from_bytes(clock::id_bytes()),
        business_id: business.id,
        url,
        events,
        secret,
        created_at: clock::now(),
    };
    let _guard = entry.config_lock.lock().await;
    if entry.webhooks.read().len() >= MAX_WEBHOOKS {
        return Err(DomainError::validation(
            "url",
            format!("a business has at most {MAX_WEBHOOKS} webhooks"),
        )
        .into());
    }
    app.write_config(
        keys::webhook_config_key(business.id, webhook.id),
        &ConfigRecord::Webhook(webhook.clone()),
    )
    .await?;
    let mut webhooks = (**entry.webhooks.read()).clone();
    webhooks.push(webhook.clone());
    *entry.webhooks.write() = Arc::new(webhooks);
    Ok(created(&webhook.render()))
}

#[utoipa::path(
    get,
    path = "/v1/businesses/{b}/webhooks",
    tag = "configuration",
    summary = "The business's webhook subscriptions (secrets are never shown)",
    params(("b" = uuid::Uuid, Path, description = "The business's id")),
    responses((status = 200, description = "`{items: [webhook]}`", body = serde_json::Value))
)]
async fn list_webhooks(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, ROLES)?;
    let items: Vec<_> = entry.webhooks.read().iter().map(Webhook::render).collect();
    Ok(ok(&serde_json::json!({ "items": items })))
}

#[utoipa::path(
    delete,
    path = "/v1/businesses/{b}/webhooks/{id}",
    tag = "configuration",
    summary = "Remove a subscription; its pending deliveries fail",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("id" = uuid::Uuid, Path, description = "The webhook's id"),
    ),
    responses((status = 204, description = "Removed"))
)]
async fn delete_webhook(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (business, id) = path.into_inner();
    let entry = business_for(&app, &principal, &business, ROLES)?;
    let id: WebhookId = path_id(&id, "webhook")?;
    let _guard = entry.config_lock.lock().await;
    if !entry.webhooks.read().iter().any(|w| w.id == id) {
        return Err(DomainError::NotFound("webhook").into());
    }
    let mut set = WriteSet::new();
    set.delete(
        Space::Config,
        keys::webhook_config_key(entry.business().id, id),
    );
    app.write(set).await?;
    let webhooks: Vec<Webhook> = entry
        .webhooks
        .read()
        .iter()
        .filter(|w| w.id != id)
        .cloned()
        .collect();
    *entry.webhooks.write() = Arc::new(webhooks);
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/v1/businesses/{b}/webhooks/{id}/deliveries",
    tag = "configuration",
    summary = "A subscription's deliveries, oldest first: pending, delivered or failed",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        ("id" = uuid::Uuid, Path, description = "The webhook's id"),
        PageQuery,
    ),
    responses((status = 200, description = "A page of `{id, type, state, attempts, last_status, next_attempt_at}`", body = super::Page))
)]
async fn list_deliveries(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (business, id) = path.into_inner();
    let entry = business_for(&app, &principal, &business, ROLES)?;
    let id: WebhookId = path_id(&id, "webhook")?;
    if !entry.webhooks.read().iter().any(|w| w.id == id) {
        return Err(DomainError::NotFound("webhook").into());
    }
    let cursor = query.cursor()?;
    let (records, next) = app.store.page::<DeliveryRecord>(
        Space::Outbox,
        &keys::deliveries_prefix(id),
        cursor.as_deref(),
        false,
        query.limit()?,
    )?;
    let items = records.iter().map(|(_, r)| r.render()).collect();
    Ok(ok(&page_body(items, next)))
}
