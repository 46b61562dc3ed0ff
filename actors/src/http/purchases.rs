//! Purchases: submission (single and batch), reads, void, returns, and the business's event list.

use super::processor::{batch_response, item_result};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::join_all;
use rewards_core::business::ProcessorMode;
use rewards_core::purchase::{validate_purchase, PurchaseContext};
use rewards_core::wallet::SpendAmount;
use rewards_core::{BusinessId, ContactId, DomainError, EstimateId, EventId, Money, Timestamp};
use rewards_storage::Space;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::Arc;

use super::contacts::visible_contact;
use super::json::{ok, parse, parse_envelope, parse_or_default};
use super::problem::{ApiError, ApiResult};
use super::{business_for, named_business, page_body, path_id, require_role, PageQuery};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::clock;
use crate::dto::purchase::{render_event, render_route, LineBody, PurchaseBody, SpendAmountBody};
use crate::dto::{canonical, key_part, parse_id, text, Dec};
use crate::error::Fallible;
use crate::estimates::EstimateRecord;
use crate::events::{EventRecord, EventType, PaymentMediumRecord};
use crate::idempotency::{Claim, IdempotencyKey, StoredResponse};
use crate::identities::identify;
use crate::limits::{MAX_BATCH_ITEMS, MAX_EVENT_SCAN};
use crate::router::flows::{self, PosPurchase};
use crate::router::records::{PosFacts, RouteRecord};
use crate::schema::keys;
use crate::wallets::{self, Command, PurchaseJob, Reply, ReturnJob};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/purchases", web::post().to(post_purchase))
        .route("/v1/purchases:batch", web::post().to(post_batch))
        .route("/v1/purchases/{id}", web::get().to(get_purchase))
        .route("/v1/purchases/{id}/void", web::post().to(void_purchase))
        .route("/v1/events/{id}/void", web::post().to(void_event))
        .route("/v1/purchases/{id}/returns", web::post().to(return_lines))
        .route("/v1/businesses/{b}/events", web::get().to(list_events))
        .route("/v1/contacts/{c}/activity", web::get().to(contact_activity));
}

/// Runs a request exactly once per idempotency key: a repeat with an equal body gets the first
/// answer (`true`: a replay), a concurrent copy waits for the first one's outcome.
pub async fn once<F, Fut>(
    app: &Arc<App>,
    key: Option<IdempotencyKey>,
    run: F,
) -> ApiResult<(Reply, bool)>
where
    F: FnOnce(Option<IdempotencyKey>) -> Fut,
    Fut: Future<Output = Fallible<Reply>>,
{
    let Some(key) = key else {
        return Ok((run(None).await?, false));
    };
    let replay = |stored: &StoredResponse| Reply {
        status: StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
        body: stored.body.clone(),
    };
    loop {
        match app.idempotency.claim(&app.store, &key)? {
            Claim::Replay(stored) => return Ok((replay(&stored), true)),
            Claim::Wait(receiver) => {
                if let Ok(Some(stored)) = receiver.await {
                    return Ok((replay(&stored), true));
                }
                // The first copy failed and changed nothing: this one runs (or waits) again.
            }
            Claim::Fresh(guard) => {
                let result = run(Some(key.clone())).await;
                if let Ok(reply) = &result {
                    guard.complete(StoredResponse {
                        body_hash: key.body_hash,
                        status: reply.status.as_u16(),
                        body: reply.body.clone(),
                    });
                }
                return Ok((result?, false));
            }
        }
    }
}

/// The HTTP answer of a reply or an error; replays carry `Idempotent-Replay: true`.
pub fn answer(result: ApiResult<(Reply, bool)>) -> HttpResponse {
    match result {
        Ok((reply, replay)) => {
            let mut response = HttpResponse::build(reply.status);
            response.content_type("application/json");
            if replay {
                response.insert_header(("Idempotent-Replay", "true"));
            }
            response.body(reply.body)
        }
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

#[utoipa::path(
    post,
    path = "/v1/purchases",
    tag = "purchases",
    summary = "Submit a purchase: identify the customer, award, spend",
    request_body = PurchaseBody,
    responses(
        (status = 201, description = "The posted purchase with its awards and spend", body = serde_json::Value),
        (status = 202, description = "Match mode: the purchase waits for its card transaction", body = serde_json::Value),
        (status = 200, description = "Match mode: matched with a waiting card transaction", body = serde_json::Value),
    )
)]
async fn post_purchase(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    let peer = crate::http::client_ip(&request);
    answer(submit_purchase(&app, &principal, &body, peer.as_deref()).await)
}

fn origin_of(principal: &Principal, origin: Option<&str>) -> ApiResult<String> {
    match origin.unwrap_or("pos") {
        "pos" => Ok("pos".into()),
        "backend" if matches!(principal.role, Role::Business | Role::Operator) => {
            Ok("backend".into())
        }
        "backend" => Err(DomainError::Forbidden.into()),
        _ => Err(DomainError::validation("origin", "must be pos or backend").into()),
    }
}

/// A purchase body checked against its business: what a purchase and an estimate both need
/// before the contact is identified.
pub(super) struct Prepared {
    pub snapshot: crate::registry::BusinessSnapshot,
    pub business_id: BusinessId,
    pub origin: String,
    pub identity: rewards_core::identity::Identity,
    pub tap: Option<rewards_core::business::Tap>,
    pub merchant_id: Option<rewards_core::MerchantId>,
    pub performed_on: Timestamp,
    pub purchase: rewards_core::purchase::ValidatedPurchase,
    pub spend: Option<(SpendAmount, bool)>,
    pub external_system: String,
    pub payment_medium: Option<PaymentMediumRecord>,
}

/// The TAP of an event: the one named, else the one of the caller's IP, else none (the
/// business itself).
pub(super) fn tap_of(
    snapshot: &crate::registry::BusinessSnapshot,
    code: Option<&str>,
    peer: Option<&str>,
) -> Result<Option<rewards_core::business::Tap>, DomainError> {
    match code.map(str::trim) {
        Some(code) => snapshot
            .tap_by_code(code)
            .cloned()
            .map(Some)
            .ok_or_else(|| DomainError::TapNotFound(code.to_string())),
        None => Ok(peer.and_then(|ip| snapshot.tap_by_ip(ip)).cloned()),
    }
}

/// Validates a purchase body (a purchase's, or an estimate's basket) for its business.
/// Checks a purchase's body against its business and validates it. The body's lines move
/// into the prepared purchase: a caller that needs the whole body (its canonical form) reads
/// it first.
pub(super) fn prepare(
    app: &Arc<App>,
    principal: &Principal,
    body: &mut PurchaseBody,
    peer: Option<&str>,
) -> ApiResult<Prepared> {
    let snapshot = named_business(app, principal, body.business_id.as_deref())?;
    let business = &snapshot.business;
    let currency = business.currency;
    let origin = origin_of(principal, body.origin.as_deref())?;
    let identity = body
        .identity
        .as_ref()
        .ok_or_else(|| DomainError::validation("identity", "exactly one identity is required"))?
        .validate("identity")?;
    LineBody::check_all(&body.lines)?;
    let tap = tap_of(&snapshot, body.tap_code.as_deref(), peer)?;
    let merchant_id = tap
        .as_ref()
        .and_then(|t| t.merchant_id)
        .or(principal.merchant_id);
    let performed_on = match body.performed_on.as_deref() {
        Some(t) => Timestamp::parse_rfc3339(t)
            .ok_or_else(|| DomainError::validation("performed_on", "must be an RFC 3339 time"))?,
        None => clock::now(),
    };
    let purchase = validate_purchase(
        identity.clone(),
        body.take_purchase_input(),
        &PurchaseContext {
            currency,
            exchange_rates: &business.exchange_rates,
            amount_tolerance: business.settings.amount_tolerance,
        },
    )?;
    let spend = match &body.spend {
        None => None,
        Some(spend) => {
            let amount = match spend.amount {
                SpendAmountBody::All => SpendAmount::All,
                SpendAmountBody::Amount(d) => {
                    let amount = currency.parse_amount("spend.amount", d)?;
                    if !amount.is_positive() {
                        return Err(
                            DomainError::validation("spend.amount", "must be above zero").into(),
                        );
                    }
                    SpendAmount::Exact(amount)
                }
            };
            Some((amount, spend.require_full))
        }
    };
    key_part("external_system", body.external_system.as_deref())?;
    key_part("external_reference", body.external_reference.as_deref())?;
    key_part("reference_number", body.reference_number.as_deref())?;
    key_part("classification", body.classification.as_deref())?;
    let external_system = body.external_system.clone().unwrap_or_default();
    let payment_medium = body.payment_medium.as_ref().map(|m| PaymentMediumRecord {
        identifier: m.identifier.clone(),
        brand: m.brand.clone(),
        kind: m.kind.clone(),
    });
    Ok(Prepared {
        business_id: business.id,
        snapshot,
        origin,
        identity,
        tap,
        merchant_id,
        performed_on,
        purchase,
        spend,
        external_system,
        payment_medium,
    })
}

/// Validates one purchase and hands it to its contact's wallet actor.
pub async fn submit_purchase(
    app: &Arc<App>,
    principal: &Principal,
    raw: &[u8],
    peer: Option<&str>,
) -> ApiResult<(Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let mut body: PurchaseBody = parse(raw)?;
    let canonical_body = body.external_reference.is_some().then(|| canonical(&body));
    let Prepared {
        snapshot,
        business_id,
        origin,
        identity,
        tap,
        merchant_id,
        performed_on,
        purchase,
        spend,
        external_system,
        payment_medium,
    } = prepare(app, principal, &mut body, peer)?;
    let estimate_id: Option<EstimateId> = body
        .estimate_id
        .as_deref()
        .map(|id| parse_id("estimate_id", id))
        .transpose()?;
    let key = body
        .external_reference
        .as_deref()
        .zip(canonical_body.as_deref())
        .map(|(reference, canonical_body)| {
            IdempotencyKey::new(
                business_id,
                "event",
                &external_system,
                reference,
                canonical_body,
            )
        });
    let presented_by = principal.key_id;
    // In match mode a POS purchase at a terminal waits for its processor transaction.
    let matching =
        snapshot.business.settings.processor_mode == ProcessorMode::Match && origin == "pos";
    // The contact is identified once the key is claimed, so a repeat of a purchase whose OTP it
    // used is answered from the store instead of finding the OTP used.
    if let (true, Some(tap)) = (matching, &tap) {
        if estimate_id.is_some() {
            return Err(DomainError::validation(
                "estimate_id",
                "a purchase that waits for its card transaction cannot name an estimate",
            )
            .into());
        }
        let transaction_reference = body
            .transaction_reference
            .as_deref()
            .map(|r| text("transaction_reference", r))
            .transpose()?;
        let tap_code = tap.code.clone();
        return once(app, key, move |idempotency| async move {
            let identified = identify(app, business_id, &identity, presented_by)?;
            let spend = match with_otp_spend(spend, identified.otp_spend_amount()) {
                Ok(spend) => spend,
                Err(refused) => return identified.settle(app, Err(refused.into())),
            };
            let pos = PosPurchase {
                snapshot,
                event_id: app.placement.event_id(),
                contact_id: identified.contact,
                tap_code,
                purchase,
                performed_on,
                reference_number: body.reference_number.clone(),
                transaction_reference,
                payment_medium,
                facts: PosFacts {
                    contact_id: identified.contact,
                    spend: spend.map(|(amount, full)| match amount {
                        SpendAmount::Exact(m) => (Some(m), full),
                        SpendAmount::All => (None, full),
                    }),
                    classification: body.classification.clone(),
                    external_system,
                    external_reference: body.external_reference.clone(),
                    merchant_id,
                    origin,
                },
            };
            let result = flows::place_pos(app, pos, idempotency).await;
            identified.settle(app, result)
        })
        .await;
    }
    once(app, key, move |idempotency| async move {
        let identified = match estimate_id {
            Some(id) => identify_for_estimate(app, business_id, &identity, id, presented_by)?,
            None => identify(app, business_id, &identity, presented_by)?,
        };
        let spend = match with_otp_spend(spend, identified.otp_spend_amount()) {
            Ok(spend) => spend,
            Err(refused) => return identified.settle(app, Err(refused.into())),
        };
        let job = PurchaseJob {
            snapshot,
            event_id: app.placement.event_id(),
            purchase,
            performed_on,
            reference_number: body.reference_number.clone(),
            classification: body.classification.clone(),
            tap_code: tap.map(|t| t.code),
            merchant_id,
            external_system,
            external_reference: body.external_reference.clone(),
            payment_medium,
            origin,
            spend,
            idempotency,
            route: None,
            estimate_id,
        };
        let result = wallets::call(app, identified.contact, Command::Purchase(Box::new(job))).await;
        identified.settle(app, result)
    })
    .await
}

/// The contact of a purchase that names an estimate. The purchase repeats the estimate's
/// identity: the very identity the estimate was created with (a one-time code it already used
/// included) is its contact; any other is identified as usual, and the wallet actor refuses a
/// contact that is not the estimate's.
fn identify_for_estimate(
    app: &Arc<App>,
    business: BusinessId,
    identity: &rewards_core::identity::Identity,
    estimate: EstimateId,
    presented_by: rewards_core::KeyId,
) -> Fallible<crate::identities::Identified> {
    let record: Option<EstimateRecord> = app
        .store
        .get(Space::Estimates, &keys::estimate_key(estimate))?;
    match record {
        Some(record) if record.estimate.business_id == business => {
            if &record.purchase.identity == identity {
                Ok(crate::identities::Identified {
                    contact: record.estimate.contact_id,
                    code: None,
                })
            } else {
                identify(app, business, identity, presented_by)
            }
        }
        _ => Err(DomainError::NotFound("estimate").into()),
    }
}

/// The spend of a purchase identified by an OTP that carries a spend amount: that amount. A
/// purchase that also states a different spend (or "all") is refused.
pub(super) fn with_otp_spend(
    stated: Option<(SpendAmount, bool)>,
    otp_amount: Option<Money>,
) -> Result<Option<(SpendAmount, bool)>, DomainError> {
    match (stated, otp_amount) {
        (stated, None) => Ok(stated),
        (None, Some(amount)) => Ok(Some((SpendAmount::Exact(amount), false))),
        (Some((SpendAmount::Exact(stated), full)), Some(amount)) if stated == amount => {
            Ok(Some((SpendAmount::Exact(amount), full)))
        }
        (Some(_), Some(_)) => Err(DomainError::OtpSpendMismatch),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PurchaseBatch)]
struct BatchBody {
    /// Each item is parsed and answered on its own.
    #[schema(value_type = Vec<PurchaseBody>, max_items = 1000)]
    items: Vec<Box<RawValue>>,
}

#[utoipa::path(
    post,
    path = "/v1/purchases:batch",
    tag = "purchases",
    summary = "Submit up to 1000 purchases; every item gets its own result",
    request_body = BatchBody,
    responses(
        (status = 200, description = "One result per item, in order", body = crate::http::processor::BatchResults),
    )
)]
async fn post_batch(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    require_role(&principal, &[Role::Business, Role::Pos])?;
    let batch: BatchBody = parse_envelope(&body)?;
    if batch.items.len() > MAX_BATCH_ITEMS {
        return Err(DomainError::validation(
            "items",
            format!("a batch holds at most {MAX_BATCH_ITEMS} items"),
        )
        .into());
    }
    let peer = crate::http::client_ip(&request);
    // Each item stands alone; they run concurrently (items of one wallet queue in its actor).
    let results =
        join_all(batch.items.iter().map(|item| {
            let app = &app;
            let principal = &principal;
            let peer = peer.as_deref();
            async move {
                item_result(submit_purchase(app, principal, item.get().as_bytes(), peer).await)
            }
        }))
        .await;
    Ok(batch_response(&results))
}

/// An event the key may see: business and pos keys their business's, contact keys their own.
fn visible_event(app: &App, principal: &Principal, id: &str) -> ApiResult<EventRecord> {
    require_role(principal, &[Role::Business, Role::Pos, Role::Contact])?;
    let id: EventId = path_id(id, "purchase")?;
    let event: EventRecord = app
        .store
        .get(Space::Events, &keys::event_key(id))?
        .ok_or(DomainError::NotFound("purchase"))?;
    if !principal.can_see_contact(
        event.business_id,
        event.contact_id,
        &[Role::Business, Role::Pos, Role::Contact],
    ) {
        return Err(DomainError::NotFound("purchase").into());
    }
    Ok(event)
}

fn currency_of(app: &App, business: BusinessId) -> ApiResult<rewards_core::Currency> {
    Ok(app
        .registry
        .business(business)
        .ok_or(DomainError::NotFound("business"))?
        .business()
        .currency)
}

#[utoipa::path(
    get,
    path = "/v1/purchases/{id}",
    tag = "purchases",
    summary = "A purchase (also waiting, unmatched or unclaimed ones)",
    params(
        ("id" = uuid::Uuid, Path, description = "The event's id"),
    ),
    responses(
        (status = 200, description = "The purchase", body = serde_json::Value),
    )
)]
async fn get_purchase(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    match visible_event(&app, &principal, &path) {
        Ok(event) => Ok(super::json::respond_bytes(
            StatusCode::OK,
            render_event(&event, currency_of(&app, event.business_id)?).to_json(),
        )),
        // Not a purchase yet: processor routing may hold it (waiting, unclaimed, unmatched).
        Err(ApiError::Domain(DomainError::NotFound(_))) => {
            let route = visible_route(&app, &principal, &path)?;
            Ok(ok(&render_route(
                &route,
                currency_of(&app, route.business_id)?,
            )))
        }
        Err(error) => Err(error),
    }
}

/// A purchase that processor routing holds, if the key may see it: business and pos keys
/// their business's, a contact key a POS purchase of its own.
fn visible_route(app: &App, principal: &Principal, id: &str) -> ApiResult<RouteRecord> {
    let id: EventId = path_id(id, "purchase")?;
    let route: RouteRecord = app
        .store
        .get(Space::Routes, &keys::route_key(id))?
        .ok_or(DomainError::NotFound("purchase"))?;
    let visible = match principal.role {
        Role::Operator => true,
        Role::Business | Role::Pos => principal.business_id == Some(route.business_id),
        Role::Contact => route
            .pos
            .as_ref()
            .is_some_and(|p| principal.contact_id == Some(p.contact_id)),
        Role::Processor => false,
    };
    if !visible {
        return Err(DomainError::NotFound("purchase").into());
    }
    Ok(route)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
struct VoidBody {
    #[serde(default)]
    #[schema(max_length = 256)]
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/purchases/{id}/void",
    tag = "purchases",
    summary = "Void a purchase: reverse its awards and spend",
    request_body(content = Option<VoidBody>, description = "May be empty"),
    params(
        ("id" = uuid::Uuid, Path, description = "The event's id"),
    ),
    responses(
        (status = 200, description = "The voided purchase", body = serde_json::Value),
    )
)]
async fn void_purchase(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    require_role(&principal, &[Role::Business])?;
    let event = visible_event(&app, &principal, &path)?;
    let body: VoidBody = parse_or_default(&body)?;
    let reason = body
        .reason
        .as_deref()
        .map(|r| text("reason", r))
        .transpose()?;
    let snapshot = app
        .registry
        .business(event.business_id)
        .ok_or(DomainError::NotFound("business"))?
        .snapshot();
    let reply = wallets::call(
        &app,
        event.contact_id,
        Command::Void {
            snapshot,
            event_id: event.id,
            reason,
        },
    )
    .await?;
    Ok(answer(Ok((reply, false))))
}

#[utoipa::path(
    post,
    path = "/v1/events/{id}/void",
    tag = "purchases",
    summary = "Void an event: reverse what it did",
    request_body(content = Option<VoidBody>, description = "May be empty"),
    params(
        ("id" = uuid::Uuid, Path, description = "The event's id"),
    ),
    responses(
        (status = 200, description = "The voided event", body = serde_json::Value),
    )
)]
async fn void_event(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    void_purchase(app, principal, path, body).await
}

#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
struct ReturnLineBody {
    #[schema(max_length = 256)]
    sku: String,
    quantity: Dec,
}

#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
struct ReturnBody {
    #[serde(deserialize_with = "crate::dto::object::list")]
    lines: Vec<ReturnLineBody>,
    #[serde(default)]
    #[schema(max_length = 256)]
    external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    external_reference: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/purchases/{id}/returns",
    tag = "purchases",
    summary = "Return lines of a purchase: claw back their share of awards, refund their share of spend",
    request_body = ReturnBody,
    params(
        ("id" = uuid::Uuid, Path, description = "The event's id"),
    ),
    responses(
        (status = 201, description = "The return event", body = serde_json::Value),
    )
)]
async fn return_lines(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    raw: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    answer(run_return(&app, &principal, &path, &raw).await)
}

async fn run_return(
    app: &Arc<App>,
    principal: &Principal,
    path: &str,
    raw: &[u8],
) -> ApiResult<(Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let event = visible_event(app, principal, path)?;
    if event.event_type != EventType::Purchase {
        return Err(DomainError::NotFound("purchase").into());
    }
    let body: ReturnBody = parse(raw)?;
    if body.lines.is_empty() {
        return Err(DomainError::validation("lines", "at least one line is required").into());
    }
    let mut lines = Vec::with_capacity(body.lines.len());
    for (i, line) in body.lines.iter().enumerate() {
        let sku = text(&format!("lines[{i}].sku"), &line.sku)?;
        lines.push((sku, line.quantity.0));
    }
    let snapshot = app
        .registry
        .business(event.business_id)
        .ok_or(DomainError::NotFound("business"))?
        .snapshot();
    key_part("external_system", body.external_system.as_deref())?;
    key_part("external_reference", body.external_reference.as_deref())?;
    let external_system = body.external_system.clone().unwrap_or_default();
    let key = body.external_reference.as_deref().map(|reference| {
        IdempotencyKey::new(
            event.business_id,
            "return",
            &external_system,
            reference,
            &canonical(&body),
        )
    });
    let contact = event.contact_id;
    let purchase_id = event.id;
    once(app, key, move |idempotency| async move {
        let job = ReturnJob {
            snapshot,
            purchase_id,
            return_id: app.placement.event_id(),
            lines,
            idempotency,
        };
        wallets::call(app, contact, Command::Return(Box::new(job))).await
    })
    .await
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    contact_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Items per page.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    cursor: Option<String>,
}

/// The business's events, newest first, filtered by type, contact and time.
#[utoipa::path(
    get,
    path = "/v1/businesses/{b}/events",
    tag = "purchases",
    summary = "The business's events, newest first, filtered by type, contact and time",
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
        EventsQuery,
    ),
    responses(
        (status = 200, description = "A page of events", body = crate::http::Page),
    )
)]
async fn list_events(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business])?;
    let business = entry.business();
    let event_type = query
        .event_type
        .as_deref()
        .map(|t| {
            EventType::parse(t)
                .ok_or_else(|| DomainError::validation("type", "is not an event type"))
        })
        .transpose()?;
    let from = super::time_param("from", query.from.as_deref())?;
    let to = super::time_param("to", query.to.as_deref())?;
    let prefix = match query.contact_id.as_deref() {
        Some(c) => {
            let contact: ContactId = parse_id("contact_id", c)?;
            visible_contact(&app, &principal, contact, &[Role::Business])?;
            keys::contact_index_prefix(contact)
        }
        None => keys::business_index_prefix(business.id),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    };
    let filter = EventFilter {
        event_type,
        from,
        to,
    };
    let (items, next) = events_page(&app, &business, &prefix, &filter, &page)?;
    Ok(ok(&page_body(items, next)))
}

/// What a page of events keeps, besides their business.
#[derive(Default)]
struct EventFilter {
    event_type: Option<EventType>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
}

/// A page of the business's events under an index prefix (the business's or a contact's),
/// newest first, with the cursor of the next page.
fn events_page(
    app: &App,
    business: &rewards_core::business::Business,
    prefix: &[u8],
    filter: &EventFilter,
    page: &PageQuery,
) -> ApiResult<(Vec<serde_json::Value>, Option<Vec<u8>>)> {
    let EventFilter {
        event_type,
        from,
        to,
    } = *filter;
    let limit = page.limit()?;
    let mut cursor = page.cursor()?;
    let mut items = Vec::with_capacity(limit);
    let mut next = None;
    // Index entries are scanned newest first in chunks until the page is full.
    // A filter that matches little must not read the whole index for one page: past
    // MAX_EVENT_SCAN entries the page ends early, and its cursor goes on from there.
    let mut scanned = 0usize;
    let mut last_read: Option<Vec<u8>> = None;
    'scan: loop {
        let (chunk, chunk_next) = app.store.page_raw(
            Space::EventIndex,
            prefix,
            cursor.as_deref(),
            true,
            limit.max(64),
        )?;
        for (key, value) in &chunk {
            scanned += 1;
            if scanned > MAX_EVENT_SCAN {
                // The next page starts after the last entry read (this one was not).
                next = last_read.take();
                break 'scan;
            }
            last_read = Some(key.clone());
            // An entry of the business's index may carry the event's settlement after its id.
            let Some(Ok(id)) = value.get(..16).map(<[u8; 16]>::try_from) else {
                continue;
            };
            let id = EventId::from_bytes(id);
            let Some(event) = app
                .store
                .get::<EventRecord>(Space::Events, &keys::event_key(id))?
            else {
                // A purchase that processor routing still holds is listed as it stands.
                let route = app
                    .store
                    .get::<RouteRecord>(Space::Routes, &keys::route_key(id))?;
                let wanted = route.as_ref().is_some_and(|r| {
                    r.business_id == business.id
                        && event_type.is_none_or(|t| t == EventType::Purchase)
                        && from.is_none_or(|f| r.created_at >= f)
                        && to.is_none_or(|t| r.created_at < t)
                });
                if let (true, Some(route)) = (wanted, route) {
                    items.push(crate::json_value(&render_route(&route, business.currency)));
                    if items.len() == limit {
                        next = Some(key.clone());
                        break 'scan;
                    }
                }
                continue;
            };
            let wanted = event.business_id == business.id
                && event_type.is_none_or(|t| t == event.event_type)
                && from.is_none_or(|f| event.created_at >= f)
                && to.is_none_or(|t| event.created_at < t);
            if wanted {
                items.push(crate::json_value(&render_event(&event, business.currency)));
                if items.len() == limit {
                    next = Some(key.clone());
                    break 'scan;
                }
            }
        }
        match chunk_next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok((items, next))
}

/// A contact's events, newest first: what a consumer app shows as its activity.
#[utoipa::path(
    get,
    path = "/v1/contacts/{c}/activity",
    tag = "contacts",
    summary = "The contact's events, newest first",
    params(
        ("c" = uuid::Uuid, Path, description = "The contact's id"),
        PageQuery,
    ),
    responses(
        (status = 200, description = "A page of events", body = crate::http::Page),
    )
)]
async fn contact_activity(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let id: ContactId = path_id(&path, "contact")?;
    let contact = visible_contact(&app, &principal, id, &[Role::Business, Role::Contact])?;
    let business = app
        .registry
        .business(contact.business_id)
        .ok_or(DomainError::NotFound("contact"))?
        .business();
    let prefix = keys::contact_index_prefix(contact.id);
    let (items, next) = events_page(&app, &business, &prefix, &EventFilter::default(), &page)?;
    Ok(ok(&page_body(items, next)))
}
