//! Start-up: rebuild the in-memory registries from the store. Wallets are not loaded: their
//! actors start from the store on first use, so recovery time follows the configuration, not the
//! number of wallets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rewards_core::budget::BudgetTotals;
use rewards_core::{BusinessId, Money};
use rewards_storage::{Space, StoreError};

use crate::app::App;
use crate::auth::{hash_key, KeyRecord, Role};
use crate::budgets::OfferRuntime;
use crate::clock;
use crate::registry::{BusinessEntry, OfferSet};
use crate::schema::{keys, ConfigRecord};

/// What recovery loaded.
#[derive(Debug, Default)]
pub struct Recovered {
    pub businesses: usize,
    pub config_records: usize,
    pub keys: usize,
    pub offers: usize,
    pub elapsed_ms: u128,
}

pub fn recover(app: &App) -> Result<Recovered, StoreError> {
    let started = Instant::now();
    let mut recovered = Recovered::default();
    let mut offers: HashMap<BusinessId, Vec<Arc<OfferRuntime>>> = HashMap::new();
    recovered.config_records =
        app.store
            .for_each::<ConfigRecord>(Space::Config, &[], |_, record| {
                match record {
                    ConfigRecord::Business(business) => {
                        // A business record is rewritten when its settings or rates change.
                        match app.registry.business(business.id) {
                            Some(entry) => *entry.business.write() = Arc::new(business),
                            None => {
                                app.registry
                                    .businesses
                                    .insert(business.id, Arc::new(BusinessEntry::new(business)));
                            }
                        }
                    }
                    ConfigRecord::Merchant(m) => {
                        if let Some(entry) = app.registry.business(m.business_id) {
                            let mut merchants = (**entry.merchants.read()).clone();
                            merchants.insert(m.id, m);
                            *entry.merchants.write() = Arc::new(merchants);
                        }
                    }
                    ConfigRecord::Tap(tap) => {
                        if let Some(entry) = app.registry.business(tap.business_id) {
                            app.registry.add_tap_code(&tap.code, tap.business_id);
                            let mut taps = (**entry.taps.read()).clone();
                            taps.push(tap);
                            *entry.taps.write() = Arc::new(taps);
                        }
                    }
                    ConfigRecord::Scheme(scheme) => {
                        if let Some(entry) = app.registry.business(scheme.business_id) {
                            let mut schemes = (**entry.schemes.read()).clone();
                            schemes.push(scheme);
                            *entry.schemes.write() = Arc::new(schemes);
                        }
                    }
                    ConfigRecord::Tiers(business, tiers) => {
                        if let Some(entry) = app.registry.business(business) {
                            *entry.tiers.write() = Some(Arc::new(tiers));
                        }
                    }
                    ConfigRecord::Offer(offer) => {
                        let totals = app.store.counter(&keys::offer_totals_key(offer.id))?;
                        let runtime = OfferRuntime::new(
                            offer.clone(),
                            BudgetTotals {
                                awarded_total: Money::from_minor(totals[0]),
                                award_count: totals[1].max(0) as u64,
                            },
                        );
                        offers
                            .entry(offer.business_id)
                            .or_default()
                            .push(Arc::new(runtime));
                    }
                    ConfigRecord::Processor(p) => {
                        app.registry.processors.insert(p.id, p);
                    }
                    ConfigRecord::SchemeCode { .. } => {}
                    ConfigRecord::Webhook(webhook) => {
                        if let Some(entry) = app.registry.business(webhook.business_id) {
                            let mut webhooks = (**entry.webhooks.read()).clone();
                            webhooks.push(webhook);
                            *entry.webhooks.write() = Arc::new(webhooks);
                        }
                    }
                }
                Ok(())
            })?;
    for (business, runtimes) in offers {
        recovered.offers += runtimes.len();
        if let Some(entry) = app.registry.business(business) {
            *entry.offers.write() = Arc::new(OfferSet::from_runtimes(runtimes));
        }
    }
    recovered.keys = app
        .store
        .for_each::<KeyRecord>(Space::Keys, &[], |_, record| {
            app.keys.insert(record);
            Ok(())
        })?;
    recovered.businesses = app.registry.businesses.len();
    recovered.elapsed_ms = started.elapsed().as_millis();
    tracing::info!(
        businesses = recovered.businesses,
        config_records = recovered.config_records,
        offers = recovered.offers,
        keys = recovered.keys,
        wallets_in_store = app.store.approximate_len(Space::Wallets),
        elapsed_ms = recovered.elapsed_ms as u64,
        "recovery done"
    );
    Ok(recovered)
}

/// Makes sure an operator key exists: the one in `REWARDS_ADMIN_KEY`, else one generated and
/// printed once (only its hash is stored). Returns a generated secret, if any.
pub fn ensure_operator_key(
    app: &App,
    from_env: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let (secret, generated) = match from_env.map(str::trim).filter(|k| !k.is_empty()) {
        Some(secret) => {
            if app.keys.authenticate(secret, clock::now()).is_ok() {
                return Ok(None);
            }
            (secret.to_string(), false)
        }
        None if app.keys.has_operator() => return Ok(None),
        None => (app.placement.secret(), true),
    };
    let record = KeyRecord {
        id: app.placement.key_id(),
        hash: hash_key(&secret),
        role: Role::Operator,
        business_id: None,
        merchant_id: None,
        processor_id: None,
        contact_id: None,
        created_at: clock::now(),
        expires_at: None,
        revoked: false,
    };
    let mut set = rewards_storage::WriteSet::new();
    set.put(Space::Keys, keys::api_key_key(record.id), &record);
    app.store.write(set)?;
    app.keys.insert(record);
    Ok(generated.then_some(secret))
}
