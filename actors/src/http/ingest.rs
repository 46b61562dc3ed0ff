//! The customer events engine's ingress: records in a source's own format, mapped to
//! purchases or achievements (SPEC section 13, `crate::ingest`).

use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::join_all;
use rewards_core::{DomainError, FieldError};
use serde_json::Value;

use super::events::submit_achievement;
use super::problem::{ApiError, ApiResult};
use super::processor::{batch_response, item_result};
use super::purchases::submit_purchase;
use super::require_role;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::ingest::Kind;
use crate::limits::MAX_BATCH_ITEMS;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/ingest/{source}", web::post().to(ingest));
}

#[utoipa::path(
    post,
    path = "/v1/ingest/{source}",
    tag = "purchases",
    summary = "Records in a source's own format (a Shopify order, a Strava event), each mapped to a purchase or an achievement and answered on its own",
    params(("source" = String, Path, description = "The mapping's name: `shopify`, `strava`, or a file of `mappings_dir`")),
    request_body(content = serde_json::Value, description = "One record (a JSON object) or an array of at most 1000"),
    responses(
        (status = 200, description = "One result per record, in order", body = crate::http::processor::BatchResults),
    )
)]
async fn ingest(
    request: HttpRequest,
    app: web::Data<App>,
    principal: Principal,
    source: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    require_role(&principal, &[Role::Business, Role::Pos])?;
    let mapping = app
        .mappings
        .get(&source)
        .ok_or(DomainError::NotFound("source"))?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::from(FieldError::new(
            "body",
            format!("is not JSON ({})", e.to_string().replace('\n', " ")),
        ))
    })?;
    let records = match parsed {
        Value::Array(records) => records,
        record @ Value::Object(_) => vec![record],
        _ => {
            return Err(FieldError::new("body", "must be a JSON object or an array of them").into())
        }
    };
    if records.len() > MAX_BATCH_ITEMS {
        return Err(
            FieldError::new("body", format!("holds at most {MAX_BATCH_ITEMS} records")).into(),
        );
    }
    let peer = crate::http::client_ip(&request);
    let source = source.as_str();
    // Each record stands alone, as a batch's items do.
    let results = join_all(records.iter().map(|record| {
        let (app, principal, mapping, peer) = (&app, &principal, &mapping, peer.as_deref());
        async move {
            let outcome = match mapping.apply(record) {
                Err(refused) => Err(ApiError::from(refused)),
                Ok(body) => {
                    let bytes = serde_json::to_vec(&body).unwrap_or_default();
                    match mapping.kind {
                        Kind::Purchase => submit_purchase(app, principal, &bytes, peer).await,
                        Kind::Achievement => {
                            submit_achievement(app, principal, &bytes, peer).await
                        }
                    }
                }
            };
            let result = item_result(outcome);
            let outcome = if result.0 < 300 { "ok" } else { "refused" };
            metrics::counter!("rewards_ingest_records_total", "source" => source.to_string(), "outcome" => outcome)
                .increment(1);
            result
        }
    }))
    .await;
    Ok(batch_response(&results))
}
