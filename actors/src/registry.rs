//! The in-memory registry of business configuration: businesses, merchants, TAPs, schemes,
//! tiers and offers, read without blocking by the hot path and written through to the store.
//!
//! Every collection is an immutable snapshot behind an `RwLock<Arc<_>>`: a reader clones the `Arc`
//! and never waits for a writer longer than a pointer swap. Configuration writes of one business
//! are serialised by its `config_lock` so read-modify-write never loses an update.

use dashmap::DashMap;
use parking_lot::RwLock;
use rewards_core::business::{Business, Merchant, Tap};
use rewards_core::offer::Offer;
use rewards_core::scheme::Scheme;
use rewards_core::tier::TierConfig;
use rewards_core::{BusinessId, MerchantId, OfferId, ProcessorId, SchemeId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

use crate::budgets::OfferRuntime;

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Processor {
    pub id: ProcessorId,
    pub name: String,
}

/// The offers of one business, as one snapshot.
#[derive(Default)]
pub struct OfferSet {
    pub by_id: HashMap<OfferId, Arc<OfferRuntime>>,
    /// Active offers in creation order: what the engine evaluates.
    pub active: Vec<Arc<Offer>>,
}

impl OfferSet {
    pub fn from_runtimes(runtimes: impl IntoIterator<Item = Arc<OfferRuntime>>) -> OfferSet {
        let by_id: HashMap<OfferId, Arc<OfferRuntime>> =
            runtimes.into_iter().map(|r| (r.offer.id, r)).collect();
        let mut active: Vec<Arc<Offer>> = by_id
            .values()
            .filter(|r| r.offer.active)
            .map(|r| r.offer.clone())
            .collect();
        active.sort_by_key(|o| o.created_seq);
        OfferSet { by_id, active }
    }
}

/// Everything configured for one business.
pub struct BusinessEntry {
    pub business: RwLock<Arc<Business>>,
    pub merchants: RwLock<Arc<HashMap<MerchantId, Merchant>>>,
    pub taps: RwLock<Arc<Vec<Tap>>>,
    pub schemes: RwLock<Arc<Vec<Scheme>>>,
    pub tiers: RwLock<Option<Arc<TierConfig>>>,
    pub offers: RwLock<Arc<OfferSet>>,
    pub webhooks: RwLock<Arc<Vec<crate::webhooks::Webhook>>>,
    /// Serialises configuration changes of this business.
    pub config_lock: tokio::sync::Mutex<()>,
}

/// What one event needs of its business's configuration, taken once at the top of the request.
#[derive(Clone)]
pub struct BusinessSnapshot {
    pub business: Arc<Business>,
    pub merchants: Arc<HashMap<MerchantId, Merchant>>,
    pub taps: Arc<Vec<Tap>>,
    pub schemes: Arc<Vec<Scheme>>,
    pub tiers: Option<Arc<TierConfig>>,
    pub offers: Arc<OfferSet>,
    pub webhooks: Arc<Vec<crate::webhooks::Webhook>>,
}

impl BusinessEntry {
    pub fn new(business: Business) -> BusinessEntry {
        BusinessEntry {
            business: RwLock::new(Arc::new(business)),
            merchants: RwLock::default(),
            taps: RwLock::default(),
            schemes: RwLock::default(),
            tiers: RwLock::default(),
            offers: RwLock::default(),
            webhooks: RwLock::default(),
            config_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn snapshot(&self) -> BusinessSnapshot {
        BusinessSnapshot {
            business: self.business.read().clone(),
            merchants: self.merchants.read().clone(),
            taps: self.taps.read().clone(),
            schemes: self.schemes.read().clone(),
            tiers: self.tiers.read().clone(),
            offers: self.offers.read().clone(),
            webhooks: self.webhooks.read().clone(),
        }
    }

    pub fn business(&self) -> Arc<Business> {
        self.business.read().clone()
    }

    pub fn scheme(&self, id: SchemeId) -> Option<Scheme> {
        self.schemes.read().iter().find(|s| s.id == id).cloned()
    }
}

impl BusinessSnapshot {
    pub fn tap_by_code(&self, code: &str) -> Option<&Tap> {
        self.taps.iter().find(|t| t.code == code)
    }
    pub fn tap_by_ip(&self, ip: &str) -> Option<&Tap> {
        self.taps
            .iter()
            .find(|t| t.ip_address.as_deref() == Some(ip))
    }
}

#[derive(Default)]
pub struct Registry {
    pub businesses: DashMap<BusinessId, Arc<BusinessEntry>>,
    /// TAP code to every business that registered it (processor routing).
    pub taps_by_code: DashMap<String, Vec<BusinessId>>,
    pub processors: DashMap<ProcessorId, Processor>,
}

impl Registry {
    pub fn business(&self, id: BusinessId) -> Option<Arc<BusinessEntry>> {
        self.businesses.get(&id).map(|e| e.clone())
    }

    pub fn add_tap_code(&self, code: &str, business: BusinessId) {
        let mut entry = self.taps_by_code.entry(code.to_string()).or_default();
        if !entry.contains(&business) {
            entry.push(business);
        }
    }
}
