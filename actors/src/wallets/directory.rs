//! The resident wallet actors: found or started on first use, spread over the wallet
//! arbiters, bounded, passivated when idle; and the call that sends a command to one.

use super::actor::Passivate;
use super::*;

/// Counters an actor shares with its callers.
#[derive(Default)]
pub struct Gauges {
    /// Commands sent and not yet taken by the actor: its mailbox's length.
    pub(super) queued: AtomicUsize,
    /// Write sets handed to the writer and not yet acknowledged.
    pub(super) in_flight: AtomicUsize,
}

/// The resident wallet actors, by contact, spread over the wallet arbiters.
pub struct WalletDirectory {
    actors: DashMap<ContactId, (Addr<WalletActor>, Arc<Gauges>)>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    /// Actors passivated so far (left the directory on their own).
    passivated: AtomicUsize,
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
            passivated: AtomicUsize::new(0),
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
                    .get(Space::ContactStates, &keys::contact_state_key(contact_id))?
                    .ok_or(DomainError::ContactNotFound)?;
                let wallet_id = contact.wallet_id;
                let (wallet, lot_places) =
                    super::stored::load(&app.store, wallet_id)?.ok_or_else(|| {
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
                    expiry_timer: None,
                    referred: Default::default(),
                    lot_places,
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

    /// Asks the allocator of every wallet arbiter, and of the calling thread, to give the
    /// pages that stopped actors freed back to the system. mimalloc returns free pages lazily,
    /// when their thread next allocates; an arbiter whose actors were passivated may not
    /// allocate again for a long time, and would keep them.
    pub fn release_free_memory(&self) {
        for arbiter in &self.arbiters {
            arbiter.spawn_fn(collect_free_memory);
        }
        collect_free_memory();
    }

    /// Asks every resident actor to passivate if it has been idle long enough.
    pub fn sweep(&self) {
        self.passivate_idle_for(self.idle);
    }

    /// Asks every resident actor to passivate if it has been idle for `idle` or longer (zero:
    /// every actor with nothing in flight).
    pub fn passivate_idle_for(&self, idle: Duration) {
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
            let mut passivated = app.wallets.passivated.load(Ordering::Relaxed);
            loop {
                tokio::time::sleep(every).await;
                app.wallets.sweep();
                let now = app.wallets.passivated.load(Ordering::Relaxed);
                if now != passivated {
                    passivated = now;
                    // The actors passivated since the last sweep stop after their grace; then
                    // their memory can go back.
                    let app = app.clone();
                    actix::spawn(async move {
                        tokio::time::sleep(PASSIVATION_GRACE + Duration::from_secs(1)).await;
                        app.wallets.release_free_memory();
                    });
                }
            }
        });
    }

    pub(super) fn remove_if_same(&self, contact_id: ContactId, addr: &Addr<WalletActor>) -> bool {
        let removed = self
            .actors
            .remove_if(&contact_id, |_, resident| &resident.0 == addr)
            .is_some();
        if removed {
            self.passivated.fetch_add(1, Ordering::Relaxed);
        }
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

/// Gives this thread's free allocator pages back to the system (see
/// [`WalletDirectory::release_free_memory`]).
fn collect_free_memory() {
    // SAFETY: mi_collect only walks the calling thread's own heap; it takes no pointer.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
