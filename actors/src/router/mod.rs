//! Router actors: one per TAP code, owning the match books of every business registered on that
//! code, so everything that must be serial for one terminal (a match, a claim, the end of a
//! window) is decided once, in order.
//!
//! A router decides in memory and at once: a new entry rests in its book before its record is
//! durable (the writer commits in order, so nothing that depends on it can be durable first),
//! and an entry it hands out (matched or claimed) is in flight until the caller, which runs the
//! wallet command that completes it, settles it. Routers start on first use from the store's
//! live records, expire windows on timers, and are passivated when idle and empty.

pub mod flows;
pub mod records;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use rewards_core::claim::ClaimCode;
use rewards_core::matching::{ClaimBy, ClaimRefusal, Counts, Expiry, MatchBook, Placement};
use rewards_core::{BusinessId, DomainError, EventId, Money, Timestamp};
use rewards_storage::{Space, StoreError, WriteSet};
use tokio::sync::oneshot;

use crate::app::App;
use crate::clock;
use crate::error::Failure;
use crate::schema::keys;
use records::{RouteRecord, RouteState};

/// What a claim names, owned so it can travel to the router.
#[derive(Clone, Debug)]
pub enum ClaimQuery {
    Code(ClaimCode),
    Receipt {
        total: Money,
        at: Timestamp,
        reference_number: Option<String>,
    },
}

pub enum RouterCommand {
    /// A new POS purchase or processor transaction in `match` mode: it completes a match or
    /// waits (its record and `attached` are written before the answer).
    Place {
        window_seconds: u32,
        record: Box<RouteRecord>,
        attached: WriteSet,
    },
    /// A processor purchase kept for its contact from the start; gets a claim code.
    AddUnclaimed {
        record: Box<RouteRecord>,
        attached: WriteSet,
    },
    Claim {
        business: BusinessId,
        window_seconds: u32,
        query: ClaimQuery,
    },
    /// The change that completes an in-flight entry is durable (`true`) or failed.
    Settle {
        business: BusinessId,
        id: EventId,
        durable: bool,
    },
}

pub enum RouterAnswer {
    /// The new entry completes a match with this waiting record, now in flight: settle it.
    Matched(Box<RouteRecord>),
    /// The new entry waits, as this durable record (pending, or unclaimed with its code).
    Waiting(Box<RouteRecord>),
    /// The claim took this record, now in flight: settle it.
    Claimed(Box<RouteRecord>),
    Settled,
}

enum Outcome {
    Done(Result<RouterAnswer, Failure>),
    /// The router was passivating: send the command again to a fresh one.
    Retry(RouterCommand),
}

struct Envelope {
    command: RouterCommand,
    reply: oneshot::Sender<Outcome>,
}

impl Message for Envelope {
    type Result = ();
}

/// Counters a router shares with its callers.
#[derive(Default)]
struct Gauges {
    /// Commands sent and not yet taken: the mailbox's length.
    queued: AtomicUsize,
    /// Write sets handed to the writer and not yet acknowledged.
    writes_in_flight: AtomicUsize,
}

/// The resident routers, by TAP code, over the same arbiters as the wallet actors.
pub struct RouterDirectory {
    actors: DashMap<String, (Addr<RouterActor>, Arc<Gauges>)>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    mailbox_capacity: usize,
    idle: Duration,
    /// Claim codes being issued and not yet durable, so no two routers hand out one code of a
    /// business (the store answers for durable ones).
    issuing: DashMap<(BusinessId, ClaimCode), ()>,
    pending_pos: AtomicI64,
    pending_transactions: AtomicI64,
    unclaimed: AtomicI64,
}

/// How long a passivating router still answers `Retry` before it stops.
const PASSIVATION_GRACE: Duration = Duration::from_secs(5);

impl RouterDirectory {
    pub fn new(arbiters: Vec<ArbiterHandle>, mailbox_capacity: usize, idle: Duration) -> Self {
        assert!(!arbiters.is_empty(), "routers need at least one arbiter");
        RouterDirectory {
            actors: DashMap::new(),
            arbiters,
            next_arbiter: AtomicUsize::new(0),
            mailbox_capacity,
            idle,
            issuing: DashMap::new(),
            pending_pos: AtomicI64::new(0),
            pending_transactions: AtomicI64::new(0),
            unclaimed: AtomicI64::new(0),
        }
    }

    pub fn resident(&self) -> usize {
        self.actors.len()
    }

    /// Entries resting in every resident router.
    pub fn counts(&self) -> Counts {
        let get = |a: &AtomicI64| a.load(Ordering::Acquire).max(0) as usize;
        Counts {
            pending_pos: get(&self.pending_pos),
            pending_transactions: get(&self.pending_transactions),
            unclaimed: get(&self.unclaimed),
        }
    }

    fn add_counts(&self, before: Counts, after: Counts) {
        let delta = |a: usize, b: usize| b as i64 - a as i64;
        self.pending_pos.fetch_add(
            delta(before.pending_pos, after.pending_pos),
            Ordering::AcqRel,
        );
        self.pending_transactions.fetch_add(
            delta(before.pending_transactions, after.pending_transactions),
            Ordering::AcqRel,
        );
        self.unclaimed
            .fetch_add(delta(before.unclaimed, after.unclaimed), Ordering::AcqRel);
        let now = self.counts();
        metrics::gauge!("rewards_route_entries", "state" => "pending_pos")
            .set(now.pending_pos as f64);
        metrics::gauge!("rewards_route_entries", "state" => "pending_transaction")
            .set(now.pending_transactions as f64);
        metrics::gauge!("rewards_route_entries", "state" => "unclaimed").set(now.unclaimed as f64);
    }

    /// A claim code of `business` that no live or past purchase of it has, reserved until
    /// [`RouterDirectory::issued`] (40 random bits: a second draw is already very rare).
    fn new_code(&self, app: &App, business: BusinessId) -> ClaimCode {
        let mut code = ClaimCode::from_random(clock::csprng_bytes::<5>());
        for _ in 0..64 {
            let stored = app
                .store
                .contains(Space::Routes, &keys::claim_code_key(business, code))
                .unwrap_or(false);
            if !stored && self.issuing.insert((business, code), ()).is_none() {
                break;
            }
            code = ClaimCode::from_random(clock::csprng_bytes::<5>());
        }
        code
    }

    /// The codes' records are durable (or failed): the store answers for them now.
    pub(crate) fn issued(&self, codes: &[(BusinessId, ClaimCode)]) {
        for code in codes {
            self.issuing.remove(code);
        }
    }

    /// The router of `tap_code`, started from the store's live records when not resident.
    fn get(
        &self,
        app: &Arc<App>,
        tap_code: &str,
    ) -> Result<(Addr<RouterActor>, Arc<Gauges>), Failure> {
        if let Some(resident) = self.actors.get(tap_code) {
            if resident.0.connected() {
                return Ok(resident.clone());
            }
        }
        match self.actors.entry(tap_code.to_string()) {
            MapEntry::Occupied(e) if e.get().0.connected() => Ok(e.get().clone()),
            entry => {
                let mut books: HashMap<BusinessId, MatchBook> = HashMap::new();
                let mut records: HashMap<EventId, RouteRecord> = HashMap::new();
                let mut ids = Vec::new();
                app.store.for_each_raw(
                    Space::Routes,
                    &keys::live_route_prefix(Some(tap_code)),
                    |key, _| {
                        ids.extend(keys::id_of_live_route_key(key));
                        Ok(())
                    },
                )?;
                for id in ids {
                    let Some(record) = app
                        .store
                        .get::<RouteRecord>(Space::Routes, &keys::route_key(id))?
                    else {
                        continue;
                    };
                    books
                        .entry(record.business_id)
                        .or_default()
                        .restore(record.entry());
                    records.insert(id, record);
                }
                let gauges = Arc::new(Gauges::default());
                let after = sum_counts(&books);
                let actor = RouterActor {
                    app: app.clone(),
                    tap_code: tap_code.to_string(),
                    books,
                    records,
                    gauges: gauges.clone(),
                    last_used: Instant::now(),
                    passivating: false,
                    timer: None,
                };
                let index = self.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
                let capacity = self.mailbox_capacity;
                let arbiter = self
                    .arbiters
                    .get(index)
                    .ok_or_else(|| Failure::Internal("no router arbiters".into()))?;
                let addr = RouterActor::start_in_arbiter(arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(capacity);
                    actor
                });
                self.add_counts(Counts::default(), after);
                match entry {
                    MapEntry::Occupied(mut e) => {
                        e.insert((addr.clone(), gauges.clone()));
                    }
                    MapEntry::Vacant(v) => {
                        v.insert((addr.clone(), gauges.clone()));
                    }
                }
                metrics::gauge!("rewards_router_actors_resident").set(self.actors.len() as f64);
                Ok((addr, gauges))
            }
        }
    }

    fn remove_if_same(&self, tap_code: &str, addr: &Addr<RouterActor>) -> bool {
        let removed = self
            .actors
            .remove_if(tap_code, |_, resident| &resident.0 == addr)
            .is_some();
        metrics::gauge!("rewards_router_actors_resident").set(self.actors.len() as f64);
        removed
    }

    /// Starts the router of every TAP code with live records, so their windows end on time
    /// (those that ended while the server was down end at once).
    pub fn recover(app: &Arc<App>) -> Result<usize, Failure> {
        let mut taps: Vec<String> = Vec::new();
        let mut ids = Vec::new();
        app.store
            .for_each_raw(Space::Routes, &keys::live_route_prefix(None), |key, _| {
                ids.extend(keys::id_of_live_route_key(key));
                Ok(())
            })?;
        for id in ids {
            if let Some(record) = app
                .store
                .get::<RouteRecord>(Space::Routes, &keys::route_key(id))?
            {
                if !taps.contains(&record.tap_code) {
                    taps.push(record.tap_code);
                }
            }
        }
        for tap in &taps {
            app.routers.get(app, tap)?;
        }
        Ok(taps.len())
    }

    /// Asks every resident router to passivate if it is idle and empty.
    pub fn sweep(&self) {
        let residents: Vec<Addr<RouterActor>> =
            self.actors.iter().map(|e| e.value().0.clone()).collect();
        for addr in residents {
            let _ = addr.try_send(Passivate { idle: self.idle });
        }
    }

    /// Runs [`RouterDirectory::sweep`] every half idle time, on the current arbiter.
    pub fn start_sweeper(app: Arc<App>) {
        let every = (app.routers.idle / 2).max(Duration::from_millis(500));
        actix::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                app.routers.sweep();
            }
        });
    }
}

fn sum_counts(books: &HashMap<BusinessId, MatchBook>) -> Counts {
    let mut total = Counts::default();
    for book in books.values() {
        let c = book.counts();
        total.pending_pos += c.pending_pos;
        total.pending_transactions += c.pending_transactions;
        total.unclaimed += c.unclaimed;
    }
    total
}

/// Sends a command to the router of `tap_code` and waits for its answer. A full mailbox is
/// `overloaded` at once; a settlement is never refused (it finishes what was admitted).
pub async fn call(
    app: &Arc<App>,
    tap_code: &str,
    command: RouterCommand,
) -> Result<RouterAnswer, Failure> {
    let mut command = command;
    for _ in 0..4 {
        let (addr, gauges) = app.routers.get(app, tap_code)?;
        let settle = matches!(command, RouterCommand::Settle { .. });
        if gauges.queued.fetch_add(1, Ordering::AcqRel) >= app.routers.mailbox_capacity && !settle {
            gauges.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(DomainError::Overloaded.into());
        }
        let (tx, rx) = oneshot::channel();
        let envelope = Envelope { command, reply: tx };
        let sent = if settle {
            // A settlement must reach the router whatever its mailbox holds.
            addr.do_send(envelope);
            Ok(())
        } else {
            addr.try_send(envelope)
        };
        match sent {
            Ok(()) => {}
            Err(SendError::Full(_)) => {
                gauges.queued.fetch_sub(1, Ordering::AcqRel);
                return Err(DomainError::Overloaded.into());
            }
            Err(SendError::Closed(envelope)) => {
                gauges.queued.fetch_sub(1, Ordering::AcqRel);
                app.routers.remove_if_same(tap_code, &addr);
                command = envelope.command;
                continue;
            }
        }
        match rx.await {
            Ok(Outcome::Done(result)) => return result,
            Ok(Outcome::Retry(back)) => command = back,
            Err(_) => return Err(Failure::Internal("the router stopped".into())),
        }
    }
    Err(DomainError::Overloaded.into())
}

pub struct RouterActor {
    app: Arc<App>,
    tap_code: String,
    books: HashMap<BusinessId, MatchBook>,
    /// The record of every entry in the books.
    records: HashMap<EventId, RouteRecord>,
    gauges: Arc<Gauges>,
    last_used: Instant,
    passivating: bool,
    /// The timer of the earliest deadline, and that deadline.
    timer: Option<(Timestamp, SpawnHandle)>,
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Windows that ended while the router was not running end now.
        self.expire_and_count();
        self.schedule(ctx);
    }
}

struct Passivate {
    idle: Duration,
}

impl Message for Passivate {
    type Result = ();
}

impl Handler<Passivate> for RouterActor {
    type Result = ();

    fn handle(&mut self, message: Passivate, ctx: &mut Self::Context) {
        let empty = self.books.values().all(MatchBook::is_empty);
        if self.passivating
            || !empty
            || self.last_used.elapsed() < message.idle
            || self.gauges.writes_in_flight.load(Ordering::Acquire) != 0
        {
            return;
        }
        if self
            .app
            .routers
            .remove_if_same(&self.tap_code, &ctx.address())
        {
            self.passivating = true;
            ctx.run_later(PASSIVATION_GRACE, |_, ctx| ctx.stop());
        }
    }
}

impl Handler<Envelope> for RouterActor {
    type Result = ();

    fn handle(&mut self, envelope: Envelope, ctx: &mut Self::Context) {
        self.gauges.queued.fetch_sub(1, Ordering::AcqRel);
        if self.passivating {
            let _ = envelope.reply.send(Outcome::Retry(envelope.command));
            return;
        }
        self.last_used = Instant::now();
        let before = sum_counts(&self.books);
        // Nothing whose window ended may match or be claimed: end those windows first.
        self.expire();
        let reply = envelope.reply;
        let me = ctx.address();
        match envelope.command {
            RouterCommand::Place {
                window_seconds,
                record,
                attached,
            } => self.place(*record, window_seconds, attached, (me, reply)),
            RouterCommand::AddUnclaimed { record, attached } => {
                self.add_unclaimed(*record, attached, (me, reply))
            }
            RouterCommand::Claim {
                business,
                window_seconds,
                query,
            } => {
                let answer = self.claim(business, window_seconds, &query);
                let _ = reply.send(Outcome::Done(answer));
            }
            RouterCommand::Settle {
                business,
                id,
                durable,
            } => {
                self.settle(business, id, durable);
                let _ = reply.send(Outcome::Done(Ok(RouterAnswer::Settled)));
            }
        }
        let after = sum_counts(&self.books);
        self.app.routers.add_counts(before, after);
        self.schedule(ctx);
    }
}

impl RouterActor {
    fn book(&mut self, business: BusinessId) -> &mut MatchBook {
        self.books.entry(business).or_default()
    }

    /// Hands a write set to the writer; `done` runs with the outcome once it is durable.
    fn write(&self, set: WriteSet, done: impl FnOnce(Result<(), StoreError>) + Send + 'static) {
        let gauges = self.gauges.clone();
        gauges.writes_in_flight.fetch_add(1, Ordering::AcqRel);
        let _ = self.app.store.submit(
            set,
            Box::new(move |result| {
                gauges.writes_in_flight.fetch_sub(1, Ordering::AcqRel);
                done(result);
            }),
        );
    }

    fn place(
        &mut self,
        record: RouteRecord,
        window_seconds: u32,
        attached: WriteSet,
        reply: (Addr<RouterActor>, oneshot::Sender<Outcome>),
    ) {
        let business = record.business_id;
        match self.book(business).place(record.entry(), window_seconds) {
            Placement::Matched(waiting) => {
                let answer = match self.records.get(&waiting) {
                    Some(found) => Ok(RouterAnswer::Matched(Box::new(found.clone()))),
                    None => {
                        self.book(business).abort(waiting);
                        Err(Failure::Internal(format!("route {waiting} has no record")))
                    }
                };
                let _ = reply.1.send(Outcome::Done(answer));
            }
            Placement::Pending => self.rest(record, attached, Vec::new(), reply),
        }
    }

    fn add_unclaimed(
        &mut self,
        mut record: RouteRecord,
        attached: WriteSet,
        reply: (Addr<RouterActor>, oneshot::Sender<Outcome>),
    ) {
        let business = record.business_id;
        // The caller reserved the code (its answer names it); else one is drawn here.
        let code = match record.claim_code {
            Some(code) => code,
            None => self.app.routers.new_code(&self.app, business),
        };
        record.state = RouteState::Unclaimed;
        record.claim_code = Some(code);
        self.book(business).add_unclaimed(record.entry(), code);
        self.rest(record, attached, vec![(business, code)], reply);
    }

    /// Writes a new resting record and answers once it is durable; a failed write takes the
    /// entry out of the book again.
    fn rest(
        &mut self,
        record: RouteRecord,
        attached: WriteSet,
        codes: Vec<(BusinessId, ClaimCode)>,
        (me, reply): (Addr<RouterActor>, oneshot::Sender<Outcome>),
    ) {
        let mut set = WriteSet::new();
        record.put(&mut set, true);
        set.append(attached);
        self.records.insert(record.id, record.clone());
        let app = self.app.clone();
        self.write(set, move |result| {
            app.routers.issued(&codes);
            let answer = match result {
                Ok(()) => Ok(RouterAnswer::Waiting(Box::new(record))),
                Err(error) => {
                    me.do_send(Forget {
                        business: record.business_id,
                        id: record.id,
                    });
                    Err(error.into())
                }
            };
            let _ = reply.send(Outcome::Done(answer));
        });
    }

    fn claim(
        &mut self,
        business: BusinessId,
        window_seconds: u32,
        query: &ClaimQuery,
    ) -> Result<RouterAnswer, Failure> {
        let by = match query {
            ClaimQuery::Code(code) => ClaimBy::Code(*code),
            ClaimQuery::Receipt {
                total,
                at,
                reference_number,
            } => ClaimBy::Receipt {
                total: *total,
                at: *at,
                reference_number: reference_number.as_deref(),
            },
        };
        match self.book(business).claim(&by, window_seconds) {
            Ok(id) => match self.records.get(&id) {
                Some(record) => Ok(RouterAnswer::Claimed(Box::new(record.clone()))),
                None => {
                    self.book(business).abort(id);
                    Err(Failure::Internal(format!("route {id} has no record")))
                }
            },
            Err(ClaimRefusal::AlreadyClaimed) => Err(DomainError::AlreadyClaimed.into()),
            Err(ClaimRefusal::NotFound) => Err(DomainError::NotFound("unclaimed purchase").into()),
        }
    }

    fn settle(&mut self, business: BusinessId, id: EventId, durable: bool) {
        if durable {
            if self.book(business).settle(id).is_some() {
                if let Some(record) = self.records.remove(&id) {
                    if record.state == RouteState::PendingMatch {
                        let waited = (clock::now().0 - record.created_at.0).max(0) as f64 / 1000.0;
                        metrics::histogram!("rewards_match_latency_seconds").record(waited);
                    }
                }
            }
        } else {
            self.book(business).abort(id);
        }
    }

    /// Ends every window whose deadline passed: POS purchases become unmatched, transactions
    /// unclaimed with a code; their records change in one write.
    fn expire_and_count(&mut self) {
        let before = sum_counts(&self.books);
        self.expire();
        let after = sum_counts(&self.books);
        self.app.routers.add_counts(before, after);
    }

    fn expire(&mut self) {
        let now = clock::now();
        let app = self.app.clone();
        let mut set = WriteSet::new();
        let mut codes = Vec::new();
        for (business, book) in self.books.iter_mut() {
            if book.next_deadline().is_none_or(|d| d > now) {
                continue;
            }
            let expired = book.expire(now, || {
                let code = app.routers.new_code(&app, *business);
                codes.push((*business, code));
                code
            });
            for expiry in expired {
                let (id, state, code) = match expiry {
                    Expiry::Unmatched(id) => (id, RouteState::Unmatched, None),
                    Expiry::Unclaimed(id, code) => (id, RouteState::Unclaimed, Some(code)),
                };
                let Some(record) = self.records.get_mut(&id) else {
                    continue;
                };
                record.state = state;
                record.claim_code = code;
                record.put(&mut set, false);
                if state == RouteState::Unmatched {
                    self.records.remove(&id);
                    metrics::counter!("rewards_routes_total", "outcome" => "unmatched")
                        .increment(1);
                } else {
                    metrics::counter!("rewards_routes_total", "outcome" => "expired_unclaimed")
                        .increment(1);
                }
            }
        }
        if !set.is_empty() {
            self.write(set, move |_| app.routers.issued(&codes));
        }
    }

    /// Keeps one timer, at the earliest deadline of any book.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let next = self
            .books
            .values()
            .filter_map(MatchBook::next_deadline)
            .min();
        match (next, &self.timer) {
            (Some(at), Some((set_for, _))) if *set_for <= at => return,
            (None, None) => return,
            _ => {}
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            let wait = Duration::from_millis((at.0 - clock::now().0).max(0) as u64);
            let handle = ctx.run_later(wait, |actor, ctx| {
                actor.timer = None;
                actor.expire_and_count();
                actor.schedule(ctx);
            });
            self.timer = Some((at, handle));
        }
    }
}

/// Takes out an entry whose record could not be written.
struct Forget {
    business: BusinessId,
    id: EventId,
}

impl Message for Forget {
    type Result = ();
}

impl Handler<Forget> for RouterActor {
    type Result = ();

    fn handle(&mut self, message: Forget, _ctx: &mut Self::Context) {
        let before = sum_counts(&self.books);
        self.book(message.business).forget(message.id);
        self.records.remove(&message.id);
        let after = sum_counts(&self.books);
        self.app.routers.add_counts(before, after);
    }
}
