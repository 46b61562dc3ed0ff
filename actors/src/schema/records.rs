//! The stored form of the core's wallets, ledger entries, lots and contacts, and of the
//! configuration.
//!
//! Each core type that is stored has a record type here with the same fields in the same order,
//! and conversions both ways that keep every field. The records' serde derives, not the core's,
//! decide the bytes on disk: a change to a core struct shows up here as a conversion that no
//! longer compiles, and the format changes only when a record does (with a new version).

use rewards_core::business::{Business, Merchant, Tap};
use rewards_core::contact::{Contact, ContactRewards, PaymentMedium};
use rewards_core::engine::{OfferCounter, OfferCounters};
use rewards_core::offer::Offer;
use rewards_core::referral::ReferralCounter;
use rewards_core::scheme::Scheme;
use rewards_core::tier::{TierConfig, TierProgress};
use rewards_core::wallet::{
    Account, Balances, EntryKind, Funding, Hold, LedgerEntry, Lot, Posting, Wallet,
};
use rewards_core::{
    BusinessId, ContactId, Currency, EstimateId, EventId, LotId, MerchantId, Money, OfferId,
    SchemeId, Timestamp, WalletId,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::registry::Processor;

// ---- Wallets ----

/// A wallet's state, with its open lots inline while they are few. From format 2 on, a wallet
/// with many lots stores them apart (one [`OpenLotRecord`] each, in `open_lots`) and `lots` is
/// written empty; format 1 always held them inline. From format 3 on the lots are written each
/// against the one before it (`schema::lots`); formats 1 and 2 wrote them whole.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WalletRecord {
    pub id: WalletId,
    pub contact_id: ContactId,
    pub business_id: BusinessId,
    pub currency: Currency,
    #[serde(with = "super::lots::sequence")]
    pub lots: Vec<LotRecord>,
    pub open: Money,
    pub reserved: Money,
    pub holds: Vec<HoldRecord>,
    pub auto_payable: Money,
    pub next_seq: u64,
    /// The open lots are stored apart (`lots` is then empty); format 1 had no such field.
    pub lots_apart: bool,
}

impl WalletRecord {
    /// The record of `wallet`: with its lots inline, or, `lots_apart`, without them (they are
    /// then stored one by one, see `wallets::stored`).
    pub fn of(wallet: &Wallet, lots_apart: bool) -> WalletRecord {
        let Wallet {
            id,
            contact_id,
            business_id,
            currency,
            lots,
            open,
            reserved,
            holds,
            auto_payable,
            next_seq,
        } = wallet;
        WalletRecord {
            id: *id,
            contact_id: *contact_id,
            business_id: *business_id,
            currency: *currency,
            lots: if lots_apart {
                Vec::new()
            } else {
                lots.iter().map(LotRecord::from).collect()
            },
            open: *open,
            reserved: *reserved,
            holds: holds.iter().map(HoldRecord::from).collect(),
            auto_payable: *auto_payable,
            next_seq: *next_seq,
            lots_apart,
        }
    }
}

impl From<&Wallet> for WalletRecord {
    fn from(wallet: &Wallet) -> WalletRecord {
        WalletRecord::of(wallet, false)
    }
}

/// A wallet with the lots its record holds: none when they are apart (`lots_apart`), which
/// `wallets::stored` reads from `open_lots`. Read wallets through it, not through this.
impl From<WalletRecord> for Wallet {
    fn from(record: WalletRecord) -> Wallet {
        Wallet {
            id: record.id,
            contact_id: record.contact_id,
            business_id: record.business_id,
            currency: record.currency,
            lots: record.lots.into_iter().map(Lot::from).collect(),
            open: record.open,
            reserved: record.reserved,
            holds: record.holds.into_iter().map(Hold::from).collect(),
            auto_payable: record.auto_payable,
            next_seq: record.next_seq,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HoldRecord {
    pub estimate_id: EstimateId,
    pub amount: Money,
}

impl From<&Hold> for HoldRecord {
    fn from(hold: &Hold) -> HoldRecord {
        let Hold {
            estimate_id,
            amount,
        } = hold;
        HoldRecord {
            estimate_id: *estimate_id,
            amount: *amount,
        }
    }
}

impl From<HoldRecord> for Hold {
    fn from(record: HoldRecord) -> Hold {
        Hold {
            estimate_id: record.estimate_id,
            amount: record.amount,
        }
    }
}

// ---- Lots (in a wallet, and closed ones on their own) ----

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LotRecord {
    pub id: LotId,
    pub amount: Money,
    pub remaining: Money,
    pub expires_at: Option<Timestamp>,
    pub offer_id: Option<OfferId>,
    pub event_id: EventId,
    pub funding: FundingRecord,
    pub expired: bool,
    pub redeemed: Money,
    pub expired_amount: Money,
    pub clawed_back_commerce: Money,
    pub clawed_back_open: Money,
}

impl From<&Lot> for LotRecord {
    fn from(lot: &Lot) -> LotRecord {
        let Lot {
            id,
            amount,
            remaining,
            expires_at,
            offer_id,
            event_id,
            funding,
            expired,
            redeemed,
            expired_amount,
            clawed_back_commerce,
            clawed_back_open,
        } = lot;
        LotRecord {
            id: *id,
            amount: *amount,
            remaining: *remaining,
            expires_at: *expires_at,
            offer_id: *offer_id,
            event_id: *event_id,
            funding: FundingRecord::from(*funding),
            expired: *expired,
            redeemed: *redeemed,
            expired_amount: *expired_amount,
            clawed_back_commerce: *clawed_back_commerce,
            clawed_back_open: *clawed_back_open,
        }
    }
}

impl From<LotRecord> for Lot {
    fn from(record: LotRecord) -> Lot {
        Lot {
            id: record.id,
            amount: record.amount,
            remaining: record.remaining,
            expires_at: record.expires_at,
            offer_id: record.offer_id,
            event_id: record.event_id,
            funding: Funding::from(record.funding),
            expired: record.expired,
            redeemed: record.redeemed,
            expired_amount: record.expired_amount,
            clawed_back_commerce: record.clawed_back_commerce,
            clawed_back_open: record.clawed_back_open,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FundingRecord {
    Business,
    Merchant(MerchantId),
}

impl From<Funding> for FundingRecord {
    fn from(funding: Funding) -> FundingRecord {
        match funding {
            Funding::Business => FundingRecord::Business,
            Funding::Merchant(id) => FundingRecord::Merchant(id),
        }
    }
}

impl From<FundingRecord> for Funding {
    fn from(record: FundingRecord) -> Funding {
        match record {
            FundingRecord::Business => Funding::Business,
            FundingRecord::Merchant(id) => Funding::Merchant(id),
        }
    }
}

/// The lots of one event that one operation closed. From format 2 on each is written against
/// the one before it (`schema::lots`); format 1 wrote them whole.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LotsRecord(#[serde(with = "super::lots::sequence")] pub Vec<LotRecord>);

impl From<&[Lot]> for LotsRecord {
    fn from(lots: &[Lot]) -> LotsRecord {
        LotsRecord(lots.iter().map(LotRecord::from).collect())
    }
}

impl From<LotsRecord> for Vec<Lot> {
    fn from(record: LotsRecord) -> Vec<Lot> {
        record.0.into_iter().map(Lot::from).collect()
    }
}

/// One open lot of a wallet, stored apart from the wallet's record, with its place among the
/// wallet's lots (lots are spent in that order when their expiries tie). From format 2 on the
/// lot's id is written as its index among its event's lots when it is one (`schema::lots`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OpenLotRecord {
    pub order: u64,
    #[serde(with = "super::lots::single")]
    pub lot: LotRecord,
}

// ---- Ledger ----

/// The ledger entries one operation posted, in sequence order. From format 2 on each entry is
/// written against the one before it, leaving out what it repeats (see `schema::ledger`);
/// format 1 wrote every entry whole, as [`LedgerEntryRecord`]'s derives do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LedgerEntriesRecord(pub Vec<LedgerEntryRecord>);

impl From<&[LedgerEntry]> for LedgerEntriesRecord {
    fn from(entries: &[LedgerEntry]) -> LedgerEntriesRecord {
        LedgerEntriesRecord(entries.iter().map(LedgerEntryRecord::from).collect())
    }
}

impl From<LedgerEntriesRecord> for Vec<LedgerEntry> {
    fn from(record: LedgerEntriesRecord) -> Vec<LedgerEntry> {
        record.0.into_iter().map(LedgerEntry::from).collect()
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LedgerEntryRecord {
    pub seq: u64,
    pub kind: EntryKindRecord,
    pub amount: Money,
    pub event_id: Option<EventId>,
    pub lot_id: Option<LotId>,
    pub estimate_id: Option<EstimateId>,
    pub at: Timestamp,
    /// Encoded as a sequence, the same bytes as the `Vec` it was before; read through a `Vec`,
    /// so a corrupt length cannot make the decoder reserve gigabytes.
    #[serde(deserialize_with = "rewards_core::wallet::seq_via_vec")]
    pub postings: SmallVec<[PostingRecord; 3]>,
    pub balances_after: BalancesRecord,
}

impl From<&LedgerEntry> for LedgerEntryRecord {
    fn from(entry: &LedgerEntry) -> LedgerEntryRecord {
        let LedgerEntry {
            seq,
            kind,
            amount,
            event_id,
            lot_id,
            estimate_id,
            at,
            postings,
            balances_after,
        } = entry;
        LedgerEntryRecord {
            seq: *seq,
            kind: EntryKindRecord::from(*kind),
            amount: *amount,
            event_id: *event_id,
            lot_id: *lot_id,
            estimate_id: *estimate_id,
            at: *at,
            postings: postings.iter().map(PostingRecord::from).collect(),
            balances_after: BalancesRecord::from(balances_after),
        }
    }
}

impl From<LedgerEntryRecord> for LedgerEntry {
    fn from(record: LedgerEntryRecord) -> LedgerEntry {
        LedgerEntry {
            seq: record.seq,
            kind: EntryKind::from(record.kind),
            amount: record.amount,
            event_id: record.event_id,
            lot_id: record.lot_id,
            estimate_id: record.estimate_id,
            at: record.at,
            postings: record.postings.into_iter().map(Posting::from).collect(),
            balances_after: Balances::from(record.balances_after),
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EntryKindRecord {
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

impl From<EntryKind> for EntryKindRecord {
    fn from(kind: EntryKind) -> EntryKindRecord {
        match kind {
            EntryKind::Award => EntryKindRecord::Award,
            EntryKind::Redeem => EntryKindRecord::Redeem,
            EntryKind::Spend => EntryKindRecord::Spend,
            EntryKind::Hold => EntryKindRecord::Hold,
            EntryKind::Release => EntryKindRecord::Release,
            EntryKind::Capture => EntryKindRecord::Capture,
            EntryKind::Expire => EntryKindRecord::Expire,
            EntryKind::Clawback => EntryKindRecord::Clawback,
            EntryKind::Refund => EntryKindRecord::Refund,
            EntryKind::Topup => EntryKindRecord::Topup,
            EntryKind::Payout => EntryKindRecord::Payout,
        }
    }
}

impl From<EntryKindRecord> for EntryKind {
    fn from(record: EntryKindRecord) -> EntryKind {
        match record {
            EntryKindRecord::Award => EntryKind::Award,
            EntryKindRecord::Redeem => EntryKind::Redeem,
            EntryKindRecord::Spend => EntryKind::Spend,
            EntryKindRecord::Hold => EntryKind::Hold,
            EntryKindRecord::Release => EntryKind::Release,
            EntryKindRecord::Capture => EntryKind::Capture,
            EntryKindRecord::Expire => EntryKind::Expire,
            EntryKindRecord::Clawback => EntryKind::Clawback,
            EntryKindRecord::Refund => EntryKind::Refund,
            EntryKindRecord::Topup => EntryKind::Topup,
            EntryKindRecord::Payout => EntryKind::Payout,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PostingRecord {
    pub account: AccountRecord,
    pub amount: Money,
}

impl From<&Posting> for PostingRecord {
    fn from(posting: &Posting) -> PostingRecord {
        let Posting { account, amount } = posting;
        PostingRecord {
            account: AccountRecord::from(*account),
            amount: *amount,
        }
    }
}

impl From<PostingRecord> for Posting {
    fn from(record: PostingRecord) -> Posting {
        Posting {
            account: Account::from(record.account),
            amount: record.amount,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum AccountRecord {
    Commerce,
    Open,
    Reserved,
    AwardFunding,
    MerchantFunding(MerchantId),
    SpendSettlement,
    Expiry,
    Payouts,
    TopUps,
    Holds,
}

impl From<Account> for AccountRecord {
    fn from(account: Account) -> AccountRecord {
        match account {
            Account::Commerce => AccountRecord::Commerce,
            Account::Open => AccountRecord::Open,
            Account::Reserved => AccountRecord::Reserved,
            Account::AwardFunding => AccountRecord::AwardFunding,
            Account::MerchantFunding(id) => AccountRecord::MerchantFunding(id),
            Account::SpendSettlement => AccountRecord::SpendSettlement,
            Account::Expiry => AccountRecord::Expiry,
            Account::Payouts => AccountRecord::Payouts,
            Account::TopUps => AccountRecord::TopUps,
            Account::Holds => AccountRecord::Holds,
        }
    }
}

impl From<AccountRecord> for Account {
    fn from(record: AccountRecord) -> Account {
        match record {
            AccountRecord::Commerce => Account::Commerce,
            AccountRecord::Open => Account::Open,
            AccountRecord::Reserved => Account::Reserved,
            AccountRecord::AwardFunding => Account::AwardFunding,
            AccountRecord::MerchantFunding(id) => Account::MerchantFunding(id),
            AccountRecord::SpendSettlement => Account::SpendSettlement,
            AccountRecord::Expiry => Account::Expiry,
            AccountRecord::Payouts => Account::Payouts,
            AccountRecord::TopUps => Account::TopUps,
            AccountRecord::Holds => Account::Holds,
        }
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct BalancesRecord {
    pub commerce: Money,
    pub open: Money,
    pub reserved: Money,
}

impl From<&Balances> for BalancesRecord {
    fn from(balances: &Balances) -> BalancesRecord {
        let Balances {
            commerce,
            open,
            reserved,
        } = balances;
        BalancesRecord {
            commerce: *commerce,
            open: *open,
            reserved: *reserved,
        }
    }
}

impl From<BalancesRecord> for Balances {
    fn from(record: BalancesRecord) -> Balances {
        Balances {
            commerce: record.commerce,
            open: record.open,
            reserved: record.reserved,
        }
    }
}

// ---- Contacts ----

/// A contact's profile, written when it is created. The fields its wallet actor owns are in
/// [`crate::contact_state::ContactState`] too, which wins where it exists.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct ContactRecord {
    pub id: ContactId,
    pub business_id: BusinessId,
    pub code: Option<String>,
    pub cim: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub payment_media: Vec<ContactPaymentMediumRecord>,
    pub gift_cards: Vec<String>,
    pub referral_code: String,
    pub wallet_id: WalletId,
    pub wallet_code: String,
    pub scheme_ids: Vec<SchemeId>,
    pub spend_blocked: bool,
    pub spend_block_reason: Option<String>,
    pub referred_by: Option<ContactId>,
    pub created_at: Timestamp,
    pub rewards: ContactRewardsRecord,
}

impl From<&Contact> for ContactRecord {
    fn from(contact: &Contact) -> ContactRecord {
        let Contact {
            id,
            business_id,
            code,
            cim,
            name,
            email,
            phone,
            payment_media,
            gift_cards,
            referral_code,
            wallet_id,
            wallet_code,
            scheme_ids,
            spend_blocked,
            spend_block_reason,
            referred_by,
            created_at,
            rewards,
        } = contact;
        ContactRecord {
            id: *id,
            business_id: *business_id,
            code: code.clone(),
            cim: cim.clone(),
            name: name.clone(),
            email: email.clone(),
            phone: phone.clone(),
            payment_media: payment_media
                .iter()
                .map(ContactPaymentMediumRecord::from)
                .collect(),
            gift_cards: gift_cards.clone(),
            referral_code: referral_code.clone(),
            wallet_id: *wallet_id,
            wallet_code: wallet_code.clone(),
            scheme_ids: scheme_ids.clone(),
            spend_blocked: *spend_blocked,
            spend_block_reason: spend_block_reason.clone(),
            referred_by: *referred_by,
            created_at: *created_at,
            rewards: ContactRewardsRecord::from(rewards),
        }
    }
}

impl From<ContactRecord> for Contact {
    fn from(record: ContactRecord) -> Contact {
        Contact {
            id: record.id,
            business_id: record.business_id,
            code: record.code,
            cim: record.cim,
            name: record.name,
            email: record.email,
            phone: record.phone,
            payment_media: record
                .payment_media
                .into_iter()
                .map(PaymentMedium::from)
                .collect(),
            gift_cards: record.gift_cards,
            referral_code: record.referral_code,
            wallet_id: record.wallet_id,
            wallet_code: record.wallet_code,
            scheme_ids: record.scheme_ids,
            spend_blocked: record.spend_blocked,
            spend_block_reason: record.spend_block_reason,
            referred_by: record.referred_by,
            created_at: record.created_at,
            rewards: ContactRewards::from(record.rewards),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ContactPaymentMediumRecord {
    pub identifier: String,
    pub brand: Option<String>,
    pub kind: Option<String>,
}

impl From<&PaymentMedium> for ContactPaymentMediumRecord {
    fn from(medium: &PaymentMedium) -> ContactPaymentMediumRecord {
        let PaymentMedium {
            identifier,
            brand,
            kind,
        } = medium;
        ContactPaymentMediumRecord {
            identifier: identifier.clone(),
            brand: brand.clone(),
            kind: kind.clone(),
        }
    }
}

impl From<ContactPaymentMediumRecord> for PaymentMedium {
    fn from(record: ContactPaymentMediumRecord) -> PaymentMedium {
        PaymentMedium {
            identifier: record.identifier,
            brand: record.brand,
            kind: record.kind,
        }
    }
}

#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct ContactRewardsRecord {
    pub tier: Option<String>,
    pub tier_progress: TierProgressRecord,
    pub counters: OfferCountersRecord,
    pub referrals: ReferralCounterRecord,
}

impl From<&ContactRewards> for ContactRewardsRecord {
    fn from(rewards: &ContactRewards) -> ContactRewardsRecord {
        let ContactRewards {
            tier,
            tier_progress,
            counters,
            referrals,
        } = rewards;
        ContactRewardsRecord {
            tier: tier.clone(),
            tier_progress: TierProgressRecord::from(tier_progress),
            counters: OfferCountersRecord::from(counters),
            referrals: ReferralCounterRecord::from(referrals),
        }
    }
}

impl From<ContactRewardsRecord> for ContactRewards {
    fn from(record: ContactRewardsRecord) -> ContactRewards {
        ContactRewards {
            tier: record.tier,
            tier_progress: TierProgress::from(record.tier_progress),
            counters: OfferCounters::from(record.counters),
            referrals: ReferralCounter::from(record.referrals),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct TierProgressRecord {
    /// (UTC day, units) in day order.
    pub days: Vec<(i64, Decimal)>,
}

impl From<&TierProgress> for TierProgressRecord {
    fn from(progress: &TierProgress) -> TierProgressRecord {
        let TierProgress { days } = progress;
        TierProgressRecord { days: days.clone() }
    }
}

impl From<TierProgressRecord> for TierProgress {
    fn from(record: TierProgressRecord) -> TierProgress {
        TierProgress { days: record.days }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct OfferCountersRecord {
    pub entries: Vec<(OfferId, OfferCounterRecord)>,
}

impl From<&OfferCounters> for OfferCountersRecord {
    fn from(counters: &OfferCounters) -> OfferCountersRecord {
        let OfferCounters { entries } = counters;
        OfferCountersRecord {
            entries: entries
                .iter()
                .map(|(offer, counter)| (*offer, OfferCounterRecord::from(counter)))
                .collect(),
        }
    }
}

impl From<OfferCountersRecord> for OfferCounters {
    fn from(record: OfferCountersRecord) -> OfferCounters {
        OfferCounters {
            entries: record
                .entries
                .into_iter()
                .map(|(offer, counter)| (offer, OfferCounter::from(counter)))
                .collect(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct OfferCounterRecord {
    pub awards_total: u32,
    pub month: u32,
    pub awards_month: u32,
    pub visits: Vec<Timestamp>,
    pub cumulative_month: u32,
    pub cumulative_amount: Money,
    pub cumulative_awarded: bool,
}

impl From<&OfferCounter> for OfferCounterRecord {
    fn from(counter: &OfferCounter) -> OfferCounterRecord {
        let OfferCounter {
            awards_total,
            month,
            awards_month,
            visits,
            cumulative_month,
            cumulative_amount,
            cumulative_awarded,
        } = counter;
        OfferCounterRecord {
            awards_total: *awards_total,
            month: *month,
            awards_month: *awards_month,
            visits: visits.clone(),
            cumulative_month: *cumulative_month,
            cumulative_amount: *cumulative_amount,
            cumulative_awarded: *cumulative_awarded,
        }
    }
}

impl From<OfferCounterRecord> for OfferCounter {
    fn from(record: OfferCounterRecord) -> OfferCounter {
        OfferCounter {
            awards_total: record.awards_total,
            month: record.month,
            awards_month: record.awards_month,
            visits: record.visits,
            cumulative_month: record.cumulative_month,
            cumulative_amount: record.cumulative_amount,
            cumulative_awarded: record.cumulative_awarded,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ReferralCounterRecord {
    pub day: i64,
    pub count: u32,
}

impl From<&ReferralCounter> for ReferralCounterRecord {
    fn from(counter: &ReferralCounter) -> ReferralCounterRecord {
        let ReferralCounter { day, count } = counter;
        ReferralCounterRecord {
            day: *day,
            count: *count,
        }
    }
}

impl From<ReferralCounterRecord> for ReferralCounter {
    fn from(record: ReferralCounterRecord) -> ReferralCounter {
        ReferralCounter {
            day: record.day,
            count: record.count,
        }
    }
}

// ---- Config ----

/// Configuration lives in one space as one enum, so recovery is one scan and one match.
// Configuration records are few and read once at start-up; their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub enum ConfigRecord {
    Business(Business),
    Merchant(Merchant),
    Tap(Tap),
    Scheme(Scheme),
    Tiers(BusinessId, TierConfig),
    Offer(Offer),
    Processor(Processor),
    /// A closed-loop scheme's sign-up code and the contact that used it, if any.
    SchemeCode {
        scheme_id: SchemeId,
        code: String,
        used_by: Option<ContactId>,
    },
    /// A webhook subscription (new variants go at the end: the variant's number is stored).
    Webhook(crate::webhooks::Webhook),
}

// ---- Referrals ----

/// A referral the referrer's side has committed and the referred contact's side has not yet:
/// written in the referrer's commit, deleted in the referred contact's (start-up completes any
/// left by a crash in between).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PendingReferralRecord {
    pub business_id: rewards_core::BusinessId,
    pub referrer_id: ContactId,
    pub referred_id: ContactId,
    pub referrer_event_id: EventId,
    pub referred_event_id: EventId,
    pub at: Timestamp,
}

// ---- Settlement ----

/// One settlement entry between a business and a merchant: what an event (or its void, or one
/// of its returns) adds to what each owes the other (SPEC section 10).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SettlementRecord {
    pub merchant_id: MerchantId,
    pub event_id: EventId,
    pub at: Timestamp,
    pub awards_funded: Money,
    pub contribution_fees: Money,
    pub settlement_fees: Money,
    pub spends: Money,
}

impl From<&rewards_core::settlement::SettlementEntry> for SettlementRecord {
    fn from(e: &rewards_core::settlement::SettlementEntry) -> SettlementRecord {
        SettlementRecord {
            merchant_id: e.merchant_id,
            event_id: e.event_id,
            at: e.at,
            awards_funded: e.awards_funded,
            contribution_fees: e.contribution_fees,
            settlement_fees: e.settlement_fees,
            spends: e.spends,
        }
    }
}

impl From<SettlementRecord> for rewards_core::settlement::SettlementEntry {
    fn from(r: SettlementRecord) -> rewards_core::settlement::SettlementEntry {
        rewards_core::settlement::SettlementEntry {
            merchant_id: r.merchant_id,
            event_id: r.event_id,
            at: r.at,
            awards_funded: r.awards_funded,
            contribution_fees: r.contribution_fees,
            settlement_fees: r.settlement_fees,
            spends: r.spends,
        }
    }
}
