//! The rewards engine: given an event, the contact's reward state and the active offers, the
//! awards and counter updates, deterministically.

use serde::{Deserialize, Serialize};

/// Per-offer counters of one contact (limits, visits, monthly targets).
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct OfferCounters {}
