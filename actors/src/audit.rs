//! The offline audit (`rewardsd audit --data-dir DIR`): reads a whole store (a stopped server's,
//! or a restored backup) and checks the money and the indexes against each other, as
//! `pg_amcheck` checks a database's relations.
//!
//! It checks that every ledger entry's postings sum to zero, that each wallet's sequence
//! numbers follow without gaps and its balances equal the sums of its postings, that all
//! postings of the store sum to zero, that every award of every event is credited in its
//! wallet's ledger and everything it spent is spent there, and that every event has both index entries (by business and by contact)
//! while every index entry names an existing event (or a processor purchase still waiting for
//! its match or claim), that every settlement entry belongs to an existing event (an event's
//! own with the event's merchant and what the event spent), that every
//! offer's totals count the awards of its posted events and sum their amounts less what was
//! clawed back of them, that
//! no estimate holds money twice or gives back more than it held, that no lot expires twice,
//! and that every event answer stored under an idempotency key names an existing event with
//! the same awards. It writes no record: the store is opened
//! without checkpoints and closed without one.

use std::collections::HashMap;

use rewards_core::wallet::{EntryKind, LedgerEntry};
use rewards_core::{Currency, LotId, Money, WalletId};
use rewards_storage::{Space, Store, StoreError};

use crate::events::EventRecord;
use crate::schema::{keys, LedgerEntriesRecord, PendingReferralRecord, WalletRecord};

/// Defects listed one by one; beyond it, only counted.
pub const MAX_LISTED: usize = 100;

/// What an audit read and what it found.
#[derive(Debug, Default)]
pub struct Report {
    pub wallets: u64,
    pub ledger_entries: u64,
    pub events: u64,
    pub index_entries: u64,
    pub idempotency_keys: u64,
    /// Referrals whose referred side start-up will complete (not a defect).
    pub pending_referrals: u64,
    /// The first [`MAX_LISTED`] defects, each a sentence naming what is wrong.
    pub defects: Vec<String>,
    /// Every defect found.
    pub total_defects: u64,
}

impl Report {
    fn defect(&mut self, text: String) {
        self.total_defects += 1;
        if self.defects.len() < MAX_LISTED {
            self.defects.push(text);
        }
    }

    fn extend(&mut self, defects: Vec<String>) {
        for defect in defects {
            self.defect(defect);
        }
    }

    pub fn is_clean(&self) -> bool {
        self.total_defects == 0
    }
}

/// Reads the whole store and checks it; `progress` hears each stage's name and how many
/// records it has read (every so often, and at its end).
pub fn run(store: &Store, progress: &mut dyn FnMut(&str, u64, bool)) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let ledgers = wallets(store, &mut report, progress)?;
    events(store, &ledgers, &mut report, progress)?;
    index_entries(store, &mut report, progress)?;
    responses(store, &mut report, progress)?;
    store.for_each::<PendingReferralRecord>(
        Space::EventIndex,
        &keys::pending_referral_prefix(),
        |_, _| {
            report.pending_referrals += 1;
            Ok(())
        },
    )?;
    Ok(report)
}

const EVERY: u64 = 10_000;

/// What the events are checked against: each award entry's amount by lot, and each wallet's
/// currency.
#[derive(Default)]
struct Ledgers {
    credited: HashMap<LotId, Money>,
    /// What voids and returns clawed back, by lot.
    clawed: HashMap<LotId, Money>,
    /// What each event spent of its wallet (a captured hold is spent by its own entry too).
    spent: HashMap<rewards_core::EventId, Money>,
    currencies: HashMap<WalletId, Currency>,
}

/// Each wallet against its ledger.
fn wallets(
    store: &Store,
    report: &mut Report,
    progress: &mut dyn FnMut(&str, u64, bool),
) -> Result<Ledgers, StoreError> {
    let mut ledgers = Ledgers::default();
    // Each currency's postings sum to zero on their own.
    let mut all_postings: HashMap<Currency, Money> = HashMap::new();
    let mut ids = Vec::new();
    store.for_each::<WalletRecord>(Space::Wallets, &[], |_, record| {
        ids.push((record.id, record.lots_apart));
        Ok(())
    })?;
    // Lots stored apart belong to a wallet whose record says so: any other would be read back
    // into a wallet the day it next moves its lots apart.
    let mut apart = crate::wallets::stored::wallets_with_lots_apart(store)?;
    for (id, lots_apart) in &ids {
        if apart.remove(id.as_bytes().as_slice()).is_some() != *lots_apart {
            report.defect(format!(
                "wallet {id}: its record says its lots are {}, but open_lots {}",
                if *lots_apart { "apart" } else { "inline" },
                if *lots_apart {
                    "holds none"
                } else {
                    "holds some"
                }
            ));
        }
    }
    for (wallet, lots) in apart {
        report.defect(format!(
            "open_lots holds {lots} lots of {}, which has no wallet record",
            hex::encode(wallet)
        ));
    }
    for (id, _) in ids {
        let wallet = match crate::wallets::stored::read(store, id) {
            Ok(Some(wallet)) => wallet,
            Ok(None) => continue,
            Err(error) => {
                report.defect(format!("wallet {id}: {error}"));
                continue;
            }
        };
        let c = wallet.currency;
        ledgers.currencies.insert(wallet.id, c);
        let mut entries: Vec<LedgerEntry> = Vec::new();
        store.for_each::<LedgerEntriesRecord>(
            Space::Ledger,
            &keys::ledger_prefix(wallet.id),
            |_, record| {
                entries.extend(Vec::<LedgerEntry>::from(record));
                Ok(())
            },
        )?;
        // Per estimate: what was held, and what its release and capture gave back; per lot,
        // its expiries.
        let mut holds: HashMap<rewards_core::EstimateId, (u32, Money, Money)> = HashMap::new();
        let mut expiries: HashMap<LotId, u32> = HashMap::new();
        for entry in &entries {
            match (entry.kind, entry.estimate_id, entry.lot_id) {
                (EntryKind::Hold, Some(estimate), _) => {
                    let hold = holds.entry(estimate).or_default();
                    hold.0 += 1;
                    hold.1 += entry.amount;
                }
                (EntryKind::Release | EntryKind::Capture, Some(estimate), _) => {
                    holds.entry(estimate).or_default().2 += entry.amount;
                }
                (EntryKind::Expire, _, Some(lot)) => *expiries.entry(lot).or_default() += 1,
                _ => {}
            }
            let sum: Money = entry.postings.iter().map(|p| p.amount).sum();
            *all_postings.entry(c).or_default() += sum;
            if !sum.is_zero() {
                report.defect(format!(
                    "wallet {}: ledger entry {} ({:?} of {}) has postings that sum to {}, not zero",
                    wallet.id,
                    entry.seq,
                    entry.kind,
                    c.format(entry.amount),
                    c.format(sum)
                ));
            }
            match (entry.kind, entry.lot_id) {
                (EntryKind::Award, Some(lot)) => {
                    ledgers.credited.insert(lot, entry.amount);
                }
                (EntryKind::Clawback, Some(lot)) => {
                    *ledgers.clawed.entry(lot).or_default() += entry.amount;
                }
                _ => {}
            }
            if let (EntryKind::Spend, Some(event)) = (entry.kind, entry.event_id) {
                *ledgers.spent.entry(event).or_default() += entry.amount;
            }
        }
        for (estimate, (count, held, resolved)) in holds {
            if count > 1 {
                report.defect(format!(
                    "wallet {}: estimate {estimate} holds money {count} times",
                    wallet.id
                ));
            }
            if resolved > held {
                report.defect(format!(
                    "wallet {}: estimate {estimate} released and captured {} of a hold of {}",
                    wallet.id,
                    c.format(resolved),
                    c.format(held)
                ));
            }
        }
        for (lot, count) in expiries {
            if count > 1 {
                report.defect(format!(
                    "wallet {}: lot {lot} expired {count} times",
                    wallet.id
                ));
            }
        }
        // The rest of the wallet's checks: sequence numbers, running balances, the wallet's
        // own balances. An entry that does not balance is told above already.
        if let Err(problem) = rewards_core::wallet::audit(&wallet, &entries) {
            if !problem.ends_with("does not balance") {
                report.defect(format!("wallet {}: {problem}", wallet.id));
            }
        }
        report.wallets += 1;
        report.ledger_entries += entries.len() as u64;
        if report.wallets.is_multiple_of(EVERY) {
            progress("wallets", report.wallets, false);
        }
    }
    progress("wallets", report.wallets, true);
    for (c, sum) in all_postings {
        if !sum.is_zero() {
            report.defect(format!(
                "all postings in {} sum to {}, not zero",
                c.code(),
                c.format(sum)
            ));
        }
    }
    Ok(ledgers)
}

/// Each event: its awards credited in the ledger, its two index entries there.
fn events(
    store: &Store,
    ledgers: &Ledgers,
    report: &mut Report,
    progress: &mut dyn FnMut(&str, u64, bool),
) -> Result<(), StoreError> {
    let mut found: Vec<String> = Vec::new();
    let mut count = 0u64;
    // Awards of posted events, by offer: what each offer's totals count; and what every award
    // credited less what was clawed back of it: what they sum.
    let mut awards_by_offer: HashMap<rewards_core::OfferId, i64> = HashMap::new();
    let mut awarded_by_offer: HashMap<rewards_core::OfferId, i64> = HashMap::new();
    store.for_each::<EventRecord>(Space::Events, &[], |_, event| {
        if event.state == crate::events::EventState::Posted {
            for award in &event.awards {
                *awards_by_offer.entry(award.offer_id).or_default() += 1;
            }
        }
        for award in &event.awards {
            let clawed = ledgers
                .clawed
                .get(&award.lot_id(event.id))
                .copied()
                .unwrap_or_default();
            *awarded_by_offer.entry(award.offer_id).or_default() += (award.amount - clawed).minor();
        }
        let show = |amount: Money| match ledgers.currencies.get(&event.wallet_id) {
            Some(c) => c.format(amount),
            None => format!("{} minor units", amount.minor()),
        };
        for award in &event.awards {
            let lot_id = award.lot_id(event.id);
            match ledgers.credited.get(&lot_id) {
                Some(amount) if *amount == award.amount => {}
                Some(amount) => found.push(format!(
                    "event {}: award {} of lot {} is credited as {}",
                    event.id,
                    show(award.amount),
                    lot_id,
                    show(*amount)
                )),
                None => found.push(format!(
                    "event {}: award {} of lot {} is not in its wallet's ledger",
                    event.id,
                    show(award.amount),
                    lot_id
                )),
            }
        }
        if let Some(spend) = &event.spend {
            let in_ledger = ledgers.spent.get(&event.id).copied().unwrap_or_default();
            if in_ledger != spend.spent {
                found.push(format!(
                    "event {}: spent {}, its wallet's ledger {}",
                    event.id,
                    show(spend.spent),
                    show(in_ledger)
                ));
            }
        }
        let by_business = keys::business_index_key(event.business_id, event.created_at, event.id);
        if !store.contains(Space::EventIndex, &by_business)? {
            found.push(format!(
                "event {}: its entry in the business's event list is missing",
                event.id
            ));
        }
        let by_contact = keys::contact_index_key(event.contact_id, event.created_at, event.id);
        if !store.contains(Space::EventIndex, &by_contact)? {
            found.push(format!(
                "event {}: its entry in the contact's activity is missing",
                event.id
            ));
        }
        count += 1;
        if count.is_multiple_of(EVERY) {
            progress("events", count, false);
        }
        Ok(())
    })?;
    progress("events", count, true);
    report.events = count;
    // Each offer's totals count its awards of posted events.
    let mut counted: HashMap<rewards_core::OfferId, [i64; 2]> = HashMap::new();
    store.for_each_raw(Space::Counters, b"o", |key, _| {
        if let Some(id) = key.get(1..17).and_then(|id| <[u8; 16]>::try_from(id).ok()) {
            let offer = rewards_core::OfferId::from_bytes(id);
            counted.insert(offer, store.counter(key)?);
        }
        Ok(())
    })?;
    let offers: std::collections::BTreeSet<rewards_core::OfferId> = awarded_by_offer
        .keys()
        .chain(counted.keys())
        .copied()
        .collect();
    for offer in offers {
        let [total_minor, total] = counted.get(&offer).copied().unwrap_or([0, 0]);
        let awards = awards_by_offer.get(&offer).copied().unwrap_or(0);
        if total != awards {
            found.push(format!(
                "offer {offer}: its totals count {total} awards, its posted events hold {awards}"
            ));
        }
        let awarded = awarded_by_offer.get(&offer).copied().unwrap_or(0);
        if total_minor != awarded {
            found.push(format!(
                "offer {offer}: its totals say {total_minor} minor units awarded, its awards less what was clawed back of them {awarded}"
            ));
        }
    }
    report.extend(found);
    Ok(())
}

/// Each first answer stored under an idempotency key that is an event names an existing one,
/// with the awards it answered.
fn responses(
    store: &Store,
    report: &mut Report,
    progress: &mut dyn FnMut(&str, u64, bool),
) -> Result<(), StoreError> {
    let mut found: Vec<String> = Vec::new();
    let mut count = 0u64;
    store.for_each::<crate::idempotency::StoredResponse>(Space::Idempotency, &[], |key, stored| {
        count += 1;
        if count.is_multiple_of(EVERY) {
            progress("idempotency keys", count, false);
        }
        if !(200..300).contains(&stored.status) {
            return Ok(());
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&stored.body) else {
            found.push(format!(
                "the answer stored under idempotency key {} is not JSON",
                hex::encode(key)
            ));
            return Ok(());
        };
        // An event's answer: its id and its type (a batch's or a route's answers have others).
        let (Some(id), Some(_)) = (
            body.get("id").and_then(|v| v.as_str()),
            body.get("type").and_then(|v| v.as_str()),
        ) else {
            return Ok(());
        };
        let Ok(id) = id.parse::<rewards_core::EventId>() else {
            return Ok(());
        };
        match store.get::<EventRecord>(Space::Events, &keys::event_key(id))? {
            // A routed purchase's first answer is its route's (pending, or one business's
            // part of a processor purchase): its awards came later.
            Some(event) if event.route.is_some() => {}
            Some(event) => {
                let answered: Vec<&str> = body
                    .get("awards")
                    .and_then(|a| a.as_array())
                    .map(|a| a.iter().filter_map(|x| x.get("lot_id")?.as_str()).collect())
                    .unwrap_or_default();
                let stored_lots: Vec<String> =
                    event.awards.iter().map(|a| a.lot_id(event.id).to_string()).collect();
                if answered != stored_lots {
                    found.push(format!(
                        "event {id}: the answer stored under its idempotency key names other awards than the event"
                    ));
                }
            }
            None if store.contains(Space::Routes, &keys::route_key(id))? => {}
            None => found.push(format!(
                "the answer stored under idempotency key {} names event {id}, which does not exist",
                hex::encode(key)
            )),
        }
        Ok(())
    })?;
    progress("idempotency keys", count, true);
    report.idempotency_keys = count;
    report.extend(found);
    Ok(())
}

/// Each entry of the business and contact indexes names an existing event.
fn index_entries(
    store: &Store,
    report: &mut Report,
    progress: &mut dyn FnMut(&str, u64, bool),
) -> Result<(), StoreError> {
    let mut found: Vec<String> = Vec::new();
    let mut count = 0u64;
    for (prefix, list) in [
        (b'b', "business's event list"),
        (b'c', "contact's activity"),
    ] {
        store.for_each_raw(Space::EventIndex, &[prefix], |key, value| {
            let named = value.get(..16).and_then(|id| <[u8; 16]>::try_from(id).ok());
            // A business index entry carries its event's settlement entry, if any.
            if let (Some(id), Some(settled)) = (named, value.get(16..).filter(|v| !v.is_empty())) {
                match rewards_storage::codec::decode::<crate::schema::SettlementRecord>(settled) {
                    Ok(entry) if entry.event_id.as_bytes() == &id => {
                        // Its merchant is the event's, and what it says was spent there is
                        // what the event spent.
                        let event_id = rewards_core::EventId::from_bytes(id);
                        if let Some(event) =
                            store.get::<EventRecord>(Space::Events, &keys::event_key(event_id))?
                        {
                            let spent = event.spend.as_ref().map_or(Money::ZERO, |s| s.spent);
                            if event.merchant_id != Some(entry.merchant_id) {
                                found.push(format!(
                                    "event {event_id}: its settlement entry is with merchant {}, not its own",
                                    entry.merchant_id
                                ));
                            } else if entry.spends != spent {
                                found.push(format!(
                                    "event {event_id}: its settlement entry says {} minor units spent, the event {}",
                                    entry.spends.minor(),
                                    spent.minor()
                                ));
                            }
                        }
                    }
                    Ok(entry) => found.push(format!(
                        "the settlement entry beside event {} in its business's list is event {}'s",
                        uuid::Uuid::from_bytes(id),
                        entry.event_id
                    )),
                    Err(error) => found.push(format!(
                        "the settlement entry beside event {} does not decode: {error}",
                        uuid::Uuid::from_bytes(id)
                    )),
                }
            }
            match named {
                Some(id) if store.contains(Space::Events, &id)? => {}
                // A processor purchase waiting for its match or its claim is listed too.
                Some(id)
                    if store.contains(
                        Space::Routes,
                        &keys::route_key(rewards_core::EventId::from_bytes(id)),
                    )? => {}
                Some(id) => found.push(format!(
                    "an entry of a {list} names event {}, which does not exist",
                    uuid::Uuid::from_bytes(id)
                )),
                None => found.push(format!(
                    "an entry of a {list} (key {}) has no event id",
                    hex::encode(key)
                )),
            }
            count += 1;
            if count.is_multiple_of(EVERY) {
                progress("index entries", count, false);
            }
            Ok(())
        })?;
    }
    // The settlement entries of voids and returns name existing events.
    store.for_each::<crate::schema::SettlementRecord>(Space::EventIndex, b"m", |_, entry| {
        if !store.contains(Space::Events, &keys::event_key(entry.event_id))? {
            found.push(format!(
                "a settlement entry of merchant {} names event {}, which does not exist",
                entry.merchant_id, entry.event_id
            ));
        }
        count += 1;
        Ok(())
    })?;
    progress("index entries", count, true);
    report.index_entries = count;
    report.extend(found);
    Ok(())
}

/// The store's directory opened for an audit: no checkpoint runs while it is open, and it is
/// closed without one, so nothing is written to it.
///
/// A cluster node's directory (see [`crate::cluster`]) holds its copy of the data as its last
/// checkpoint left it; the log is on the NATS servers. That copy is what is audited.
pub fn open(dir: &std::path::Path) -> Result<Store, StoreError> {
    let options = rewards_storage::StoreOptions {
        checkpoint_interval: std::time::Duration::from_secs(u32::MAX as u64),
        checkpoint_bytes: usize::MAX,
        ..Default::default()
    };
    if crate::cluster::is_node_directory(dir) {
        return Store::open_on(dir, options, |_| Ok(Box::new(rewards_storage::log::NoLog)));
    }
    if !dir.join("log").is_dir() {
        return Err(StoreError::Io(format!(
            "{} is not a store's directory (it has no log)",
            dir.display()
        )));
    }
    Store::open(dir, options)
}
