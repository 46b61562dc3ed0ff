//! Purchases, spend requests against them, voids and returns.

use super::*;

impl WalletActor {
    pub(super) fn purchase(&mut self, job: PurchaseJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let business = &snapshot.business;
        let currency = business.currency;
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "purchase");
        change.entries.extend(change.wallet.expire_due(now));
        let total = job.purchase.amounts.total;
        // An expired hold gives its money back before anything is spent.
        self.expire_holds(&mut change, now)?;
        let estimate = match job.estimate_id {
            Some(id) => Some(self.consume_estimate(&mut change, snapshot, id, total, now)?),
            None => None,
        };
        // Its own spend request, else the estimate's.
        let job_spend = job.spend.or_else(|| {
            let asked = estimate.as_ref()?.spend.as_ref()?;
            Some((
                asked.requested.map_or(SpendAmount::All, SpendAmount::Exact),
                asked.require_full,
            ))
        });
        let hold = job
            .estimate_id
            .filter(|id| change.wallet.hold_amount(*id).is_some());
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
        let spend = match job_spend {
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
                    hold,
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
        if let Some(record) = estimate {
            Self::finish_estimate(&mut change, record, job.event_id, now)?;
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
        Self::settle_new(&mut change, snapshot, &event);
        Self::put_event(&mut change, event, true, now);
        // The view is of the event as stored (put_event fills in the wallet after it).
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the purchase was not put".into()))?;
        let body = match answer {
            Answer::Purchase => render_event(event, currency).to_json(),
            Answer::StatusOnly => Vec::new(),
        };
        // Announced in the purchase's own commit (only rendered when someone subscribed).
        if crate::webhooks::wanted(&snapshot.webhooks, crate::webhooks::PURCHASE_POSTED) {
            let data = match answer {
                Answer::Purchase => body.clone(),
                Answer::StatusOnly => render_event(event, currency).to_json(),
            };
            crate::webhooks::enqueue(
                &mut change.set,
                &snapshot.webhooks,
                crate::webhooks::PURCHASE_POSTED,
                &data,
                now,
            );
        }
        change.reply = Reply {
            status: StatusCode::CREATED,
            body,
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }

    pub(super) fn void(
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
        change.entries.extend(change.wallet.expire_due(now));
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
                .add_counter(keys::offer_totals_key(award.offer_id), [0, -1]);
        }
        // A top-up's money goes back where it came from.
        if event.classification.as_deref() == Some("top_up")
            && event.event_type == EventType::Achievement
            && event.achievement.is_none()
        {
            let amount = event.amount.unwrap_or(Money::ZERO);
            change
                .entries
                .extend(change.wallet.reverse_top_up(amount, event_id, now));
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
        // A voided spend request gives its purchase back the room it took.
        if let (Some(purchase_id), Some(spend)) = (event.of_event, &event.spend) {
            let mut purchase = self.event_in(&change, purchase_id)?;
            purchase.later_spent = (purchase.later_spent - spend.spent).non_negative();
            Self::put_event(&mut change, purchase, false, now);
        }
        // A voided statement no longer takes its classification and period.
        if let (Some(statement), Some(classification)) = (&event.statement, &event.classification) {
            change.set.delete(
                Space::EventIndex,
                keys::statement_key(event.contact_id, classification, &statement.period),
            );
        }
        self.settle_void(&mut change, &event, now, currency)?;
        event.state = EventState::Cancelled;
        event.cancelled_at = Some(now);
        event.cancel_reason = reason;
        Self::put_event(&mut change, event, false, now);
        let event = change
            .events
            .last()
            .ok_or_else(|| Failure::Internal("the void was not put".into()))?;
        let body = render_event(event, currency).to_json();
        if event.event_type == EventType::Purchase {
            crate::webhooks::enqueue(
                &mut change.set,
                &snapshot.webhooks,
                crate::webhooks::PURCHASE_CANCELLED,
                &body,
                now,
            );
        }
        change.reply = Reply {
            status: StatusCode::OK,
            body,
        };
        Ok(change)
    }

    pub(super) fn return_lines(&mut self, job: ReturnJob) -> Result<Change, Failure> {
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
        change.entries.extend(change.wallet.expire_due(now));
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
        let before = (event.returns.clawed_back, event.returns.refunded);
        event.returns.returned_amount += plan.returned_amount;
        event.returns.clawed_back += clawback.total;
        event.returns.refunded += plan.refund;
        self.settle_return(&mut change, &event, before, job.return_id, now, currency)?;
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

    /// An event as this actor last wrote it, the change being built included.
    fn event_in(&self, change: &Change, event_id: EventId) -> Result<EventRecord, Failure> {
        match change.events.iter().rev().find(|e| e.id == event_id) {
            Some(event) => Ok(event.clone()),
            None => self.load_event(event_id),
        }
    }

    /// Spends wallet money on a posted purchase after the fact: at most its total less what was
    /// already spent on it (by the purchase itself and by earlier spend requests).
    pub(super) fn spend_request(&mut self, job: SpendRequestJob) -> Result<Change, Failure> {
        let now = clock::now();
        let snapshot = &job.snapshot;
        let business = &snapshot.business;
        let currency = business.currency;
        let mut purchase = self
            .load_event(job.purchase_id)
            .map_err(|_| Failure::from(DomainError::NotFound("purchase")))?;
        let Some(basket) = purchase.purchase.as_ref() else {
            return Err(DomainError::NotFound("purchase").into());
        };
        if purchase.event_type != EventType::Purchase || purchase.business_id != business.id {
            return Err(DomainError::NotFound("purchase").into());
        }
        if purchase.state == EventState::Cancelled {
            return Err(DomainError::AlreadyCancelled.into());
        }
        let already =
            purchase.spend.as_ref().map_or(Money::ZERO, |s| s.spent) + purchase.later_spent;
        let limit = (basket.amounts.total - already).non_negative();
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "spend_request");
        change.entries.extend(change.wallet.expire_due(now));
        self.expire_holds(&mut change, now)?;
        let request = SpendRequest {
            event_id: job.event_id,
            amount: job.amount,
            require_full: job.require_full,
            limit,
            min_spend: business.settings.min_spend,
            max_spend: business.settings.max_spend,
            blocked: change.contact.spend_blocked,
            hold: None,
        };
        let outcome = change.wallet.spend(&request, now)?;
        change.entries.extend(outcome.entries);
        let merchant = purchase
            .merchant_id
            .and_then(|m| snapshot.merchants.get(&m));
        let front_end = business.settings.reduction_method(merchant) == ReductionMethod::FrontEnd;
        let spend = SpendRecord {
            requested: match job.amount {
                SpendAmount::Exact(m) => Some(m),
                SpendAmount::All => None,
            },
            spent: outcome.spent,
            front_end,
        };
        purchase.later_spent += outcome.spent;
        Self::put_event(&mut change, purchase, false, now);
        let mut event = new_event(
            &change,
            job.event_id,
            EventType::SpendRequest,
            snapshot,
            now,
        );
        event.origin = "pos".into();
        event.identity = Some(job.identity);
        event.amount = Some(outcome.spent);
        event.merchant_id = merchant.map(|m| m.id);
        event.spend = Some(spend);
        event.of_event = Some(job.purchase_id);
        event.external_system = job.external_system;
        event.external_reference = job.external_reference;
        Self::settle_new(&mut change, snapshot, &event);
        Self::put_event(&mut change, event, true, now);
        let body = json!({
            "id": job.event_id.to_string(),
            "type": "spend_request",
            "purchase_id": job.purchase_id.to_string(),
            "requested": match job.amount {
                SpendAmount::Exact(m) => currency.format(m),
                SpendAmount::All => "all".to_string(),
            },
            "spent": currency.format(outcome.spent),
            "reduction_method": if front_end { "front_end" } else { "back_end" },
            "wallet": render_wallet(&change.wallet, &change.contact.wallet_code, now),
        });
        change.reply = Reply {
            status: StatusCode::CREATED,
            body: crate::json_bytes(&body),
        };
        change.idempotency = job.idempotency;
        Ok(change)
    }
}
