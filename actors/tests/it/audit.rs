//! `rewardsd audit`: a store written by a day of varied traffic is clean; a copy of it with one
//! posting changed, one index entry dropped, an offer's totals off by one and a stray lot stored
//! apart is reported with each defect named; a store in use by a running server is not opened.

use std::path::Path;
use std::process::Command;

use rewards_actors::schema::{keys, FundingRecord, LedgerEntriesRecord, LotRecord, OpenLotRecord};
use rewards_core::{ContactId, EventId, LotId, Money, Timestamp, WalletId};
use rewards_storage::{Space, Store, StoreOptions, WriteSet};
use serde_json::{json, Value};

use crate::support::{basket, world, Server};

pub struct Audit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn audit(dir: &Path) -> Audit {
    let output = Command::new(env!("CARGO_BIN_EXE_rewardsd"))
        .arg("audit")
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("rewardsd audit runs");
    Audit {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn id<T: std::str::FromStr>(value: &Value) -> T
where
    T::Err: std::fmt::Debug,
{
    value.as_str().unwrap().parse::<T>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_finds_a_changed_posting_and_a_dropped_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let ten = w
        .offer(json!({"name": "10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    w.offer(json!({"name": "1 later", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "deferred"}))
        .await;
    w.offer(json!({"name": "friends", "goal": "membership",
        "conditions": {"membership": "referral", "award_referred": true},
        "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant"}))
        .await;
    let mut contacts = Vec::new();
    for i in 0..4 {
        let contact = w.contact(json!({"code": format!("A-{i}")})).await;
        w.topup(contact["wallet_id"].as_str().unwrap(), "20.00")
            .await;
        contacts.push(contact);
    }
    let mut purchases = Vec::new();
    for i in 0..12 {
        let mut body = basket(json!({"contact_code": format!("A-{}", i % 4)}), "12.50");
        if i % 3 == 0 {
            body["spend"] = json!({"amount": "all"});
        }
        purchases.push(w.purchase(body).await.expect(201).clone());
    }
    let voided = purchases[0]["id"].as_str().unwrap();
    api.post(&format!("/v1/purchases/{voided}/void"), &w.key, &json!({}))
        .await
        .expect(200);
    api.post(
        "/v1/referrals",
        &w.pos_key,
        &json!({"referrer": {"contact_code": "A-1"}, "referred": {"contact_code": "A-2"}}),
    )
    .await
    .expect(201);

    // While the server runs, the audit does not open its store.
    let busy = audit(&data);
    assert_eq!(busy.code, Some(2), "{}{}", busy.stdout, busy.stderr);
    assert!(busy.stderr.contains("in use"), "{}", busy.stderr);
    server.stop();

    let clean = audit(&data);
    assert_eq!(clean.code, Some(0), "{}{}", clean.stdout, clean.stderr);
    assert!(
        clean.stdout.contains("clean: no defect found"),
        "{}",
        clean.stdout
    );
    assert!(clean.stdout.contains("4 wallets"), "{}", clean.stdout);
    assert!(clean.stderr.contains("audit: events:"), "{}", clean.stderr);

    // A copy with one posting changed and one index entry dropped.
    let broken = dir.path().join("broken");
    copy_dir(&data, &broken);
    let wallet: WalletId = id(&contacts[3]["wallet_id"]);
    let dropped_event: EventId = id(&purchases[5]["id"]);
    let dropped_contact: ContactId = id(&purchases[5]["contact_id"]);
    {
        let store = Store::open(&broken, StoreOptions::default()).expect("the copy opens");
        let mut ledger: Vec<(Vec<u8>, LedgerEntriesRecord)> = Vec::new();
        store
            .for_each::<LedgerEntriesRecord>(Space::Ledger, &keys::ledger_prefix(wallet), |k, r| {
                ledger.push((k.to_vec(), r));
                Ok(())
            })
            .unwrap();
        let (key, mut record) = ledger.pop().expect("the wallet has ledger entries");
        let entry = record.0.last_mut().unwrap();
        entry.postings[0].amount += Money::from_minor(1);
        let changed_seq = entry.seq;
        let mut set = WriteSet::new();
        set.put(Space::Ledger, key, &record);
        let created_at = Timestamp::parse_rfc3339(purchases[5]["created_at"].as_str().unwrap())
            .expect("an RFC 3339 time");
        set.delete(
            Space::EventIndex,
            keys::contact_index_key(dropped_contact, created_at, dropped_event),
        );
        // And one award too many in an offer's totals.
        let offer: rewards_core::OfferId = id(&ten["id"]);
        set.add_counter(keys::offer_totals_key(offer), [0, 1]);
        // And a lot stored apart under a wallet whose record keeps its lots inline.
        let stray = LotRecord {
            id: LotId::from_bytes([9; 16]),
            amount: Money::from_minor(500),
            remaining: Money::from_minor(500),
            expires_at: None,
            offer_id: None,
            event_id: dropped_event,
            funding: FundingRecord::Business,
            expired: false,
            redeemed: Money::ZERO,
            expired_amount: Money::ZERO,
            clawed_back_commerce: Money::ZERO,
            clawed_back_open: Money::ZERO,
        };
        set.put(
            Space::OpenLots,
            keys::open_lot_key(wallet, stray.id),
            &OpenLotRecord {
                order: 0,
                lot: stray,
            },
        );
        store.write(set).unwrap();
        store.close();
        drop(store);
        let report = audit(&broken);
        assert_eq!(report.code, Some(1), "{}{}", report.stdout, report.stderr);
        let out = &report.stdout;
        assert!(
            out.contains(&format!("wallet {wallet}: ledger entry {changed_seq} "))
                && out.contains("sum to 0.01, not zero"),
            "{out}"
        );
        assert!(
            out.contains("all postings in EUR sum to 0.01, not zero"),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "event {dropped_event}: its entry in the contact's activity is missing"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "offer {offer}: its totals count 12 awards, its posted events hold 11"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "wallet {wallet}: its record says its lots are inline, but open_lots holds some"
            )),
            "{out}"
        );
        assert!(out.contains("5 defects found"), "{out}");
    }
    // The original is untouched by the audits.
    assert_eq!(audit(&data).code, Some(0));
}

/// The offline audit of a stopped server's store finds nothing wrong.
#[track_caller]
pub fn assert_clean(dir: &Path) {
    let report = audit(dir);
    assert_eq!(
        report.code,
        Some(0),
        "the audit of {}: {}{}",
        dir.display(),
        report.stdout,
        report.stderr
    );
}
