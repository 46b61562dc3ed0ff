//! Closed-loop scheme codes: each imported code lets one contact join its scheme, once.
//!
//! Contacts join from their own wallet actors, so two could try one code at the same time: a code
//! is claimed in memory (atomically) before its use is written. The claim is a [`CodeClaim`]
//! held until the write is acknowledged; dropping it frees the memory, because by then the store
//! answers (the code used) or the write failed (the code free again). Only codes being used
//! right now are in memory.

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rewards_core::{BusinessId, ContactId, SchemeId};
use rewards_storage::{Space, Store, WriteSet};

use crate::error::Failure;
use crate::records::{scheme_code_key, ConfigRecord};

#[derive(Default)]
pub struct SchemeCodes {
    claimed: DashMap<Vec<u8>, ContactId>,
}

/// A code claimed for one sign-up; dropping it ends the claim.
pub struct CodeClaim {
    codes: Arc<SchemeCodes>,
    key: Vec<u8>,
}

impl Drop for CodeClaim {
    fn drop(&mut self) {
        self.codes.claimed.remove(&self.key);
    }
}

impl SchemeCodes {
    /// Claims `code` for `contact` if it is one of the scheme's codes and nobody used or
    /// claimed it.
    pub fn try_claim(
        self: &Arc<Self>,
        store: &Store,
        business: BusinessId,
        scheme: SchemeId,
        code: &str,
        contact: ContactId,
    ) -> Result<Option<CodeClaim>, Failure> {
        let key = scheme_code_key(business, scheme, code.trim());
        match self.claimed.entry(key.clone()) {
            Entry::Occupied(_) => Ok(None),
            Entry::Vacant(v) => match store.get::<ConfigRecord>(Space::Config, &key)? {
                Some(ConfigRecord::SchemeCode { used_by: None, .. }) => {
                    v.insert(contact);
                    Ok(Some(CodeClaim {
                        codes: self.clone(),
                        key,
                    }))
                }
                _ => Ok(None),
            },
        }
    }

    /// Codes claimed and not yet written (a gauge; bounded by the sign-ups in flight).
    pub fn in_flight(&self) -> usize {
        self.claimed.len()
    }
}

/// Records that `contact` used `code`, in the same commit as its membership.
pub fn record_use(
    set: &mut WriteSet,
    business: BusinessId,
    scheme: SchemeId,
    code: &str,
    contact: ContactId,
) {
    let code = code.trim();
    set.put(
        Space::Config,
        scheme_code_key(business, scheme, code),
        &ConfigRecord::SchemeCode {
            scheme_id: scheme,
            code: code.to_string(),
            used_by: Some(contact),
        },
    );
}
