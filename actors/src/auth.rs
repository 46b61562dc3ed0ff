//! API keys and who may do what: roles, scopes and the bearer-token check of every request.
//!
//! Keys are 256-bit random secrets shown once; only their SHA-256 is stored, so a copy of the
//! store does not hand out working keys. Lookups compare hashes, which do not leak the secret
//! through timing.

use dashmap::DashMap;
use rewards_core::{BusinessId, ContactId, DomainError, KeyId, MerchantId, ProcessorId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    Business,
    Pos,
    Processor,
    Contact,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Business => "business",
            Role::Pos => "pos",
            Role::Processor => "processor",
            Role::Contact => "contact",
        }
    }
}

/// A stored key: its scope, never its secret.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub hash: [u8; 32],
    pub role: Role,
    pub business_id: Option<BusinessId>,
    pub merchant_id: Option<MerchantId>,
    pub processor_id: Option<ProcessorId>,
    pub contact_id: Option<ContactId>,
    pub created_at: Timestamp,
    /// Consumer sessions expire; other keys live until revoked.
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
}

/// The caller of a request, as its key says.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: KeyId,
    pub role: Role,
    pub business_id: Option<BusinessId>,
    pub merchant_id: Option<MerchantId>,
    pub processor_id: Option<ProcessorId>,
    pub contact_id: Option<ContactId>,
}

pub fn hash_key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The live keys, by hash. Rebuilt from the store at start-up.
#[derive(Default)]
pub struct KeyIndex {
    by_hash: DashMap<[u8; 32], KeyRecord>,
    hash_by_id: DashMap<KeyId, [u8; 32]>,
}

impl KeyIndex {
    pub fn insert(&self, record: KeyRecord) {
        self.hash_by_id.insert(record.id, record.hash);
        self.by_hash.insert(record.hash, record);
    }

    pub fn get_by_id(&self, id: KeyId) -> Option<KeyRecord> {
        let hash = *self.hash_by_id.get(&id)?;
        self.by_hash.get(&hash).map(|r| r.clone())
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn has_operator(&self) -> bool {
        self.by_hash
            .iter()
            .any(|r| r.role == Role::Operator && !r.revoked)
    }

    /// The principal of a bearer secret, if the key exists, is not revoked and has not expired.
    pub fn authenticate(&self, secret: &str, now: Timestamp) -> Result<Principal, DomainError> {
        let hash = hash_key(secret);
        let record = self.by_hash.get(&hash).ok_or(DomainError::Unauthorized)?;
        if record.revoked || record.expires_at.is_some_and(|at| at <= now) {
            return Err(DomainError::Unauthorized);
        }
        Ok(Principal {
            key_id: record.id,
            role: record.role,
            business_id: record.business_id,
            merchant_id: record.merchant_id,
            processor_id: record.processor_id,
            contact_id: record.contact_id,
        })
    }
}

impl Principal {
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    pub fn require_operator(&self) -> Result<(), DomainError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(DomainError::Forbidden)
        }
    }

    /// May this key act on business `business` with one of `roles` (the operator always may)?
    pub fn require_business(
        &self,
        business: BusinessId,
        roles: &[Role],
    ) -> Result<(), DomainError> {
        if self.is_operator() {
            return Ok(());
        }
        if roles.contains(&self.role) && self.business_id == Some(business) {
            return Ok(());
        }
        Err(DomainError::Forbidden)
    }

    /// The business this key works for, or the one named in the request for the operator.
    pub fn business_for(&self, named: Option<BusinessId>) -> Result<BusinessId, DomainError> {
        match (self.role, self.business_id, named) {
            (Role::Operator, _, Some(b)) => Ok(b),
            (Role::Operator, _, None) => Err(DomainError::validation(
                "business_id",
                "is required with an operator key",
            )),
            (_, Some(own), Some(b)) if b != own => Err(DomainError::Forbidden),
            (_, Some(own), _) => Ok(own),
            (_, None, _) => Err(DomainError::Forbidden),
        }
    }

    /// Can this key see contact `contact` of business `business`? Used to answer 404 for
    /// contacts of other businesses, so nothing about them is revealed.
    pub fn can_see_contact(
        &self,
        business: BusinessId,
        contact: ContactId,
        roles: &[Role],
    ) -> bool {
        match self.role {
            Role::Operator => true,
            Role::Contact => roles.contains(&Role::Contact) && self.contact_id == Some(contact),
            role => roles.contains(&role) && self.business_id == Some(business),
        }
    }
}
