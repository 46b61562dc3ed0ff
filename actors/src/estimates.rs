//! Estimate records: what the server stores for a purchase estimate or a payment request (SPEC
//! section 6), and how the API shows one.
//!
//! An estimate belongs to its contact's wallet actor, which alone creates it, moves it through
//! its states and resolves its hold. It is stored under its id; while it holds money, an index
//! entry by expiry names its contact, so start-up can wake the actors whose holds must expire.

use rewards_core::estimate::{Estimate, EstimateState};
use rewards_core::offer::Redemption;
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::{Currency, EventId, MerchantId, Money, OfferId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::dto::purchase::{render_lines, render_purchase_amounts};

/// An award the estimated purchase would give.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EstimatedAward {
    pub offer_id: OfferId,
    pub amount: Money,
    pub redeem: Redemption,
    pub expires_at: Option<Timestamp>,
}

/// The spend an estimate was asked for: `requested` `None` is "all".
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EstimatedSpend {
    pub requested: Option<Money>,
    pub require_full: bool,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct EstimateRecord {
    /// Ids, state, expiry, the held amount and the total: the core's state machine.
    pub estimate: Estimate,
    /// A payment request: the contact approves or rejects it.
    pub approval_required: bool,
    /// The basket, with the identity it was presented with (a purchase that names the estimate
    /// repeats it).
    pub purchase: ValidatedPurchase,
    pub performed_on: Timestamp,
    pub classification: Option<String>,
    pub reference_number: Option<String>,
    pub tap_code: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub spend: Option<EstimatedSpend>,
    /// What the contact could spend before this estimate's own hold.
    pub spendable: Money,
    /// What the purchase would spend, its own instant awards included.
    pub would_spend: Money,
    pub awards: Vec<EstimatedAward>,
    /// The purchase that consumed it.
    pub purchase_id: Option<EventId>,
    /// When it left its open states (consumed, rejected, expired, cancelled).
    pub resolved_at: Option<Timestamp>,
}

impl EstimateRecord {
    /// The estimate as the API shows it at `now` (an open estimate past its expiry shows as
    /// expired even before its actor has released the hold).
    pub fn render(&self, currency: Currency, now: Timestamp) -> Value {
        let e = &self.estimate;
        let (amounts, original_amounts) = render_purchase_amounts(currency, &self.purchase);
        let state = e.effective_state(now);
        // A hold that is no longer there (released, or captured by its purchase) shows as zero.
        let held = match state {
            EstimateState::Estimated | EstimateState::PendingApproval | EstimateState::Approved => {
                e.held
            }
            _ => Money::ZERO,
        };
        json!({
            "id": e.id.to_string(),
            "type": "estimate",
            "business_id": e.business_id.to_string(),
            "contact_id": e.contact_id.to_string(),
            "wallet_id": e.wallet_id.to_string(),
            "state": state.as_str(),
            "approval": if self.approval_required { "required" } else { "none" },
            "created_at": e.created_at.to_rfc3339(),
            "expires_at": e.expires_at.to_rfc3339(),
            "resolved_at": self.resolved_at.map(|t| t.to_rfc3339()),
            "performed_on": self.performed_on.to_rfc3339(),
            "reference_number": self.reference_number,
            "classification": self.classification,
            "tap_code": self.tap_code,
            "currency": self.purchase.currency.code(),
            "original_currency": self.purchase.original_currency.code(),
            "amounts": amounts,
            "original_amounts": original_amounts,
            "lines": render_lines(currency, &self.purchase),
            "awards": self.awards.iter().map(|a| json!({
                "offer_id": a.offer_id.to_string(),
                "amount": currency.format(a.amount),
                "redeem": a.redeem.as_str(),
                "expires_at": a.expires_at.map(|t| t.to_rfc3339()),
            })).collect::<Vec<_>>(),
            "spend": {
                "requested": self.spend.as_ref().map(|s| match s.requested {
                    Some(amount) => currency.format(amount),
                    None => "all".to_string(),
                }),
                "require_full": self.spend.as_ref().is_some_and(|s| s.require_full),
                "spendable": currency.format(self.spendable),
                "would_spend": currency.format(self.would_spend),
                "held": currency.format(held),
            },
            "purchase_id": self.purchase_id.map(|id| id.to_string()),
        })
    }
}
