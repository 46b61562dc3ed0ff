//! Purchase estimates and payment requests (SPEC section 6): created by the business or its
//! POS, approved or rejected by the contact, cancelled by the business or its POS, and named by
//! the purchase that consumes them (see [`super::purchases`]).

use actix_web::{web, HttpRequest, HttpResponse};
use rewards_core::{DomainError, EstimateId};
use rewards_storage::Space;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::json::{ok, parse};
use super::problem::{ApiError, ApiResult};
use super::purchases::{answer, once, prepare, with_otp_spend, Prepared};
use super::{path_id, require_role};
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::clock;
use crate::dto::canonical;
use crate::dto::purchase::PurchaseBody;
use crate::estimates::EstimateRecord;
use crate::idempotency::IdempotencyKey;
use crate::identities::identify;
use crate::schema::keys;
use crate::wallets::{self, Command, EstimateJob, EstimateStep};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/estimates", web::post().to(create_estimate))
        .route("/v1/estimates/{id}", web::get().to(get_estimate))
        .route("/v1/estimates/{id}/approve", web::post().to(approve))
        .route("/v1/estimates/{id}/reject", web::post().to(reject))
        .route("/v1/estimates/{id}/cancel", web::post().to(cancel));
}

/// A purchase body, plus whether to reserve the money it would spend and whether the contact
/// must approve it first (a payment request).
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct EstimateBody {
    #[serde(flatten)]
    pub purchase: PurchaseBody,
    /// Reserve what the purchase would spend until the estimate is consumed, rejected,
    /// cancelled or expired.
    #[serde(default)]
    pub hold: bool,
    /// `none` (the default) or `required`: a payment request the contact approves or rejects.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "required")]
    pub approval: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/estimates",
    tag = "estimates",
    summary = "What a purchase would award and spend now; optionally hold the money, or ask the contact to approve it",
    request_body = EstimateBody,
    responses(
        (status = 201, description = "The estimate: `{id, state, expires_at, amounts, awards, spend: {requested, spendable, would_spend, held}, lines}`", body = serde_json::Value),
    )
)]
async fn create_estimate(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    body: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    let peer = crate::http::client_ip(&request);
    answer(submit_estimate(&app, &principal, &body, peer.as_deref()).await)
}

async fn submit_estimate(
    app: &Arc<App>,
    principal: &Principal,
    raw: &[u8],
    peer: Option<&str>,
) -> ApiResult<(wallets::Reply, bool)> {
    require_role(principal, &[Role::Business, Role::Pos])?;
    let mut body: EstimateBody = parse(raw)?;
    let approval_required = match body.approval.as_deref() {
        None | Some("none") => false,
        Some("required") => true,
        Some(_) => {
            return Err(DomainError::validation("approval", "must be none or required").into())
        }
    };
    if body.purchase.estimate_id.is_some() {
        return Err(DomainError::validation(
            "estimate_id",
            "an estimate cannot name another estimate",
        )
        .into());
    }
    let canonical_body = body
        .purchase
        .external_reference
        .is_some()
        .then(|| canonical(&body));
    let Prepared {
        snapshot,
        business_id,
        identity,
        tap,
        merchant_id,
        performed_on,
        purchase,
        spend,
        external_system,
        payment_medium,
        ..
    } = prepare(app, principal, &mut body.purchase, peer)?;
    let key = body
        .purchase
        .external_reference
        .as_deref()
        .zip(canonical_body.as_deref())
        .map(|(reference, canonical_body)| {
            IdempotencyKey::new(
                business_id,
                "estimate",
                &external_system,
                reference,
                canonical_body,
            )
        });
    let presented_by = principal.key_id;
    let hold = body.hold;
    once(app, key, move |idempotency| async move {
        let identified = identify(app, business_id, &identity, presented_by)?;
        let spend = match with_otp_spend(spend, identified.otp_spend_amount()) {
            Ok(spend) => spend,
            Err(refused) => return identified.settle(app, Err(refused.into())),
        };
        let job = EstimateJob {
            snapshot,
            estimate_id: app.placement.estimate_id(),
            purchase,
            performed_on,
            reference_number: body.purchase.reference_number.clone(),
            classification: body.purchase.classification.clone(),
            tap_code: tap.map(|t| t.code),
            merchant_id,
            payment_medium,
            spend,
            hold,
            approval_required,
            idempotency,
        };
        let result = wallets::call(app, identified.contact, Command::Estimate(Box::new(job))).await;
        identified.settle(app, result)
    })
    .await
}

/// An estimate the key may see with one of `roles`: business and pos keys their business's,
/// a contact key its own. Anything else is unknown.
fn visible_estimate(
    app: &App,
    principal: &Principal,
    id: &str,
    roles: &[Role],
) -> ApiResult<EstimateRecord> {
    require_role(principal, roles)?;
    let id: EstimateId = path_id(id, "estimate")?;
    let record: EstimateRecord = app
        .store
        .get(Space::Estimates, &keys::estimate_key(id))?
        .ok_or(DomainError::NotFound("estimate"))?;
    let e = &record.estimate;
    if !principal.can_see_contact(e.business_id, e.contact_id, roles) {
        return Err(DomainError::NotFound("estimate").into());
    }
    Ok(record)
}

#[utoipa::path(
    get,
    path = "/v1/estimates/{id}",
    tag = "estimates",
    summary = "An estimate and its state (a POS polls a payment request here)",
    params(("id" = uuid::Uuid, Path, description = "The estimate's id")),
    responses((status = 200, description = "The estimate", body = serde_json::Value))
)]
async fn get_estimate(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let record = visible_estimate(
        &app,
        &principal,
        &path,
        &[Role::Business, Role::Pos, Role::Contact],
    )?;
    let currency = app
        .registry
        .business(record.estimate.business_id)
        .ok_or(DomainError::NotFound("business"))?
        .business()
        .currency;
    Ok(ok(&record.render(currency, clock::now())))
}

async fn step(
    app: web::Data<App>,
    principal: Principal,
    id: &str,
    step: EstimateStep,
    roles: &[Role],
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let record = visible_estimate(&app, &principal, id, roles)?;
    let snapshot = app
        .registry
        .business(record.estimate.business_id)
        .ok_or(DomainError::NotFound("business"))?
        .snapshot();
    let reply = wallets::call(
        &app,
        record.estimate.contact_id,
        Command::EstimateStep {
            snapshot,
            estimate_id: record.estimate.id,
            step,
        },
    )
    .await
    .map_err(ApiError::from)?;
    Ok(answer(Ok((reply, false))))
}

#[utoipa::path(
    post,
    path = "/v1/estimates/{id}/approve",
    tag = "estimates",
    summary = "The contact approves a payment request",
    params(("id" = uuid::Uuid, Path, description = "The estimate's id")),
    responses((status = 200, description = "The approved estimate", body = serde_json::Value))
)]
async fn approve(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    step(
        app,
        principal,
        &path,
        EstimateStep::Approve,
        &[Role::Contact, Role::Business],
    )
    .await
}

#[utoipa::path(
    post,
    path = "/v1/estimates/{id}/reject",
    tag = "estimates",
    summary = "The contact rejects a payment request; its hold is released",
    params(("id" = uuid::Uuid, Path, description = "The estimate's id")),
    responses((status = 200, description = "The rejected estimate", body = serde_json::Value))
)]
async fn reject(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    step(
        app,
        principal,
        &path,
        EstimateStep::Reject,
        &[Role::Contact, Role::Business],
    )
    .await
}

#[utoipa::path(
    post,
    path = "/v1/estimates/{id}/cancel",
    tag = "estimates",
    summary = "The business or its POS cancels an open estimate; its hold is released",
    params(("id" = uuid::Uuid, Path, description = "The estimate's id")),
    responses((status = 200, description = "The cancelled estimate", body = serde_json::Value))
)]
async fn cancel(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    step(
        app,
        principal,
        &path,
        EstimateStep::Cancel,
        &[Role::Business, Role::Pos],
    )
    .await
}
