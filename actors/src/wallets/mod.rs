//! Wallet actors: one actix actor per contact's wallet, the only code that mutates a wallet or its
//! contact's reward state.
//!
//! An actor applies an operation to copies of its state, hands the resulting records to the
//! group-commit writer and adopts the new state at once, so it can take its next message while the
//! writer commits (the writer commits in order). The caller is answered from the writer's
//! acknowledgement, so no answer reveals a state that a crash could lose. A refused operation
//! changes nothing: its copies are dropped.
//!
//! `directory.rs` finds or starts the actor of a contact and sends it commands; `actor.rs` is
//! the actor's mailbox, passivation and commit; the operations are grouped by family:
//! `purchases.rs` (purchases, voids, returns), `funds.rs` (top-ups, payouts), `contact.rs`
//! (spend blocks, schemes, contact creation) and `awards.rs` (offers evaluated and awards
//! credited for any of them). This file holds the commands, the actor's state and the
//! [`Change`] an operation produces.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::http::StatusCode;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use rewards_core::business::ReductionMethod;
use rewards_core::contact::Contact;
use rewards_core::engine::{
    evaluate, AchievementFacts, ContactFacts, EngineContext, EventFacts, ProposedAward,
    PurchaseFacts,
};
use rewards_core::offer::{AchievementKind, Redemption};
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::reversal::plan_return;
use rewards_core::scheme::{check_sign_out, check_sign_up};
use rewards_core::tier::{recompute, value_units};
use rewards_core::wallet::{
    AwardInput, Funding, LedgerEntry, Lot, SpendAmount, SpendRequest, Wallet,
};
use rewards_core::{
    ContactId, DomainError, EventId, LotId, MerchantId, Money, SchemeId, Timestamp,
};
use rewards_storage::{Space, StoreError, WriteSet};
use rust_decimal::Decimal;
use serde_json::json;
use tokio::sync::oneshot;

use crate::app::App;
use crate::budgets::{Held, Reservations};
use crate::clock;
use crate::contact_state::ContactState;
use crate::dto::contact::render_contact;
use crate::dto::purchase::{render_event, render_wallet};
use crate::error::Failure;
use crate::events::{
    AwardLot, AwardRecord, EventRecord, EventState, EventType, PaymentMediumRecord, SpendRecord,
};
use crate::idempotency::{IdempotencyKey, StoredResponse};
use crate::registry::BusinessSnapshot;
use crate::schema::{keys, ContactRecord};

/// A response decided by a wallet actor: status and JSON body.
mod actor;
mod awards;
mod contact;
mod directory;
mod estimates;
mod funds;
mod purchases;
mod referral;
pub(crate) mod settlement;
pub(crate) mod stored;

pub use contact::{create_contact, render_entry};
pub use directory::{call, Gauges, WalletDirectory};
pub use estimates::{wake_holds, EstimateJob, EstimateStep};
pub use referral::{complete_referrals, refer, ReferralJob};

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

pub struct PurchaseJob {
    pub snapshot: BusinessSnapshot,
    pub event_id: EventId,
    pub purchase: ValidatedPurchase,
    pub performed_on: Timestamp,
    pub reference_number: Option<String>,
    pub classification: Option<String>,
    pub tap_code: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub payment_medium: Option<PaymentMediumRecord>,
    pub origin: String,
    pub spend: Option<(SpendAmount, bool)>,
    pub idempotency: Option<IdempotencyKey>,
    /// Processor routing: what the purchase owes to a match or a claim.
    pub route: Option<RoutedPurchase>,
    /// The estimate the purchase consumes: its hold is captured in the purchase's commit.
    pub estimate_id: Option<rewards_core::EstimateId>,
}

/// A purchase completed by processor routing: the router's records change in the purchase's
/// own commit, so "rewarded once" is one write.
pub struct RoutedPurchase {
    pub facts: crate::events::RouteFacts,
    /// What the caller reads of the answer.
    pub answer: Answer,
    /// When the route record was created: the event keeps its time (and its index entries).
    pub created_at: Timestamp,
    /// The router's record changes (pending or unclaimed record removed, route answer stored).
    pub records: WriteSet,
}

/// What the caller of a routed purchase reads of its answer: a processor's route needs only
/// to know it is durable, so the purchase is not rendered for it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Answer {
    Purchase,
    StatusOnly,
}

/// An achievement: an action of the contact that achievement offers reward (SPEC section 4).
pub struct AchievementJob {
    pub snapshot: BusinessSnapshot,
    pub event_id: EventId,
    pub classification: String,
    pub amount: Option<Money>,
    pub details: crate::events::AchievementRecord,
    pub performed_on: Timestamp,
    pub tap_code: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub payment_medium: Option<PaymentMediumRecord>,
    pub identity: rewards_core::identity::Identity,
    pub origin: String,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
}

/// A financial statement: one per contact, classification and period.
pub struct StatementJob {
    pub snapshot: BusinessSnapshot,
    pub event_id: EventId,
    pub classification: String,
    pub statement: crate::events::StatementRecord,
    pub performed_on: Timestamp,
    pub identity: rewards_core::identity::Identity,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
}

/// A spend request against a posted purchase of the contact.
pub struct SpendRequestJob {
    pub snapshot: BusinessSnapshot,
    pub event_id: EventId,
    pub purchase_id: EventId,
    pub amount: SpendAmount,
    pub require_full: bool,
    pub identity: rewards_core::identity::Identity,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
}

pub struct ReturnJob {
    pub snapshot: BusinessSnapshot,
    pub purchase_id: EventId,
    pub return_id: EventId,
    pub lines: Vec<(String, Decimal)>,
    pub idempotency: Option<IdempotencyKey>,
}

pub enum Command {
    Purchase(Box<PurchaseJob>),
    Void {
        snapshot: BusinessSnapshot,
        event_id: EventId,
        reason: Option<String>,
    },
    Return(Box<ReturnJob>),
    Topup {
        snapshot: BusinessSnapshot,
        amount: Money,
        event_id: EventId,
        external_system: String,
        external_reference: Option<String>,
        idempotency: Option<IdempotencyKey>,
    },
    Payout {
        amount: Option<Money>,
        payout_id: EventId,
    },
    SpendBlock {
        blocked: bool,
        reason: Option<String>,
    },
    Scheme {
        snapshot: BusinessSnapshot,
        sign_up: bool,
        scheme_id: SchemeId,
        email: Option<String>,
        code: Option<String>,
    },
    Estimate(Box<EstimateJob>),
    Achievement(Box<AchievementJob>),
    Statement(Box<StatementJob>),
    SpendOnPurchase(Box<SpendRequestJob>),
    /// The payout spend model's run: pays out the open money of `auto` redemptions.
    PayoutAuto {
        payout_id: EventId,
        idempotency: Option<IdempotencyKey>,
    },
    EstimateStep {
        snapshot: BusinessSnapshot,
        estimate_id: rewards_core::EstimateId,
        step: EstimateStep,
    },
    /// A referral's step 1 on the referred contact's actor (see `referral.rs`): writes nothing.
    ReferralHold {
        referrer: ContactId,
    },
    /// Ends step 1 of a referral the referrer's side refused: writes nothing.
    ReferralRelease,
    /// A referral's step 2, on the referrer's actor.
    Refer(Box<ReferralJob>),
    /// A referral's step 3, on the referred contact's actor.
    Referred(Box<ReferralJob>),
    /// Makes the wallet resident (warming a hot wallet before traffic) and answers its state as
    /// the actor holds it. Writes nothing.
    Touch,
}

enum Outcome {
    Done(Result<Reply, Failure>),
    /// The actor was passivating when the command arrived: send it again to a fresh actor.
    Retry(Command),
}

struct Envelope {
    command: Command,
    reply: oneshot::Sender<Outcome>,
}

impl Message for Envelope {
    type Result = ();
}

pub struct WalletActor {
    app: Arc<App>,
    contact: ContactState,
    wallet: Wallet,
    /// Shared with the directory: commands queued for this actor, and writes in flight.
    gauges: Arc<Gauges>,
    /// [`uptime_seconds`] of the last command: a coarse clock is enough to find idle actors.
    last_used: u32,
    passivating: bool,
    /// What this actor wrote that may not be in the store yet; `None` while nothing is in
    /// flight (then the store is as new as the actor), which keeps idle actors small.
    recent: Option<Box<Recent>>,
    /// The expiry timer of the earliest hold, and the time it is armed for.
    expiry_timer: Option<(Timestamp, SpawnHandle)>,
    /// Whether a referral of this contact is in progress or done.
    referred: referral::ReferredMark,
    /// Where the wallet's lots are stored, to write only those a change touches.
    lot_places: stored::LotPlaces,
}

#[derive(Default)]
struct Recent {
    /// Estimates this actor changed, newer than (or as new as) the store's copies.
    estimates: Latest<rewards_core::EstimateId, crate::estimates::EstimateRecord>,
    /// Events this actor changed, newer than (or as new as) the store's copies.
    events: Latest<EventId, EventRecord>,
    /// Lots this actor closed, by event: newer than (or as new as) the store's copies.
    lots: Latest<EventId, Vec<Lot>>,
    /// Settlement entries of events this actor posted, by event.
    settlements: Latest<EventId, rewards_core::settlement::SettlementEntry>,
}

/// The latest value of each key, for what one actor has in flight: usually one or two
/// entries, held in a vector searched entry by entry (no hashing, one allocation, which every
/// purchase made and freed when these were hash maps). Past [`LATEST_IN_A_VECTOR`] entries (a
/// wallet that never stops being written) it moves to a hash map, so a search stays short.
enum Latest<K, V> {
    Few(Vec<(K, V)>),
    Many(HashMap<K, V>),
}

/// Entries a [`Latest`] keeps in its vector before it moves to a hash map.
const LATEST_IN_A_VECTOR: usize = 16;

impl<K, V> Default for Latest<K, V> {
    fn default() -> Self {
        Latest::Few(Vec::new())
    }
}

impl<K: Copy + Eq + std::hash::Hash, V> Latest<K, V> {
    fn get(&self, key: &K) -> Option<&V> {
        match self {
            Latest::Few(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Latest::Many(map) => map.get(key),
        }
    }

    /// Changes the value of `key` in place, a default one if it has none.
    fn update(&mut self, key: K, change: impl FnOnce(&mut V))
    where
        V: Default,
    {
        match self {
            Latest::Few(entries) => {
                if let Some((_, value)) = entries.iter_mut().find(|(k, _)| *k == key) {
                    change(value);
                    return;
                }
            }
            Latest::Many(map) => {
                change(map.entry(key).or_default());
                return;
            }
        }
        let mut value = V::default();
        change(&mut value);
        self.insert(key, value);
    }

    fn insert(&mut self, key: K, value: V) {
        match self {
            Latest::Few(entries) => {
                if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                    slot.1 = value;
                } else if entries.len() < LATEST_IN_A_VECTOR {
                    entries.push((key, value));
                } else {
                    let mut map: HashMap<K, V> = std::mem::take(entries).into_iter().collect();
                    map.insert(key, value);
                    *self = Latest::Many(map);
                }
            }
            Latest::Many(map) => {
                map.insert(key, value);
            }
        }
    }

    fn values(&self) -> Box<dyn Iterator<Item = &V> + '_> {
        match self {
            Latest::Few(entries) => Box::new(entries.iter().map(|(_, v)| v)),
            Latest::Many(map) => Box::new(map.values()),
        }
    }
}

/// Seconds since the process started, as a `u32` (136 years).
fn uptime_seconds() -> u32 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs() as u32
}

/// How long a passivating actor still answers `Retry` before it stops.
const PASSIVATION_GRACE: Duration = Duration::from_secs(5);

/// What an accepted operation produces: the new state, the records to write, the answer, and
/// the budget reservations and budget give-backs to settle once it is durable.
struct Change {
    contact: ContactState,
    wallet: Wallet,
    set: WriteSet,
    entries: Vec<LedgerEntry>,
    events: Vec<EventRecord>,
    estimates: Vec<crate::estimates::EstimateRecord>,
    /// Settlement entries of the events this change posts.
    settlements: Vec<rewards_core::settlement::SettlementEntry>,
    reply: Reply,
    idempotency: Option<IdempotencyKey>,
    held: Held,
    /// Scheme codes this change uses: claimed until its write is acknowledged.
    claims: Vec<crate::claims::Claimed>,
    give_back: Vec<(Arc<crate::budgets::OfferRuntime>, Money)>,
    event_type: &'static str,
}

/// How many ledger entries a change has room for from the start.
const ENTRIES_USUALLY: usize = 16;

/// How many records a change's write set has room for from the start: a purchase writes its
/// event, two index entries, its ledger entries, its wallet and a counter per award.
const RECORDS_USUALLY: usize = 16;

impl Change {
    fn new(contact: ContactState, wallet: Wallet, event_type: &'static str) -> Change {
        Change {
            contact,
            wallet,
            set: WriteSet::with_capacity(RECORDS_USUALLY),
            // Room for a purchase's usual awards and their redemptions at once, instead of
            // growing four times over.
            entries: Vec::with_capacity(ENTRIES_USUALLY),
            events: Vec::new(),
            estimates: Vec::new(),
            settlements: Vec::new(),
            reply: Reply {
                status: StatusCode::OK,
                body: Vec::new(),
            },
            idempotency: None,
            held: Held::default(),
            claims: Vec::new(),
            give_back: Vec::new(),
            event_type,
        }
    }
}

fn check_balanced(entries: &[LedgerEntry]) {
    for entry in entries {
        let sum: Money = entry.postings.iter().map(|p| p.amount).sum();
        // Money that does not balance must never be written: stop rather than continue.
        assert!(sum.is_zero(), "ledger entry {} does not balance", entry.seq);
    }
}

fn new_event(
    change: &Change,
    id: EventId,
    event_type: EventType,
    snapshot: &BusinessSnapshot,
    now: Timestamp,
) -> EventRecord {
    EventRecord::posted(
        id,
        event_type,
        snapshot.business.id,
        change.contact.id,
        change.wallet.id,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector and the hash map it moves to answer alike: the latest value of each key.
    #[test]
    fn latest_keeps_the_last_value_of_each_key_before_and_after_it_grows() {
        let mut latest: Latest<u32, Vec<u32>> = Latest::default();
        let mut oracle: HashMap<u32, Vec<u32>> = HashMap::new();
        for step in 0..200u32 {
            let key = (step * 7) % 41;
            if step % 3 == 0 {
                latest.update(key, |v| v.push(step));
                oracle.entry(key).or_default().push(step);
            } else {
                latest.insert(key, vec![step]);
                oracle.insert(key, vec![step]);
            }
            for probe in 0..45 {
                assert_eq!(
                    latest.get(&probe),
                    oracle.get(&probe),
                    "step {step}, key {probe}"
                );
            }
            let mut values: Vec<&Vec<u32>> = latest.values().collect();
            let mut expected: Vec<&Vec<u32>> = oracle.values().collect();
            values.sort();
            expected.sort();
            assert_eq!(values, expected);
            assert_eq!(
                matches!(latest, Latest::Few(_)),
                oracle.len() <= LATEST_IN_A_VECTOR
            );
        }
    }
}
