//! The wallet ledger: award lots, open and reserved balances, and every operation on them as
//! double-entry postings (SPEC sections 3 and 10).

use crate::ids::{BusinessId, ContactId, EntryId, EstimateId, EventId, LotId, MerchantId, OfferId, WalletId};
use crate::money::{Currency, Money};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Who pays for an award.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Funding {
    Business,
    Merchant(MerchantId),
}

/// Awarded money not yet redeemed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Lot {
    pub id: LotId,
    pub amount: Money,
    /// What is still in commerce: amount minus what was redeemed, expired or clawed back.
    pub remaining: Money,
    pub expires_at: Option<Timestamp>,
    pub offer_id: Option<OfferId>,
    pub event_id: EventId,
    pub funding: Funding,
    /// Set by the expiry entry, which happens once per lot.
    pub expired: bool,
}

/// Spendable money reserved by a purchase estimate.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hold {
    pub estimate_id: EstimateId,
    pub amount: Money,
}

/// The accounts postings are made on: the wallet's own three, and the business's counterparty
/// accounts.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Account {
    Commerce,
    Open,
    Reserved,
    AwardFunding,
    MerchantFunding(MerchantId),
    SpendSettlement,
    Expiry,
    Payouts,
    TopUps,
    /// The counterpart of reserved money while it is held.
    Holds,
}

impl Account {
    pub fn is_wallet(self) -> bool {
        matches!(self, Account::Commerce | Account::Open | Account::Reserved)
    }
}

/// One side of an entry: a signed amount on an account (positive increases the account).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Posting {
    pub account: Account,
    pub amount: Money,
}

#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum EntryKind {
    Award,
    Redeem,
    Spend,
    Hold,
    Release,
    Capture,
    Expire,
    Clawback,
    Refund,
    Topup,
    Payout,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Award => "award",
            EntryKind::Redeem => "redeem",
            EntryKind::Spend => "spend",
            EntryKind::Hold => "hold",
            EntryKind::Release => "release",
            EntryKind::Capture => "capture",
            EntryKind::Expire => "expire",
            EntryKind::Clawback => "clawback",
            EntryKind::Refund => "refund",
            EntryKind::Topup => "topup",
            EntryKind::Payout => "payout",
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Balances {
    pub commerce: Money,
    pub open: Money,
    pub reserved: Money,
}

/// A double-entry ledger entry of one wallet. Its postings sum to zero.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Per wallet, from 0, without gaps.
    pub seq: u64,
    pub kind: EntryKind,
    /// Positive; the kind gives the direction.
    pub amount: Money,
    pub event_id: Option<EventId>,
    pub lot_id: Option<LotId>,
    pub estimate_id: Option<EstimateId>,
    pub at: Timestamp,
    pub postings: Vec<Posting>,
    pub balances_after: Balances,
}

impl LedgerEntry {
    pub fn id(&self, wallet: WalletId) -> EntryId {
        EntryId::for_wallet(wallet, self.seq)
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Wallet {
    pub id: WalletId,
    pub contact_id: ContactId,
    pub business_id: BusinessId,
    pub currency: Currency,
    pub lots: Vec<Lot>,
    pub open: Money,
    pub reserved: Money,
    pub holds: Vec<Hold>,
    /// The sequence number of the next ledger entry.
    pub next_seq: u64,
}
