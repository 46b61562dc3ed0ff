//! The records the server stores beyond the core's own types, and the keys it stores them under.
//!
//! Configuration lives in one space as one versioned enum, so recovery is one scan and one match.

use rewards_core::business::{Business, Merchant, Tap};
use rewards_core::offer::Offer;
use rewards_core::scheme::Scheme;
use rewards_core::tier::TierConfig;
use rewards_core::{BusinessId, ContactId, SchemeId};
use rewards_storage::keys::KeyBuilder;
use rewards_storage::Record;
use serde::{Deserialize, Serialize};

use crate::auth::KeyRecord;
use crate::registry::Processor;

// Configuration records are few and read once at start-up; their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ConfigRecord {
    Business(Business),
    Merchant(Merchant),
    Tap(Tap),
    Scheme(Scheme),
    Tiers(BusinessId, TierConfig),
    Offer(Offer),
    Processor(Processor),
    /// A closed-loop scheme's sign-up code and the contact that used it, if any.
    SchemeCode {
        scheme_id: SchemeId,
        code: String,
        used_by: Option<ContactId>,
    },
}

impl Record for ConfigRecord {
    const VERSION: u8 = 1;
}

impl Record for KeyRecord {
    const VERSION: u8 = 1;
}

/// Kinds of configuration record, the byte after the business id in a config key.
pub mod kind {
    pub const BUSINESS: u8 = 1;
    pub const MERCHANT: u8 = 2;
    pub const TAP: u8 = 3;
    pub const SCHEME: u8 = 4;
    pub const TIERS: u8 = 5;
    pub const OFFER: u8 = 6;
    pub const SCHEME_CODE: u8 = 7;
    pub const PROCESSOR: u8 = 8;
}

pub fn config_key(business: BusinessId, kind: u8, id: &[u8; 16]) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(kind)
        .bytes(id)
        .finish()
}

pub fn scheme_code_key(business: BusinessId, scheme: SchemeId, code: &str) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(kind::SCHEME_CODE)
        .bytes(scheme.as_bytes())
        .str(code)
        .finish()
}
