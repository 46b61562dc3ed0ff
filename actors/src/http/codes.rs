//! One-time passwords and dynamic wallet codes, issued on a contact's request (see
//! [`crate::codes`]).

use actix_web::{web, HttpResponse};
use rewards_core::{ContactId, DomainError};
use serde::Deserialize;
use serde_json::json;

use super::contacts::{visible_contact, visible_wallet};
use super::json::{created, parse_or_default};
use super::path_id;
use super::problem::ApiResult;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::clock;
use crate::dto::Dec;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/contacts/{c}/otps", web::post().to(create_otp))
        .route("/v1/wallets/{w}/codes", web::post().to(create_wallet_code));
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpBody {
    /// Spent by the purchase the OTP identifies ("identify and spend in one click").
    #[serde(default)]
    pub spend_amount: Option<Dec>,
}

#[utoipa::path(
    post,
    path = "/v1/contacts/{c}/otps",
    tag = "contacts",
    summary = "A one-time password that identifies the contact once, optionally with a spend amount",
    request_body(content = Option<OtpBody>, description = "May be empty"),
    params(
        ("c" = uuid::Uuid, Path, description = "The contact's id"),
    ),
    responses(
        (status = 201, description = "`{otp, expires_at, spend_amount}`", body = serde_json::Value),
    )
)]
async fn create_otp(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id: ContactId = path_id(&path, "contact")?;
    let contact = visible_contact(
        &app,
        &principal,
        id,
        &[Role::Business, Role::Pos, Role::Contact],
    )?;
    let body: OtpBody = parse_or_default(&body)?;
    let business = app
        .registry
        .business(contact.business_id)
        .ok_or(DomainError::NotFound("contact"))?
        .business();
    let currency = business.currency;
    let spend_amount = match body.spend_amount {
        None => None,
        Some(Dec(amount)) => {
            let amount = currency.parse_amount("spend_amount", amount)?;
            if !amount.is_positive() {
                return Err(DomainError::validation("spend_amount", "must be above zero").into());
            }
            Some(amount)
        }
    };
    let (otp, live) = app.codes.issue_otp(
        contact.business_id,
        contact.id,
        spend_amount,
        business.settings.otp_ttl_seconds,
        clock::now(),
    )?;
    Ok(created(&json!({
        "otp": otp,
        "expires_at": live.expires_at.to_rfc3339(),
        "spend_amount": spend_amount.map(|m| currency.format(m)),
        "contact_id": contact.id.to_string(),
    })))
}

#[utoipa::path(
    post,
    path = "/v1/wallets/{w}/codes",
    tag = "wallets",
    summary = "A dynamic wallet code (for a QR code or barcode) that identifies the contact once",
    params(
        ("w" = uuid::Uuid, Path, description = "The wallet's id"),
    ),
    responses(
        (status = 201, description = "`{code, expires_at}`", body = serde_json::Value),
    )
)]
async fn create_wallet_code(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (wallet, contact) =
        visible_wallet(&app, &principal, &path, &[Role::Business, Role::Contact])?;
    let business = app
        .registry
        .business(contact.business_id)
        .ok_or(DomainError::NotFound("wallet"))?
        .business();
    let (code, live) = app.codes.issue_wallet_code(
        contact.business_id,
        contact.id,
        business.settings.wallet_code_ttl_seconds,
        clock::now(),
    )?;
    Ok(created(&json!({
        "code": code,
        "expires_at": live.expires_at.to_rfc3339(),
        "wallet_id": wallet.id.to_string(),
    })))
}
