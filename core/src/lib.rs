//! The pure domain of the rewards transaction processor.
//!
//! Everything here is a function of its inputs: no I/O, no async, no clock reads, no global state and
//! no threads. Time and randomness are arguments. A wallet actor owns a [`wallet::Wallet`] and a
//! [`contact::Contact`] and calls these functions on them; the server stores them as record types
//! of its own, converted from these, so the serde derives here do not decide the stored format.
//!
//! No request may make this code panic: the library does not unwrap, index or panic (tests may).
//! The few money guards that do stop (an overflowing sum, an unbalanced ledger entry) allow it
//! where they stand and say why a request cannot reach them.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod budget;
pub mod business;
pub mod claim;
pub mod contact;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod identity;
pub mod ids;
pub mod matching;
pub mod money;
pub mod offer;
pub mod purchase;
pub mod referral;
pub mod reversal;
pub mod scheme;
pub mod settlement;
pub mod tier;
pub mod time;
pub mod wallet;

pub use error::{DomainError, FieldError};
pub use ids::*;
pub use money::{Currency, Money};
pub use time::Timestamp;
