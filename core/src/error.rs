//! Typed domain errors. Each variant is one error code of the HTTP contract (API.md), so the
//! mapping to a problem response is one `match` in one place.

use std::fmt;

/// A problem with one input field, named by its path (`lines[0].quantity`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DomainError {
    #[error("validation failed: {}", join(.0))]
    ValidationFailed(Vec<FieldError>),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no contact matches the identity")]
    ContactNotFound,
    #[error("no business knows TAP code {0}")]
    TapNotFound(String),
    #[error("the external reference was already used with a different request")]
    IdempotencyConflict,
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("the event is already cancelled")]
    AlreadyCancelled,
    #[error("the purchase is already claimed")]
    AlreadyClaimed,
    #[error("the contact was already referred")]
    AlreadyReferred,
    #[error("a statement for this contact, classification and period already exists")]
    DuplicateStatement,
    #[error("the estimate was already used by a purchase")]
    EstimateConsumed,
    #[error("the estimate needs the contact's approval")]
    EstimateNotApproved,
    #[error("not allowed in state {0}")]
    InvalidState(String),
    #[error("the estimate has expired")]
    EstimateExpired,
    #[error("insufficient funds: {requested} requested, {available} available")]
    InsufficientFunds {
        requested: String,
        available: String,
    },
    #[error("spending is blocked for this contact")]
    SpendBlocked,
    #[error("the one-time password is wrong, used or expired")]
    OtpInvalid,
    #[error("the spend amount differs from the one the OTP carries")]
    OtpSpendMismatch,
    #[error("{field} is {given} but the lines give {computed}")]
    AmountsInconsistent {
        field: String,
        given: String,
        computed: String,
    },
    #[error("no exchange rate for currency {0}")]
    UnknownCurrency(String),
    #[error("the referrer reached the daily referral limit")]
    ReferralLimitExceeded,
    #[error("returning more of {sku} than was purchased")]
    ReturnExceedsPurchase { sku: String },
    #[error("{0}")]
    SpendLimit(String),
    #[error("the purchase does not match its estimate: {0}")]
    EstimateMismatch(String),
    /// Too many attempts; try again in `retry_after_seconds` (sent as `Retry-After`).
    #[error("too many attempts")]
    RateLimited { retry_after_seconds: u32 },
    #[error("the server is overloaded")]
    Overloaded,
    #[error("the server is not ready")]
    NotReady,
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl DomainError {
    /// The API error code (API.md, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::ValidationFailed(_) => "validation_failed",
            DomainError::Unauthorized => "unauthorized",
            DomainError::Forbidden => "forbidden",
            DomainError::NotFound(_) => "not_found",
            DomainError::ContactNotFound => "contact_not_found",
            DomainError::TapNotFound(_) => "tap_not_found",
            DomainError::IdempotencyConflict => "idempotency_conflict",
            DomainError::AlreadyExists(_) => "already_exists",
            DomainError::AlreadyCancelled => "already_cancelled",
            DomainError::AlreadyClaimed => "already_claimed",
            DomainError::AlreadyReferred => "already_referred",
            DomainError::DuplicateStatement => "duplicate_statement",
            DomainError::EstimateConsumed => "estimate_consumed",
            DomainError::EstimateNotApproved => "estimate_not_approved",
            DomainError::InvalidState(_) => "invalid_state",
            DomainError::EstimateExpired => "estimate_expired",
            DomainError::InsufficientFunds { .. } => "insufficient_funds",
            DomainError::SpendBlocked => "spend_blocked",
            DomainError::OtpInvalid => "otp_invalid",
            DomainError::OtpSpendMismatch => "otp_spend_mismatch",
            DomainError::AmountsInconsistent { .. } => "amounts_inconsistent",
            DomainError::UnknownCurrency(_) => "unknown_currency",
            DomainError::ReferralLimitExceeded => "referral_limit_exceeded",
            DomainError::ReturnExceedsPurchase { .. } => "return_exceeds_purchase",
            DomainError::SpendLimit(_) => "spend_limit",
            DomainError::EstimateMismatch(_) => "estimate_mismatch",
            DomainError::RateLimited { .. } => "rate_limited",
            DomainError::Overloaded => "overloaded",
            DomainError::NotReady => "not_ready",
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::ValidationFailed(vec![FieldError::new(field, message)])
    }
}

impl From<FieldError> for DomainError {
    fn from(e: FieldError) -> DomainError {
        DomainError::ValidationFailed(vec![e])
    }
}
