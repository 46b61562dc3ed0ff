//! Transaction processors' calls (processor keys only) and claims of unclaimed purchases.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use futures::future::join_all;
use rewards_core::claim::ClaimCode;
use rewards_core::purchase::PurchaseInput;
use rewards_core::{DomainError, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::json::{parse, parse_envelope};
use super::problem::ApiResult;
use super::purchases::{answer, once};
use super::require_role;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::clock;
use crate::dto::purchase::{LineBody, PaymentMediumBody};
use crate::dto::{text, Dec};
use crate::events::PaymentMediumRecord;
use crate::idempotency::IdempotencyKey;
use crate::limits::MAX_BATCH_ITEMS;
use crate::router::flows::{self, TransactionInput};
use crate::router::ClaimQuery;
use crate::wallets::Reply;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/processor/purchases",
        web::post().to(post_processor_purchase),
    )
    .route(
        "/v1/processor/purchases:batch",
        web::post().to(post_processor_batch),
    )
    .route("/v1/purchases/claims", web::post().to(post_claim))
    // Before `/v1/purchases/{id}` takes "claims" for an id: other methods are 405.
    .route(
        "/v1/purchases/claims",
        web::route().to(super::openapi::method_not_allowed),
    );
}

#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
struct ProcessorPurchaseBody {
    #[schema(max_length = 256)]
    tap_code: String,
    #[schema(max_length = 256)]
    transaction_reference: String,
    #[serde(default)]
    total_amount: Option<Dec>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    performed_on: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    payment_medium: Option<PaymentMediumBody>,
    #[serde(default, deserialize_with = "crate::dto::object::list")]
    #[schema(max_items = 1000)]
    lines: Vec<LineBody>,
}

fn time(field: &str, value: Option<&str>) -> ApiResult<Timestamp> {
    match value {
        Some(t) => Timestamp::parse_rfc3339(t)
            .ok_or_else(|| DomainError::validation(field, "must be an RFC 3339 time").into()),
        None => Ok(clock::now()),
    }
}

fn opt_text(field: &str, value: &Option<String>) -> ApiResult<Option<String>> {
    Ok(value.as_deref().map(|v| text(field, v)).transpose()?)
}

/// Validates one processor purchase and routes it, exactly once per transaction reference.
async fn submit(app: &Arc<App>, principal: &Principal, raw: &[u8]) -> ApiResult<(Reply, bool)> {
    require_processor(principal)?;
    let processor_id = principal.processor_id.ok_or(DomainError::Forbidden)?;
    let mut body: ProcessorPurchaseBody = parse(raw)?;
    let tap_code = text("tap_code", &body.tap_code)?;
    let transaction_reference = text("transaction_reference", &body.transaction_reference)?;
    LineBody::check_all(&body.lines)?;
    if body.lines.is_empty() && body.total_amount.is_none() {
        return Err(
            DomainError::validation("total_amount", "is required when there are no lines").into(),
        );
    }
    let canonical_body = crate::dto::canonical(&body);
    let medium = body.payment_medium.clone().unwrap_or_default();
    let payment_medium = PaymentMediumRecord {
        identifier: opt_text("payment_medium.identifier", &medium.identifier)?,
        brand: opt_text("payment_medium.brand", &medium.brand)?,
        kind: opt_text("payment_medium.type", &medium.kind)?,
    };
    let purchase = PurchaseInput {
        currency: body.currency.clone(),
        lines: std::mem::take(&mut body.lines)
            .into_iter()
            .map(LineBody::into_input)
            .collect(),
        discount_amount: None,
        net_amount: None,
        tax_amount: None,
        total_amount: body.total_amount.map(|d| d.0),
    };
    let input = TransactionInput {
        processor_id,
        tap_code,
        transaction_reference,
        performed_on: time("performed_on", body.performed_on.as_deref())?,
        payment_medium,
        purchase,
    };
    let key =
        IdempotencyKey::for_processor(processor_id, &input.transaction_reference, &canonical_body);
    once(app, Some(key.clone()), move |_| async move {
        flows::route_transaction(app, input, key).await
    })
    .await
}

fn require_processor(principal: &Principal) -> ApiResult<()> {
    if principal.role == Role::Processor {
        Ok(())
    } else {
        Err(DomainError::Forbidden.into())
    }
}

#[utoipa::path(
    post,
    path = "/v1/processor/purchases",
    tag = "processors",
    summary = "A card purchase from a transaction processor, routed to every business on the terminal",
    request_body = ProcessorPurchaseBody,
    responses(
        (status = 200, description = "What each business did with it", body = serde_json::Value),
    )
)]
async fn post_processor_purchase(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    answer(submit(&app, &principal, &body).await)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ProcessorPurchaseBatch)]
struct BatchBody {
    /// Each item is parsed and answered on its own.
    #[schema(value_type = Vec<ProcessorPurchaseBody>, max_items = 1000)]
    items: Vec<Box<RawValue>>,
}

/// The answer to a batch: one result per item, in the order of the items (its schema; the
/// answer itself is written by [`batch_response`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct BatchResults {
    pub results: Vec<ItemResult>,
}

/// One batch item's outcome: the status and body it would have had on its own.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    #[schema(minimum = 200, maximum = 599)]
    pub status: u16,
    /// The item's answer: the event, or a problem.
    pub body: Value,
}

/// One batch item's outcome: its status and the JSON body it would have had on its own.
pub fn item_result(outcome: ApiResult<(Reply, bool)>) -> (u16, Vec<u8>) {
    let (status, body) = match outcome {
        Ok((reply, _)) => (reply.status, reply.body),
        Err(error) => error.to_parts(),
    };
    (status.as_u16(), body)
}

/// `{"results": [{"status", "body"}, ...]}` written around the items' bodies, which are
/// already JSON: a batch's answer is not parsed and serialized again item by item.
pub fn batch_response(results: &[(u16, Vec<u8>)]) -> HttpResponse {
    let size: usize = results.iter().map(|(_, body)| body.len() + 32).sum();
    let mut out = Vec::with_capacity(size + 16);
    out.extend_from_slice(b"{\"results\":[");
    for (i, (status, body)) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"status\":");
        out.extend_from_slice(itoa::Buffer::new().format(*status).as_bytes());
        out.extend_from_slice(b",\"body\":");
        if body.is_empty() {
            out.extend_from_slice(b"null");
        } else {
            out.extend_from_slice(body);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    super::json::respond_bytes(actix_web::http::StatusCode::OK, out)
}

#[utoipa::path(
    post,
    path = "/v1/processor/purchases:batch",
    tag = "processors",
    summary = "Up to 1000 processor purchases; every item gets its own result",
    request_body = BatchBody,
    responses(
        (status = 200, description = "One result per item, in order", body = BatchResults),
    )
)]
async fn post_processor_batch(
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    require_processor(&principal)?;
    let batch: BatchBody = parse_envelope(&body)?;
    if batch.items.len() > MAX_BATCH_ITEMS {
        return Err(DomainError::validation(
            "items",
            format!("a batch holds at most {MAX_BATCH_ITEMS} items"),
        )
        .into());
    }
    let results = join_all(batch.items.iter().map(|item| {
        let app = &app;
        let principal = &principal;
        async move { item_result(submit(app, principal, item.get().as_bytes()).await) }
    }))
    .await;
    Ok(batch_response(&results))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
struct ClaimBody {
    #[serde(default)]
    business_id: Option<String>,
    #[serde(default, deserialize_with = "crate::dto::object::optional")]
    identity: Option<rewards_core::identity::IdentityInput>,
    #[serde(default)]
    #[schema(max_length = 256)]
    claim_code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    tap_code: Option<String>,
    #[serde(default)]
    total_amount: Option<Dec>,
    #[serde(default)]
    performed_on: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    reference_number: Option<String>,
}

/// A contact claims a purchase with its session; a business claims one for a contact it names.
#[utoipa::path(
    post,
    path = "/v1/purchases/claims",
    tag = "purchases",
    summary = "Claim an unclaimed card purchase by its code or receipt",
    request_body = ClaimBody,
    responses(
        (status = 200, description = "The claimed purchase, now posted to the contact", body = serde_json::Value),
        (status = 201, description = "The claimed purchase, now posted to the contact", body = serde_json::Value),
    )
)]
async fn post_claim(app: web::Data<App>, principal: Principal, body: web::Bytes) -> HttpResponse {
    let app = app.into_inner();
    answer(run_claim(&app, &principal, &body).await.map(|r| (r, false)))
}

async fn run_claim(app: &Arc<App>, principal: &Principal, raw: &[u8]) -> ApiResult<Reply> {
    require_role(principal, &[Role::Contact, Role::Business])?;
    let body: ClaimBody = parse(raw)?;
    let snapshot = super::named_business(app, principal, body.business_id.as_deref())?;
    let business_id = snapshot.business.id;
    let identity = match principal.role {
        Role::Contact => None,
        _ => Some(
            body.identity
                .as_ref()
                .ok_or_else(|| {
                    DomainError::validation("identity", "a business key names the contact")
                })?
                .validate("identity")?,
        ),
    };
    let (query, tap_code) = match (&body.claim_code, &body.tap_code) {
        (Some(code), _) => {
            let code = ClaimCode::parse(code).ok_or_else(|| {
                DomainError::validation("claim_code", "is not a claim code (XXXX-XXXX)")
            })?;
            (ClaimQuery::Code(code), None)
        }
        (None, Some(tap)) => {
            let tap = text("tap_code", tap)?;
            let total = body.total_amount.ok_or_else(|| {
                DomainError::validation("total_amount", "is required with a receipt")
            })?;
            let total = snapshot
                .business
                .currency
                .parse_amount("total_amount", total.0)?;
            let at = match body.performed_on.as_deref() {
                Some(t) => time("performed_on", Some(t))?,
                None => {
                    return Err(DomainError::validation(
                        "performed_on",
                        "is required with a receipt",
                    )
                    .into())
                }
            };
            if snapshot.tap_by_code(&tap).is_none() {
                return Err(DomainError::TapNotFound(tap).into());
            }
            let query = ClaimQuery::Receipt {
                total,
                at,
                reference_number: opt_text("reference_number", &body.reference_number)?,
            };
            (query, Some(tap))
        }
        (None, None) => {
            return Err(DomainError::validation(
                "claim_code",
                "give a claim code, or a receipt's tap_code, total_amount and performed_on",
            )
            .into())
        }
    };
    // Identified last, so a one-time code is taken only by a claim that is otherwise whole.
    let (contact, identified) = match identity {
        None => (principal.contact_id.ok_or(DomainError::Forbidden)?, None),
        Some(identity) => {
            let identified =
                crate::identities::identify(app, business_id, &identity, principal.key_id)?;
            // An OTP carrying a spend amount is for a purchase that spends it; a claim spends
            // nothing, so it would use the OTP up without spending.
            if identified.otp_spend_amount().is_some() {
                return identified.settle(app, Err(DomainError::OtpSpendMismatch.into()));
            }
            (identified.contact, Some(identified))
        }
    };
    let result = flows::claim(app, snapshot, contact, query, tap_code).await;
    Ok(match identified {
        Some(identified) => identified.settle(app, result),
        None => result,
    }?)
}
