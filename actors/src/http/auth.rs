//! The bearer-key extractor: every handler that takes a [`Principal`] is authenticated.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures::future::{ready, Ready};
use rewards_core::DomainError;

use super::problem::ApiError;
use crate::app::App;
use crate::auth::Principal;
use crate::clock;

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Principal, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let app = req
        .app_data::<web::Data<App>>()
        .ok_or_else(|| ApiError::Internal("the app state is not registered".into()))?;
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or(DomainError::Unauthorized)?;
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(DomainError::Unauthorized)?
        .trim();
    let principal = app.keys.authenticate(secret, clock::now())?;
    // A processor key may call only the processor API.
    if principal.role == crate::auth::Role::Processor && !req.path().starts_with("/v1/processor/") {
        return Err(DomainError::Forbidden.into());
    }
    Ok(principal)
}
