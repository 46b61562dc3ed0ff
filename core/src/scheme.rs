//! Reward schemes and their sign-up rules.

use crate::ids::{BusinessId, SchemeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SignUp {
    /// Every contact is a member from creation.
    Auto,
    /// The contact opts in and out.
    SelfService,
    /// Closed loop: the contact's email must be in one of these domains.
    EmailDomain(Vec<String>),
    /// Closed loop: the contact gives one of the business's imported codes, each usable once.
    Code,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Scheme {
    pub id: SchemeId,
    pub business_id: BusinessId,
    pub name: String,
    pub sign_up: SignUp,
    pub active: bool,
}
