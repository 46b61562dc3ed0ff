//! The thin HTTP ingress of API.md: parse, authenticate, hand to the registry or a wallet actor,
//! answer. Every error leaves through [`problem::ApiError`].

pub mod auth;
mod codes;
mod config;
mod contacts;
mod estimates;
mod events;
mod ingest;
pub mod json;
pub mod openapi;
mod operator;
mod ops;
mod payouts;
pub mod problem;
pub mod processor;
mod purchases;
mod settlements;
mod webhooks;

use actix_web::web;
use rewards_core::{BusinessId, DomainError};
use std::sync::Arc;

use crate::app::App;
use crate::auth::{Principal, Role};
use crate::limits::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use crate::registry::BusinessEntry;
use problem::ApiError;

pub use ops::{prometheus, render_metrics};

/// Header with the client's address on a request a cluster follower forwarded.
pub const FORWARDED_CLIENT_IP: &str = "x-rewards-client-ip";
/// Header with the owner's forwarding token on a request a cluster follower forwarded.
pub const FORWARD_TOKEN: &str = "x-rewards-forward-token";

/// Header with the id a split cluster's process chose for a processor or key it has every
/// partition make (so that it is the same in all of them).
pub const NEW_ID: &str = "x-rewards-new-id";
/// Header with the secret a split cluster's process chose for a processor key it has every
/// partition make.
pub const NEW_SECRET: &str = "x-rewards-new-secret";

/// What a split cluster's process dictates in `header` for something every partition makes,
/// believed only with the owner's forwarding token (a client cannot choose ids or secrets).
pub fn dictated(request: &actix_web::HttpRequest, header: &str) -> Option<String> {
    let app = request.app_data::<web::Data<App>>()?;
    let headers = request.headers();
    let presented = headers.get(FORWARD_TOKEN).map(|v| v.as_bytes());
    if !token_matches(app.forward_token.get().map(String::as_str), presented) {
        return None;
    }
    headers.get(header)?.to_str().ok().map(str::to_string)
}

/// Whether `presented` is the owner's forwarding `token`, compared in constant time: never
/// when there is no token (a server alone) or it is empty.
pub fn token_matches(token: Option<&str>, presented: Option<&[u8]>) -> bool {
    use subtle::ConstantTimeEq;
    match (token.filter(|t| !t.is_empty()), presented) {
        (Some(token), Some(presented)) => bool::from(presented.ct_eq(token.as_bytes())),
        _ => false,
    }
}

/// The client's IP address: the connection's peer, or, on a cluster's owner, the address a
/// follower names for a request it forwarded, believed only with the owner's forwarding token
/// (a client cannot choose the address that picks its purchase's TAP).
pub fn client_ip(request: &actix_web::HttpRequest) -> Option<IpText> {
    // A single server has no token: nothing more to look at.
    let token = request
        .app_data::<web::Data<App>>()
        .and_then(|app| app.forward_token.get());
    let forwarded = token.and_then(|token| {
        let headers = request.headers();
        forwarded_ip(
            Some(token),
            headers.get(FORWARD_TOKEN).map(|v| v.as_bytes()),
            headers.get(FORWARDED_CLIENT_IP).map(|v| v.as_bytes()),
        )
    });
    forwarded
        .or_else(|| request.peer_addr().map(|a| a.ip()))
        .map(IpText::new)
}

/// An IP address written out, held inline: every purchase names its client's address (a TAP
/// may be found by it), and this costs no allocation.
pub struct IpText {
    bytes: [u8; IpText::CAPACITY],
    len: u8,
}

impl IpText {
    /// The longest address written: an IPv6 address with an embedded IPv4 one takes 45 bytes.
    const CAPACITY: usize = 48;

    pub fn new(ip: std::net::IpAddr) -> IpText {
        use std::fmt::Write;
        let mut text = IpText {
            bytes: [0; IpText::CAPACITY],
            len: 0,
        };
        // An address is at most 45 bytes, so this cannot run out of room.
        let _ = write!(text, "{ip}");
        text
    }
}

impl std::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        let room = self.bytes.get_mut(start..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

impl std::ops::Deref for IpText {
    type Target = str;
    fn deref(&self) -> &str {
        // Only whole `str`s are ever copied in, so the bytes up to `len` are UTF-8.
        let written = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(written).unwrap_or_default()
    }
}

/// The address a forwarded request names, if this server has a forwarding token and the
/// request presents it (compared in constant time) with an address that parses.
fn forwarded_ip(
    token: Option<&str>,
    presented: Option<&[u8]>,
    claimed: Option<&[u8]>,
) -> Option<std::net::IpAddr> {
    if !token_matches(token, presented) {
        return None;
    }
    std::str::from_utf8(claimed?).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod forwarded_tests {
    use super::{forwarded_ip, IpText};

    #[test]
    fn addresses_are_written_inline() {
        for ip in [
            "127.0.0.1",
            "255.255.255.255",
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:255.255.255.255",
            "1:2:3:4:5:6:255.255.255.255",
        ] {
            let parsed: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(&*IpText::new(parsed), parsed.to_string());
        }
    }

    #[test]
    fn a_forwarded_address_is_believed_only_with_the_token() {
        let ip = Some(&b"10.1.2.3"[..]);
        assert_eq!(
            forwarded_ip(Some("t0ken"), Some(b"t0ken"), ip),
            Some("10.1.2.3".parse().unwrap())
        );
        // A single server has no token: whatever a client sends is ignored.
        assert_eq!(forwarded_ip(None, Some(b"t0ken"), ip), None);
        assert_eq!(forwarded_ip(Some(""), Some(b""), ip), None);
        // A wrong or missing token, or an address that does not parse.
        assert_eq!(forwarded_ip(Some("t0ken"), Some(b"t0kem"), ip), None);
        assert_eq!(forwarded_ip(Some("t0ken"), None, ip), None);
        assert_eq!(
            forwarded_ip(Some("t0ken"), Some(b"t0ken"), Some(b"10.1.2")),
            None
        );
        assert_eq!(forwarded_ip(Some("t0ken"), Some(b"t0ken"), None), None);
    }
}

/// Installs the Prometheus recorder before anything records a metric.
pub fn render_metrics_init() {
    ops::prometheus();
}

/// Every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Routes are tried in order and every pattern with a path parameter is a regex (the regex
    // crate's, which gives up on most paths at their first bytes): the hot paths
    // (processor purchases, whose patterns are static, then purchases, then wallet and contact
    // reads) come first.
    processor::routes(cfg);
    purchases::routes(cfg);
    contacts::routes(cfg);
    estimates::routes(cfg);
    events::routes(cfg);
    ingest::routes(cfg);
    ops::routes(cfg);
    codes::routes(cfg);
    operator::routes(cfg);
    config::routes(cfg);
    webhooks::routes(cfg);
    payouts::routes(cfg);
    settlements::routes(cfg);
    openapi::routes(cfg);
}

/// An optional RFC 3339 time of a query (`from`, `to`), refused with its field's name.
fn time_param(
    field: &str,
    value: Option<&str>,
) -> Result<Option<rewards_core::Timestamp>, ApiError> {
    value
        .map(|t| {
            rewards_core::Timestamp::parse_rfc3339(t)
                .ok_or_else(|| DomainError::validation(field, "must be an RFC 3339 time").into())
        })
        .transpose()
}

/// A path id that does not parse names nothing: 404.
fn path_id<T: std::str::FromStr>(value: &str, what: &'static str) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| DomainError::NotFound(what).into())
}

/// The business named in a path, for a key that may act on it with one of `roles`. Another
/// business's id answers like an unknown one.
fn business_for(
    app: &Arc<App>,
    principal: &Principal,
    id: &str,
    roles: &[Role],
) -> Result<Arc<BusinessEntry>, ApiError> {
    let id: BusinessId = path_id(id, "business")?;
    if !principal.is_operator() {
        if !roles.contains(&principal.role) {
            return Err(DomainError::Forbidden.into());
        }
        if principal.business_id != Some(id) {
            return Err(DomainError::NotFound("business").into());
        }
    }
    app.registry
        .business(id)
        .ok_or_else(|| DomainError::NotFound("business").into())
}

/// The configuration of the business a request body names (`business_id`, for operator keys)
/// or the key works for, taken once at the top of the request.
fn named_business(
    app: &App,
    principal: &Principal,
    named: Option<&str>,
) -> Result<crate::registry::BusinessSnapshot, ApiError> {
    let named: Option<BusinessId> = named
        .map(|b| crate::dto::parse_id("business_id", b))
        .transpose()?;
    let business_id = principal.business_for(named)?;
    let entry = app
        .registry
        .business(business_id)
        .ok_or(DomainError::NotFound("business"))?;
    Ok(entry.snapshot())
}

/// Refuses a role that has no right to a call at all.
fn require_role(principal: &Principal, roles: &[Role]) -> Result<(), ApiError> {
    if principal.is_operator() || roles.contains(&principal.role) {
        Ok(())
    } else {
        Err(DomainError::Forbidden.into())
    }
}

#[derive(serde::Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Items per page.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    cursor: Option<String>,
}

impl PageQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_LIMIT),
            Some(l) if (1..=MAX_PAGE_LIMIT).contains(&l) => Ok(l),
            Some(_) => Err(DomainError::validation(
                "limit",
                format!("must be between 1 and {MAX_PAGE_LIMIT}"),
            )
            .into()),
        }
    }

    fn cursor(&self) -> Result<Option<Vec<u8>>, ApiError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                hex::decode(c)
                    .map_err(|_| DomainError::validation("cursor", "is not a cursor").into())
            })
            .transpose()
    }
}

/// A page of a list: its items and the cursor of the next page (`null` on the last).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Page {
    #[schema(max_items = 1000)]
    pub items: Vec<serde_json::Value>,
    pub next_cursor: Option<String>,
}

fn page_body(items: Vec<serde_json::Value>, next: Option<Vec<u8>>) -> Page {
    Page {
        items,
        next_cursor: next.map(hex::encode),
    }
}
