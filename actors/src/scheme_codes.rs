//! Closed-loop scheme codes: each imported code lets one contact join its scheme, once.
//!
//! Contacts join from their own wallet actors, so two could try one code at the same time: a code
//! is claimed in memory (atomically) before its use is written. The claim (a
//! [`Claimed`](crate::claims::Claimed) guard) is held until the write is acknowledged; dropping it frees the memory, because by then the store
//! answers (the code used) or the write failed (the code free again). Only codes being used
//! right now are in memory.

use std::sync::Arc;

use rewards_core::{BusinessId, ContactId, SchemeId};
use rewards_storage::{Space, Store, WriteSet};

use crate::claims::{Claimed, KeyClaims};
use crate::error::Failure;
use crate::schema::keys::scheme_code_key;
use crate::schema::ConfigRecord;

/// The scheme codes being used right now.
#[derive(Default)]
pub struct SchemeCodes(Arc<KeyClaims>);

impl SchemeCodes {
    /// Claims `code` if it is one of the scheme's codes and nobody used or claimed it; the
    /// claim lasts until the returned guard is dropped.
    pub fn try_claim(
        &self,
        store: &Store,
        business: BusinessId,
        scheme: SchemeId,
        code: &str,
    ) -> Result<Option<Claimed>, Failure> {
        let key = scheme_code_key(business, scheme, code.trim());
        let claimed = self.0.claim_all([key], |key| {
            store.get::<ConfigRecord>(Space::Config, key).map(|record| {
                matches!(record, Some(ConfigRecord::SchemeCode { used_by: None, .. }))
            })
        })?;
        Ok(claimed.ok())
    }

    /// Codes claimed and not yet written (a gauge; bounded by the sign-ups in flight).
    pub fn in_flight(&self) -> usize {
        self.0.len()
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
