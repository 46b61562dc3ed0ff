//! Event records: what the server stores for each customer event.
//!
//! An event is stored once under its id, with two index entries: by business and time (the
//! business's event list) and by contact and time (a contact's activity), both newest-first
//! readable by reverse scans (their keys are in [`crate::schema::keys`]).

use rewards_core::identity::Identity;
use rewards_core::offer::Redemption;
use rewards_core::purchase::ValidatedPurchase;
use rewards_core::wallet::Balances;
use rewards_core::{
    BusinessId, ContactId, EventId, LotId, MerchantId, Money, OfferId, ProcessorId, Timestamp,
    WalletId,
};
use serde::{Deserialize, Serialize};

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EventType {
    Purchase,
    Achievement,
    Referral,
    SpendRequest,
    SignUp,
    TierReached,
    Topup,
    /// New variants go at the end: the variant's number is stored.
    FinancialStatement,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Purchase => "purchase",
            EventType::Achievement => "achievement",
            EventType::Referral => "referral",
            EventType::SpendRequest => "spend_request",
            EventType::SignUp => "sign_up",
            EventType::TierReached => "tier_reached",
            EventType::Topup => "top_up",
            EventType::FinancialStatement => "financial_statement",
        }
    }
    pub fn parse(text: &str) -> Option<EventType> {
        [
            EventType::Purchase,
            EventType::Achievement,
            EventType::Referral,
            EventType::SpendRequest,
            EventType::SignUp,
            EventType::TierReached,
            EventType::Topup,
            EventType::FinancialStatement,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EventState {
    Posted,
    Cancelled,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AwardRecord {
    pub offer_id: OfferId,
    pub amount: Money,
    pub redeem: Redemption,
    pub expires_at: Option<Timestamp>,
    pub lot_id: LotId,
    pub merchant_id: Option<MerchantId>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SpendRecord {
    /// `None`: "all".
    pub requested: Option<Money>,
    pub spent: Money,
    pub front_end: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PaymentMediumRecord {
    pub identifier: Option<String>,
    pub brand: Option<String>,
    pub kind: Option<String>,
}

/// What was returned of a purchase so far, and what that reversed.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ReturnsRecord {
    pub returned_lines: Vec<(String, rust_decimal::Decimal)>,
    pub returned_amount: Money,
    pub clawed_back: Money,
    pub refunded: Money,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    pub event_type: EventType,
    pub business_id: BusinessId,
    pub contact_id: ContactId,
    pub wallet_id: WalletId,
    pub state: EventState,
    pub origin: String,
    pub performed_on: Timestamp,
    pub created_at: Timestamp,
    pub classification: Option<String>,
    pub reference_number: Option<String>,
    pub tap_code: Option<String>,
    pub merchant_id: Option<MerchantId>,
    pub external_system: String,
    pub external_reference: Option<String>,
    pub identity: Option<Identity>,
    pub purchase: Option<ValidatedPurchase>,
    pub payment_medium: Option<PaymentMediumRecord>,
    pub amount: Option<Money>,
    pub awards: Vec<AwardRecord>,
    pub spend: Option<SpendRecord>,
    pub wallet_after: Balances,
    pub spendable_after: Money,
    pub returns: ReturnsRecord,
    pub cancelled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    /// How processor routing brought the purchase about, when it did.
    pub route: Option<RouteFacts>,
    /// What an achievement event was (format version 3).
    pub achievement: Option<AchievementRecord>,
    /// A financial statement's period and KPIs (format version 4).
    pub statement: Option<StatementRecord>,
    /// The event this one acts on: a spend request's purchase (format version 5).
    pub of_event: Option<EventId>,
    /// On a purchase: what later spend requests spent on it, less what their voids gave back
    /// (format version 5).
    pub later_spent: Money,
    /// On a referral: who referred whom, and the other side's event (format version 6; the
    /// last field).
    pub referral: Option<ReferralRecord>,
}

/// A referral is two events, one on each side's wallet, each naming the other (SPEC section 4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReferralRecord {
    pub referrer_id: ContactId,
    pub referred_id: ContactId,
    /// The referrer's event on the referred side, the referred contact's on the referrer's.
    pub other_event_id: EventId,
}

/// A contact's key performance indicators for a month (SPEC section 4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StatementRecord {
    /// `YYYY-MM`.
    pub period: String,
    pub kpis: Vec<KpiRecord>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KpiRecord {
    pub name: String,
    pub product_sku: Option<String>,
    pub value: rust_decimal::Decimal,
}

impl EventRecord {
    /// A posted event of the contact's wallet with nothing but its ids, type and time: what
    /// every operation fills in.
    pub fn posted(
        id: EventId,
        event_type: EventType,
        business_id: BusinessId,
        contact_id: ContactId,
        wallet_id: WalletId,
        now: Timestamp,
    ) -> EventRecord {
        EventRecord {
            id,
            event_type,
            business_id,
            contact_id,
            wallet_id,
            state: EventState::Posted,
            origin: "backend".into(),
            performed_on: now,
            created_at: now,
            classification: None,
            reference_number: None,
            tap_code: None,
            merchant_id: None,
            external_system: String::new(),
            external_reference: None,
            identity: None,
            purchase: None,
            payment_medium: None,
            amount: None,
            awards: Vec::new(),
            spend: None,
            wallet_after: Default::default(),
            spendable_after: Money::ZERO,
            returns: ReturnsRecord::default(),
            cancelled_at: None,
            cancel_reason: None,
            route: None,
            achievement: None,
            statement: None,
            of_event: None,
            later_spent: Money::ZERO,
            referral: None,
        }
    }
}

/// The kind of an achievement and the details that go with it (SPEC section 4).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct AchievementRecord {
    pub kind: rewards_core::offer::AchievementKind,
    /// A financial achievement's product (a loan, an account).
    pub product_sku: Option<String>,
    /// A social media action: where, whose profile, what (a "like").
    pub platform: Option<String>,
    pub profile: Option<String>,
    pub action: Option<String>,
    /// A web achievement's visited URL.
    pub url: Option<String>,
}

/// Where a POS purchase stands in `match` mode (API.md `match_state`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MatchState {
    Pending,
    Matched,
    Unmatched,
}

impl MatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchState::Pending => "pending",
            MatchState::Matched => "matched",
            MatchState::Unmatched => "unmatched",
        }
    }
}

/// What a purchase owes to processor routing: its match, its claim, its transaction.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct RouteFacts {
    pub match_state: Option<MatchState>,
    /// The code it was claimed with, shown `XXXX-XXXX`.
    pub claim_code: Option<String>,
    pub transaction_reference: Option<String>,
    pub processor_id: Option<ProcessorId>,
}
