//! What processor routing stores: one record per purchase that waits for its match or its
//! claim, the live ones indexed by TAP code (a router rebuilds its books from them) and every
//! claim code ever issued, by business (codes stay unique, and a second claim is told the
//! purchase was claimed).

use rewards_core::claim::ClaimCode;
use rewards_core::matching::{Entry, EntryState, Side};
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::{BusinessId, ContactId, EventId, MerchantId, Money, ProcessorId, Timestamp};
use rewards_storage::keys::KeyBuilder;
use rewards_storage::{Record, Space, WriteSet};
use serde::{Deserialize, Serialize};

use crate::events::{business_index_key, contact_index_key, PaymentMediumRecord};

/// Where a stored route record stands.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RouteState {
    /// Waiting for its counterpart until its deadline.
    PendingMatch,
    /// A processor purchase waiting for its contact to claim it.
    Unclaimed,
    /// A POS purchase whose window ended without its transaction (final).
    Unmatched,
}

/// What a POS purchase in `match` mode brings to its match.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PosFacts {
    pub contact_id: ContactId,
    /// The requested spend (`None` amount: "all") and whether it must be spent in full.
    pub spend: Option<(Option<Money>, bool)>,
    pub classification: Option<String>,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub origin: String,
}

/// A purchase that processor routing keeps until it is matched, claimed or given up.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct RouteRecord {
    pub id: EventId,
    pub business_id: BusinessId,
    pub tap_code: String,
    pub side: Side,
    pub state: RouteState,
    pub performed_on: Timestamp,
    pub created_at: Timestamp,
    /// A pending record stops waiting at this time.
    pub deadline: Timestamp,
    pub transaction_reference: Option<String>,
    pub reference_number: Option<String>,
    pub claim_code: Option<ClaimCode>,
    pub processor_id: Option<ProcessorId>,
    pub merchant_id: Option<MerchantId>,
    pub payment_medium: Option<PaymentMediumRecord>,
    /// Amounts in the business currency (a processor purchase without lines has its total).
    pub purchase: ValidatedPurchase,
    /// Present on POS purchases.
    pub pos: Option<PosFacts>,
}

impl Record for RouteRecord {
    const VERSION: u8 = 1;
}

impl RouteRecord {
    /// The record as its router's match book holds it.
    pub fn entry(&self) -> Entry {
        Entry {
            id: self.id,
            side: self.side,
            total: self.purchase.amounts.total,
            at: self.performed_on,
            transaction_reference: self.transaction_reference.clone(),
            reference_number: self.reference_number.clone(),
            deadline: self.deadline,
            claim_code: self.claim_code,
            state: match self.state {
                RouteState::Unclaimed => EntryState::Unclaimed,
                RouteState::PendingMatch | RouteState::Unmatched => EntryState::Pending,
            },
        }
    }

    /// Writes the record and the index entries of its state; `new` also indexes it in its
    /// business's event list (and its contact's activity), where it stays once it is a purchase.
    pub fn put(&self, set: &mut WriteSet, new: bool) {
        set.put(Space::Routes, record_key(self.id), self);
        match self.state {
            RouteState::PendingMatch | RouteState::Unclaimed => {
                set.put_raw(Space::Routes, self.live_key(), Vec::new());
            }
            RouteState::Unmatched => set.delete(Space::Routes, self.live_key()),
        }
        if let Some(code) = self.claim_code {
            set.put_raw(
                Space::Routes,
                claim_code_key(self.business_id, code),
                self.id.as_bytes().to_vec(),
            );
        }
        if new {
            let id = self.id.as_bytes().to_vec();
            set.put_raw(
                Space::EventIndex,
                business_index_key(self.business_id, self.created_at, self.id),
                id.clone(),
            );
            if let Some(pos) = &self.pos {
                set.put_raw(
                    Space::EventIndex,
                    contact_index_key(pos.contact_id, self.created_at, self.id),
                    id,
                );
            }
        }
    }

    /// Removes the record when it became a purchase (its claim code stays taken).
    pub fn remove(&self, set: &mut WriteSet) {
        set.delete(Space::Routes, record_key(self.id));
        set.delete(Space::Routes, self.live_key());
    }

    fn live_key(&self) -> Vec<u8> {
        live_key(&self.tap_code, self.business_id, self.id)
    }
}

pub fn record_key(id: EventId) -> Vec<u8> {
    KeyBuilder::new().u8(b'r').bytes(id.as_bytes()).finish()
}

fn live_key(tap_code: &str, business: BusinessId, id: EventId) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'l')
        .str(tap_code)
        .bytes(business.as_bytes())
        .bytes(id.as_bytes())
        .finish()
}

/// Every live record (pending or unclaimed), or those of one TAP code.
pub fn live_prefix(tap_code: Option<&str>) -> Vec<u8> {
    let builder = KeyBuilder::new().u8(b'l');
    match tap_code {
        Some(code) => builder.str(code).finish(),
        None => builder.finish(),
    }
}

/// The record id at the end of a live index key.
pub fn id_of_live_key(key: &[u8]) -> Option<EventId> {
    let start = key.len().checked_sub(16)?;
    let bytes: [u8; 16] = key.get(start..)?.try_into().ok()?;
    Some(EventId::from_bytes(bytes))
}

pub fn claim_code_key(business: BusinessId, code: ClaimCode) -> Vec<u8> {
    KeyBuilder::new()
        .u8(b'c')
        .bytes(business.as_bytes())
        .str(&code.to_string())
        .finish()
}
