//! The actor itself: its mailbox handlers, passivation, and the commit of a change (the
//! writer's acknowledgement answers the caller and settles reservations).

use super::*;

impl Actor for WalletActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A wallet that holds money expires its estimates on its own timer.
        self.arm_expiry(ctx);
    }
}

/// Asks an actor to passivate if it has been idle for `idle` (sent by the directory's sweeper, so
/// no actor carries a timer of its own).
pub(super) struct Passivate {
    pub(super) idle: Duration,
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

    fn handle(&mut self, envelope: Envelope, ctx: &mut Self::Context) {
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
        // The commands that write nothing are answered at once.
        let command = match envelope.command {
            Command::ReferralHold { referrer } => {
                let _ = reply.send(Outcome::Done(self.referral_hold(referrer)));
                return;
            }
            Command::ReferralRelease => {
                let _ = reply.send(Outcome::Done(Ok(self.referral_release())));
                return;
            }
            Command::Touch => {
                let body = render_wallet(&self.wallet, &self.contact.wallet_code, clock::now());
                let _ = reply.send(Outcome::Done(Ok(Reply {
                    status: StatusCode::OK,
                    body: crate::json_bytes(&body),
                })));
                return;
            }
            command => command,
        };
        let result = match command {
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
            Command::Estimate(job) => self.estimate(*job),
            Command::Achievement(job) => self.achievement(*job),
            Command::Statement(job) => self.statement(*job),
            Command::SpendOnPurchase(job) => self.spend_request(*job),
            Command::PayoutAuto {
                payout_id,
                idempotency,
            } => self.payout_auto(payout_id, idempotency),
            Command::EstimateStep {
                snapshot,
                estimate_id,
                step,
            } => self.estimate_step(&snapshot, estimate_id, step),
            Command::Refer(job) => self.refer(*job),
            Command::Referred(job) => self.referred(*job),
            Command::Touch | Command::ReferralHold { .. } | Command::ReferralRelease => {
                Err(Failure::Internal("a command that writes nothing".into()))
            }
        };
        match result {
            Ok(change) => {
                let holds = !change.wallet.holds.is_empty() || !self.wallet.holds.is_empty();
                self.commit(change, reply);
                if holds {
                    self.arm_expiry(ctx);
                }
            }
            Err(error) => {
                let _ = reply.send(Outcome::Done(Err(error)));
            }
        }
    }
}

impl WalletActor {
    pub(super) fn maybe_passivate(&mut self, ctx: &mut Context<Self>, idle: Duration) {
        if self.passivating
            || u64::from(uptime_seconds().saturating_sub(self.last_used)) < idle.as_secs()
            || self.gauges.in_flight.load(Ordering::Acquire) != 0
            // Its timer expires the holds: it stays until none is left.
            || !self.wallet.holds.is_empty()
            // A referral of its contact is between its steps: the mark must not be lost.
            || self.referred == super::referral::ReferredMark::Pending
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

    pub(super) fn commit(&mut self, mut change: Change, reply: oneshot::Sender<Outcome>) {
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
        let lot_places = super::stored::put(
            &mut change.set,
            self.app.config.wallet_lots_apart_above,
            &self.wallet,
            &self.lot_places,
            &change.wallet,
        );
        // The contact's state changes only when its rewards, schemes or spend block do.
        if change.contact != self.contact {
            change.set.put(
                Space::ContactStates,
                keys::contact_state_key(change.contact.id),
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
                    crate::hot_metrics::event_committed(
                        event_type,
                        started.elapsed().as_secs_f64(),
                    );
                    let _ = reply.send(Outcome::Done(Ok(answer)));
                }
                Err(error) => {
                    held.release();
                    crate::hot_metrics::event_failed(event_type);
                    let _ = reply.send(Outcome::Done(Err(error.into())));
                }
            }
        });
        if self.app.store.submit(change.set, ack).is_ok() {
            self.contact = change.contact;
            self.wallet = change.wallet;
            self.lot_places = lot_places;
            let recent = self.recent.get_or_insert_with(Box::default);
            for event in change.events {
                recent.events.insert(event.id, event);
            }
            for record in change.estimates {
                recent.estimates.insert(record.estimate.id, record);
            }
            for entry in change.settlements {
                recent.settlements.insert(entry.event_id, entry);
            }
            for lot in closed {
                recent.lots.update(lot.event_id, |lots| {
                    lots.retain(|l| l.id != lot.id);
                    lots.push(lot);
                });
            }
        }
    }

    /// Puts an event's closed lots back into the change's wallet, so its awards can be reversed.
    pub(super) fn restore_lots(
        &self,
        change: &mut Change,
        event: &EventRecord,
    ) -> Result<(), Failure> {
        let event_id = event.id;
        let mut lots = crate::ledger::closed_lots(&self.app.store, self.wallet.id, event_id)?;
        let recent = self.recent.as_ref().and_then(|r| r.lots.get(&event_id));
        for lot in recent.into_iter().flatten() {
            lots.insert(lot.id, lot.clone());
        }
        // Lots neither stored nor in the wallet were redeemed in full: their awards say the rest.
        for award in &event.awards {
            let lot_id = award.lot_id(event_id);
            let open = change.wallet.lots.iter().any(|l| l.id == lot_id);
            if !open && !lots.contains_key(&lot_id) {
                lots.insert(lot_id, crate::ledger::plain_lot(event_id, award));
            }
        }
        let mut lots: Vec<Lot> = lots.into_values().collect();
        lots.sort_by_key(|l| l.id);
        change.wallet.restore_lots(lots);
        Ok(())
    }

    /// The contact's profile from the store (the actor keeps only its state).
    pub(super) fn profile(&self) -> Result<Contact, Failure> {
        let profile: ContactRecord = self
            .app
            .store
            .get(Space::Contacts, &keys::contact_key(self.contact.id))?
            .ok_or(DomainError::ContactNotFound)?;
        Ok(Contact::from(profile))
    }

    /// The whole contact with `state`, as the API shows it.
    /// The whole contact as the API shows it, with its tier as of now.
    pub(super) fn whole_contact(&self, state: &ContactState) -> Result<Contact, Failure> {
        let mut contact = state.apply_to(self.profile()?);
        contact.rewards.tier = crate::contact_state::current_tier(
            &self.app,
            state.business_id,
            &state.rewards,
            clock::now(),
        );
        Ok(contact)
    }

    pub(super) fn load_event(&self, event_id: EventId) -> Result<EventRecord, Failure> {
        if let Some(event) = self.recent.as_ref().and_then(|r| r.events.get(&event_id)) {
            return Ok(event.clone());
        }
        let event: EventRecord = self
            .app
            .store
            .get(Space::Events, &keys::event_key(event_id))?
            .ok_or(DomainError::NotFound("event"))?;
        if event.contact_id != self.contact.id {
            return Err(DomainError::NotFound("event").into());
        }
        Ok(event)
    }
}
