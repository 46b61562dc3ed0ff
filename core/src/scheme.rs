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

/// May a contact join `scheme`? `email` is the contact's; `code_unused` says whether the code the
/// contact gave is one of the scheme's imported codes and still unused (`None`: no code given).
pub fn check_sign_up(
    scheme: &Scheme,
    email: Option<&str>,
    code_unused: Option<bool>,
) -> Result<(), crate::DomainError> {
    use crate::DomainError;
    if !scheme.active {
        return Err(DomainError::InvalidState("the scheme is inactive".into()));
    }
    match &scheme.sign_up {
        SignUp::Auto | SignUp::SelfService => Ok(()),
        SignUp::EmailDomain(domains) => {
            let domain = email
                .and_then(|e| e.rsplit_once('@'))
                .map(|(_, d)| d.to_ascii_lowercase());
            match domain {
                Some(d) if domains.iter().any(|x| x.eq_ignore_ascii_case(&d)) => Ok(()),
                _ => Err(DomainError::validation(
                    "email",
                    "the email's domain is not one of the scheme's domains",
                )),
            }
        }
        SignUp::Code => match code_unused {
            Some(true) => Ok(()),
            Some(false) => Err(DomainError::validation(
                "code",
                "the code is unknown or already used",
            )),
            None => Err(DomainError::validation(
                "code",
                "is required to join this scheme",
            )),
        },
    }
}

/// Auto schemes cannot be left: every contact is a member.
pub fn check_sign_out(scheme: &Scheme) -> Result<(), crate::DomainError> {
    match scheme.sign_up {
        SignUp::Auto => Err(crate::DomainError::InvalidState(
            "contacts cannot leave an auto scheme".into(),
        )),
        _ => Ok(()),
    }
}
