//! The payout spend model's run (SPEC section 6): every wallet of the business pays out the open
//! money of its `auto` redemptions, once per wallet and run.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use futures::future::join_all;
use rewards_core::business::SpendModel;
use rewards_core::{ContactId, DomainError};
use rewards_storage::Space;
use serde::Deserialize;

use super::business_for;
use super::json::{ok, parse_or_default};
use super::problem::ApiResult;
use super::purchases::once;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::dto::key_part;
use crate::idempotency::IdempotencyKey;
use crate::schema::keys;
use crate::wallets::{self, Command};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/businesses/{b}/payouts/run",
        web::post().to(run_payouts),
    );
}

/// Contacts read, and paid out concurrently, at a time.
const PAGE: usize = 256;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutRunBody {
    /// Names the run: running it again with the same id pays nothing twice (wallets already
    /// paid in it answer what they were paid). Without one, the run gets a new id.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub run_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/payouts/run",
    tag = "wallets",
    summary = "Pay out the open money of auto redemptions of every wallet (payout spend model)",
    request_body(content = Option<PayoutRunBody>, description = "May be empty"),
    params(("b" = uuid::Uuid, Path, description = "The business's id")),
    responses((status = 200, description = "`{payouts, amount, run_id, wallets}`", body = serde_json::Value))
)]
async fn run_payouts(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business])?;
    let body: PayoutRunBody = parse_or_default(&body)?;
    let run_id = match body.run_id.as_deref() {
        Some(run_id) => crate::dto::text("run_id", run_id)?,
        None => app.placement.event_id().to_string(),
    };
    key_part("run_id", Some(&run_id))?;
    let business = entry.business();
    if business.settings.spend_model != SpendModel::Payout {
        return Err(DomainError::InvalidState(
            "payout runs are for businesses in the payout spend model".into(),
        )
        .into());
    }
    let currency = business.currency;
    let prefix = keys::identity_contacts_prefix(business.id);
    let (mut wallets_seen, mut paid_wallets, mut paid_total) = (0usize, 0usize, 0i64);
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (page, next) =
            app.store
                .page_raw(Space::Identities, &prefix, cursor.as_deref(), false, PAGE)?;
        let contacts: Vec<ContactId> = page
            .iter()
            .filter_map(|(_, value)| <[u8; 16]>::try_from(value.as_slice()).ok())
            .map(ContactId::from_bytes)
            .collect();
        let results = join_all(
            contacts
                .iter()
                .map(|contact| pay_one(&app, business.id, currency, &run_id, *contact)),
        )
        .await;
        for result in results {
            let paid = result?;
            wallets_seen += 1;
            if paid > 0 {
                paid_wallets += 1;
                paid_total += paid;
            }
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(ok(&serde_json::json!({
        "payouts": paid_wallets,
        "amount": currency.format(rewards_core::Money::from_minor(paid_total)),
        "run_id": run_id,
        "wallets": wallets_seen,
    })))
}

/// One wallet's part of the run, exactly once per run: the minor units it was paid.
async fn pay_one(
    app: &Arc<App>,
    business: rewards_core::BusinessId,
    currency: rewards_core::Currency,
    run_id: &str,
    contact: ContactId,
) -> ApiResult<i64> {
    let key = IdempotencyKey::new(business, "payout_run", run_id, &contact.to_string(), b"");
    let (reply, _) = once(app, Some(key), move |idempotency| async move {
        wallets::call(
            app,
            contact,
            Command::PayoutAuto {
                payout_id: app.placement.event_id(),
                idempotency,
            },
        )
        .await
    })
    .await?;
    let answer: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let paid = answer
        .get("amount")
        .and_then(serde_json::Value::as_str)
        .and_then(rewards_core::money::parse_decimal)
        .and_then(|d| currency.parse_amount("amount", d).ok())
        .map_or(0, |m| m.minor());
    Ok(paid)
}
