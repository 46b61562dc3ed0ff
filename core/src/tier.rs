//! Tiers: value units over a rolling period or a lifetime, and the level they reach.

use serde::{Deserialize, Serialize};

/// A contact's value units still counting towards its tier.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct TierProgress {}
