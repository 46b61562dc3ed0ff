//! How an event names its contact: exactly one identity.

use crate::error::{DomainError, FieldError};
use crate::ids::ContactId;
use serde::{Deserialize, Serialize};

/// The longest identifier (codes, card numbers, tokens): identities are keys of the store.
pub const MAX_IDENTIFIER_CHARS: usize = 256;

#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Identity {
    WalletCode(String),
    Otp(String),
    ContactId(ContactId),
    ContactCode(String),
    Cim(String),
    GiftCard(String),
    PaymentMediumIdentifier(String),
}

impl Identity {
    /// The identity object's field that names this kind of identity.
    pub fn field_name(&self) -> &'static str {
        match self {
            Identity::WalletCode(_) => "wallet_code",
            Identity::Otp(_) => "otp",
            Identity::ContactId(_) => "contact_id",
            Identity::ContactCode(_) => "contact_code",
            Identity::Cim(_) => "cim",
            Identity::GiftCard(_) => "gift_card",
            Identity::PaymentMediumIdentifier(_) => "payment_medium_identifier",
        }
    }
}

/// The identity object as a caller sends it: every field optional, exactly one must be given.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct IdentityInput {
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub wallet_code: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub otp: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub contact_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub contact_code: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub cim: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub gift_card: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 256))]
    pub payment_medium_identifier: Option<String>,
}

impl IdentityInput {
    /// Exactly one identity; two or more (or none) is `validation_failed` on field `field`.
    pub fn validate(&self, field: &str) -> Result<Identity, DomainError> {
        let mut found: Vec<Identity> = Vec::with_capacity(1);
        let mut push_text = |value: &Option<String>, make: fn(String) -> Identity| {
            if let Some(v) = value {
                found.push(make(v.trim().to_string()));
            }
        };
        push_text(&self.wallet_code, Identity::WalletCode);
        push_text(&self.otp, Identity::Otp);
        push_text(&self.contact_code, Identity::ContactCode);
        push_text(&self.cim, Identity::Cim);
        push_text(&self.gift_card, Identity::GiftCard);
        push_text(
            &self.payment_medium_identifier,
            Identity::PaymentMediumIdentifier,
        );
        if let Some(id) = &self.contact_id {
            // A malformed id names no contact: the nil id is never assigned, so the lookup
            // answers contact_not_found like any other unknown identity.
            found.push(Identity::ContactId(
                id.trim().parse::<ContactId>().unwrap_or(ContactId::NIL),
            ));
        }
        let identity = match (found.pop(), found.is_empty()) {
            (Some(identity), true) => identity,
            (None, _) => {
                return Err(FieldError::new(field, "exactly one identity is required").into())
            }
            (Some(_), false) => {
                return Err(FieldError::new(field, "give exactly one identity, not several").into())
            }
        };
        if identity_text(&identity).is_some_and(str::is_empty) {
            return Err(FieldError::new(field, "must not be empty").into());
        }
        if identity_text(&identity).is_some_and(|t| t.chars().count() > MAX_IDENTIFIER_CHARS) {
            return Err(FieldError::new(
                format!("{field}.{}", identity.field_name()),
                format!("must be at most {MAX_IDENTIFIER_CHARS} characters"),
            )
            .into());
        }
        Ok(identity)
    }
}

fn identity_text(identity: &Identity) -> Option<&str> {
    match identity {
        Identity::ContactId(_) => None,
        Identity::WalletCode(s)
        | Identity::Otp(s)
        | Identity::ContactCode(s)
        | Identity::Cim(s)
        | Identity::GiftCard(s)
        | Identity::PaymentMediumIdentifier(s) => Some(s),
    }
}
