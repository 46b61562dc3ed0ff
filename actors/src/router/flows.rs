//! The flows of processor routing (SPEC section 7): a processor purchase routed to every
//! business on its TAP code, a POS purchase in `match` mode, and a claim. Each is decided in the
//! TAP's router and completed by one command to the contact's wallet actor, whose commit also
//! carries the router's record change, so a purchase is rewarded once in one write.

use std::sync::Arc;

use actix_web::http::StatusCode;
use futures::future::join_all;
use rewards_core::business::{ProcessorMode, Tap};
use rewards_core::identity::Identity;
use rewards_core::matching::Side;
use rewards_core::purchase::{
    validate_purchase, PurchaseContext, PurchaseInput, ValidatedPurchase,
};
use rewards_core::wallet::SpendAmount;
use rewards_core::{BusinessId, ContactId, DomainError, EventId, Money, ProcessorId, Timestamp};
use rewards_storage::{Space, WriteSet};
use serde::{Deserialize, Serialize};

use super::records::{PosFacts, RouteRecord, RouteState};
use super::{call as router_call, ClaimQuery, RouterAnswer, RouterCommand};
use crate::app::App;
use crate::clock;
use crate::dto::purchase::render_route;
use crate::error::{Failure, Fallible};
use crate::events::{MatchState, PaymentMediumRecord, RouteFacts};
use crate::idempotency::{IdempotencyKey, StoredResponse};
use crate::registry::BusinessSnapshot;
use crate::schema::keys;
use crate::wallets::{self, Answer, Command, PurchaseJob, Reply, RoutedPurchase};

/// A processor purchase as submitted, before it is validated for each business.
pub struct TransactionInput {
    pub processor_id: ProcessorId,
    pub tap_code: String,
    pub transaction_reference: String,
    pub performed_on: Timestamp,
    pub payment_medium: PaymentMediumRecord,
    pub purchase: PurchaseInput,
}

/// One business's part of a processor purchase, as the answer shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteView {
    pub business_id: String,
    pub outcome: String,
    pub purchase_id: String,
    pub claim_code: Option<String>,
}

#[derive(Serialize)]
struct TransactionView<'a> {
    transaction_reference: &'a str,
    routes: Vec<RouteView>,
}

fn route_view(business: BusinessId, outcome: &str, id: EventId, code: Option<String>) -> RouteView {
    RouteView {
        business_id: business.to_string(),
        outcome: outcome.to_string(),
        purchase_id: id.to_string(),
        claim_code: code,
    }
}

/// Routes a processor purchase to every business that registered its TAP code and answers
/// each business's outcome. It is validated for every business before anything is routed, so a
/// refusal changes nothing; a failure after some parts are durable leaves their answers stored,
/// and a retry with the same transaction reference completes only the rest.
pub async fn route_transaction(
    app: &Arc<App>,
    input: TransactionInput,
    key: IdempotencyKey,
) -> Fallible<Reply> {
    let mut businesses: Vec<BusinessId> = app
        .registry
        .taps_by_code
        .get(&input.tap_code)
        .map(|b| b.clone())
        .unwrap_or_default();
    // Routes in a stable order, whatever order the businesses registered the code in.
    businesses.sort();
    if businesses.is_empty() {
        return Err(DomainError::TapNotFound(input.tap_code.clone()).into());
    }
    let identity = Identity::PaymentMediumIdentifier(
        input.payment_medium.identifier.clone().unwrap_or_default(),
    );
    let mut parts = Vec::with_capacity(businesses.len());
    for business in businesses {
        let Some(entry) = app.registry.business(business) else {
            continue;
        };
        let snapshot = entry.snapshot();
        let Some(tap) = snapshot.tap_by_code(&input.tap_code).cloned() else {
            continue;
        };
        let purchase = validate_purchase(
            identity.clone(),
            input.purchase.clone(),
            &PurchaseContext {
                currency: snapshot.business.currency,
                exchange_rates: &snapshot.business.exchange_rates,
                amount_tolerance: snapshot.business.settings.amount_tolerance,
            },
        )?;
        parts.push((snapshot, tap, purchase));
    }
    // The parts a failed earlier try made durable, in one read (usually there are none).
    let (done, _) = app.store.page::<StoredResponse>(
        Space::Idempotency,
        &key.routes_prefix(),
        None,
        false,
        parts.len().max(1),
    )?;
    let input = &input;
    let key = &key;
    let results = join_all(parts.into_iter().map(|(snapshot, tap, purchase)| {
        let route_key = key.for_route(snapshot.business.id);
        let stored = done
            .iter()
            .find(|(k, _)| *k == route_key.key)
            .map(|(_, stored)| stored.clone());
        route_one(app, input, route_key, stored, snapshot, tap, purchase)
    }))
    .await;
    let routes = results.into_iter().collect::<Fallible<Vec<RouteView>>>()?;
    let body = crate::json_bytes(&TransactionView {
        transaction_reference: &input.transaction_reference,
        routes,
    });
    let mut set = WriteSet::new();
    set.put(
        Space::Idempotency,
        key.key.clone(),
        &key.stored(StatusCode::OK.as_u16(), body.clone()),
    );
    app.write(set).await?;
    Ok(Reply {
        status: StatusCode::OK,
        body,
    })
}

/// Stores one business's route answer in `set`.
fn put_route_answer(set: &mut WriteSet, key: &IdempotencyKey, view: &RouteView) {
    set.put(
        Space::Idempotency,
        key.key.clone(),
        &key.stored(StatusCode::OK.as_u16(), crate::json_bytes(view)),
    );
}

/// One business's part of a processor purchase; `stored` is its answer if an earlier try
/// made it durable.
async fn route_one(
    app: &Arc<App>,
    input: &TransactionInput,
    key: IdempotencyKey,
    stored: Option<StoredResponse>,
    snapshot: BusinessSnapshot,
    tap: Tap,
    purchase: ValidatedPurchase,
) -> Fallible<RouteView> {
    let business = snapshot.business.id;
    if let Some(stored) = stored {
        if stored.body_hash != key.body_hash {
            return Err(DomainError::IdempotencyConflict.into());
        }
        return serde_json::from_slice(&stored.body)
            .map_err(|e| Failure::Internal(format!("stored route answer: {e}")));
    }
    let now = clock::now();
    let settings = &snapshot.business.settings;
    let record = RouteRecord {
        id: app.placement.event_id(),
        business_id: business,
        tap_code: tap.code.clone(),
        side: Side::Transaction,
        state: RouteState::PendingMatch,
        performed_on: input.performed_on,
        created_at: now,
        deadline: now.plus_seconds(i64::from(settings.match_window_seconds)),
        transaction_reference: Some(input.transaction_reference.clone()),
        reference_number: None,
        claim_code: None,
        processor_id: Some(input.processor_id),
        merchant_id: tap.merchant_id,
        payment_medium: Some(input.payment_medium.clone()),
        purchase,
        pos: None,
    };
    let view = match settings.processor_mode {
        ProcessorMode::Award => {
            let contact = match &input.payment_medium.identifier {
                Some(identifier) => match crate::identities::resolve(
                    &app.identities,
                    &app.store,
                    business,
                    &Identity::PaymentMediumIdentifier(identifier.clone()),
                ) {
                    Ok(contact) => Some(contact),
                    Err(Failure::Domain(DomainError::ContactNotFound)) => None,
                    Err(error) => return Err(error),
                },
                None => None,
            };
            match contact {
                Some(contact) => reward(app, snapshot, record, contact, &key).await?,
                None => keep_unclaimed(app, record, &key).await?,
            }
        }
        ProcessorMode::Match => {
            let pending = route_view(business, "pending_match", record.id, None);
            let mut attached = WriteSet::new();
            put_route_answer(&mut attached, &key, &pending);
            let window_seconds = settings.match_window_seconds;
            let tap_code = record.tap_code.clone();
            let tx = record.clone();
            let answer = router_call(
                app,
                &tap_code,
                RouterCommand::Place {
                    window_seconds,
                    record: Box::new(record),
                    attached,
                },
            )
            .await?;
            match answer {
                RouterAnswer::Waiting(_) => pending,
                RouterAnswer::Matched(pos) => {
                    let view = route_view(business, "matched", pos.id, None);
                    let mut records = WriteSet::new();
                    put_route_answer(&mut records, &key, &view);
                    complete_match(app, &snapshot, *pos, &tx, records, None).await?;
                    view
                }
                _ => return Err(Failure::Internal("unexpected router answer".into())),
            }
        }
        ProcessorMode::Claim => keep_unclaimed(app, record, &key).await?,
    };
    metrics::counter!("rewards_routes_total", "outcome" => view.outcome.clone()).increment(1);
    Ok(view)
}

/// Award mode with a known card: the purchase is the contact's at once.
async fn reward(
    app: &Arc<App>,
    snapshot: BusinessSnapshot,
    record: RouteRecord,
    contact: ContactId,
    key: &IdempotencyKey,
) -> Fallible<RouteView> {
    let view = route_view(record.business_id, "rewarded", record.id, None);
    let mut records = WriteSet::new();
    put_route_answer(&mut records, key, &view);
    let job = PurchaseJob {
        snapshot,
        event_id: record.id,
        purchase: record.purchase,
        performed_on: record.performed_on,
        reference_number: None,
        classification: None,
        tap_code: Some(record.tap_code),
        merchant_id: record.merchant_id,
        external_system: String::new(),
        external_reference: None,
        payment_medium: record.payment_medium,
        origin: "processor".into(),
        spend: None,
        idempotency: None,
        estimate_id: None,
        route: Some(RoutedPurchase {
            facts: RouteFacts {
                match_state: None,
                claim_code: None,
                transaction_reference: record.transaction_reference,
                processor_id: record.processor_id,
            },
            answer: Answer::StatusOnly,
            created_at: record.created_at,
            records,
        }),
    };
    wallets::call(app, contact, Command::Purchase(Box::new(job))).await?;
    Ok(view)
}

/// Award mode without a known card, or claim mode: kept for its contact with a claim code.
async fn keep_unclaimed(
    app: &Arc<App>,
    mut record: RouteRecord,
    key: &IdempotencyKey,
) -> Fallible<RouteView> {
    let code = app.routers.new_code(app, record.business_id);
    record.claim_code = Some(code);
    record.state = RouteState::Unclaimed;
    let view = route_view(
        record.business_id,
        "unclaimed",
        record.id,
        Some(code.to_string()),
    );
    let mut attached = WriteSet::new();
    put_route_answer(&mut attached, key, &view);
    let tap_code = record.tap_code.clone();
    let business = record.business_id;
    let added = router_call(
        app,
        &tap_code,
        RouterCommand::AddUnclaimed {
            record: Box::new(record),
            attached,
        },
    )
    .await;
    if added.is_err() {
        // Refused before the router took it (or its write failed): the code is free again.
        app.routers.issued(&[(business, code)]);
    }
    added?;
    Ok(view)
}

/// Completes a match: the POS purchase's basket, contact and spend with the processor's
/// payment medium, under the id of whichever entry waited. `records` carries the answer of the
/// side that arrived; the waiting record's removal is added here. Settles the router either way.
async fn complete_match(
    app: &Arc<App>,
    snapshot: &BusinessSnapshot,
    waiting: RouteRecord,
    arrived: &RouteRecord,
    mut records: WriteSet,
    idempotency: Option<IdempotencyKey>,
) -> Fallible<Reply> {
    let (pos_record, tx_record) = match waiting.side {
        Side::Pos => (&waiting, arrived),
        Side::Transaction => (arrived, &waiting),
    };
    let Some(pos) = pos_record.pos.clone() else {
        settle(app, &waiting, false).await;
        return Err(Failure::Internal(format!(
            "route {} has no POS facts",
            pos_record.id
        )));
    };
    waiting.remove(&mut records);
    let job = |spend: Option<(Option<Money>, bool)>, records: WriteSet| PurchaseJob {
        snapshot: snapshot.clone(),
        event_id: waiting.id,
        purchase: pos_record.purchase.clone(),
        performed_on: pos_record.performed_on,
        reference_number: pos_record.reference_number.clone(),
        classification: pos.classification.clone(),
        tap_code: Some(pos_record.tap_code.clone()),
        merchant_id: pos.merchant_id,
        external_system: pos.external_system.clone(),
        external_reference: pos.external_reference.clone(),
        payment_medium: tx_record
            .payment_medium
            .clone()
            .or_else(|| pos_record.payment_medium.clone()),
        origin: pos.origin.clone(),
        spend: spend
            .map(|(amount, full)| (amount.map_or(SpendAmount::All, SpendAmount::Exact), full)),
        idempotency: idempotency.clone(),
        estimate_id: None,
        route: Some(RoutedPurchase {
            facts: RouteFacts {
                match_state: Some(MatchState::Matched),
                claim_code: None,
                transaction_reference: tx_record.transaction_reference.clone(),
                processor_id: tx_record.processor_id,
            },
            // The POS caller reads its purchase; a processor only its route.
            answer: match arrived.side {
                Side::Pos => Answer::Purchase,
                Side::Transaction => Answer::StatusOnly,
            },
            created_at: waiting.created_at,
            records,
        }),
    };
    let first = job(pos.spend, records.clone());
    let mut result = wallets::call(app, pos.contact_id, Command::Purchase(Box::new(first))).await;
    // A waiting POS purchase whose spend the wallet can no longer make (blocked since, or the
    // money is gone) has nobody to tell: the match completes without the spend. A POS purchase
    // that arrives second is refused like any purchase, and its transaction waits on.
    let refused_spend = matches!(
        &result,
        Err(Failure::Domain(
            DomainError::InsufficientFunds { .. }
                | DomainError::SpendBlocked
                | DomainError::SpendLimit(_)
        ))
    );
    if refused_spend && pos.spend.is_some() && waiting.side == Side::Pos {
        let again = job(None, records);
        result = wallets::call(app, pos.contact_id, Command::Purchase(Box::new(again))).await;
    }
    settle(app, &waiting, result.is_ok()).await;
    result
}

async fn settle(app: &Arc<App>, record: &RouteRecord, durable: bool) {
    let settled = router_call(
        app,
        &record.tap_code,
        RouterCommand::Settle {
            business: record.business_id,
            id: record.id,
            durable,
        },
    )
    .await;
    if let Err(error) = settled {
        tracing::error!(route = %record.id, %error, "a route could not be settled");
    }
}

/// A POS purchase in `match` mode, everything about it already validated.
pub struct PosPurchase {
    pub snapshot: BusinessSnapshot,
    pub event_id: EventId,
    pub contact_id: ContactId,
    pub tap_code: String,
    pub purchase: ValidatedPurchase,
    pub performed_on: Timestamp,
    pub reference_number: Option<String>,
    pub transaction_reference: Option<String>,
    pub payment_medium: Option<PaymentMediumRecord>,
    pub facts: PosFacts,
}

/// Places a POS purchase in its TAP's router: it completes a match with a waiting transaction
/// (201, rewarded) or waits for one (202, `match_state: "pending"`, nothing rewarded yet).
pub async fn place_pos(
    app: &Arc<App>,
    pos: PosPurchase,
    idempotency: Option<IdempotencyKey>,
) -> Fallible<Reply> {
    let now = clock::now();
    let settings = &pos.snapshot.business.settings;
    let window_seconds = settings.match_window_seconds;
    let record = RouteRecord {
        id: pos.event_id,
        business_id: pos.snapshot.business.id,
        tap_code: pos.tap_code,
        side: Side::Pos,
        state: RouteState::PendingMatch,
        performed_on: pos.performed_on,
        created_at: now,
        deadline: now.plus_seconds(i64::from(window_seconds)),
        transaction_reference: pos.transaction_reference,
        reference_number: pos.reference_number,
        claim_code: None,
        processor_id: None,
        merchant_id: pos.facts.merchant_id,
        payment_medium: pos.payment_medium,
        purchase: pos.purchase,
        pos: Some(pos.facts),
    };
    let pending = Reply {
        status: StatusCode::ACCEPTED,
        body: crate::json_bytes(&render_route(&record, pos.snapshot.business.currency)),
    };
    let mut attached = WriteSet::new();
    if let Some(key) = &idempotency {
        attached.put(
            Space::Idempotency,
            key.key.clone(),
            &key.stored(pending.status.as_u16(), pending.body.clone()),
        );
    }
    let arrived = record.clone();
    let answer = router_call(
        app,
        &record.tap_code.clone(),
        RouterCommand::Place {
            window_seconds,
            record: Box::new(record),
            attached,
        },
    )
    .await?;
    let outcome = match answer {
        RouterAnswer::Waiting(_) => Ok(pending),
        RouterAnswer::Matched(tx) => {
            let mut arrived = arrived;
            // The purchase takes the waiting transaction's id; the POS purchase's own is unused.
            arrived.id = tx.id;
            complete_match(
                app,
                &pos.snapshot,
                *tx,
                &arrived,
                WriteSet::new(),
                idempotency,
            )
            .await
        }
        _ => Err(Failure::Internal("unexpected router answer".into())),
    };
    let label = match &outcome {
        Ok(reply) if reply.status == StatusCode::ACCEPTED => "pos_pending",
        Ok(_) => "pos_matched",
        Err(_) => "pos_failed",
    };
    metrics::counter!("rewards_routes_total", "outcome" => label).increment(1);
    outcome
}

/// A claim of an unclaimed processor purchase by `contact`: by its code, or by its receipt on
/// `tap_code`. The purchase becomes the contact's, rewarded as if submitted when performed.
pub async fn claim(
    app: &Arc<App>,
    snapshot: BusinessSnapshot,
    contact: ContactId,
    query: ClaimQuery,
    tap_code: Option<String>,
) -> Fallible<Reply> {
    let business = snapshot.business.id;
    let tap_code = match (&query, tap_code) {
        (ClaimQuery::Code(code), _) => {
            let id = app
                .store
                .get_raw(Space::Routes, &keys::claim_code_key(business, *code))?
                .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok())
                .map(EventId::from_bytes)
                .ok_or(DomainError::NotFound("unclaimed purchase"))?;
            match app
                .store
                .get::<RouteRecord>(Space::Routes, &keys::route_key(id))?
            {
                Some(record) => record.tap_code,
                // Its record left in the commit that made it a purchase: claimed.
                None if app.store.contains(Space::Events, &keys::event_key(id))? => {
                    return Err(DomainError::AlreadyClaimed.into())
                }
                None => return Err(DomainError::NotFound("unclaimed purchase").into()),
            }
        }
        (ClaimQuery::Receipt { .. }, Some(tap)) => tap,
        (ClaimQuery::Receipt { .. }, None) => {
            return Err(DomainError::validation("tap_code", "is required with a receipt").into())
        }
    };
    let answer = router_call(
        app,
        &tap_code,
        RouterCommand::Claim {
            business,
            window_seconds: snapshot.business.settings.match_window_seconds,
            query,
        },
    )
    .await?;
    let RouterAnswer::Claimed(record) = answer else {
        return Err(Failure::Internal("unexpected router answer".into()));
    };
    let record = *record;
    let mut records = WriteSet::new();
    record.remove(&mut records);
    let mut purchase = record.purchase.clone();
    purchase.identity = Identity::ContactId(contact);
    let job = PurchaseJob {
        snapshot,
        event_id: record.id,
        purchase,
        performed_on: record.performed_on,
        reference_number: record.reference_number.clone(),
        classification: None,
        tap_code: Some(record.tap_code.clone()),
        merchant_id: record.merchant_id,
        external_system: String::new(),
        external_reference: None,
        payment_medium: record.payment_medium.clone(),
        origin: "claim".into(),
        spend: None,
        idempotency: None,
        estimate_id: None,
        route: Some(RoutedPurchase {
            facts: RouteFacts {
                match_state: None,
                claim_code: record.claim_code.map(|c| c.to_string()),
                transaction_reference: record.transaction_reference.clone(),
                processor_id: record.processor_id,
            },
            answer: Answer::Purchase,
            created_at: record.created_at,
            records,
        }),
    };
    let result = wallets::call(app, contact, Command::Purchase(Box::new(job))).await;
    settle(app, &record, result.is_ok()).await;
    let mut reply = result?;
    metrics::counter!("rewards_routes_total", "outcome" => "claimed").increment(1);
    reply.status = StatusCode::OK;
    Ok(reply)
}
