//! The settlement report between a business and its merchants (SPEC section 10).

use actix_web::{web, HttpResponse};
use rewards_core::settlement::{summarize, SettlementEntry, SettlementLine};
use rewards_core::{DomainError, EventId, MerchantId, Timestamp};
use rewards_storage::Space;
use serde::Deserialize;
use serde_json::json;

use super::business_for;
use super::json::ok;
use super::problem::ApiResult;
use crate::app::App;
use crate::auth::{Principal, Role};
use crate::schema::{keys, SettlementRecord};
use crate::wallets::settlement::index_settlement;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/businesses/{b}/settlements", web::get().to(settlements));
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SettlementQuery {
    /// One merchant only.
    merchant_id: Option<String>,
    /// Entries at or after this time (RFC 3339).
    from: Option<String>,
    /// Entries before this time (RFC 3339).
    to: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/businesses/{b}/settlements",
    tag = "business",
    summary = "What each merchant and the business owe each other for a period: awards funded, fees, spends and the net",
    params(("b" = uuid::Uuid, Path, description = "The business's id"), SettlementQuery),
    responses((status = 200, description = "`{items: [{merchant_id, awards_funded, contribution_fees, spends, settlement_fees, net}]}`", body = serde_json::Value))
)]
async fn settlements(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<SettlementQuery>,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business])?;
    let business = entry.business();
    let from = super::time_param("from", query.from.as_deref())?;
    let to = super::time_param("to", query.to.as_deref())?;
    let merchant = match query.merchant_id.as_deref() {
        None => None,
        Some(id) => {
            let id: MerchantId = id
                .parse()
                .map_err(|_| DomainError::validation("merchant_id", "must be a merchant's id"))?;
            if !entry.merchants.read().contains_key(&id) {
                return Err(DomainError::NotFound("merchant").into());
            }
            Some(id)
        }
    };
    let mut entries: Vec<SettlementEntry> = Vec::new();
    let mut lines: Vec<SettlementLine> = Vec::new();
    let mut add = |entry: SettlementEntry| {
        if merchant.is_none_or(|m| entry.merchant_id == m) {
            entries.push(entry);
            // Summed as they come, so a report holds one line per merchant, not every entry.
            if entries.len() >= 4096 {
                merge(&mut lines, summarize(entries.iter()));
                entries.clear();
            }
        }
    };
    // Events' own entries ride on the business's time-ordered index: read the period only.
    let lower = keys::business_index_key(
        business.id,
        from.unwrap_or(Timestamp::from_millis(0)),
        EventId::from_bytes([0; 16]),
    );
    let upper = match to {
        Some(to) => keys::business_index_key(business.id, to, EventId::from_bytes([0; 16])),
        None => keys::business_index_end(business.id),
    };
    app.store
        .for_each_raw_between(Space::EventIndex, &lower, &upper, |_, value| {
            if let Some(entry) = index_settlement(value) {
                add(entry);
            }
            Ok(())
        })?;
    // Returns' and voids' entries, at their own times.
    app.store.for_each(
        Space::EventIndex,
        &keys::settlement_prefix(business.id, merchant),
        |_, record: SettlementRecord| {
            let in_period = from.is_none_or(|f| record.at >= f) && to.is_none_or(|t| record.at < t);
            if in_period {
                add(record.into());
            }
            Ok(())
        },
    )?;
    merge(&mut lines, summarize(entries.iter()));
    if let (Some(id), true) = (merchant, lines.is_empty()) {
        lines.push(SettlementLine {
            merchant_id: Some(id),
            ..Default::default()
        });
    }
    let currency = business.currency;
    let items: Vec<_> = lines
        .iter()
        .map(|l| {
            json!({
                "merchant_id": l.merchant_id.map(|m| m.to_string()),
                "awards_funded": currency.format(l.awards_funded),
                "contribution_fees": currency.format(l.contribution_fees),
                "spends": currency.format(l.spends),
                "settlement_fees": currency.format(l.settlement_fees),
                "net": currency.format(l.net()),
            })
        })
        .collect();
    Ok(ok(&json!({ "items": items })))
}

/// Adds `more` into `lines`, merchant by merchant.
fn merge(lines: &mut Vec<SettlementLine>, more: Vec<SettlementLine>) {
    for line in more {
        match lines.iter_mut().find(|l| l.merchant_id == line.merchant_id) {
            Some(l) => {
                l.awards_funded += line.awards_funded;
                l.contribution_fees += line.contribution_fees;
                l.settlement_fees += line.settlement_fees;
                l.spends += line.spends;
            }
            None => lines.push(line),
        }
    }
}
