//! The core's types that are stored as they are, and their format versions.

use crate::codec::Record;
use rewards_core::contact::Contact;
use rewards_core::wallet::{LedgerEntry, Lot, Wallet};

impl Record for Wallet {
    const VERSION: u8 = 1;
}

impl Record for Contact {
    const VERSION: u8 = 1;
}

impl Record for LedgerEntry {
    const VERSION: u8 = 1;
}

impl Record for Lot {
    const VERSION: u8 = 1;
}

/// The ledger entries of one operation, stored as one record.
impl Record for Vec<LedgerEntry> {
    const VERSION: u8 = 1;
}

/// Lots of one event closed by one operation, stored as one record.
impl Record for Vec<Lot> {
    const VERSION: u8 = 1;
}
