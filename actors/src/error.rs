//! How an operation of the actor layer (wallets, routers, idempotency, identities, the store's
//! writer) fails, with no HTTP in it. `http/problem.rs` is the one place that turns a
//! [`Failure`] into an HTTP status and problem response.

use rewards_core::{DomainError, FieldError};
use rewards_storage::StoreError;

/// Why an operation of the actor layer failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A failure the contract names (API.md, "Error codes"): told to the client as it is.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A bug or a storage failure: logged, never detailed to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result of an operation of the actor layer.
pub type Fallible<T> = Result<T, Failure>;

impl From<FieldError> for Failure {
    /// One invalid field: a validation failure.
    fn from(e: FieldError) -> Failure {
        Failure::Domain(e.into())
    }
}

impl From<StoreError> for Failure {
    /// A full writer queue is `overloaded` and a store that takes no writes `not_ready` (both
    /// worth a retry); any other store failure is internal.
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Overloaded => Failure::Domain(DomainError::Overloaded),
            StoreError::Poisoned | StoreError::Closed | StoreError::Fenced(_) => {
                Failure::Domain(DomainError::NotReady)
            }
            other => Failure::Internal(other.to_string()),
        }
    }
}
