//! What processor routing stores: one record per purchase that waits for its match or its
//! claim, the live ones indexed by TAP code (a router rebuilds its books from them) and every
//! claim code ever issued, by business (codes stay unique, and a second claim is told the
//! purchase was claimed).

use rewards_core::claim::ClaimCode;
use rewards_core::matching::{Entry, EntryState, Side};
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::{BusinessId, ContactId, EventId, MerchantId, Money, ProcessorId, Timestamp};
use rewards_storage::{Space, WriteSet};
use serde::{Deserialize, Serialize};

use crate::events::PaymentMediumRecord;
use crate::schema::keys;

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
        set.put(Space::Routes, keys::route_key(self.id), self);
        match self.state {
            RouteState::PendingMatch | RouteState::Unclaimed => {
                set.put_raw(Space::Routes, self.live_key(), Vec::new());
            }
            RouteState::Unmatched => set.delete(Space::Routes, self.live_key()),
        }
        if let Some(code) = self.claim_code {
            set.put_raw(
                Space::Routes,
                keys::claim_code_key(self.business_id, code),
                self.id.as_bytes().to_vec(),
            );
        }
        if new {
            let id = self.id.as_bytes().to_vec();
            set.put_raw(
                Space::EventIndex,
                keys::business_index_key(self.business_id, self.created_at, self.id),
                id.clone(),
            );
            if let Some(pos) = &self.pos {
                set.put_raw(
                    Space::EventIndex,
                    keys::contact_index_key(pos.contact_id, self.created_at, self.id),
                    id,
                );
            }
        }
    }

    /// Removes the record when it became a purchase (its claim code stays taken).
    pub fn remove(&self, set: &mut WriteSet) {
        set.delete(Space::Routes, keys::route_key(self.id));
        set.delete(Space::Routes, self.live_key());
    }

    fn live_key(&self) -> Vec<u8> {
        keys::live_route_key(&self.tap_code, self.business_id, self.id)
    }
}
