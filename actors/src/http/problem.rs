//! The one mapping from domain errors to HTTP problem responses (`application/problem+json`).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use rewards_core::{DomainError, FieldError};
use serde::Serialize;
use std::fmt;

use crate::error::Failure;
use crate::limits::RETRY_AFTER_SECONDS;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub enum ApiError {
    Domain(DomainError),
    PayloadTooLarge,
    /// The path exists, the method does not: 405 with the methods it has (`Allow`).
    MethodNotAllowed(&'static str),
    /// A bug or a storage failure: logged, answered 500 without details.
    Internal(String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        ApiError::Domain(e)
    }
}

impl From<Failure> for ApiError {
    fn from(e: Failure) -> ApiError {
        match e {
            Failure::Domain(e) => ApiError::Domain(e),
            Failure::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<rewards_storage::StoreError> for ApiError {
    fn from(e: rewards_storage::StoreError) -> ApiError {
        Failure::from(e).into()
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        ApiError::Domain(e.into())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Domain(e) => fmt::Display::fmt(e, f),
            ApiError::PayloadTooLarge => f.write_str("the request body is too large"),
            ApiError::MethodNotAllowed(allow) => write!(f, "this path answers only {allow}"),
            ApiError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

/// The HTTP status of each domain error code (API.md, "Error codes").
pub fn status_of(error: &DomainError) -> StatusCode {
    use DomainError::*;
    match error {
        ValidationFailed(_) => StatusCode::BAD_REQUEST,
        Unauthorized => StatusCode::UNAUTHORIZED,
        Forbidden => StatusCode::FORBIDDEN,
        NotFound(_) | ContactNotFound | TapNotFound(_) => StatusCode::NOT_FOUND,
        IdempotencyConflict | AlreadyExists(_) | AlreadyCancelled | AlreadyClaimed
        | AlreadyReferred | DuplicateStatement | EstimateConsumed | EstimateNotApproved
        | InvalidState(_) => StatusCode::CONFLICT,
        EstimateExpired => StatusCode::GONE,
        InsufficientFunds { .. }
        | SpendBlocked
        | OtpInvalid
        | OtpSpendMismatch
        | AmountsInconsistent { .. }
        | UnknownCurrency(_)
        | ReferralLimitExceeded
        | ReturnExceedsPurchase { .. }
        | SpendLimit(_)
        | EstimateMismatch(_) => StatusCode::UNPROCESSABLE_ENTITY,
        RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Overloaded | NotReady => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An error answer (`application/problem+json`, RFC 9457) with the API's error `code`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    kind: &'static str,
    title: &'a str,
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// One of the error codes of the API.
    #[schema(example = "validation_failed")]
    code: &'a str,
    detail: String,
    /// The fields at fault, for `validation_failed` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<ProblemField<'a>>>,
}

/// One field at fault and what is wrong with it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemField<'a> {
    /// The field's path in the request, e.g. `lines[0].quantity`.
    field: &'a str,
    message: &'a str,
}

fn title_of(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl ApiError {
    pub fn code(&self) -> &str {
        match self {
            ApiError::Domain(e) => e.code(),
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The status and problem body of this error, as bytes (also what idempotent replays store).
    pub fn to_parts(&self) -> (StatusCode, Vec<u8>) {
        let status = self.status_code();
        let errors = match self {
            ApiError::Domain(DomainError::ValidationFailed(fields)) => Some(
                fields
                    .iter()
                    .map(|f| ProblemField {
                        field: &f.field,
                        message: &f.message,
                    })
                    .collect(),
            ),
            _ => None,
        };
        let detail = match self {
            ApiError::Internal(_) => "the server failed to handle the request".to_string(),
            other => other.to_string(),
        };
        let problem = Problem {
            kind: "about:blank",
            title: title_of(status),
            status: status.as_u16(),
            code: self.code(),
            detail,
            errors,
        };
        (status, crate::json_bytes(&problem))
    }
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Domain(e) => status_of(e),
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body) = self.to_parts();
        match self {
            ApiError::Internal(e) => tracing::error!(
                error = %e,
                "request failed: a bug or a storage fault; nothing of it was written"
            ),
            // A refusal is the client's business: logged once, for whoever debugs the client.
            refused => tracing::debug!(
                status = status.as_u16(),
                code = refused.code(),
                detail = %refused,
                "request refused"
            ),
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = match self {
                ApiError::Domain(DomainError::RateLimited {
                    retry_after_seconds,
                }) => *retry_after_seconds,
                _ => RETRY_AFTER_SECONDS,
            };
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            response.insert_header((header::ALLOW, *allow));
        }
        response.body(body)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
