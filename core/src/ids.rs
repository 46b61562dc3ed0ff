//! Newtypes for identifiers, so a wallet id can never be passed where a contact id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Builds an id from 16 random bytes supplied by the caller (core draws no randomness).
            pub fn from_random(bytes: [u8; 16]) -> Self {
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
            /// The nil id, for tests and placeholders that are never stored.
            pub const NIL: Self = Self(Uuid::nil());
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = NotAnId;
            /// Only the canonical form: 36 characters, lower-case hex and hyphens. Other
            /// spellings of the same UUID (upper case, braces, URNs, no hyphens) name nothing.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let canonical = s.len() == 36
                    && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-'));
                if !canonical {
                    return Err(NotAnId);
                }
                let id = Uuid::parse_str(s).map_err(|_| NotAnId)?;
                if id.hyphenated().to_string() != s {
                    return Err(NotAnId);
                }
                Ok(Self(id))
            }
        }
    )*};
}

/// A text that is not the canonical form of an id.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct NotAnId;

impl fmt::Display for NotAnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a canonical lower-case UUID")
    }
}

id_type!(
    BusinessId,
    MerchantId,
    ProcessorId,
    TapId,
    ContactId,
    WalletId,
    EventId,
    OfferId,
    SchemeId,
    LotId,
    EstimateId,
    EntryId,
    KeyId,
    WebhookId,
);

/// Derives a stable id from a parent id and an index: the lots of one event, the entries of one
/// wallet. The parent's random bits keep derived ids unique across parents.
pub fn derive_id(parent: Uuid, salt: u8, index: u64) -> Uuid {
    let mut bytes = *parent.as_bytes();
    // Byte 7 carries no version bits, so the salt survives the fix-up below.
    bytes[7] ^= salt;
    for (byte, b) in bytes.iter_mut().skip(8).zip(index.to_be_bytes()) {
        *byte ^= b;
    }
    // Keep the version and variant bits of a v4 UUID so the result still parses as one.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

impl LotId {
    /// The id of the `index`-th lot created by `event`.
    pub fn for_event(event: EventId, index: u32) -> Self {
        Self(derive_id(event.0, 0x10, u64::from(index) + 1))
    }
}

impl EntryId {
    /// The id of a wallet's ledger entry with sequence number `seq`.
    pub fn for_wallet(wallet: WalletId, seq: u64) -> Self {
        Self(derive_id(wallet.0, 0x20, seq + 1))
    }
}
