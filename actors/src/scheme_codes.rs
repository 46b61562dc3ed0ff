//! Closed-loop scheme codes: each imported code lets one contact join its scheme, once.
//!
//! Contacts join from their own wallet actors, so two could try one code at the same time: a code
//! is claimed in memory (atomically) before its use is written, and the claim is kept.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rewards_core::{BusinessId, ContactId, SchemeId};
use rewards_storage::{Space, Store, WriteSet};

use crate::http::problem::ApiError;
use crate::records::{scheme_code_key, ConfigRecord};

#[derive(Default)]
pub struct SchemeCodes {
    claimed: DashMap<Vec<u8>, ContactId>,
}

impl SchemeCodes {
    /// Claims `code` for `contact` if it is one of the scheme's codes and nobody used it.
    pub fn try_claim(
        &self,
        store: &Store,
        business: BusinessId,
        scheme: SchemeId,
        code: &str,
        contact: ContactId,
    ) -> Result<bool, ApiError> {
        let key = scheme_code_key(business, scheme, code.trim());
        match self.claimed.entry(key.clone()) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(v) => match store.get::<ConfigRecord>(Space::Config, &key)? {
                Some(ConfigRecord::SchemeCode { used_by: None, .. }) => {
                    v.insert(contact);
                    Ok(true)
                }
                _ => Ok(false),
            },
        }
    }

    /// Gives back a claim whose sign-up was refused for another reason.
    pub fn release(&self, business: BusinessId, scheme: SchemeId, code: &str) {
        self.claimed
            .remove(&scheme_code_key(business, scheme, code.trim()));
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
