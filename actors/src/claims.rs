//! Store keys claimed in memory while the write that makes them durable is in flight: the one
//! reservation of something unique (a contact's identifiers, a closed-loop scheme code). A
//! claim is taken atomically before the write is built and is a [`Claimed`] guard: it is held
//! until the writer acknowledges (then the store answers for the key) or the request fails
//! (then the key is free again), and dropping it ends the claim, so an early `?` can never
//! leave a key claimed. Only keys being written right now are in memory.
//!
//! Amounts reserved on offer budgets are the other kind of reservation (`budgets.rs`): a
//! `Held` guard that commits on the acknowledgement and gives the amount back when dropped.

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

/// The keys claimed right now.
#[derive(Default)]
pub struct KeyClaims {
    taken: DashMap<Vec<u8>, ()>,
}

/// Keys claimed for one write; dropping it ends their claims.
pub struct Claimed {
    table: Arc<KeyClaims>,
    keys: Vec<Vec<u8>>,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        for key in &self.keys {
            self.table.taken.remove(key);
        }
    }
}

impl KeyClaims {
    /// Claims every key, or none. `free` says whether the store leaves a key free to take (it
    /// is asked only for keys nobody claims right now). `Ok(Err(i))`: the `i`th key is taken,
    /// in the store or by a concurrent claim, and nothing stays claimed.
    pub fn claim_all<E>(
        self: &Arc<Self>,
        keys: impl IntoIterator<Item = Vec<u8>>,
        mut free: impl FnMut(&[u8]) -> Result<bool, E>,
    ) -> Result<Result<Claimed, usize>, E> {
        let mut claimed = Claimed {
            table: self.clone(),
            keys: Vec::new(),
        };
        for (i, key) in keys.into_iter().enumerate() {
            match self.taken.entry(key) {
                Entry::Occupied(_) => return Ok(Err(i)),
                Entry::Vacant(v) => {
                    if !free(v.key())? {
                        return Ok(Err(i));
                    }
                    claimed.keys.push(v.key().clone());
                    v.insert(());
                }
            }
        }
        Ok(Ok(claimed))
    }

    /// Keys claimed and not yet written (a gauge; bounded by the writes in flight).
    pub fn len(&self) -> usize {
        self.taken.len()
    }

    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never_stored(_: &[u8]) -> Result<bool, ()> {
        Ok(true)
    }

    #[test]
    fn a_claim_is_exclusive_and_ends_when_dropped() {
        let claims = Arc::new(KeyClaims::default());
        let first = claims
            .claim_all([b"a".to_vec(), b"b".to_vec()], never_stored)
            .unwrap()
            .unwrap();
        // One taken key refuses the whole claim and leaves nothing claimed.
        let second = claims.claim_all([b"c".to_vec(), b"b".to_vec()], never_stored);
        assert_eq!(second.unwrap().err(), Some(1));
        assert_eq!(claims.len(), 2);
        drop(first);
        assert!(claims.is_empty());
        let again = claims.claim_all([b"b".to_vec()], never_stored).unwrap();
        assert!(again.is_ok());
    }

    #[test]
    fn a_key_the_store_holds_is_not_claimed() {
        let claims = Arc::new(KeyClaims::default());
        let stored = |key: &[u8]| -> Result<bool, ()> { Ok(key != b"used") };
        let refused = claims
            .claim_all([b"new".to_vec(), b"used".to_vec()], stored)
            .unwrap();
        assert_eq!(refused.err(), Some(1));
        assert!(claims.is_empty());
        let failed = claims.claim_all([b"x".to_vec()], |_| Err("disk"));
        assert_eq!(failed.err(), Some("disk"));
        assert!(claims.is_empty());
    }
}
