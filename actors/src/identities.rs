//! Identity indexes: (business, kind, identifier) to contact, in the store, and the in-memory
//! reservations that make "unique within the business" hold under concurrent creations.

use std::sync::Arc;

use rewards_core::identity::Identity;
use rewards_core::{BusinessId, ContactId, DomainError};
use rewards_storage::keys::KeyBuilder;
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

pub fn key(business: BusinessId, kind: Kind, identifier: &str) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(kind as u8)
        .str(identifier)
        .finish()
}

pub fn contact_key(business: BusinessId, contact: ContactId) -> Vec<u8> {
    KeyBuilder::new()
        .bytes(business.as_bytes())
        .u8(Kind::ContactId as u8)
        .bytes(contact.as_bytes())
        .finish()
}

fn contact_of(value: &[u8]) -> Option<ContactId> {
    let bytes: [u8; 16] = value.try_into().ok()?;
    Some(ContactId::from_bytes(bytes))
}

/// The contact an identity names in a business. Dynamic wallet codes and OTPs are not issued by
/// this server yet, so an OTP is always `otp_invalid`.
pub fn resolve(
    store: &Store,
    business: BusinessId,
    identity: &Identity,
) -> Result<ContactId, Failure> {
    let lookup = |key: Vec<u8>| -> Result<Option<ContactId>, Failure> {
        store
            .get_raw(Space::Identities, &key)
            .map(|v| v.and_then(|v| contact_of(&v)))
            .map_err(Failure::from)
    };
    let found = match identity {
        Identity::ContactId(id) => lookup(contact_key(business, *id))?,
        Identity::WalletCode(code) => lookup(key(business, Kind::WalletCode, code))?,
        Identity::ContactCode(code) => lookup(key(business, Kind::ContactCode, code))?,
        Identity::Cim(cim) => lookup(key(business, Kind::Cim, cim))?,
        Identity::GiftCard(card) => lookup(key(business, Kind::GiftCard, card))?,
        Identity::PaymentMediumIdentifier(id) => lookup(key(business, Kind::PaymentMedium, id))?,
        Identity::Otp(_) => return Err(DomainError::OtpInvalid.into()),
    };
    found.ok_or(DomainError::ContactNotFound.into())
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
