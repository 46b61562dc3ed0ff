//! Estimates and payment requests: the trial run of a purchase, the hold it may reserve, the
//! contact's approval or rejection, cancellation, and expiry on the actor's own timer.
//!
//! Every step that resolves a hold (reject, cancel, expire, or the purchase that captures it) is
//! one change of this actor, so a hold is resolved exactly once and spendable never counts it
//! twice. While the wallet holds money its actor stays resident and keeps a timer for the
//! earliest expiry; start-up wakes the actors of every open hold (see [`wake_holds`]).

use rewards_core::estimate::{Estimate, EstimateState, HoldEffect};
use rewards_core::EstimateId;
use tokio::time::Duration as TokioDuration;

use super::*;
use crate::estimates::{EstimateRecord, EstimatedAward, EstimatedSpend};

pub struct EstimateJob {
    pub snapshot: BusinessSnapshot,
    pub estimate_id: EstimateId,
    pub purchase: ValidatedPurchase,
    pub performed_on: Timestamp,
    pub reference_number: Option<String>,
    pub classification: Option<String>,
    pub tap_code: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub payment_medium: Option<PaymentMediumRecord>,
    pub spend: Option<(SpendAmount, bool)>,
    /// Reserve what the purchase would spend.
    pub hold: bool,
    /// A payment request: the contact approves or rejects it first.
    pub approval_required: bool,
    pub idempotency: Option<IdempotencyKey>,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum EstimateStep {
    Approve,
    Reject,
    Cancel,
}

impl EstimateStep {
    fn event_type(self) -> &'static str {
        match self {
            EstimateStep::Approve => "estimate_approve",
            EstimateStep::Reject => "estimate_reject",
            EstimateStep::Cancel => "estimate_cancel",
        }
    }
}

/// The longest the expiry timer sleeps before it looks again (an estimate may live for years).
const LONGEST_TIMER: TokioDuration = TokioDuration::from_secs(3600);
/// The shortest: a timer that wakes a little early does not spin.
const SHORTEST_TIMER: TokioDuration = TokioDuration::from_millis(20);

impl WalletActor {
    /// An estimate as this actor last wrote it: from the change being built, from the writes in
    /// flight, else from the store. Another contact's estimate is returned as it is; the caller
    /// decides what that means.
    pub(super) fn estimate_record(
        &self,
        change: &Change,
        id: EstimateId,
    ) -> Result<EstimateRecord, Failure> {
        if let Some(record) = change.estimates.iter().rev().find(|r| r.estimate.id == id) {
            return Ok(record.clone());
        }
        if let Some(record) = self.recent.as_ref().and_then(|r| r.estimates.get(&id)) {
            return Ok(record.clone());
        }
        Ok(self
            .app
            .store
            .get::<EstimateRecord>(Space::Estimates, &keys::estimate_key(id))?
            .ok_or(DomainError::NotFound("estimate"))?)
    }

    pub(super) fn put_estimate(change: &mut Change, record: EstimateRecord) {
        change.set.put(
            Space::Estimates,
            keys::estimate_key(record.estimate.id),
            &record,
        );
        change
            .estimates
            .retain(|r| r.estimate.id != record.estimate.id);
        change.estimates.push(record);
    }

    /// Ends an estimate's hold: its money goes back to spendable (`Release`) or was taken by
    /// its purchase (`Capture`, done by the spend); the index entry goes either way.
    fn end_hold(
        change: &mut Change,
        record: &mut EstimateRecord,
        effect: HoldEffect,
        now: Timestamp,
    ) -> Result<(), Failure> {
        let id = record.estimate.id;
        if effect == HoldEffect::Release && change.wallet.hold_amount(id).is_some() {
            change.entries.extend(change.wallet.release(id, now)?);
        }
        if record.estimate.held.is_positive() {
            change.set.delete(
                Space::Estimates,
                keys::hold_key(record.estimate.expires_at, id),
            );
        }
        if !record.estimate.state.is_open() && record.resolved_at.is_none() {
            record.resolved_at = Some(now);
        }
        Ok(())
    }

    /// Expires, into the change, every estimate of this wallet's holds that is past its expiry.
    pub(super) fn expire_holds(&self, change: &mut Change, now: Timestamp) -> Result<(), Failure> {
        let held: Vec<EstimateId> = change.wallet.holds.iter().map(|h| h.estimate_id).collect();
        for id in held {
            let mut record = self.estimate_record(change, id)?;
            let effect = record.estimate.expire(now);
            if effect == HoldEffect::Release {
                Self::end_hold(change, &mut record, effect, now)?;
                Self::put_estimate(change, record);
            }
        }
        Ok(())
    }

    /// The trial run of a purchase: what it would award and spend now. With `hold`, the money it
    /// would spend (of what the wallet holds now) is reserved until the estimate is resolved.
    pub(super) fn estimate(&mut self, job: EstimateJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let business = &snapshot.business;
        let currency = business.currency;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "estimate");
        change.entries.extend(change.wallet.expire_due(now));
        self.expire_holds(&mut change, now)?;
        let spendable = change.wallet.spendable(now);
        let total = job.purchase.amounts.total;

        // The purchase on copies that are dropped: its awards, and what it would spend with its
        // own instant awards in open. No budget is kept and no counter moves.
        let mut trial = Change::new(change.contact.clone(), change.wallet.clone(), "estimate");
        let facts = EventFacts::Purchase(PurchaseFacts {
            performed_on: job.performed_on,
            classification: job.classification.as_deref(),
            merchant_id: job.merchant_id,
            tap_code: job.tap_code.as_deref(),
            payment_brand: job.payment_medium.as_ref().and_then(|p| p.brand.as_deref()),
            lines: &job.purchase.lines,
            total,
        });
        let proposed = Self::evaluate(&mut trial, snapshot, &facts, now);
        std::mem::take(&mut trial.held).release();
        let trial_event = EventId::from_bytes(*job.estimate_id.as_bytes());
        let mut credited = Vec::new();
        for (index, award) in proposed.iter().enumerate() {
            if award.redeem != Redemption::Deferred {
                Self::credit(&mut trial, trial_event, index, award, now, &mut credited)?;
            }
        }
        let would_spend = match job.spend {
            None => Money::ZERO,
            Some((amount, require_full)) => {
                let request = SpendRequest {
                    event_id: trial_event,
                    amount,
                    require_full,
                    limit: total,
                    min_spend: business.settings.min_spend,
                    max_spend: business.settings.max_spend,
                    blocked: change.contact.spend_blocked,
                    hold: None,
                };
                trial.wallet.spend(&request, now)?.spent
            }
        };
        drop(trial);

        let id = job.estimate_id;
        let expires_at = now.plus_seconds(i64::from(business.settings.estimate_ttl_seconds));
        // Only money the wallet has now can be reserved (not this purchase's own awards).
        let held = if job.hold {
            would_spend.min(spendable)
        } else {
            Money::ZERO
        };
        if held.is_positive() {
            change.entries.extend(change.wallet.hold(id, held, now)?);
            change.set.put_raw(
                Space::Estimates,
                keys::hold_key(expires_at, id),
                change.contact.id.as_bytes().to_vec(),
            );
        }
        let record = EstimateRecord {
            estimate: Estimate {
                id,
                business_id: business.id,
                contact_id: change.contact.id,
                wallet_id: change.wallet.id,
                state: if job.approval_required {
                    EstimateState::PendingApproval
                } else {
                    EstimateState::Estimated
                },
                created_at: now,
                expires_at,
                held,
                total,
            },
            approval_required: job.approval_required,
            purchase: job.purchase,
            performed_on: job.performed_on,
            classification: job.classification,
            reference_number: job.reference_number,
            tap_code: job.tap_code,
            merchant_id: job.merchant_id,
            spend: job.spend.map(|(amount, require_full)| EstimatedSpend {
                requested: match amount {
                    SpendAmount::Exact(m) => Some(m),
                    SpendAmount::All => None,
                },
                require_full,
            }),
            spendable,
            would_spend,
            awards: proposed
                .iter()
                .map(|a| EstimatedAward {
                    offer_id: a.offer_id,
                    amount: a.amount,
                    redeem: a.redeem,
                    expires_at: a.expires_at,
                })
                .collect(),
            purchase_id: None,
            resolved_at: None,
        };
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: crate::json_bytes(&record.render(currency, now)),
        };
        Self::put_estimate(&mut change, record);
        change.idempotency = job.idempotency;
        Ok(change)
    }

    /// The contact approves or rejects a payment request; the business or its POS cancels an
    /// open estimate. A rejection or a cancellation releases the hold.
    pub(super) fn estimate_step(
        &mut self,
        snapshot: &BusinessSnapshot,
        id: EstimateId,
        step: EstimateStep,
    ) -> Result<Change, Failure> {
        let now = clock::now();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), step.event_type());
        self.expire_holds(&mut change, now)?;
        let mut record = self.estimate_record(&change, id)?;
        if record.estimate.business_id != snapshot.business.id
            || record.estimate.contact_id != self.contact.id
        {
            return Err(DomainError::NotFound("estimate").into());
        }
        let effect = match step {
            EstimateStep::Approve => record.estimate.approve(now),
            EstimateStep::Reject => record.estimate.reject(now),
            EstimateStep::Cancel => record.estimate.cancel(now),
        }?;
        Self::end_hold(&mut change, &mut record, effect, now)?;
        let body = crate::json_bytes(&record.render(snapshot.business.currency, now));
        // The business hears of the contact's answer in the same commit.
        let announced = match step {
            EstimateStep::Approve => Some(crate::webhooks::ESTIMATE_APPROVED),
            EstimateStep::Reject => Some(crate::webhooks::ESTIMATE_REJECTED),
            EstimateStep::Cancel => None,
        };
        if let Some(kind) = announced {
            crate::webhooks::enqueue(&mut change.set, &snapshot.webhooks, kind, &body, now);
        }
        change.reply = Reply {
            status: StatusCode::OK,
            body,
        };
        Self::put_estimate(&mut change, record);
        Ok(change)
    }

    /// A purchase names an estimate: it must be this contact's, in this business, for the same
    /// total, and usable. Returns the consumed record and the spend the estimate asked for; the
    /// caller captures the hold through its spend (or releases it without one) and puts the record.
    pub(super) fn consume_estimate(
        &self,
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        id: EstimateId,
        total: Money,
        now: Timestamp,
    ) -> Result<EstimateRecord, Failure> {
        self.expire_holds(change, now)?;
        let mut record = self.estimate_record(change, id)?;
        if record.estimate.business_id != snapshot.business.id {
            return Err(DomainError::NotFound("estimate").into());
        }
        if record.estimate.contact_id != self.contact.id {
            return Err(DomainError::EstimateMismatch(
                "the purchase's contact is not the estimate's".into(),
            )
            .into());
        }
        if record.estimate.total != total {
            let currency = snapshot.business.currency;
            return Err(DomainError::EstimateMismatch(format!(
                "the purchase's total {} is not the estimate's {}",
                currency.format(total),
                currency.format(record.estimate.total)
            ))
            .into());
        }
        record.estimate.consume(now)?;
        Ok(record)
    }

    /// Finishes a consumed estimate in its purchase's change: an uncaptured hold is released,
    /// the index entry removed, and the record names the purchase.
    pub(super) fn finish_estimate(
        change: &mut Change,
        mut record: EstimateRecord,
        purchase_id: EventId,
        now: Timestamp,
    ) -> Result<(), Failure> {
        Self::end_hold(change, &mut record, HoldEffect::Release, now)?;
        record.purchase_id = Some(purchase_id);
        Self::put_estimate(change, record);
        Ok(())
    }

    /// Arms the expiry timer for the earliest hold, unless one is armed for that time or sooner.
    pub(super) fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
        if self.wallet.holds.is_empty() {
            if let Some((_, handle)) = self.expiry_timer.take() {
                ctx.cancel_future(handle);
            }
            return;
        }
        let empty = Change::new(self.contact.clone(), self.wallet.clone(), "estimate_expire");
        let mut earliest: Option<Timestamp> = None;
        for hold in &self.wallet.holds {
            match self.estimate_record(&empty, hold.estimate_id) {
                Ok(record) => {
                    let at = record.estimate.expires_at;
                    earliest = Some(earliest.map_or(at, |e| e.min(at)));
                }
                Err(error) => {
                    // Look again soon: the store answers again once its fault is gone.
                    tracing::warn!(%error, "an estimate's hold could not be read for its expiry");
                    earliest = Some(clock::now().plus_seconds(1));
                }
            }
        }
        let Some(at) = earliest else { return };
        if let Some((armed, handle)) = self.expiry_timer {
            if armed <= at {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = u64::try_from(at.0.saturating_sub(clock::now().0)).unwrap_or(0);
        let wait = TokioDuration::from_millis(wait).clamp(SHORTEST_TIMER, LONGEST_TIMER);
        let handle = ctx.run_later(wait, |actor, ctx| {
            actor.expiry_timer = None;
            actor.expire_now(ctx);
        });
        self.expiry_timer = Some((at, handle));
    }

    /// The timer's work: expires what is due as one change, then arms the timer again.
    fn expire_now(&mut self, ctx: &mut Context<Self>) {
        if self.passivating {
            return;
        }
        let now = clock::now();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "estimate_expire");
        match self.expire_holds(&mut change, now) {
            Ok(()) if !change.estimates.is_empty() => {
                change.entries.splice(0..0, change.wallet.expire_due(now));
                let (reply, _) = oneshot::channel();
                self.commit(change, reply);
            }
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(%error, "estimates could not be expired; trying again");
            }
        }
        self.arm_expiry(ctx);
    }
}

/// Wakes the wallet actor of every open hold, so that each arms its expiry timer (and expires at
/// once what expired while the server was down). Run once at start-up.
pub async fn wake_holds(app: &Arc<App>) -> Result<usize, Failure> {
    let mut contacts: Vec<ContactId> = Vec::new();
    app.store
        .for_each_raw(Space::Estimates, &keys::hold_prefix(), |_, value| {
            if let Ok(bytes) = <[u8; 16]>::try_from(value) {
                contacts.push(ContactId::from_bytes(bytes));
            }
            Ok(())
        })?;
    contacts.sort();
    contacts.dedup();
    let woken = contacts.len();
    for contact in contacts {
        if let Err(error) = call(app, contact, Command::Touch).await {
            tracing::warn!(%error, contact = %contact, "a wallet with an open hold did not start");
        }
    }
    Ok(woken)
}
