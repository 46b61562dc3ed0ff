//! Top-ups, payouts, achievements and financial statements.

use super::*;

impl WalletActor {
    pub(super) fn topup(
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
        change.entries.extend(change.wallet.expire_due(now));
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

    pub(super) fn payout(
        &mut self,
        amount: Option<Money>,
        payout_id: EventId,
    ) -> Result<Change, Failure> {
        let now = clock::now();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "payout");
        change.entries.extend(change.wallet.expire_due(now));
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

    /// Pays out what `auto` redemptions put in open, as one payout entry (nothing when there is
    /// nothing to pay). The run's key makes it once per wallet and run.
    pub(super) fn payout_auto(
        &mut self,
        payout_id: EventId,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Change, Failure> {
        let now = clock::now();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "payout_run");
        change.entries.extend(change.wallet.expire_due(now));
        let (paid, entries) = change.wallet.payout_auto(payout_id, now);
        change.entries.extend(entries);
        let currency = change.wallet.currency;
        let body = json!({
            "id": payout_id.to_string(),
            "wallet_id": change.wallet.id.to_string(),
            "amount": currency.format(paid),
        });
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: crate::json_bytes(&body),
        };
        change.idempotency = idempotency;
        Ok(change)
    }

    pub(super) fn achievement(&mut self, job: AchievementJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "achievement");
        change.entries.extend(change.wallet.expire_due(now));
        let awards = Self::reward(
            &mut change,
            snapshot,
            &EventFacts::Achievement(AchievementFacts {
                kind: job.details.kind,
                classification: Some(&job.classification),
                amount: job.amount,
                performed_on: job.performed_on,
            }),
            job.event_id,
            now,
        );
        let mut event = new_event(&change, job.event_id, EventType::Achievement, snapshot, now);
        event.origin = job.origin;
        event.performed_on = job.performed_on;
        event.classification = Some(job.classification);
        event.amount = job.amount;
        event.tap_code = job.tap_code;
        event.merchant_id = job.merchant_id;
        event.payment_medium = job.payment_medium;
        event.identity = Some(job.identity);
        event.external_system = job.external_system;
        event.external_reference = job.external_reference;
        event.achievement = Some(job.details);
        event.awards = awards?;
        Self::settle_new(&mut change, snapshot, &event);
        Self::put_event(&mut change, event, true, now);
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the achievement was not put".into()))?;
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: render_event(event, snapshot.business.currency).to_json(),
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }

    /// Records a financial statement, unless the contact already has one of its classification
    /// and period (in the store, or in a write still in flight).
    pub(super) fn statement(&mut self, job: StatementJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let key = keys::statement_key(self.contact.id, &job.classification, &job.statement.period);
        let in_flight = self.recent.as_ref().is_some_and(|recent| {
            recent.events.values().any(|e| {
                e.state == EventState::Posted
                    && e.classification.as_deref() == Some(job.classification.as_str())
                    && e.statement
                        .as_ref()
                        .is_some_and(|s| s.period == job.statement.period)
            })
        });
        if in_flight || self.app.store.get_raw(Space::EventIndex, &key)?.is_some() {
            return Err(DomainError::DuplicateStatement.into());
        }
        let mut change = Change::new(
            self.contact.clone(),
            self.wallet.clone(),
            "financial_statement",
        );
        change
            .set
            .put_raw(Space::EventIndex, key, job.event_id.as_bytes().to_vec());
        let mut event = new_event(
            &change,
            job.event_id,
            EventType::FinancialStatement,
            snapshot,
            now,
        );
        event.origin = "pos".into();
        event.performed_on = job.performed_on;
        event.classification = Some(job.classification);
        event.identity = Some(job.identity);
        event.external_system = job.external_system;
        event.external_reference = job.external_reference;
        event.statement = Some(job.statement);
        Self::put_event(&mut change, event, true, now);
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the statement was not put".into()))?;
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: render_event(event, snapshot.business.currency).to_json(),
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }
}
