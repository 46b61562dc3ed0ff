//! The running processor: wallet actors, the registries they read, the HTTP ingress and the
//! server wiring of `rewardsd`.

pub mod app;
pub mod auth;
pub mod budgets;
pub mod claims;
pub mod clock;
pub mod config;
pub mod contact_state;
pub mod dto;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod identities;
pub mod ledger;
pub mod limits;
pub mod records;
pub mod recovery;
pub mod registry;
pub mod router;
pub mod scheme_codes;
pub mod server;
pub mod wallets;
