//! Evaluating offers for an event and crediting the awards to a change; tiers.

use super::*;

impl WalletActor {
    /// Writes an event (with its index entries when it is new) into the change.
    pub(super) fn put_event(
        change: &mut Change,
        mut event: EventRecord,
        is_new: bool,
        now: Timestamp,
    ) {
        event.wallet_after = change.wallet.balances();
        event.spendable_after = change.wallet.spendable(now).non_negative();
        if is_new {
            let id_bytes = event.id.as_bytes().to_vec();
            // The business's index entry carries the event's settlement with its merchant.
            let settlement = change.settlements.iter().find(|e| e.event_id == event.id);
            change.set.put_raw(
                Space::EventIndex,
                keys::business_index_key(event.business_id, event.created_at, event.id),
                crate::wallets::settlement::index_value(event.id, settlement),
            );
            change.set.put_raw(
                Space::EventIndex,
                keys::contact_index_key(event.contact_id, event.created_at, event.id),
                id_bytes,
            );
        }
        change
            .set
            .put(Space::Events, keys::event_key(event.id), &event);
        change.events.push(event);
    }

    /// Evaluates an event that only earns (no spend) and credits its awards to the change.
    pub(super) fn reward(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        facts: &EventFacts<'_>,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<Vec<AwardRecord>, Failure> {
        let proposed = Self::evaluate(change, snapshot, facts, now);
        let mut awards = Vec::with_capacity(proposed.len());
        // Each award is a lot: room for them all at once, not a reallocation per award.
        change.wallet.lots.reserve(proposed.len());
        for (index, award) in proposed.iter().enumerate() {
            Self::credit(change, event_id, index, award, now, &mut awards)?;
        }
        Ok(awards)
    }

    pub(super) fn evaluate(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        facts: &EventFacts<'_>,
        now: Timestamp,
    ) -> Vec<ProposedAward> {
        let business = &snapshot.business;
        // The tier as of now: units may have left the rolling period since the last change.
        change.contact.rewards.tier = snapshot
            .tiers
            .as_ref()
            .and_then(|tiers| tiers.tier_at(&change.contact.rewards.tier_progress, now));
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
    pub(super) fn return_to_offers(
        change: &mut Change,
        snapshot: &BusinessSnapshot,
        by_offer: &[(Option<rewards_core::OfferId>, Money)],
    ) {
        for (offer, amount) in by_offer {
            let Some(offer) = offer else { continue };
            change
                .set
                .add_counter(keys::offer_totals_key(*offer), [-amount.minor(), 0]);
            if let Some(runtime) = snapshot.offers.by_id.get(offer) {
                change.give_back.push((runtime.clone(), *amount));
            }
        }
    }

    pub(super) fn credit(
        change: &mut Change,
        event_id: EventId,
        index: usize,
        award: &ProposedAward,
        now: Timestamp,
        awards: &mut Vec<AwardRecord>,
    ) -> Result<(), Failure> {
        let index = u32::try_from(index)
            .map_err(|_| Failure::Internal(format!("award number {index} of one event")))?;
        let lot_id = LotId::for_event(event_id, index);
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
        change.set.add_counter(
            keys::offer_totals_key(award.offer_id),
            [award.amount.minor(), 1],
        );
        awards.push(AwardRecord {
            offer_id: award.offer_id,
            amount: award.amount,
            redeem: award.redeem,
            expires_at: award.expires_at,
            lot: AwardLot::OfEvent(index),
            merchant_id: match award.funding {
                Funding::Merchant(m) => Some(m),
                Funding::Business => None,
            },
        });
        Ok(())
    }

    /// Adds (or removes, with a negative total) a purchase's tier value units; a tier reached on
    /// the way up is its own event, which membership offers may reward.
    pub(super) fn update_tier(
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
        // The tier before these units, as of now (not the stored one, which may be older than
        // the levels or the period): only these units can make a tier-reached event, and only
        // when they add.
        let before = tiers.tier_at(&change.contact.rewards.tier_progress, now);
        change
            .contact
            .rewards
            .tier_progress
            .add(tiers, units, at, now);
        let tier_change = recompute(
            tiers,
            &change.contact.rewards.tier_progress,
            before.as_deref(),
            now,
        );
        change.contact.rewards.tier = tier_change.tier;
        if let (true, Some(level)) = (units.is_sign_positive(), tier_change.reached) {
            let event_id = self.app.placement.event_id();
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
}
