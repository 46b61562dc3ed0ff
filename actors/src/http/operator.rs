//! Operator calls: businesses and their settings, transaction processors, API keys.

use actix_web::{web, HttpRequest, HttpResponse};
use rewards_core::business::Business;
use rewards_core::scheme::{Scheme, SignUp};
use rewards_core::{
    BusinessId, ContactId, Currency, DomainError, KeyId, MerchantId, ProcessorId, SchemeId,
};
use rewards_storage::{Space, WriteSet};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

use super::json::{created, ok, parse, parse_or_default};
use super::problem::ApiResult;
use super::{business_for, path_id};
use crate::app::App;
use crate::auth::{hash_key, KeyRecord, Principal, Role};
use crate::clock;
use crate::dto::business::{render_business, render_settings, BusinessBody, SettingsPatch};
use crate::dto::text;
use crate::registry::{BusinessEntry, Processor};
use crate::schema::{keys, ConfigRecord, ContactRecord};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/businesses", web::post().to(create_business))
        .route("/v1/businesses/{id}", web::get().to(get_business))
        .route(
            "/v1/businesses/{id}/settings",
            web::patch().to(patch_settings),
        )
        .route("/v1/processors", web::post().to(create_processor))
        .route("/v1/keys", web::post().to(create_key))
        .route("/v1/keys/{id}", web::delete().to(revoke_key))
        .route("/v1/backups", web::post().to(create_backup));
}

#[derive(Deserialize, utoipa::ToSchema)]
struct BackupBody {
    /// An absolute path on the server's machine: a directory that does not exist yet (its
    /// parent does) or is empty. In a cluster split into partitions, the directory that holds
    /// every partition's copy (`p<N>`, which must not exist yet or be empty), made if it is
    /// not there.
    #[schema(max_length = 4096)]
    to: String,
}

#[utoipa::path(
    post,
    path = "/v1/backups",
    tag = "operator",
    summary = "A consistent copy of the store as of now, written while writes go on",
    request_body = BackupBody,
    responses(
        (status = 201, description = "`{to, records, position, paused_micros, elapsed_ms}`: the copy is a closed store, restored with `rewardsd restore`. In a cluster split into partitions every partition's owner writes its copy into `p<N>` under `to`: the answer adds `partitions` (each copy's own answer, with its `partition`), `records` is their sum and `position` null", body = serde_json::Value),
    )
)]
async fn create_backup(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    principal.require_operator()?;
    let body: BackupBody = parse(&body)?;
    let mut to = std::path::PathBuf::from(text("to", &body.to)?);
    if !to.is_absolute() {
        return Err(DomainError::validation("to", "must be an absolute path").into());
    }
    if !to.parent().is_some_and(std::path::Path::is_dir) {
        return Err(DomainError::validation("to", "its parent directory does not exist").into());
    }
    // A split cluster's backup is every partition's copy, each written by the partition's
    // owner into `p<N>` under `to` (on its own machine): the request goes to every partition.
    let placement = app.placement;
    if placement.count > 1 {
        match std::fs::create_dir(&to) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && to.is_dir() => {}
            // As on one server: a path taken by something else is already there.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(DomainError::AlreadyExists(format!(
                    "{} (not an empty directory)",
                    to.display()
                ))
                .into())
            }
            Err(error) => {
                return Err(DomainError::validation(
                    "to",
                    format!("cannot be made a directory: {error}"),
                )
                .into())
            }
        }
        to.push(format!("p{}", placement.index));
    }
    let empty = match std::fs::read_dir(&to) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
    };
    if !empty {
        return Err(DomainError::AlreadyExists(format!(
            "{} (not an empty directory)",
            to.display()
        ))
        .into());
    }
    let store = app.store.clone();
    let target = to.clone();
    let stats = web::block(move || store.backup(&target))
        .await
        .map_err(|e| crate::error::Failure::Internal(format!("the backup task: {e}")))?
        .map_err(crate::error::Failure::from)?;
    tracing::info!(to = %to.display(), records = stats.records, position = stats.position, "backup written");
    let mut answer = json!({
        "to": to.display().to_string(),
        "records": stats.records,
        "position": stats.position,
        "paused_micros": stats.paused_micros,
        "elapsed_ms": stats.elapsed_ms,
    });
    if let (true, Some(fields)) = (placement.count > 1, answer.as_object_mut()) {
        fields.insert("partition".into(), json!(placement.index));
    }
    Ok(created(&answer))
}

#[utoipa::path(
    post,
    path = "/v1/businesses",
    tag = "operator",
    summary = "Create a business",
    request_body = BusinessBody,
    responses(
        (status = 201, description = "The business", body = serde_json::Value),
    )
)]
async fn create_business(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    principal.require_operator()?;
    let body: BusinessBody = parse(&body)?;
    let name = text("name", &body.name)?;
    let currency = Currency::parse(body.currency.trim())
        .ok_or_else(|| DomainError::validation("currency", "must be an ISO 4217 code"))?;
    let settings = body
        .settings
        .unwrap_or_default()
        .apply(&Default::default(), currency)?;
    let business = Business {
        id: app.placement.business_id(),
        name,
        currency,
        settings,
        exchange_rates: BTreeMap::new(),
    };
    // Every business starts with the auto scheme `default`.
    let scheme = Scheme {
        id: SchemeId::from_random(clock::id_bytes()),
        business_id: business.id,
        name: "default".into(),
        sign_up: SignUp::Auto,
        active: true,
    };
    let mut set = WriteSet::new();
    set.put(
        Space::Config,
        keys::business_config_key(business.id),
        &ConfigRecord::Business(business.clone()),
    );
    set.put(
        Space::Config,
        keys::scheme_config_key(business.id, scheme.id),
        &ConfigRecord::Scheme(scheme.clone()),
    );
    app.write(set).await?;
    let entry = BusinessEntry::new(business.clone());
    *entry.schemes.write() = std::sync::Arc::new(vec![scheme]);
    app.registry
        .businesses
        .insert(business.id, std::sync::Arc::new(entry));
    Ok(created(&render_business(&business)))
}

#[utoipa::path(
    get,
    path = "/v1/businesses/{id}",
    tag = "operator",
    summary = "A business",
    params(
        ("id" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 200, description = "The business", body = serde_json::Value),
    )
)]
async fn get_business(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business])?;
    Ok(ok(&render_business(&entry.business())))
}

#[utoipa::path(
    patch,
    path = "/v1/businesses/{id}/settings",
    tag = "operator",
    summary = "Change some of a business's settings",
    request_body(content = Option<SettingsPatch>, description = "May be empty"),
    params(
        ("id" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 200, description = "The whole settings", body = serde_json::Value),
    )
)]
async fn patch_settings(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business])?;
    let patch: SettingsPatch = parse_or_default(&body)?;
    let _guard = entry.config_lock.lock().await;
    let mut business = (*entry.business()).clone();
    business.settings = patch.apply(&business.settings, business.currency)?;
    app.write_config(
        keys::business_config_key(business.id),
        &ConfigRecord::Business(business.clone()),
    )
    .await?;
    let rendered = render_settings(&business.settings, business.currency);
    *entry.business.write() = std::sync::Arc::new(business);
    Ok(ok(&rendered))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ProcessorBody {
    #[schema(max_length = 256)]
    name: String,
}

#[utoipa::path(
    post,
    path = "/v1/processors",
    tag = "operator",
    summary = "Register a transaction processor",
    request_body = ProcessorBody,
    responses(
        (status = 201, description = "The processor", body = serde_json::Value),
    )
)]
async fn create_processor(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    principal.require_operator()?;
    let body: ProcessorBody = parse(&body)?;
    // In a split cluster every partition makes the processor, under the id chosen for all.
    let dictated = super::dictated(&request, super::NEW_ID).and_then(|id| id.parse().ok());
    let processor = Processor {
        id: dictated.unwrap_or_else(|| app.placement.processor_id()),
        name: text("name", &body.name)?,
    };
    app.write_config(
        keys::processor_config_key(processor.id),
        &ConfigRecord::Processor(processor.clone()),
    )
    .await?;
    app.registry
        .processors
        .insert(processor.id, processor.clone());
    Ok(created(
        &json!({"id": processor.id.to_string(), "name": processor.name}),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct KeyBody {
    role: Role,
    #[serde(default)]
    business_id: Option<String>,
    #[serde(default)]
    merchant_id: Option<String>,
    #[serde(default)]
    processor_id: Option<String>,
    #[serde(default)]
    contact_id: Option<String>,
}

fn opt_id<T: std::str::FromStr>(
    field: &str,
    value: &Option<String>,
) -> Result<Option<T>, DomainError> {
    value
        .as_deref()
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| DomainError::validation(field, "is not a valid id"))
        })
        .transpose()
}

pub fn render_key(record: &KeyRecord) -> serde_json::Value {
    json!({
        "id": record.id.to_string(),
        "role": record.role.as_str(),
        "business_id": record.business_id.map(|b| b.to_string()),
        "merchant_id": record.merchant_id.map(|m| m.to_string()),
        "processor_id": record.processor_id.map(|p| p.to_string()),
        "contact_id": record.contact_id.map(|c| c.to_string()),
        "created_at": record.created_at.to_rfc3339(),
        "expires_at": record.expires_at.map(|t| t.to_rfc3339()),
    })
}

/// Stores a new key and answers it with its secret, which is shown only here.
pub async fn issue_key(app: &App, record: KeyRecord) -> ApiResult<serde_json::Value> {
    issue_key_with(app, record, None).await
}

/// Stores a new key with `secret` (a new one when `None`) and answers it with its secret.
async fn issue_key_with(
    app: &App,
    mut record: KeyRecord,
    secret: Option<String>,
) -> ApiResult<serde_json::Value> {
    let secret = secret.unwrap_or_else(|| app.placement.secret());
    record.hash = hash_key(&secret);
    let mut set = WriteSet::new();
    set.put(Space::Keys, keys::api_key_key(record.id), &record);
    app.write(set).await?;
    app.keys.insert(record.clone());
    let mut body = render_key(&record);
    if let Some(fields) = body.as_object_mut() {
        fields.insert("key".into(), json!(secret));
    }
    Ok(body)
}

#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "operator",
    summary = "Issue an API key (shown only in this answer)",
    request_body = KeyBody,
    responses(
        (status = 201, description = "The key", body = serde_json::Value),
    )
)]
async fn create_key(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    principal.require_operator()?;
    let body: KeyBody = parse(&body)?;
    let business_id: Option<BusinessId> = opt_id("business_id", &body.business_id)?;
    let merchant_id: Option<MerchantId> = opt_id("merchant_id", &body.merchant_id)?;
    let processor_id: Option<ProcessorId> = opt_id("processor_id", &body.processor_id)?;
    let contact_id: Option<ContactId> = opt_id("contact_id", &body.contact_id)?;
    if body.role == Role::Operator && app.placement.count > 1 {
        // A key is stored in one partition, and the operator's must work in every one.
        return Err(DomainError::validation(
            "role",
            "operator keys of a cluster split into partitions are set with REWARDS_ADMIN_KEY",
        )
        .into());
    }
    let needs_business = matches!(body.role, Role::Business | Role::Pos | Role::Contact);
    if needs_business {
        let id = business_id
            .ok_or_else(|| DomainError::validation("business_id", "is required for this role"))?;
        let entry = app
            .registry
            .business(id)
            .ok_or_else(|| DomainError::validation("business_id", "names no business"))?;
        if let Some(m) = merchant_id {
            if !entry.merchants.read().contains_key(&m) {
                return Err(DomainError::validation(
                    "merchant_id",
                    "names no merchant of the business",
                )
                .into());
            }
        }
    }
    if body.role == Role::Processor {
        let id = processor_id
            .ok_or_else(|| DomainError::validation("processor_id", "is required for this role"))?;
        if !app.registry.processors.contains_key(&id) {
            return Err(DomainError::validation("processor_id", "names no processor").into());
        }
    }
    if body.role == Role::Contact {
        let contact = contact_id
            .ok_or_else(|| DomainError::validation("contact_id", "is required for this role"))?;
        let known: Option<ContactRecord> = app
            .store
            .get(Space::Contacts, &keys::contact_key(contact))?;
        if known.is_none_or(|c| Some(c.business_id) != business_id) {
            return Err(
                DomainError::validation("contact_id", "names no contact of the business").into(),
            );
        }
    }
    // In a split cluster every partition makes a processor key, under the id and with the
    // secret chosen for all.
    let (dictated_id, dictated_secret) = if body.role == Role::Processor {
        (
            super::dictated(&request, super::NEW_ID).and_then(|id| id.parse::<KeyId>().ok()),
            super::dictated(&request, super::NEW_SECRET)
                .filter(|secret| crate::cluster::Placement::of_secret(secret, 1).is_some()),
        )
    } else {
        (None, None)
    };
    let record = KeyRecord {
        id: dictated_id.unwrap_or_else(|| app.placement.key_id()),
        hash: [0; 32],
        role: body.role,
        business_id: if needs_business { business_id } else { None },
        merchant_id: if body.role == Role::Pos {
            merchant_id
        } else {
            None
        },
        processor_id: if body.role == Role::Processor {
            processor_id
        } else {
            None
        },
        contact_id: if body.role == Role::Contact {
            contact_id
        } else {
            None
        },
        created_at: clock::now(),
        expires_at: None,
        revoked: false,
    };
    let body = issue_key_with(&app, record, dictated_secret).await?;
    Ok(created(&body))
}

#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "operator",
    summary = "Revoke a key at once",
    params(
        ("id" = uuid::Uuid, Path, description = "The key's id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
    )
)]
async fn revoke_key(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    principal.require_operator()?;
    let id: KeyId = path_id(&path, "key")?;
    let mut record = app.keys.get_by_id(id).ok_or(DomainError::NotFound("key"))?;
    record.revoked = true;
    let mut set = WriteSet::new();
    set.put(Space::Keys, keys::api_key_key(record.id), &record);
    app.write(set).await?;
    app.keys.insert(record);
    Ok(HttpResponse::NoContent().finish())
}
