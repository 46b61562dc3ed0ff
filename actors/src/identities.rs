//! Identity indexes: (business, kind, identifier) to contact, in the store, and the in-memory
//! reservations that make "unique within the business" hold under concurrent creations.

use std::collections::HashMap;
use std::sync::Arc;

use rewards_core::identity::Identity;
use rewards_core::{BusinessId, ContactId, DomainError};
use rewards_storage::{Space, Store, StoreError};

use crate::claims::{Claimed, KeyClaims};
use crate::error::Failure;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Kind {
    ContactId = 0,
    WalletCode = 1,
    ContactCode = 2,
    Cim = 3,
    GiftCard = 4,
    PaymentMedium = 5,
    ReferralCode = 6,
}

impl Kind {
    pub fn field(self) -> &'static str {
        match self {
            Kind::ContactId => "id",
            Kind::WalletCode => "wallet_code",
            Kind::ContactCode => "code",
            Kind::Cim => "cim",
            Kind::GiftCard => "gift_cards",
            Kind::PaymentMedium => "payment_media",
            Kind::ReferralCode => "referral_code",
        }
    }
}

pub use crate::schema::keys::{identity_contact_key as contact_key, identity_key as key};

fn contact_of(value: &[u8]) -> Option<ContactId> {
    let bytes: [u8; 16] = value.try_into().ok()?;
    Some(ContactId::from_bytes(bytes))
}

/// The contact an identity names in a business. Dynamic wallet codes and OTPs are not issued by
/// this server yet, so an OTP is always `otp_invalid`.
pub fn resolve(
    identities: &Identities,
    store: &Store,
    business: BusinessId,
    identity: &Identity,
) -> Result<ContactId, Failure> {
    let key = match identity {
        Identity::ContactId(id) => contact_key(business, *id),
        Identity::WalletCode(code) => key(business, Kind::WalletCode, code),
        Identity::ContactCode(code) => key(business, Kind::ContactCode, code),
        Identity::Cim(cim) => key(business, Kind::Cim, cim),
        Identity::GiftCard(card) => key(business, Kind::GiftCard, card),
        Identity::PaymentMediumIdentifier(id) => key(business, Kind::PaymentMedium, id),
        Identity::Otp(_) => return Err(DomainError::OtpInvalid.into()),
    };
    if let Some(contact) = identities.known.get(&key) {
        return Ok(contact);
    }
    let found = store
        .get_raw(Space::Identities, &key)
        .map_err(Failure::from)?
        .and_then(|v| contact_of(&v))
        .ok_or(Failure::from(DomainError::ContactNotFound))?;
    identities.known.insert(key, found);
    Ok(found)
}

/// The contact whose referral code this is.
pub fn by_referral_code(
    store: &Store,
    business: BusinessId,
    code: &str,
) -> Result<ContactId, Failure> {
    store
        .get_raw(Space::Identities, &key(business, Kind::ReferralCode, code))
        .map_err(Failure::from)?
        .and_then(|v| contact_of(&v))
        .ok_or(Failure::from(DomainError::ContactNotFound))
}

/// The contact an event's identity names. An OTP or a dynamic wallet code is taken for the
/// event (see [`crate::codes`]): hand the outcome to [`Identified::settle`], which gives the
/// code back if the event failed.
pub fn identify(
    app: &crate::app::App,
    business: BusinessId,
    identity: &Identity,
    presented_by: rewards_core::KeyId,
) -> Result<Identified, Failure> {
    let now = crate::clock::now();
    let taken = match identity {
        Identity::Otp(otp) => app.codes.take_otp(business, otp, presented_by, now)?,
        Identity::WalletCode(code) if code.len() == crate::codes::DYNAMIC_CODE_DIGITS => app
            .codes
            .take_wallet_code(business, code, now)
            .ok_or(DomainError::ContactNotFound)?,
        _ => {
            return Ok(Identified {
                contact: resolve(&app.identities, &app.store, business, identity)?,
                code: None,
            })
        }
    };
    Ok(Identified {
        contact: taken.live.contact,
        code: Some(taken),
    })
}

/// An event's contact, and the one-time code that named it, if one did.
#[derive(Debug)]
pub struct Identified {
    pub contact: ContactId,
    pub code: Option<crate::codes::Taken>,
}

impl Identified {
    /// The spend amount an OTP carries.
    pub fn otp_spend_amount(&self) -> Option<rewards_core::Money> {
        self.code.as_ref().and_then(|taken| taken.live.spend_amount)
    }

    /// Gives the code back when the event that took it failed; a posted event used it.
    pub fn settle<T, E>(self, app: &crate::app::App, outcome: Result<T, E>) -> Result<T, E> {
        if let (Some(taken), Err(_)) = (self.code, &outcome) {
            app.codes.give_back(taken, crate::clock::now());
        }
        outcome
    }
}

/// The identity indexes' in-memory side: recently resolved identities, and the identifiers
/// being created right now.
#[derive(Default)]
pub struct Identities {
    known: Known,
    reservations: Reservations,
}

impl Identities {
    pub fn reservations(&self) -> &Reservations {
        &self.reservations
    }

    /// How many identities are held in memory (a gauge for operators and tests).
    pub fn cached(&self) -> usize {
        self.known.len()
    }
}

/// Resolved identities, so a purchase names its contact without a store read.
///
/// Sound because an identity, once stored, names the same contact for ever: identities are
/// written when a contact is created, in its commit (durable before anyone can read it), and
/// never removed or moved. Whatever removes one one day must remove it here too. Only found
/// identities are kept; an unknown one may be created a moment later.
///
/// Bounded at [`KNOWN_IDENTITIES`]: each of its shards keeps two generations and, when the
/// young one is full, drops the old one and ages the young, so what is used stays (a hit in
/// the old generation moves to the young one) and what is not is forgotten.
struct Known {
    shards: Box<[parking_lot::Mutex<Generations>]>,
    hasher: std::collections::hash_map::RandomState,
}

/// Identities held in memory at most (about 100 bytes each).
pub const KNOWN_IDENTITIES: usize = 1 << 18;

const KNOWN_SHARDS: usize = 16;

#[derive(Default)]
struct Generations {
    young: HashMap<Vec<u8>, ContactId>,
    old: HashMap<Vec<u8>, ContactId>,
}

impl Default for Known {
    fn default() -> Known {
        Known {
            shards: (0..KNOWN_SHARDS).map(|_| Default::default()).collect(),
            hasher: Default::default(),
        }
    }
}

impl Known {
    fn shard(&self, key: &[u8]) -> Option<&parking_lot::Mutex<Generations>> {
        use std::hash::BuildHasher;
        let index = usize::try_from(self.hasher.hash_one(key)).unwrap_or_default() % KNOWN_SHARDS;
        self.shards.get(index)
    }

    fn get(&self, key: &[u8]) -> Option<ContactId> {
        let mut shard = self.shard(key)?.lock();
        if let Some(contact) = shard.young.get(key) {
            return Some(*contact);
        }
        let (key, contact) = shard.old.remove_entry(key)?;
        shard.put(key, contact);
        Some(contact)
    }

    fn insert(&self, key: Vec<u8>, contact: ContactId) {
        if let Some(shard) = self.shard(&key) {
            shard.lock().put(key, contact);
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.young.len() + s.old.len()
            })
            .sum()
    }
}

impl Generations {
    fn put(&mut self, key: Vec<u8>, contact: ContactId) {
        if self.young.len() >= KNOWN_IDENTITIES / KNOWN_SHARDS / 2 {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, contact);
    }
}

/// Identifiers being created right now, so two concurrent creations cannot both take one.
#[derive(Default)]
pub struct Reservations(Arc<KeyClaims>);

impl Reservations {
    /// Reserves every key, or none: `already_exists` names the first one taken (in the store or
    /// by a concurrent creation). The reservation lasts until the returned claim is dropped.
    pub fn reserve(
        &self,
        store: &Store,
        keys: Vec<(Kind, Vec<u8>)>,
    ) -> Result<Claimed, ReserveError> {
        let kinds: Vec<Kind> = keys.iter().map(|(kind, _)| *kind).collect();
        let claimed = self
            .0
            .claim_all(keys.into_iter().map(|(_, key)| key), |key| {
                store.contains(Space::Identities, key).map(|stored| !stored)
            })?;
        claimed.map_err(|i| ReserveError::Taken(kinds.get(i).copied().unwrap_or(Kind::ContactId)))
    }
}

pub enum ReserveError {
    Taken(Kind),
    Store(StoreError),
}

impl From<StoreError> for ReserveError {
    fn from(e: StoreError) -> Self {
        ReserveError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(n: u64) -> ContactId {
        ContactId::from_bytes(u128::from(n).to_be_bytes())
    }

    #[test]
    fn known_identities_stay_bounded_and_keep_what_is_used() {
        let known = Known::default();
        known.insert(b"used".to_vec(), contact(0));
        for n in 1..(KNOWN_IDENTITIES as u64 * 3) {
            known.insert(n.to_be_bytes().to_vec(), contact(n));
            if n % 1000 == 0 {
                assert_eq!(known.get(b"used"), Some(contact(0)), "after {n}");
            }
        }
        assert!(known.len() <= KNOWN_IDENTITIES, "{}", known.len());
        assert!(known.len() >= KNOWN_IDENTITIES / 4, "{}", known.len());
        assert_eq!(known.get(b"used"), Some(contact(0)));
        // The first ones are long forgotten; the last are there.
        assert_eq!(known.get(&1u64.to_be_bytes()), None);
        let last = KNOWN_IDENTITIES as u64 * 3 - 1;
        assert_eq!(known.get(&last.to_be_bytes()), Some(contact(last)));
    }
}
