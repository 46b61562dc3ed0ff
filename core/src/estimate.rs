//! Purchase estimates: the state machine of SPEC section 6 and the effect of each step on holds.
//!
//! `estimated` -> `consumed`; `pending_approval` -> `approved` -> `consumed`;
//! `pending_approval` -> `rejected`; any open state -> `expired` or `cancelled`. Holds are
//! released on `rejected`, `expired` and `cancelled`, and captured when consumed.

use crate::error::DomainError;
use crate::ids::{BusinessId, ContactId, EstimateId, WalletId};
use crate::money::Money;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum EstimateState {
    Estimated,
    PendingApproval,
    Approved,
    Consumed,
    Rejected,
    Expired,
    Cancelled,
}

impl EstimateState {
    pub fn as_str(self) -> &'static str {
        match self {
            EstimateState::Estimated => "estimated",
            EstimateState::PendingApproval => "pending_approval",
            EstimateState::Approved => "approved",
            EstimateState::Consumed => "consumed",
            EstimateState::Rejected => "rejected",
            EstimateState::Expired => "expired",
            EstimateState::Cancelled => "cancelled",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(
            self,
            EstimateState::Estimated | EstimateState::PendingApproval | EstimateState::Approved
        )
    }
}

/// What a transition does to the estimate's hold.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum HoldEffect {
    None,
    Release,
    Capture,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Estimate {
    pub id: EstimateId,
    pub business_id: BusinessId,
    pub contact_id: ContactId,
    pub wallet_id: WalletId,
    pub state: EstimateState,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Money reserved by the estimate's hold (zero without a hold).
    pub held: Money,
    pub total: Money,
}

impl Estimate {
    /// The state at `now`: an open estimate past its expiry is expired.
    pub fn effective_state(&self, now: Timestamp) -> EstimateState {
        if self.state.is_open() && now >= self.expires_at {
            EstimateState::Expired
        } else {
            self.state
        }
    }

    fn hold_effect(&self) -> HoldEffect {
        if self.held.is_positive() {
            HoldEffect::Release
        } else {
            HoldEffect::None
        }
    }

    fn invalid(&self, now: Timestamp) -> DomainError {
        DomainError::InvalidState(self.effective_state(now).as_str().to_string())
    }

    /// The contact approves a payment request.
    pub fn approve(&mut self, now: Timestamp) -> Result<HoldEffect, DomainError> {
        match self.effective_state(now) {
            EstimateState::PendingApproval => {
                self.state = EstimateState::Approved;
                Ok(HoldEffect::None)
            }
            _ => Err(self.invalid(now)),
        }
    }

    /// The contact rejects a payment request: its hold is released.
    pub fn reject(&mut self, now: Timestamp) -> Result<HoldEffect, DomainError> {
        match self.effective_state(now) {
            EstimateState::PendingApproval => {
                self.state = EstimateState::Rejected;
                Ok(self.hold_effect())
            }
            _ => Err(self.invalid(now)),
        }
    }

    /// The POS or business cancels an open estimate: its hold is released.
    pub fn cancel(&mut self, now: Timestamp) -> Result<HoldEffect, DomainError> {
        if self.effective_state(now).is_open() {
            self.state = EstimateState::Cancelled;
            Ok(self.hold_effect())
        } else {
            Err(self.invalid(now))
        }
    }

    /// Expires an open estimate at or after its expiry; anything else is left alone.
    pub fn expire(&mut self, now: Timestamp) -> HoldEffect {
        if self.state.is_open() && now >= self.expires_at {
            self.state = EstimateState::Expired;
            self.hold_effect()
        } else {
            HoldEffect::None
        }
    }

    /// A purchase names the estimate: it must be usable, and then its hold is captured.
    pub fn consume(&mut self, now: Timestamp) -> Result<HoldEffect, DomainError> {
        match self.effective_state(now) {
            EstimateState::Estimated | EstimateState::Approved => {
                self.state = EstimateState::Consumed;
                Ok(if self.held.is_positive() {
                    HoldEffect::Capture
                } else {
                    HoldEffect::None
                })
            }
            EstimateState::PendingApproval => Err(DomainError::EstimateNotApproved),
            EstimateState::Consumed => Err(DomainError::EstimateConsumed),
            EstimateState::Expired => Err(DomainError::EstimateExpired),
            EstimateState::Rejected | EstimateState::Cancelled => Err(self.invalid(now)),
        }
    }
}
