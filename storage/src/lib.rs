//! Durable storage of the rewards processor: the write-ahead log, fjall keyspaces materialised
//! from it by checkpoints, the versioned record codec, the group-commit writer and recovery.
//!
//! Only this crate imports fjall. Everything above it sees [`Store`]: typed reads by key and
//! prefix, and [`WriteSet`]s that the single writer appends to the log in order, many to one
//! record and one fsync.

// Every write of every request goes through here: nothing may panic on one. Where a panic
// stays, it is allowed on the spot with the reason it cannot come from a request.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod batch;
mod checkpoint;
pub mod codec;
pub mod keys;
pub mod log;
pub mod nats_cluster;
mod overlay;
pub mod replicated;
mod store;
mod trickle;
mod writer;

pub use batch::for_each_logged_change;
pub use checkpoint::CheckpointStats;
pub use codec::{CodecError, Record};
pub use store::{
    BackupStats, Durability, PoisonHook, Space, Store, StoreError, StoreOptions, WriteSet,
    BACKUP_MARKER, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
pub use writer::{Ack, WriterStats};
