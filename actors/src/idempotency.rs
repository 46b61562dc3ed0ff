//! Exactly-once processing by `(business, external_system, external_reference)`.
//!
//! The first request with a key claims it in memory; concurrent copies wait for its outcome. The
//! response of a successful request is stored durably in the same commit as the event, so after a
//! restart a repeat is answered from the store. A request that failed changed nothing and stored
//! nothing, so copies that waited for it simply run again.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rewards_core::{BusinessId, DomainError};
use rewards_storage::{Space, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::oneshot;

use crate::error::Failure;
use crate::schema::keys;

/// The first response to a key, as stored and replayed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredResponse {
    pub body_hash: [u8; 32],
    pub status: u16,
    pub body: Vec<u8>,
}

/// An idempotency key with the hash of the request it came with.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub key: Vec<u8>,
    pub body_hash: [u8; 32],
}

impl IdempotencyKey {
    /// `scope` separates kinds of request sharing the reference space (events, returns, top-ups).
    pub fn new(
        business: BusinessId,
        scope: &str,
        external_system: &str,
        external_reference: &str,
        body: &[u8],
    ) -> IdempotencyKey {
        IdempotencyKey {
            key: keys::idempotency_key(business, scope, external_system, external_reference),
            body_hash: body_hash(body),
        }
    }
}

impl IdempotencyKey {
    /// A processor purchase: its transaction reference, unique per processor.
    pub fn for_processor(
        processor: rewards_core::ProcessorId,
        transaction_reference: &str,
        body: &[u8],
    ) -> IdempotencyKey {
        IdempotencyKey {
            key: keys::processor_idempotency_key(processor, transaction_reference),
            body_hash: body_hash(body),
        }
    }

    /// The key of one business's part of a processor purchase: each part stores its answer
    /// with its own change, so a retry after a partial failure completes only what is missing.
    pub fn for_route(&self, business: BusinessId) -> IdempotencyKey {
        IdempotencyKey {
            key: keys::route_idempotency_key(&self.key, business),
            body_hash: self.body_hash,
        }
    }

    /// The prefix of every [`IdempotencyKey::for_route`] key of this key.
    pub fn routes_prefix(&self) -> Vec<u8> {
        keys::route_idempotency_prefix(&self.key)
    }

    /// This key's first answer, to store in the commit of the change it describes.
    pub fn stored(&self, status: u16, body: Vec<u8>) -> StoredResponse {
        StoredResponse {
            body_hash: self.body_hash,
            status,
            body,
        }
    }
}

/// The hash of a request body as JSON: keys sorted and whitespace dropped, so two encodings of the
/// same request are equal. A body that is not JSON is hashed as it is.
fn body_hash(body: &[u8]) -> [u8; 32] {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => Sha256::digest(crate::json_bytes(&value)).into(),
        Err(_) => Sha256::digest(body).into(),
    }
}

struct InFlight {
    body_hash: [u8; 32],
    waiters: Vec<oneshot::Sender<Option<Arc<StoredResponse>>>>,
}

#[derive(Default)]
pub struct IdempotencyTable {
    in_flight: DashMap<Vec<u8>, InFlight>,
}

pub enum Claim {
    /// This request runs; complete the guard with its outcome.
    Fresh(ClaimGuard),
    /// The key was used before with the same body: answer this.
    Replay(StoredResponse),
    /// A copy is running: wait for its outcome (`None`: it failed, run again).
    Wait(oneshot::Receiver<Option<Arc<StoredResponse>>>),
}

/// Holds a claimed key; dropping it without `complete` releases the key (waiters run again).
pub struct ClaimGuard {
    table: Arc<IdempotencyTableRef>,
    key: Option<Vec<u8>>,
}

/// A handle to the table that a guard can keep after the request's borrow ends.
pub type IdempotencyTableRef = IdempotencyTable;

impl IdempotencyTable {
    pub fn claim(self: &Arc<Self>, store: &Store, key: &IdempotencyKey) -> Result<Claim, Failure> {
        match self.in_flight.entry(key.key.clone()) {
            Entry::Occupied(mut e) => {
                if e.get().body_hash != key.body_hash {
                    return Err(DomainError::IdempotencyConflict.into());
                }
                // Copies of one request wait for it, but not without bound.
                if e.get().waiters.len() >= crate::limits::MAX_IDEMPOTENCY_WAITERS {
                    return Err(DomainError::Overloaded.into());
                }
                let (tx, rx) = oneshot::channel();
                e.get_mut().waiters.push(tx);
                Ok(Claim::Wait(rx))
            }
            Entry::Vacant(v) => {
                // Looked up while holding the entry, so a request that completes meanwhile is
                // either still in flight (we wait) or already in the store (we replay).
                let stored: Option<StoredResponse> = store
                    .get(Space::Idempotency, &key.key)
                    .map_err(|e| Failure::Internal(e.to_string()))?;
                if let Some(stored) = stored {
                    if stored.body_hash != key.body_hash {
                        return Err(DomainError::IdempotencyConflict.into());
                    }
                    return Ok(Claim::Replay(stored));
                }
                v.insert(InFlight {
                    body_hash: key.body_hash,
                    waiters: Vec::new(),
                });
                Ok(Claim::Fresh(ClaimGuard {
                    table: self.clone(),
                    key: Some(key.key.clone()),
                }))
            }
        }
    }

    fn finish(&self, key: &[u8], outcome: Option<Arc<StoredResponse>>) {
        if let Some((_, in_flight)) = self.in_flight.remove(key) {
            for waiter in in_flight.waiters {
                let _ = waiter.send(outcome.clone());
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

impl ClaimGuard {
    /// The request succeeded and its response is durable: copies replay it.
    pub fn complete(mut self, response: StoredResponse) {
        if let Some(key) = self.key.take() {
            self.table.finish(&key, Some(Arc::new(response)));
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.table.finish(&key, None);
        }
    }
}
