//! Wallet actors: one actix actor per contact's wallet, the only code that mutates a wallet or its
//! contact's reward state.
//!
//! An actor applies an operation to copies of its state, hands the resulting records to the
//! group-commit writer and adopts the new state at once, so it can take its next message while the
//! writer commits (the writer commits in order). The caller is answered from the writer's
//! acknowledgement, so no answer reveals a state that a crash could lose. A refused operation
//! changes nothing: its copies are dropped.

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
use crate::budgets::{offer_totals_key, Held, Reservations};
use crate::clock;
use crate::contact_state::ContactState;
use crate::dto::contact::render_contact;
use crate::dto::purchase::{render_event, render_wallet};
use crate::error::Failure;
use crate::events::{
    business_index_key, contact_index_key, event_key, AwardRecord, EventRecord, EventState,
    EventType, PaymentMediumRecord, ReturnsRecord, SpendRecord,
};
use crate::idempotency::{IdempotencyKey, StoredResponse};
use crate::registry::BusinessSnapshot;

/// A response decided by a wallet actor: status and JSON body.
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

/// Counters an actor shares with its callers.
#[derive(Default)]
pub struct Gauges {
    /// Commands sent and not yet taken by the actor: its mailbox's length.
    queued: AtomicUsize,
    /// Write sets handed to the writer and not yet acknowledged.
    in_flight: AtomicUsize,
}

/// The resident wallet actors, by contact, spread over the wallet arbiters.
pub struct WalletDirectory {
    actors: DashMap<ContactId, (Addr<WalletActor>, Arc<Gauges>)>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    mailbox_capacity: usize,
    idle: Duration,
    /// Most wallet actors resident at once; starting one more is `overloaded` (the sweeper
    /// passivates idle ones, so the set shrinks back).
    max_resident: usize,
}

impl WalletDirectory {
    pub fn new(arbiters: Vec<ArbiterHandle>, mailbox_capacity: usize, idle: Duration) -> Self {
        assert!(
            !arbiters.is_empty(),
            "wallet actors need at least one arbiter"
        );
        WalletDirectory {
            actors: DashMap::new(),
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            mailbox_capacity,
            idle,
            max_resident: usize::MAX,
        }
    }

    /// Bounds the number of resident wallet actors.
    pub fn with_max_resident(mut self, max_resident: usize) -> Self {
        self.max_resident = max_resident.max(1);
        self
    }

    pub fn resident(&self) -> usize {
        self.actors.len()
    }

    pub fn arbiters(&self) -> Vec<ArbiterHandle> {
        self.arbiters.clone()
    }

    /// The contact's actor, started from the store when it is not resident.
    fn get(
        &self,
        app: &Arc<App>,
        contact_id: ContactId,
    ) -> Result<(Addr<WalletActor>, Arc<Gauges>), Failure> {
        // The common case, a resident actor, takes only a read lock on its shard.
        if let Some(resident) = self.actors.get(&contact_id) {
            if resident.0.connected() {
                return Ok(resident.clone());
            }
        }
        // Counted before the entry is taken: `len` reads every shard, the entry holds one.
        // Concurrent starts may pass it together, so the bound is kept within a few actors.
        if self.actors.len() >= self.max_resident {
            return Err(DomainError::Overloaded.into());
        }
        match self.actors.entry(contact_id) {
            Entry::Occupied(e) if e.get().0.connected() => Ok(e.get().clone()),
            entry => {
                // The state is written with the profile when the contact is created.
                let contact: ContactState = app
                    .store
                    .get(Space::ContactStates, contact_id.as_bytes())?
                    .ok_or(DomainError::ContactNotFound)?;
                let wallet_id = contact.wallet_id;
                let wallet: Wallet = app
                    .store
                    .get(Space::Wallets, wallet_id.as_bytes())?
                    .ok_or_else(|| {
                        Failure::Internal(format!("wallet of contact {contact_id} is missing"))
                    })?;
                let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
                let capacity = self.mailbox_capacity;
                let gauges = Arc::new(Gauges::default());
                let actor = WalletActor {
                    app: app.clone(),
                    contact,
                    wallet,
                    gauges: gauges.clone(),
                    last_used: uptime_seconds(),
                    passivating: false,
                    recent: None,
                };
                let arbiter = self
                    .arbiters
                    .get(index)
                    .ok_or_else(|| Failure::Internal("no wallet arbiters".into()))?;
                let addr = WalletActor::start_in_arbiter(arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(capacity);
                    actor
                });
                match entry {
                    Entry::Occupied(mut e) => {
                        e.insert((addr.clone(), gauges.clone()));
                    }
                    Entry::Vacant(v) => {
                        v.insert((addr.clone(), gauges.clone()));
                    }
                }
                metrics::gauge!("rewards_wallet_actors_resident").set(self.actors.len() as f64);
                Ok((addr, gauges))
            }
        }
    }

    /// Asks every resident actor to passivate if it has been idle long enough.
    pub fn sweep(&self) {
        let idle = self.idle;
        let residents: Vec<Addr<WalletActor>> = self
            .actors
            .iter()
            .map(|entry| entry.value().0.clone())
            .collect();
        for addr in residents {
            // A full mailbox means the actor is busy: it is not idle, so nothing is lost.
            let _ = addr.try_send(Passivate { idle });
        }
    }

    /// Runs [`WalletDirectory::sweep`] every half idle time, on the current arbiter.
    pub fn start_sweeper(app: Arc<App>) {
        let every = (app.wallets.idle / 2).max(Duration::from_millis(500));
        actix::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                app.wallets.sweep();
            }
        });
    }

    fn remove_if_same(&self, contact_id: ContactId, addr: &Addr<WalletActor>) -> bool {
        let removed = self
            .actors
            .remove_if(&contact_id, |_, resident| &resident.0 == addr)
            .is_some();
        metrics::gauge!("rewards_wallet_actors_resident").set(self.actors.len() as f64);
        removed
    }
}

/// Sends a command to a contact's wallet actor and waits for its durable answer. A full mailbox
/// is `overloaded` at once; a command that met a passivating actor goes to a fresh one.
pub async fn call(
    app: &Arc<App>,
    contact_id: ContactId,
    command: Command,
) -> Result<Reply, Failure> {
    let mut command = command;
    for _ in 0..4 {
        let (addr, gauges) = app.wallets.get(app, contact_id)?;
        // actix gives every sender a slot of its own beyond the mailbox's capacity, and each
        // call sends through a fresh address clone, so the bound is kept here.
        if gauges.queued.fetch_add(1, Ordering::AcqRel) >= app.wallets.mailbox_capacity {
            gauges.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(DomainError::Overloaded.into());
        }
        let (tx, rx) = oneshot::channel();
        match addr.try_send(Envelope { command, reply: tx }) {
            Ok(()) => {}
            Err(SendError::Full(envelope)) => {
                gauges.queued.fetch_sub(1, Ordering::AcqRel);
                drop(envelope);
                return Err(DomainError::Overloaded.into());
            }
            Err(SendError::Closed(envelope)) => {
                gauges.queued.fetch_sub(1, Ordering::AcqRel);
                app.wallets.remove_if_same(contact_id, &addr);
                command = envelope.command;
                continue;
            }
        }
        match rx.await {
            Ok(Outcome::Done(result)) => return result,
            Ok(Outcome::Retry(back)) => command = back,
            Err(_) => return Err(Failure::Internal("the wallet actor stopped".into())),
        }
    }
    Err(DomainError::Overloaded.into())
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
}

#[derive(Default)]
struct Recent {
    /// Events this actor changed, newer than (or as new as) the store's copies.
    events: HashMap<EventId, EventRecord>,
    /// Lots this actor closed, by event: newer than (or as new as) the store's copies.
    lots: HashMap<EventId, Vec<Lot>>,
}

/// Seconds since the process started, as a `u32` (136 years).
fn uptime_seconds() -> u32 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs() as u32
}

/// How long a passivating actor still answers `Retry` before it stops.
const PASSIVATION_GRACE: Duration = Duration::from_secs(5);

impl Actor for WalletActor {
    type Context = Context<Self>;
}

/// Asks an actor to passivate if it has been idle for `idle` (sent by the directory's sweeper, so
/// no actor carries a timer of its own).
struct Passivate {
    idle: Duration,
}

impl Message for Passivate {
    type Result = ();
}

impl Handler<Passivate> for WalletActor {
    type Result = ();

    fn handle(&mut self, message: Passivate, ctx: &mut Self::Context) {
        self.maybe_passivate(ctx, message.idle);
    }
}

impl Handler<Envelope> for WalletActor {
    type Result = ();

    fn handle(&mut self, envelope: Envelope, _ctx: &mut Self::Context) {
        self.gauges.queued.fetch_sub(1, Ordering::AcqRel);
        if self.passivating {
            let _ = envelope.reply.send(Outcome::Retry(envelope.command));
            return;
        }
        self.last_used = uptime_seconds();
        if self.gauges.in_flight.load(Ordering::Acquire) == 0 {
            // Everything this actor wrote is durable and visible in the store.
            self.recent = None;
        }
        let reply = envelope.reply;
        if let Command::Touch = envelope.command {
            let body = render_wallet(&self.wallet, &self.contact.wallet_code, clock::now());
            let _ = reply.send(Outcome::Done(Ok(Reply {
                status: StatusCode::OK,
                body: crate::json_bytes(&body),
            })));
            return;
        }
        let result = match envelope.command {
            Command::Purchase(job) => self.purchase(*job),
            Command::Void {
                snapshot,
                event_id,
                reason,
            } => self.void(&snapshot, event_id, reason),
            Command::Return(job) => self.return_lines(*job),
            Command::Topup {
                snapshot,
                amount,
                event_id,
                external_system,
                external_reference,
                idempotency,
            } => self.topup(
                &snapshot,
                amount,
                event_id,
                external_system,
                external_reference,
                idempotency,
            ),
            Command::Payout { amount, payout_id } => self.payout(amount, payout_id),
            Command::SpendBlock { blocked, reason } => self.spend_block(blocked, reason),
            Command::Scheme {
                snapshot,
                sign_up,
                scheme_id,
                email,
                code,
            } => self.scheme(&snapshot, sign_up, scheme_id, email, code),
            Command::Touch => unreachable!("answered above"),
        };
        match result {
            Ok(change) => self.commit(change, reply),
            Err(error) => {
                let _ = reply.send(Outcome::Done(Err(error)));
            }
        }
    }
}

/// What an accepted operation produces: the new state, the records to write, the answer, and
/// the budget reservations and budget give-backs to settle once it is durable.
struct Change {
    contact: ContactState,
    wallet: Wallet,
    set: WriteSet,
    entries: Vec<LedgerEntry>,
    events: Vec<EventRecord>,
    reply: Reply,
    idempotency: Option<IdempotencyKey>,
    held: Held,
    /// Scheme codes this change uses: claimed until its write is acknowledged.
    claims: Vec<crate::claims::Claimed>,
    give_back: Vec<(Arc<crate::budgets::OfferRuntime>, Money)>,
    event_type: &'static str,
}

impl Change {
    fn new(contact: ContactState, wallet: Wallet, event_type: &'static str) -> Change {
        Change {
            contact,
            wallet,
            set: WriteSet::new(),
            entries: Vec::new(),
            events: Vec::new(),
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

impl WalletActor {
    fn maybe_passivate(&mut self, ctx: &mut Context<Self>, idle: Duration) {
        if self.passivating
            || u64::from(uptime_seconds().saturating_sub(self.last_used)) < idle.as_secs()
            || self.gauges.in_flight.load(Ordering::Acquire) != 0
        {
            return;
        }
        // Out of the directory first, so new commands start a fresh actor from the (complete)
        // store; commands already on their way here are answered `Retry` during the grace.
        if self
            .app
            .wallets
            .remove_if_same(self.contact.id, &ctx.address())
        {
            self.passivating = true;
            ctx.run_later(PASSIVATION_GRACE, |_, ctx| ctx.stop());
        }
    }

    fn commit(&mut self, mut change: Change, reply: oneshot::Sender<Outcome>) {
        check_balanced(&change.entries);
        let closed = change.wallet.take_closed_lots();
        crate::ledger::put_closed_lots(
            &mut change.set,
            change.wallet.id,
            change.wallet.next_seq,
            &closed,
        );
        crate::ledger::put_entries(&mut change.set, change.wallet.id, &change.entries);
        if let Some(key) = &change.idempotency {
            change.set.put(
                Space::Idempotency,
                key.key.clone(),
                &StoredResponse {
                    body_hash: key.body_hash,
                    status: change.reply.status.as_u16(),
                    body: change.reply.body.clone(),
                },
            );
        }
        change.set.put(
            Space::Wallets,
            change.wallet.id.as_bytes().to_vec(),
            &change.wallet,
        );
        // The contact's state changes only when its rewards, schemes or spend block do.
        if change.contact != self.contact {
            change.set.put(
                Space::ContactStates,
                change.contact.id.as_bytes().to_vec(),
                &change.contact,
            );
        }
        let gauges = self.gauges.clone();
        gauges.in_flight.fetch_add(1, Ordering::AcqRel);
        let answer = change.reply;
        let held = change.held;
        let claims = change.claims;
        let give_back = change.give_back;
        let event_type = change.event_type;
        let started = Instant::now();
        let ack = Box::new(move |result: Result<(), StoreError>| {
            // The store answers for the codes now (used, or free if the write failed).
            drop(claims);
            gauges.in_flight.fetch_sub(1, Ordering::AcqRel);
            match result {
                Ok(()) => {
                    held.commit();
                    for (runtime, amount) in give_back {
                        runtime.budget.give_back(amount);
                    }
                    metrics::counter!("rewards_events_total", "type" => event_type, "outcome" => "ok")
                        .increment(1);
                    metrics::histogram!("rewards_event_durable_seconds", "type" => event_type)
                        .record(started.elapsed().as_secs_f64());
                    let _ = reply.send(Outcome::Done(Ok(answer)));
                }
                Err(error) => {
                    held.release();
                    metrics::counter!("rewards_events_total", "type" => event_type, "outcome" => "failed")
                        .increment(1);
                    let _ = reply.send(Outcome::Done(Err(error.into())));
                }
            }
        });
        if self.app.store.submit(change.set, ack).is_ok() {
            self.contact = change.contact;
            self.wallet = change.wallet;
            let recent = self.recent.get_or_insert_with(Box::default);
            for event in change.events {
                recent.events.insert(event.id, event);
            }
            for lot in closed {
                let lots = recent.lots.entry(lot.event_id).or_default();
                lots.retain(|l| l.id != lot.id);
                lots.push(lot);
            }
        }
    }

    /// Puts an event's closed lots back into the change's wallet, so its awards can be reversed.
    fn restore_lots(&self, change: &mut Change, event: &EventRecord) -> Result<(), Failure> {
        let event_id = event.id;
        let mut lots = crate::ledger::closed_lots(&self.app.store, self.wallet.id, event_id)?;
        let recent = self.recent.as_ref().and_then(|r| r.lots.get(&event_id));
        for lot in recent.into_iter().flatten() {
            lots.insert(lot.id, lot.clone());
        }
        // Lots neither stored nor in the wallet were redeemed in full: their awards say the rest.
        for award in &event.awards {
            let open = change.wallet.lots.iter().any(|l| l.id == award.lot_id);
            if !open && !lots.contains_key(&award.lot_id) {
                lots.insert(award.lot_id, crate::ledger::plain_lot(event_id, award));
            }
        }
        let mut lots: Vec<Lot> = lots.into_values().collect();
        lots.sort_by_key(|l| l.id);
        change.wallet.restore_lots(lots);
        Ok(())
    }

    /// The contact's profile from the store (the actor keeps only its state).
    fn profile(&self) -> Result<Contact, Failure> {
        Ok(self
            .app
            .store
            .get(Space::Contacts, self.contact.id.as_bytes())?
            .ok_or(DomainError::ContactNotFound)?)
    }

    /// The whole contact with `state`, as the API shows it.
    fn whole_contact(&self, state: &ContactState) -> Result<Contact, Failure> {
        Ok(state.apply_to(self.profile()?))
    }

    fn load_event(&self, event_id: EventId) -> Result<EventRecord, Failure> {
        if let Some(event) = self.recent.as_ref().and_then(|r| r.events.get(&event_id)) {
            return Ok(event.clone());
        }
        let event: EventRecord = self
            .app
            .store
            .get(Space::Events, &event_key(event_id))?
            .ok_or(DomainError::NotFound("event"))?;
        if event.contact_id != self.contact.id {
            return Err(DomainError::NotFound("event").into());
        }
        Ok(event)
    }

    /// Writes an event (with its index entries when it is new) into the change.
    fn put_event(change: &mut Change, mut event: EventRecord, is_new: bool, now: Timestamp) {
        event.wallet_after = change.wallet.balances();
        event.spendable_after = change.wallet.spendable(now).non_negative();
        if is_new {
            let id_bytes = event.id.as_bytes().to_vec();
            change.set.put_raw(
                Space::EventIndex,
                business_index_key(event.business_id, event.created_at, event.id),
                id_bytes.clone(),
            );
            change.set.put_raw(
                Space::EventIndex,
                contact_index_key(event.contact_id, event.created_at, event.id),
                id_bytes,
            );
        }
        change.set.put(Space::Events, event_key(event.id), &event);
        change.events.push(event);
    }

    /// Evaluates an event that only earns (no spend) and credits its awards to the change.
    fn reward(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        facts: &EventFacts<'_>,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<Vec<AwardRecord>, Failure> {
        let proposed = Self::evaluate(change, snapshot, facts, now);
        let mut awards = Vec::new();
        for (index, award) in proposed.iter().enumerate() {
            Self::credit(change, event_id, index, award, now, &mut awards)?;
        }
        Ok(awards)
    }

    fn evaluate(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        facts: &EventFacts<'_>,
        now: Timestamp,
    ) -> Vec<ProposedAward> {
        let business = &snapshot.business;
        let mut gate = Reservations::new(&snapshot.offers.by_id);
        let evaluation = evaluate(
            &EngineContext {
                currency: business.currency,
                resolution: business.settings.reward_resolution,
                schemes: &snapshot.schemes,
                now,
            },
            facts,
            &ContactFacts {
                tier: change.contact.rewards.tier.as_deref(),
                scheme_ids: &change.contact.scheme_ids,
                counters: &change.contact.rewards.counters,
            },
            &snapshot.offers.active,
            &mut gate,
        );
        change.held.absorb(&mut gate);
        change.contact.rewards.counters.apply(&evaluation.counters);
        evaluation.awards
    }

    /// What a claw-back took goes back to its offers: their totals now, their budgets once the
    /// change is durable.
    fn return_to_offers(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        by_offer: &[(Option<rewards_core::OfferId>, Money)],
    ) {
        for (offer, amount) in by_offer {
            let Some(offer) = offer else { continue };
            change
                .set
                .add_counter(offer_totals_key(*offer), [-amount.minor(), 0]);
            if let Some(runtime) = snapshot.offers.by_id.get(offer) {
                change.give_back.push((runtime.clone(), *amount));
            }
        }
    }

    fn credit(
        change: &mut Change,
        event_id: EventId,
        index: usize,
        award: &ProposedAward,
        now: Timestamp,
        awards: &mut Vec<AwardRecord>,
    ) -> Result<(), Failure> {
        let lot_id = LotId::for_event(event_id, index as u32);
        let entries = change
            .wallet
            .award(
                &AwardInput {
                    event_id,
                    lot_id,
                    offer_id: Some(award.offer_id),
                    amount: award.amount,
                    expires_at: award.expires_at,
                    redeem: award.redeem,
                    funding: award.funding,
                },
                now,
            )
            // The engine proposes positive awards with new lot ids; a refusal here is a bug,
            // answered as one (nothing of the change is written).
            .map_err(|e| Failure::Internal(format!("an award the engine proposed: {e}")))?;
        change.entries.extend(entries);
        change
            .set
            .add_counter(offer_totals_key(award.offer_id), [award.amount.minor(), 1]);
        awards.push(AwardRecord {
            offer_id: award.offer_id,
            amount: award.amount,
            redeem: award.redeem,
            expires_at: award.expires_at,
            lot_id,
            merchant_id: match award.funding {
                Funding::Merchant(m) => Some(m),
                Funding::Business => None,
            },
        });
        Ok(())
    }

    /// Adds (or removes, with a negative total) a purchase's tier value units; a tier reached on
    /// the way up is its own event, which membership offers may reward.
    fn update_tier(
        &self,
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        total: Money,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<(), Failure> {
        let Some(tiers) = &snapshot.tiers else {
            return Ok(());
        };
        let currency = snapshot.business.currency;
        let units = value_units(tiers, currency.to_decimal(total));
        change
            .contact
            .rewards
            .tier_progress
            .add(tiers, units, at, now);
        let tier_change = recompute(
            tiers,
            &change.contact.rewards.tier_progress,
            change.contact.rewards.tier.as_deref(),
            now,
        );
        change.contact.rewards.tier = tier_change.tier;
        if let Some(level) = tier_change.reached {
            let event_id = clock::event_id();
            let awards = Self::reward(
                change,
                snapshot,
                &EventFacts::TierReached { level: &level },
                event_id,
                now,
            );
            let mut event = new_event(change, event_id, EventType::TierReached, snapshot, now);
            event.classification = Some(level);
            event.awards = awards?;
            Self::put_event(change, event, true, now);
        }
        Ok(())
    }

    fn purchase(&mut self, job: PurchaseJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let business = &snapshot.business;
        let currency = business.currency;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "purchase");
        change.entries = change.wallet.expire_due(now);
        let total = job.purchase.amounts.total;
        let facts = EventFacts::Purchase(PurchaseFacts {
            performed_on: job.performed_on,
            classification: job.classification.as_deref(),
            merchant_id: job.merchant_id,
            tap_code: job.tap_code.as_deref(),
            payment_brand: job.payment_medium.as_ref().and_then(|p| p.brand.as_deref()),
            lines: &job.purchase.lines,
            total,
        });
        let proposed = Self::evaluate(&mut change, snapshot, &facts, now);
        let mut awards = Vec::with_capacity(proposed.len());
        // Instant and auto awards land in open first, so they can be spent on this purchase.
        for (index, award) in proposed.iter().enumerate() {
            if award.redeem != Redemption::Deferred {
                Self::credit(&mut change, job.event_id, index, award, now, &mut awards)?;
            }
        }
        let spend = match job.spend {
            None => None,
            Some((amount, require_full)) => {
                let merchant = job.merchant_id.and_then(|m| snapshot.merchants.get(&m));
                let request = SpendRequest {
                    event_id: job.event_id,
                    amount,
                    require_full,
                    limit: total,
                    min_spend: business.settings.min_spend,
                    max_spend: business.settings.max_spend,
                    blocked: change.contact.spend_blocked,
                    hold: None,
                };
                match change.wallet.spend(&request, now) {
                    Ok(outcome) => {
                        change.entries.extend(outcome.entries);
                        Some(SpendRecord {
                            requested: match amount {
                                SpendAmount::Exact(m) => Some(m),
                                SpendAmount::All => None,
                            },
                            spent: outcome.spent,
                            front_end: business.settings.reduction_method(merchant)
                                == ReductionMethod::FrontEnd,
                        })
                    }
                    Err(error) => {
                        // Nothing is recorded: the copies are dropped, the budget released.
                        std::mem::take(&mut change.held).release();
                        return Err(error.into());
                    }
                }
            }
        };
        for (index, award) in proposed.iter().enumerate() {
            if award.redeem == Redemption::Deferred {
                Self::credit(&mut change, job.event_id, index, award, now, &mut awards)?;
            }
        }
        self.update_tier(&mut change, snapshot, total, job.performed_on, now)?;
        let mut event = new_event(&change, job.event_id, EventType::Purchase, snapshot, now);
        event.origin = job.origin;
        event.performed_on = job.performed_on;
        event.classification = job.classification;
        event.reference_number = job.reference_number;
        event.tap_code = job.tap_code;
        event.merchant_id = job.merchant_id;
        event.external_system = job.external_system;
        event.external_reference = job.external_reference;
        event.identity = Some(job.purchase.identity.clone());
        event.purchase = Some(job.purchase);
        event.payment_medium = job.payment_medium;
        event.awards = awards;
        event.spend = spend;
        let mut answer = Answer::Purchase;
        if let Some(route) = job.route {
            event.created_at = route.created_at;
            event.route = Some(route.facts);
            answer = route.answer;
            change.set.append(route.records);
        }
        Self::put_event(&mut change, event, true, now);
        // The view is of the event as stored (put_event fills in the wallet after it).
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the purchase was not put".into()))?;
        let body = match answer {
            Answer::Purchase => crate::json_bytes(&render_event(event, currency)),
            Answer::StatusOnly => Vec::new(),
        };
        change.reply = Reply {
            status: StatusCode::CREATED,
            body,
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }

    fn void(
        &mut self,
        snapshot: &BusinessSnapshot,
        event_id: EventId,
        reason: Option<String>,
    ) -> Result<Change, Failure> {
        let now = clock::now();
        let mut event = self.load_event(event_id)?;
        if event.state == EventState::Cancelled {
            return Err(DomainError::AlreadyCancelled.into());
        }
        let currency = snapshot.business.currency;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "void");
        change.entries = change.wallet.expire_due(now);
        self.restore_lots(&mut change, &event)?;
        let clawback = change.wallet.clawback_event(event_id, now);
        change.entries.extend(clawback.entries);
        Self::return_to_offers(&mut change, snapshot, &clawback.by_offer);
        for award in &event.awards {
            change
                .contact
                .rewards
                .counters
                .remove_award(award.offer_id, event.created_at);
            change
                .set
                .add_counter(offer_totals_key(award.offer_id), [0, -1]);
        }
        if let Some(spend) = &event.spend {
            let refund = (spend.spent - event.returns.refunded).non_negative();
            change
                .entries
                .extend(change.wallet.refund(refund, event_id, now)?);
        }
        if let Some(purchase) = &event.purchase {
            let remaining = purchase.amounts.total - event.returns.returned_amount;
            self.update_tier(&mut change, snapshot, -remaining, event.performed_on, now)?;
        }
        event.state = EventState::Cancelled;
        event.cancelled_at = Some(now);
        event.cancel_reason = reason;
        Self::put_event(&mut change, event, false, now);
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the void was not put".into()))?;
        let body = crate::json_bytes(&render_event(event, currency));
        change.reply = Reply {
            status: StatusCode::OK,
            body,
        };
        Ok(change)
    }

    fn return_lines(&mut self, job: ReturnJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let currency = snapshot.business.currency;
        let mut event = self.load_event(job.purchase_id)?;
        let Some(purchase) = event.purchase.clone() else {
            return Err(DomainError::NotFound("purchase").into());
        };
        if event.state == EventState::Cancelled {
            return Err(DomainError::AlreadyCancelled.into());
        }
        let spent = event.spend.as_ref().map_or(Money::ZERO, |s| s.spent);
        let plan = plan_return(
            &purchase.lines,
            &event.returns.returned_lines,
            &job.lines,
            purchase.amounts.total,
            spent,
            event.returns.refunded,
            currency,
        )?;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "return");
        change.entries = change.wallet.expire_due(now);
        self.restore_lots(&mut change, &event)?;
        let clawback = if purchase.amounts.total.is_positive() {
            change.wallet.clawback_share(
                job.purchase_id,
                Some((plan.returned_amount, purchase.amounts.total)),
                now,
            )
        } else {
            Default::default()
        };
        change.entries.extend(clawback.entries);
        Self::return_to_offers(&mut change, snapshot, &clawback.by_offer);
        change
            .entries
            .extend(change.wallet.refund(plan.refund, job.purchase_id, now)?);
        self.update_tier(
            &mut change,
            snapshot,
            -plan.returned_amount,
            event.performed_on,
            now,
        )?;
        event
            .returns
            .returned_lines
            .extend(plan.lines.iter().cloned());
        event.returns.returned_amount += plan.returned_amount;
        event.returns.clawed_back += clawback.total;
        event.returns.refunded += plan.refund;
        Self::put_event(&mut change, event, false, now);
        let body = json!({
            "id": job.return_id.to_string(),
            "purchase_id": job.purchase_id.to_string(),
            "returned_amount": currency.format(plan.returned_amount),
            "clawed_back": currency.format(clawback.total),
            "refunded": currency.format(plan.refund),
            "lines": plan.lines.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q.normalize().to_string()})).collect::<Vec<_>>(),
            "wallet": render_wallet(&change.wallet, &change.contact.wallet_code, now),
        });
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: crate::json_bytes(&body),
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }

    fn topup(
        &mut self,
        snapshot: &BusinessSnapshot,
        amount: Money,
        event_id: EventId,
        external_system: String,
        external_reference: Option<String>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Change, Failure> {
        let now = clock::now();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "top_up");
        change.entries = change.wallet.expire_due(now);
        let topup_entries = change.wallet.top_up(amount, event_id, now)?;
        let entry = topup_entries
            .first()
            .cloned()
            .ok_or_else(|| Failure::Internal("a top-up posted no entry".into()))?;
        change.entries.extend(topup_entries);
        // The top-up is also an achievement of classification `top_up`, so offers such as "top
        // up 100 within a month, get 5" see it.
        let awards = Self::reward(
            &mut change,
            snapshot,
            &EventFacts::Achievement(AchievementFacts {
                kind: AchievementKind::Achievement,
                classification: Some("top_up"),
                amount: Some(amount),
                performed_on: now,
            }),
            event_id,
            now,
        );
        let mut event = new_event(&change, event_id, EventType::Achievement, snapshot, now);
        event.classification = Some("top_up".into());
        event.amount = Some(amount);
        event.external_system = external_system;
        event.external_reference = external_reference;
        event.awards = awards?;
        Self::put_event(&mut change, event, true, now);
        let body = json!({
            "entry": render_entry(&change.wallet, &entry),
            "wallet": render_wallet(&change.wallet, &change.contact.wallet_code, now),
            "achievement_event_id": event_id.to_string(),
        });
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: crate::json_bytes(&body),
        };
        change.idempotency = idempotency;
        Ok(change)
    }

    fn payout(&mut self, amount: Option<Money>, payout_id: EventId) -> Result<Change, Failure> {
        let now = clock::now();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "payout");
        change.entries = change.wallet.expire_due(now);
        let (paid, entries) = change.wallet.payout(amount, payout_id, now)?;
        change.entries.extend(entries);
        let currency = change.wallet.currency;
        let body = json!({
            "id": payout_id.to_string(),
            "amount": currency.format(paid),
            "wallet": render_wallet(&change.wallet, &change.contact.wallet_code, now),
        });
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: crate::json_bytes(&body),
        };
        Ok(change)
    }

    fn spend_block(&mut self, blocked: bool, reason: Option<String>) -> Result<Change, Failure> {
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "spend_block");
        change.contact.spend_blocked = blocked;
        change.contact.spend_block_reason = if blocked { reason } else { None };
        change.reply = Reply {
            status: StatusCode::OK,
            body: crate::json_bytes(&render_contact(&self.whole_contact(&change.contact)?)),
        };
        Ok(change)
    }

    fn scheme(
        &mut self,
        snapshot: &BusinessSnapshot,
        sign_up: bool,
        scheme_id: SchemeId,
        email: Option<String>,
        code: Option<String>,
    ) -> Result<Change, Failure> {
        let now = clock::now();
        let scheme = snapshot
            .schemes
            .iter()
            .find(|s| s.id == scheme_id)
            .ok_or(DomainError::NotFound("scheme"))?;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "scheme");
        let member = change.contact.scheme_ids.contains(&scheme_id);
        if sign_up && !member {
            let profile = self.profile()?;
            let business_id = snapshot.business.id;
            let (claimed, claim) = match (&code, &scheme.sign_up) {
                (Some(code), rewards_core::scheme::SignUp::Code) => {
                    let claim = self.app.scheme_codes.try_claim(
                        &self.app.store,
                        business_id,
                        scheme_id,
                        code,
                    )?;
                    (Some(claim.is_some()), claim)
                }
                _ => (None, None),
            };
            // A refusal drops the claim, which frees the code.
            check_sign_up(
                scheme,
                email.as_deref().or(profile.email.as_deref()),
                claimed,
            )?;
            if let (Some(claim), Some(code)) = (claim, &code) {
                crate::scheme_codes::record_use(
                    &mut change.set,
                    business_id,
                    scheme_id,
                    code,
                    self.contact.id,
                );
                change.claims.push(claim);
            }
            change.contact.scheme_ids.push(scheme_id);
            let event_id = clock::event_id();
            let awards = Self::reward(
                &mut change,
                snapshot,
                &EventFacts::SignUp {
                    scheme_id: Some(scheme_id),
                },
                event_id,
                now,
            );
            let mut event = new_event(&change, event_id, EventType::SignUp, snapshot, now);
            event.classification = Some(scheme.name.clone());
            event.awards = awards?;
            Self::put_event(&mut change, event, true, now);
        } else if !sign_up && member {
            check_sign_out(scheme)?;
            change.contact.scheme_ids.retain(|s| *s != scheme_id);
        }
        change.reply = Reply {
            status: StatusCode::OK,
            body: crate::json_bytes(&render_contact(&self.whole_contact(&change.contact)?)),
        };
        Ok(change)
    }
}

fn new_event(
    change: &Change,
    id: EventId,
    event_type: EventType,
    snapshot: &BusinessSnapshot,
    now: Timestamp,
) -> EventRecord {
    EventRecord {
        id,
        event_type,
        business_id: snapshot.business.id,
        contact_id: change.contact.id,
        wallet_id: change.wallet.id,
        state: EventState::Posted,
        origin: "backend".into(),
        performed_on: now,
        created_at: now,
        classification: None,
        reference_number: None,
        tap_code: None,
        merchant_id: None,
        external_system: String::new(),
        external_reference: None,
        identity: None,
        purchase: None,
        payment_medium: None,
        amount: None,
        awards: Vec::new(),
        spend: None,
        wallet_after: Default::default(),
        spendable_after: Money::ZERO,
        returns: ReturnsRecord::default(),
        cancelled_at: None,
        cancel_reason: None,
        route: None,
    }
}

/// Writes a new contact with its wallet and identity index entries, joined to the business's
/// active auto schemes and rewarded by its sign-up offers, and waits until it is durable.
pub async fn create_contact(
    app: &App,
    snapshot: &BusinessSnapshot,
    contact: Contact,
    identity_keys: Vec<Vec<u8>>,
) -> Result<(Contact, Wallet), Failure> {
    let now = clock::now();
    let business = &snapshot.business;
    let wallet = Wallet::new(
        contact.wallet_id,
        contact.id,
        business.id,
        business.currency,
    );
    let mut change = Change::new(ContactState::of(&contact), wallet, "sign_up");
    let event_id = clock::event_id();
    let mut awards = Vec::new();
    let auto_schemes: Vec<SchemeId> = change.contact.scheme_ids.clone();
    for scheme_id in std::iter::once(None).chain(auto_schemes.into_iter().map(Some)) {
        let proposed = WalletActor::evaluate(
            &mut change,
            snapshot,
            &EventFacts::SignUp { scheme_id },
            now,
        );
        for award in &proposed {
            let index = awards.len();
            WalletActor::credit(&mut change, event_id, index, award, now, &mut awards)?;
        }
    }
    if !awards.is_empty() {
        let mut event = new_event(&change, event_id, EventType::SignUp, snapshot, now);
        event.awards = awards;
        WalletActor::put_event(&mut change, event, true, now);
    }
    check_balanced(&change.entries);
    crate::ledger::put_entries(&mut change.set, change.wallet.id, &change.entries);
    let contact_bytes = change.contact.id.as_bytes().to_vec();
    for key in identity_keys {
        change
            .set
            .put_raw(Space::Identities, key, contact_bytes.clone());
    }
    change.set.put(
        Space::Wallets,
        change.wallet.id.as_bytes().to_vec(),
        &change.wallet,
    );
    change
        .set
        .put(Space::ContactStates, contact_bytes.clone(), &change.contact);
    change.set.put(Space::Contacts, contact_bytes, &contact);
    let held = std::mem::take(&mut change.held);
    match app.write(change.set).await {
        Ok(()) => {
            held.commit();
            metrics::counter!("rewards_events_total", "type" => "sign_up", "outcome" => "ok")
                .increment(1);
            Ok((change.contact.apply_to(contact), change.wallet))
        }
        Err(error) => {
            held.release();
            Err(error)
        }
    }
}

/// A ledger entry as API.md shows it.
pub fn render_entry(wallet: &Wallet, entry: &LedgerEntry) -> serde_json::Value {
    let c = wallet.currency;
    json!({
        "id": entry.id(wallet.id).to_string(),
        "wallet_id": wallet.id.to_string(),
        "kind": entry.kind.as_str(),
        "amount": c.format(entry.amount),
        "event_id": entry.event_id.map(|e| e.to_string()),
        "lot_id": entry.lot_id.map(|l| l.to_string()),
        "at": entry.at.to_rfc3339(),
        "balances_after": {
            "commerce": c.format(entry.balances_after.commerce),
            "open": c.format(entry.balances_after.open),
            "reserved": c.format(entry.balances_after.reserved),
        },
    })
}
