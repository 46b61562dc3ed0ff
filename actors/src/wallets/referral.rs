//! Referrals (SPEC section 4): an existing contact (the referrer) introduces a new one (the
//! referred contact). Membership offers with `referral` award the referrer, and the referred
//! contact too when they say `award_referred`.
//!
//! A referral changes two wallets, each owned by its own actor, so it runs in three steps:
//!
//! 1. The referred contact's actor refuses a contact that was referred, or is being referred,
//!    and otherwise marks it as being referred (in memory: nothing is written, so nothing is
//!    left to undo) until the referral ends.
//! 2. The referrer's actor checks its daily limit and commits, in one write, its referral event,
//!    its awards, its daily count and a [`PendingReferralRecord`]. This commit is the referral's
//!    point of no return: the answer is the referrer's event, stored under the idempotency key.
//! 3. The referred contact's actor commits, in one write, `referred_by` in its profile, its own
//!    referral event with its awards, and the deletion of the pending record.
//!
//! A crash between 2 and 3 leaves the pending record, and start-up completes step 3 from it
//! ([`complete_referrals`]); until then step 1 counts the pending record as a referral. A step 3
//! that fails while the server runs is tried again in the background. A refusal in step 2
//! releases the mark. The steps run in a task of their own, so a client that goes away cannot
//! stop a referral half-way; the HTTP handler runs its idempotency claim in that task too.

use super::*;
use crate::events::ReferralRecord;
use crate::schema::PendingReferralRecord;

/// Where a wallet actor's contact stands as the referred side of a referral.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub(super) enum ReferredMark {
    /// As the store says.
    #[default]
    Unknown,
    /// A referral of this contact is between its steps 1 and 3: the actor stays resident.
    Pending,
    /// This actor committed the contact's referral.
    Referred,
}

/// Step 2 or step 3 of a referral.
pub struct ReferralJob {
    pub snapshot: BusinessSnapshot,
    pub pending: PendingReferralRecord,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
}

impl WalletActor {
    /// Step 1, on the referred contact's actor.
    pub(super) fn referral_hold(&mut self, referrer: ContactId) -> Result<Reply, Failure> {
        rewards_core::referral::check_referred(referrer, self.contact.id, None)?;
        let referred = match self.referred {
            ReferredMark::Pending | ReferredMark::Referred => true,
            ReferredMark::Unknown => {
                self.profile()?.referred_by.is_some()
                    || self
                        .app
                        .store
                        .get_raw(
                            Space::EventIndex,
                            &keys::pending_referral_key(self.contact.id),
                        )?
                        .is_some()
            }
        };
        if referred {
            return Err(DomainError::AlreadyReferred.into());
        }
        self.referred = ReferredMark::Pending;
        Ok(Reply {
            status: StatusCode::OK,
            body: Vec::new(),
        })
    }

    /// Ends step 1 without a referral: the referrer's side refused it.
    pub(super) fn referral_release(&mut self) -> Reply {
        if self.referred == ReferredMark::Pending {
            self.referred = ReferredMark::Unknown;
        }
        Reply {
            status: StatusCode::OK,
            body: Vec::new(),
        }
    }

    /// Step 2, on the referrer's actor.
    pub(super) fn refer(&mut self, job: ReferralJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let pending = &job.pending;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "referral");
        change
            .contact
            .rewards
            .referrals
            .check(snapshot.business.settings.referral_daily_limit, now)?;
        change.contact.rewards.referrals.record(now);
        change.entries.extend(change.wallet.expire_due(now));
        let awards = Self::reward(
            &mut change,
            snapshot,
            &EventFacts::Referral { referrer: true },
            pending.referrer_event_id,
            now,
        );
        let mut event = new_event(
            &change,
            pending.referrer_event_id,
            EventType::Referral,
            snapshot,
            now,
        );
        event.origin = "pos".into();
        event.external_system = job.external_system;
        event.external_reference = job.external_reference;
        event.awards = awards?;
        event.referral = Some(ReferralRecord {
            referrer_id: pending.referrer_id,
            referred_id: pending.referred_id,
            other_event_id: pending.referred_event_id,
        });
        Self::put_event(&mut change, event, true, now);
        change.set.put(
            Space::EventIndex,
            keys::pending_referral_key(pending.referred_id),
            pending,
        );
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the referral was not put".into()))?;
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: render_event(event, snapshot.business.currency).to_json(),
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }

    /// Step 3, on the referred contact's actor. Done twice (start-up completing a referral its
    /// request completed too), the second only deletes the pending record again.
    pub(super) fn referred(&mut self, job: ReferralJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let pending = &job.pending;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "referral");
        change.set.delete(
            Space::EventIndex,
            keys::pending_referral_key(self.contact.id),
        );
        change.reply = Reply {
            status: StatusCode::OK,
            body: Vec::new(),
        };
        let mut profile = self.profile()?;
        if profile.referred_by.is_some() || self.referred == ReferredMark::Referred {
            return Ok(change);
        }
        profile.referred_by = Some(pending.referrer_id);
        change.set.put(
            Space::Contacts,
            keys::contact_key(self.contact.id),
            &ContactRecord::from(&profile),
        );
        change.entries.extend(change.wallet.expire_due(now));
        let awards = Self::reward(
            &mut change,
            snapshot,
            &EventFacts::Referral { referrer: false },
            pending.referred_event_id,
            now,
        );
        let mut event = new_event(
            &change,
            pending.referred_event_id,
            EventType::Referral,
            snapshot,
            now,
        );
        event.origin = "pos".into();
        event.awards = awards?;
        event.referral = Some(ReferralRecord {
            referrer_id: pending.referrer_id,
            referred_id: pending.referred_id,
            other_event_id: pending.referrer_event_id,
        });
        Self::put_event(&mut change, event, true, now);
        self.referred = ReferredMark::Referred;
        Ok(change)
    }
}

/// Refers `referred` by `referrer` and answers the referrer's referral event (201) and its id,
/// once it and the referred contact's side are durable.
pub async fn refer(
    app: &Arc<App>,
    snapshot: BusinessSnapshot,
    referrer: ContactId,
    referred: ContactId,
    external_system: String,
    external_reference: Option<String>,
    idempotency: Option<IdempotencyKey>,
) -> Result<(Reply, EventId), Failure> {
    rewards_core::referral::check_referred(referrer, referred, None)?;
    let app = app.clone();
    // In a task of its own: once step 1 passed, steps 2 and 3 (or the release) always run.
    let steps = actix::spawn(async move {
        call(&app, referred, Command::ReferralHold { referrer }).await?;
        let now = clock::now();
        let pending = PendingReferralRecord {
            business_id: snapshot.business.id,
            referrer_id: referrer,
            referred_id: referred,
            referrer_event_id: app.placement.event_id(),
            referred_event_id: app.placement.event_id(),
            at: now,
        };
        let job = ReferralJob {
            snapshot: snapshot.clone(),
            pending: pending.clone(),
            external_system,
            external_reference,
            idempotency,
        };
        let reply = match call(&app, referrer, Command::Refer(Box::new(job))).await {
            Ok(reply) => reply,
            Err(error) => {
                // Nothing was written for it (a failed write stops the store's writes).
                if call_until_taken(&app, referred, || Command::ReferralRelease)
                    .await
                    .is_err()
                {
                    release_later(app.clone(), referred);
                }
                return Err(error);
            }
        };
        let event_id = pending.referrer_event_id;
        crash_point("referral_between_sides");
        // The referral is committed: its answer is the referrer's, whatever step 3 meets; a
        // step 3 that fails now is tried again in the background (and at the next start-up).
        if let Err(error) = complete(&app, snapshot.clone(), pending.clone()).await {
            tracing::warn!(%error, referred = %pending.referred_id, "a referral's referred side failed; trying again");
            complete_later(app.clone(), snapshot, pending);
        }
        Ok((reply, event_id))
    });
    steps
        .await
        .map_err(|_| Failure::Internal("the referral's task stopped".into()))?
}

/// Crash injection for the recovery tests: with `REWARDS_CRASH_AT` set to `name`, the process
/// ends here at once, as a kill -9 would.
fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT
        .get_or_init(|| std::env::var("REWARDS_CRASH_AT").ok())
        .as_deref()
        == Some(name)
    {
        std::process::abort();
    }
}

/// Sends a command that must not be lost to a refusal of load (the release of a hold, or the
/// referred contact's side once the referrer's is durable): retried while the actor is
/// overloaded, for up to about ten seconds.
async fn call_until_taken(
    app: &Arc<App>,
    contact: ContactId,
    make: impl Fn() -> Command,
) -> Result<Reply, Failure> {
    let mut backoff = Duration::from_millis(5);
    for _ in 0..16 {
        match call(app, contact, make()).await {
            Err(Failure::Domain(DomainError::Overloaded)) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
    Err(DomainError::Overloaded.into())
}

/// Step 3 of a referral whose step 2 is durable.
async fn complete(
    app: &Arc<App>,
    snapshot: BusinessSnapshot,
    pending: PendingReferralRecord,
) -> Result<(), Failure> {
    call_until_taken(app, pending.referred_id, || {
        Command::Referred(Box::new(ReferralJob {
            snapshot: snapshot.clone(),
            pending: pending.clone(),
            external_system: String::new(),
            external_reference: None,
            idempotency: None,
        }))
    })
    .await
    .map(|_| ())
}

/// Tries step 3 again, with a pause, for about ten minutes; a referral still not completed
/// then is completed at the next start-up (its pending record is durable).
fn complete_later(app: Arc<App>, snapshot: BusinessSnapshot, pending: PendingReferralRecord) {
    actix::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            match complete(&app, snapshot.clone(), pending.clone()).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, referred = %pending.referred_id, "a referral's referred side failed again")
                }
            }
        }
        tracing::error!(referred = %pending.referred_id, "a referral's referred side is left to the next start-up");
    });
}

/// Releases a referred contact's mark in the background, when its actor was too busy to take
/// the release at once.
fn release_later(app: Arc<App>, referred: ContactId) {
    actix::spawn(async move {
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if call_until_taken(&app, referred, || Command::ReferralRelease)
                .await
                .is_ok()
            {
                return;
            }
        }
        tracing::error!(%referred, "a refused referral's mark could not be released");
    });
}

/// Completes the referrals a crash left between their steps 2 and 3 (at start-up).
pub async fn complete_referrals(app: &Arc<App>) -> Result<usize, Failure> {
    let mut pending: Vec<PendingReferralRecord> = Vec::new();
    app.store.for_each::<PendingReferralRecord>(
        Space::EventIndex,
        &keys::pending_referral_prefix(),
        |_, record| {
            pending.push(record);
            Ok(())
        },
    )?;
    let count = pending.len();
    for record in pending {
        let Some(entry) = app.registry.business(record.business_id) else {
            tracing::error!(referred = %record.referred_id, "a pending referral's business is unknown");
            continue;
        };
        let referred = record.referred_id;
        if let Err(error) = complete(app, entry.snapshot(), record).await {
            tracing::error!(%error, %referred, "a pending referral could not be completed");
        }
    }
    Ok(count)
}
