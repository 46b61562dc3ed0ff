//! The running processor: wallet actors, the registries they read, the HTTP ingress and the
//! server wiring of `rewardsd`.

// Everything here serves requests: nothing may panic on one. Where a panic stays (start-up,
// a money guard), it is allowed on the spot with the reason it cannot come from a request.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod app;
pub mod audit;
pub mod auth;
pub mod budgets;
pub mod claims;
pub mod clock;
pub mod cluster;
pub mod codes;
pub mod config;
pub mod contact_state;
pub mod demo;
pub mod dto;
pub mod error;
pub mod estimates;
pub mod events;
pub mod hot_metrics;
pub mod http;
pub mod idempotency;
pub mod identities;
pub mod ingest;
pub mod ledger;
pub mod limits;
pub mod recovery;
pub mod registry;
pub mod router;
pub mod schema;
pub mod scheme_codes;
pub mod server;
pub mod wallets;
pub mod webhooks;

/// The JSON bytes of a response view or a parsed request. The types serialized here are
/// derived structs with string keys and `serde_json::Value`s, whose serialization cannot fail;
/// were it to, the answer is `null` and the fault is logged, never a panic.
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Most answers are a few hundred bytes to a few KiB: start big enough to grow once at most.
    let mut out = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => out,
        Err(e) => {
            tracing::error!(error = %e, "a response did not serialize");
            b"null".to_vec()
        }
    }
}

/// [`json_bytes`] as a JSON tree.
pub fn json_value<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a response did not serialize");
        serde_json::Value::Null
    })
}
