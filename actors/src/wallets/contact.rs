//! The contact side of a wallet: spend blocks, scheme membership, and the creation of a
//! contact with its wallet; ledger entries as the API shows them.

use super::*;

impl WalletActor {
    pub(super) fn spend_block(
        &mut self,
        blocked: bool,
        reason: Option<String>,
    ) -> Result<Change, Failure> {
        let mut change = Change::new(self.contact.clone(), self.wallet.clone(), "spend_block");
        change.contact.spend_blocked = blocked;
        change.contact.spend_block_reason = if blocked { reason } else { None };
        change.reply = Reply {
            status: StatusCode::OK,
            body: crate::json_bytes(&render_contact(&self.whole_contact(&change.contact)?)),
        };
        Ok(change)
    }

    pub(super) fn scheme(
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
            let event_id = self.app.placement.event_id();
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
    let event_id = app.placement.event_id();
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
    let contact_id = change.contact.id;
    for key in identity_keys {
        change
            .set
            .put_raw(Space::Identities, key, contact_id.as_bytes().to_vec());
    }
    super::stored::put_new(
        &mut change.set,
        app.config.wallet_lots_apart_above,
        &change.wallet,
    );
    change.set.put(
        Space::ContactStates,
        keys::contact_state_key(contact_id),
        &change.contact,
    );
    change.set.put(
        Space::Contacts,
        keys::contact_key(contact_id),
        &ContactRecord::from(&contact),
    );
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
        "estimate_id": entry.estimate_id.map(|e| e.to_string()),
        "at": entry.at.to_rfc3339(),
        "balances_after": {
            "commerce": c.format(entry.balances_after.commerce),
            "open": c.format(entry.balances_after.open),
            "reserved": c.format(entry.balances_after.reserved),
        },
    })
}
