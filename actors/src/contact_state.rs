//! A contact in two records: its profile (identifiers, name, email, payment media), written when
//! it is created, and the state its wallet actor owns and rewrites (reward state, schemes, spend
//! block). The actor keeps only the state in memory, so a resident wallet stays small.

use rewards_core::contact::{Contact, ContactRewards};
use rewards_core::{BusinessId, ContactId, SchemeId, WalletId};
use rewards_storage::{Space, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::schema::{keys, ContactRecord};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ContactState {
    pub id: ContactId,
    pub business_id: BusinessId,
    pub wallet_id: WalletId,
    /// The static wallet code, shown with the wallet in the actor's answers.
    pub wallet_code: String,
    pub scheme_ids: Vec<SchemeId>,
    pub spend_blocked: bool,
    pub spend_block_reason: Option<String>,
    pub rewards: ContactRewards,
}

impl ContactState {
    pub fn of(contact: &Contact) -> ContactState {
        ContactState {
            id: contact.id,
            business_id: contact.business_id,
            wallet_id: contact.wallet_id,
            wallet_code: contact.wallet_code.clone(),
            scheme_ids: contact.scheme_ids.clone(),
            spend_blocked: contact.spend_blocked,
            spend_block_reason: contact.spend_block_reason.clone(),
            rewards: contact.rewards.clone(),
        }
    }

    /// The whole contact: its profile with this state's values.
    pub fn apply_to(&self, mut profile: Contact) -> Contact {
        profile.scheme_ids = self.scheme_ids.clone();
        profile.spend_blocked = self.spend_blocked;
        profile.spend_block_reason = self.spend_block_reason.clone();
        profile.rewards = self.rewards.clone();
        profile
    }
}

/// The contact as it is now: profile and state, from the store.
pub fn load(store: &Store, id: ContactId) -> Result<Option<Contact>, StoreError> {
    let Some(profile) = store.get::<ContactRecord>(Space::Contacts, &keys::contact_key(id))? else {
        return Ok(None);
    };
    let profile = Contact::from(profile);
    let state: Option<ContactState> =
        store.get(Space::ContactStates, &keys::contact_state_key(id))?;
    Ok(Some(match state {
        Some(state) => state.apply_to(profile),
        None => profile,
    }))
}

/// The contact's tier now, under its business's current tier configuration: the stored tier
/// is as of the contact's last change, while units leave the rolling period (and levels
/// change) in between. No configuration: no tier.
pub fn current_tier(
    app: &crate::app::App,
    business: BusinessId,
    rewards: &ContactRewards,
    now: rewards_core::Timestamp,
) -> Option<String> {
    let entry = app.registry.business(business)?;
    let tiers = entry.tiers.read().clone()?;
    tiers.tier_at(&rewards.tier_progress, now)
}
