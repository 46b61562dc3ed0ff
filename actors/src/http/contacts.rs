//! Contacts and wallets: creation, reads, spend blocks, scheme membership, consumer sessions,
//! journals, top-ups and payouts.

use actix_web::{web, HttpResponse};
use rewards_core::contact::{Contact, ContactRewards, PaymentMedium};
use rewards_core::scheme::SignUp;
use rewards_core::wallet::Wallet;
use rewards_core::{ContactId, DomainError, FieldError, SchemeId, WalletId};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use super::json::{created, ok, parse, parse_or_default};
use super::problem::{ApiError, ApiResult};
use super::purchases::{answer, once};
use super::{business_for, path_id, require_role, PageQuery};
use crate::app::App;
use crate::auth::{KeyRecord, Principal, Role};
use crate::clock;
use crate::dto::contact::{
    render_contact, ContactBody, SchemeActionBody, SessionBody, SpendBlockBody,
};
use crate::dto::purchase::render_wallet;
use crate::dto::{text, Dec};
use crate::idempotency::IdempotencyKey;
use crate::identities::{Kind, ReserveError};
use crate::limits::{DEFAULT_SESSION_TTL_SECONDS, MAX_SESSION_TTL_SECONDS};
use crate::schema::keys::{identity_contact_key, identity_key};
use crate::wallets::{self, render_entry, Command};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/businesses/{b}/contacts",
        web::post().to(create_contact),
    )
    .route("/v1/contacts/{c}", web::get().to(get_contact))
    .route("/v1/contacts/{c}/spend-block", web::put().to(spend_block))
    .route("/v1/contacts/{c}/schemes", web::post().to(scheme_action))
    .route("/v1/contacts/{c}/sessions", web::post().to(create_session))
    .route("/v1/wallets/{w}", web::get().to(get_wallet))
    .route("/v1/wallets/{w}/journal", web::get().to(journal))
    .route("/v1/wallets/{w}/topups", web::post().to(topup))
    .route("/v1/wallets/{w}/payouts", web::post().to(payout));
}

/// A contact the key may see with one of `roles`: another business's contact answers 404 like
/// an unknown one, a role without the right 403.
pub fn visible_contact(
    app: &App,
    principal: &Principal,
    contact_id: ContactId,
    roles: &[Role],
) -> ApiResult<Contact> {
    require_role(principal, roles)?;
    let contact: Contact = crate::contact_state::load(&app.store, contact_id)?
        .ok_or(DomainError::NotFound("contact"))?;
    if !principal.can_see_contact(contact.business_id, contact.id, roles) {
        return Err(DomainError::NotFound("contact").into());
    }
    Ok(contact)
}

fn opt_text(field: &str, value: &Option<String>) -> Result<Option<String>, FieldError> {
    value.as_deref().map(|v| text(field, v)).transpose()
}

/// `XXXXXXXX` in Crockford base32 from the secure source: a contact's referral code.
fn referral_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    clock::secure_bytes::<8>()
        .iter()
        .map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'0')))
        .collect()
}

#[utoipa::path(
    post,
    path = "/v1/businesses/{b}/contacts",
    tag = "contacts",
    summary = "Register a contact and open its wallet",
    request_body(content = Option<ContactBody>, description = "May be empty"),
    params(
        ("b" = uuid::Uuid, Path, description = "The business's id"),
    ),
    responses(
        (status = 201, description = "The contact", body = serde_json::Value),
    )
)]
async fn create_contact(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let entry = business_for(&app, &principal, &path, &[Role::Business])?;
    let body: ContactBody = parse_or_default(&body)?;
    let snapshot = entry.snapshot();
    let business = snapshot.business.clone();
    let mut problems = crate::dto::Problems::default();
    let code = problems.take(opt_text("code", &body.code)).flatten();
    let cim = problems.take(opt_text("cim", &body.cim)).flatten();
    let name = problems.take(opt_text("name", &body.name)).flatten();
    let email = problems.take(opt_text("email", &body.email)).flatten();
    let phone = problems.take(opt_text("phone", &body.phone)).flatten();
    if let Some(e) = &email {
        if !e.contains('@') {
            problems.add("email", "is not an email address");
        }
    }
    let mut media = Vec::new();
    for (i, m) in body.payment_media.iter().enumerate() {
        if let Some(identifier) = problems.take(text(
            &format!("payment_media[{i}].identifier"),
            &m.identifier,
        )) {
            media.push(PaymentMedium {
                identifier,
                brand: m.brand.clone(),
                kind: m.kind.clone(),
            });
        }
    }
    let mut gift_cards = Vec::new();
    for (i, g) in body.gift_cards.iter().enumerate() {
        if let Some(card) = problems.take(text(&format!("gift_cards[{i}]"), g)) {
            gift_cards.push(card);
        }
    }
    let referred_by = problems
        .take(opt_text("referred_by", &body.referred_by))
        .flatten();
    problems.finish()?;

    let contact_id = app.placement.contact_id();
    let b = business.id;
    let mut keys: Vec<(Kind, Vec<u8>)> =
        vec![(Kind::ContactId, identity_contact_key(b, contact_id))];
    if let Some(code) = &code {
        keys.push((Kind::ContactCode, identity_key(b, Kind::ContactCode, code)));
    }
    if let Some(cim) = &cim {
        keys.push((Kind::Cim, identity_key(b, Kind::Cim, cim)));
    }
    for card in &gift_cards {
        keys.push((Kind::GiftCard, identity_key(b, Kind::GiftCard, card)));
    }
    for m in &media {
        keys.push((
            Kind::PaymentMedium,
            identity_key(b, Kind::PaymentMedium, &m.identifier),
        ));
    }
    let fixed = keys.len();
    let mut attempts = 0;
    let (reserved, wallet_code, referral) = loop {
        // Wallet and referral codes are random: a clash with another contact's draws again.
        let wallet_code = clock::secure_digits(16);
        let referral = referral_code();
        keys.truncate(fixed);
        keys.push((
            Kind::WalletCode,
            identity_key(b, Kind::WalletCode, &wallet_code),
        ));
        keys.push((
            Kind::ReferralCode,
            identity_key(b, Kind::ReferralCode, &referral),
        ));
        match app
            .identities
            .reservations()
            .reserve(&app.store, keys.clone())
        {
            Ok(reserved) => break (reserved, wallet_code, referral),
            Err(ReserveError::Taken(Kind::WalletCode | Kind::ReferralCode)) if attempts < 5 => {
                attempts += 1;
            }
            Err(ReserveError::Taken(kind)) => {
                return Err(DomainError::AlreadyExists(format!(
                    "a contact with this {}",
                    kind.field()
                ))
                .into())
            }
            Err(ReserveError::Store(e)) => return Err(e.into()),
        }
    };
    let scheme_ids: Vec<SchemeId> = snapshot
        .schemes
        .iter()
        .filter(|s| s.active && s.sign_up == SignUp::Auto)
        .map(|s| s.id)
        .collect();
    let mut contact = Contact {
        id: contact_id,
        business_id: b,
        code,
        cim,
        name,
        email,
        phone,
        payment_media: media,
        gift_cards,
        referral_code: referral,
        wallet_id: app.placement.wallet_id(),
        wallet_code,
        scheme_ids,
        spend_blocked: false,
        spend_block_reason: None,
        referred_by: None,
        created_at: clock::now(),
        rewards: ContactRewards::default(),
    };
    // A level whose threshold is 0 is the tier of a new contact.
    contact.rewards.tier =
        crate::contact_state::current_tier(&app, b, &contact.rewards, contact.created_at);
    let identity_keys = keys.into_iter().map(|(_, k)| k).collect();
    let (mut contact, _wallet) =
        wallets::create_contact(&app, &snapshot, contact, identity_keys).await?;
    drop(reserved);
    let Some(code) = referred_by else {
        return Ok(created(&render_contact(&contact)));
    };
    // The contact exists whatever becomes of its referral: a refusal is told beside it.
    let referral = match crate::identities::by_referral_code(&app.store, b, &code) {
        Ok(referrer) => wallets::refer(
            &app,
            snapshot,
            referrer,
            contact.id,
            String::new(),
            None,
            None,
        )
        .await
        .map(|(_, event_id)| (referrer, event_id)),
        Err(error) => Err(error),
    };
    let (event_id, error) = match referral {
        Ok((referrer, event_id)) => {
            contact.referred_by = Some(referrer);
            (Some(event_id.to_string()), None)
        }
        Err(error) => {
            let code = match &error {
                crate::error::Failure::Domain(e) => e.code(),
                crate::error::Failure::Internal(e) => {
                    tracing::error!(error = %e, contact = %contact.id, "a referral at creation failed");
                    "internal"
                }
            };
            (None, Some(code))
        }
    };
    let mut rendered = render_contact(&contact);
    if let Some(fields) = rendered.as_object_mut() {
        fields.insert("referral_event_id".into(), json!(event_id));
        fields.insert("referral_error".into(), json!(error));
    }
    Ok(created(&rendered))
}

#[utoipa::path(
    get,
    path = "/v1/contacts/{c}",
    tag = "contacts",
    summary = "A contact",
    params(
        ("c" = uuid::Uuid, Path, description = "The contact's id"),
    ),
    responses(
        (status = 200, description = "The contact", body = serde_json::Value),
    )
)]
async fn get_contact(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id: ContactId = path_id(&path, "contact")?;
    let mut contact = visible_contact(
        &app,
        &principal,
        id,
        &[Role::Business, Role::Pos, Role::Contact],
    )?;
    contact.rewards.tier = crate::contact_state::current_tier(
        &app,
        contact.business_id,
        &contact.rewards,
        clock::now(),
    );
    Ok(ok(&render_contact(&contact)))
}

#[utoipa::path(
    put,
    path = "/v1/contacts/{c}/spend-block",
    tag = "contacts",
    summary = "Block or unblock spending",
    request_body = SpendBlockBody,
    params(
        ("c" = uuid::Uuid, Path, description = "The contact's id"),
    ),
    responses(
        (status = 200, description = "The contact", body = serde_json::Value),
    )
)]
async fn spend_block(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let id: ContactId = path_id(&path, "contact")?;
    visible_contact(&app, &principal, id, &[Role::Business])?;
    let body: SpendBlockBody = parse(&body)?;
    let reason = opt_text("reason", &body.reason)?;
    let reply = wallets::call(
        &app,
        id,
        Command::SpendBlock {
            blocked: body.blocked,
            reason,
        },
    )
    .await?;
    Ok(answer(Ok((reply, false))))
}

#[utoipa::path(
    post,
    path = "/v1/contacts/{c}/schemes",
    tag = "contacts",
    summary = "Sign a contact up to a scheme or take it off",
    request_body = SchemeActionBody,
    params(
        ("c" = uuid::Uuid, Path, description = "The contact's id"),
    ),
    responses(
        (status = 200, description = "The contact's schemes", body = serde_json::Value),
    )
)]
async fn scheme_action(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let id: ContactId = path_id(&path, "contact")?;
    let contact = visible_contact(&app, &principal, id, &[Role::Business, Role::Contact])?;
    let body: SchemeActionBody = parse(&body)?;
    let sign_up = match body.action.as_str() {
        "sign_up" => true,
        "sign_out" => false,
        _ => return Err(DomainError::validation("action", "must be sign_up or sign_out").into()),
    };
    let scheme_id: SchemeId = crate::dto::parse_id("scheme_id", &body.scheme_id)?;
    let entry = app
        .registry
        .business(contact.business_id)
        .ok_or(DomainError::NotFound("business"))?;
    let snapshot = entry.snapshot();
    if !snapshot.schemes.iter().any(|s| s.id == scheme_id) {
        return Err(DomainError::NotFound("scheme").into());
    }
    let reply = wallets::call(
        &app,
        id,
        Command::Scheme {
            snapshot,
            sign_up,
            scheme_id,
            email: body.email,
            code: body.code,
        },
    )
    .await?;
    Ok(answer(Ok((reply, false))))
}

#[utoipa::path(
    post,
    path = "/v1/contacts/{c}/sessions",
    tag = "contacts",
    summary = "A session token for the consumer app",
    request_body(content = Option<SessionBody>, description = "May be empty"),
    params(
        ("c" = uuid::Uuid, Path, description = "The contact's id"),
    ),
    responses(
        (status = 201, description = "The session", body = serde_json::Value),
    )
)]
async fn create_session(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id: ContactId = path_id(&path, "contact")?;
    let contact = visible_contact(&app, &principal, id, &[Role::Business])?;
    let body: SessionBody = parse_or_default(&body)?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_SESSION_TTL_SECONDS);
    if ttl == 0 || ttl > MAX_SESSION_TTL_SECONDS {
        return Err(DomainError::validation(
            "ttl_seconds",
            format!("must be between 1 and {MAX_SESSION_TTL_SECONDS}"),
        )
        .into());
    }
    let now = clock::now();
    let expires_at = now.plus_seconds(ttl as i64);
    let record = KeyRecord {
        id: app.placement.key_id(),
        hash: [0; 32],
        role: Role::Contact,
        business_id: Some(contact.business_id),
        merchant_id: None,
        processor_id: None,
        contact_id: Some(contact.id),
        created_at: now,
        expires_at: Some(expires_at),
        revoked: false,
    };
    let key = super::operator::issue_key(&app, record).await?;
    Ok(created(&json!({
        "id": key.get("id"),
        "token": key.get("key"),
        "expires_at": expires_at.to_rfc3339(),
        "contact_id": contact.id.to_string(),
    })))
}

/// The wallet at `path` and its contact, if the key may see them.
pub fn visible_wallet(
    app: &App,
    principal: &Principal,
    path: &str,
    roles: &[Role],
) -> ApiResult<(Wallet, Contact)> {
    require_role(principal, roles)?;
    let id: WalletId = path_id(path, "wallet")?;
    let wallet =
        crate::wallets::stored::read(&app.store, id)?.ok_or(DomainError::NotFound("wallet"))?;
    if !principal.can_see_contact(wallet.business_id, wallet.contact_id, roles) {
        return Err(DomainError::NotFound("wallet").into());
    }
    let contact = visible_contact(app, principal, wallet.contact_id, roles)?;
    Ok((wallet, contact))
}

#[utoipa::path(
    get,
    path = "/v1/wallets/{w}",
    tag = "wallets",
    summary = "A wallet: balances and open lots",
    params(
        ("w" = uuid::Uuid, Path, description = "The wallet's id"),
    ),
    responses(
        (status = 200, description = "The wallet", body = serde_json::Value),
    )
)]
async fn get_wallet(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (wallet, contact) = visible_wallet(
        &app,
        &principal,
        &path,
        &[Role::Business, Role::Pos, Role::Contact],
    )?;
    Ok(ok(&render_wallet(
        &wallet,
        &contact.wallet_code,
        clock::now(),
    )))
}

#[utoipa::path(
    get,
    path = "/v1/wallets/{w}/journal",
    tag = "wallets",
    summary = "The wallet's ledger entries, newest first",
    params(
        ("w" = uuid::Uuid, Path, description = "The wallet's id"),
        PageQuery,
    ),
    responses(
        (status = 200, description = "A page of entries", body = super::Page),
    )
)]
async fn journal(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (wallet, _) = visible_wallet(&app, &principal, &path, &[Role::Business, Role::Contact])?;
    // The cursor of a journal page is the sequence number of its last entry.
    let before = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.parse::<u64>()
                .map_err(|_| DomainError::validation("cursor", "is not a cursor"))?,
        ),
    };
    let (entries, next) = crate::ledger::page(&app.store, wallet.id, before, query.limit()?)?;
    let items: Vec<_> = entries.iter().map(|e| render_entry(&wallet, e)).collect();
    Ok(ok(&super::Page {
        items,
        next_cursor: next.map(|s| s.to_string()),
    }))
}

#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
struct TopupBody {
    amount: Dec,
    #[serde(default)]
    #[schema(max_length = 256)]
    external_system: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    external_reference: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/wallets/{w}/topups",
    tag = "wallets",
    summary = "Add commerce money to a wallet",
    request_body = TopupBody,
    params(
        ("w" = uuid::Uuid, Path, description = "The wallet's id"),
    ),
    responses(
        (status = 201, description = "The top-up event", body = serde_json::Value),
    )
)]
async fn topup(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    raw: web::Bytes,
) -> HttpResponse {
    let app = app.into_inner();
    answer(run_topup(&app, &principal, &path, &raw).await)
}

async fn run_topup(
    app: &Arc<App>,
    principal: &Principal,
    path: &str,
    raw: &[u8],
) -> ApiResult<(wallets::Reply, bool)> {
    let (wallet, contact) = visible_wallet(app, principal, path, &[Role::Business])?;
    let body: TopupBody = parse(raw)?;
    let entry = app
        .registry
        .business(wallet.business_id)
        .ok_or(DomainError::NotFound("business"))?;
    let snapshot = entry.snapshot();
    let amount = snapshot
        .business
        .currency
        .parse_amount("amount", body.amount.0)?;
    if !amount.is_positive() {
        return Err(DomainError::validation("amount", "must be above zero").into());
    }
    crate::dto::key_part("external_system", body.external_system.as_deref())?;
    crate::dto::key_part("external_reference", body.external_reference.as_deref())?;
    let external_system = body.external_system.clone().unwrap_or_default();
    let key = body.external_reference.as_deref().map(|reference| {
        IdempotencyKey::new(
            wallet.business_id,
            "topup",
            &external_system,
            reference,
            &crate::dto::canonical(&body),
        )
    });
    let contact_id = contact.id;
    once(app, key, move |idempotency| async move {
        wallets::call(
            app,
            contact_id,
            Command::Topup {
                snapshot,
                amount,
                event_id: app.placement.event_id(),
                external_system,
                external_reference: body.external_reference.clone(),
                idempotency,
            },
        )
        .await
    })
    .await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
struct PayoutBody {
    #[serde(default)]
    amount: Option<Dec>,
}

#[utoipa::path(
    post,
    path = "/v1/wallets/{w}/payouts",
    tag = "wallets",
    summary = "Pay out the wallet's open money",
    request_body(content = Option<PayoutBody>, description = "May be empty"),
    params(
        ("w" = uuid::Uuid, Path, description = "The wallet's id"),
    ),
    responses(
        (status = 201, description = "The payout event", body = serde_json::Value),
    )
)]
async fn payout(
    app: web::Data<App>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let app = app.into_inner();
    let (wallet, contact) = visible_wallet(&app, &principal, &path, &[Role::Business])?;
    let body: PayoutBody = parse_or_default(&body)?;
    let amount = body
        .amount
        .map(|a| wallet.currency.parse_amount("amount", a.0))
        .transpose()?;
    let reply = wallets::call(
        &app,
        contact.id,
        Command::Payout {
            amount,
            payout_id: app.placement.event_id(),
        },
    )
    .await?;
    Ok(answer(Ok((reply, false))))
}

impl From<ReserveError> for ApiError {
    fn from(e: ReserveError) -> Self {
        match e {
            ReserveError::Taken(kind) => {
                DomainError::AlreadyExists(format!("a contact with this {}", kind.field())).into()
            }
            ReserveError::Store(e) => e.into(),
        }
    }
}
