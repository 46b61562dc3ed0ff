//! Feature tests of the store: codec, reads, group commit, counters, poisoning and reopening.

mod recovery;
mod replicated;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rewards_core::{Currency, Money};
use rewards_storage::codec::{decode, encode};
use rewards_storage::keys::KeyBuilder;
use rewards_storage::{Durability, Record, Space, Store, StoreError, StoreOptions, WriteSet};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Thing {
    name: String,
    amount: i64,
}

impl Record for Thing {
    const VERSION: u8 = 3;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OtherVersion {
    name: String,
    amount: i64,
}

impl Record for OtherVersion {
    const VERSION: u8 = 4;
}

/// A [`Thing`] whose amount is money, followed by its currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Priced {
    name: String,
    amount: Money,
    currency: Currency,
}

impl Record for Priced {
    const VERSION: u8 = 3;
}

fn open(dir: &std::path::Path, durability: Durability) -> Store {
    Store::open(
        dir,
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )
    .expect("store opens")
}

fn thing(i: i64) -> Thing {
    Thing {
        name: format!("thing-{i}"),
        amount: i,
    }
}

#[test]
fn records_carry_their_version_and_refuse_another() {
    let bytes = encode(&thing(7));
    assert_eq!(bytes[0], 3);
    assert_eq!(decode::<Thing>(&bytes).unwrap(), thing(7));
    let error = decode::<OtherVersion>(&bytes).unwrap_err().to_string();
    assert!(error.contains("version 3"), "{error}");
    assert!(decode::<Thing>(&[]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode::<Thing>(&trailing).is_err());
}

#[test]
fn string_keys_keep_order_and_never_prefix_each_other() {
    let a = KeyBuilder::new().str("ab").u8(9).finish();
    let b = KeyBuilder::new().str("ab\u{0}").u8(0).finish();
    let c = KeyBuilder::new().str("abc").finish();
    assert!(!b.starts_with(&KeyBuilder::new().str("ab").finish()));
    assert!(a < c && b < c);
}

#[test]
fn pages_walk_forward_and_backward_with_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffered);
    let mut set = WriteSet::new();
    for i in 0..25u64 {
        set.put(
            Space::Events,
            KeyBuilder::new().u8(1).u64(i).finish(),
            &thing(i as i64),
        );
    }
    set.put(
        Space::Events,
        KeyBuilder::new().u8(2).u64(0).finish(),
        &thing(99),
    );
    store.write(set).unwrap();

    let prefix = [1u8];
    let mut seen = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (items, next) = store
            .page::<Thing>(Space::Events, &prefix, cursor.as_deref(), true, 10)
            .unwrap();
        seen.extend(items.into_iter().map(|(_, t)| t.amount));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());

    let (items, next) = store
        .page::<Thing>(Space::Events, &prefix, None, false, 25)
        .unwrap();
    assert_eq!(items.len(), 25);
    assert!(next.is_none());
    assert_eq!(items[0].1.amount, 0);
}

#[test]
fn a_range_reads_from_its_lower_key_up_to_its_upper_one_in_memory_and_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffered);
    let key = |i: u64| KeyBuilder::new().u8(1).u64(i).finish();
    let mut set = WriteSet::new();
    for i in 0..10u64 {
        set.put_raw(Space::EventIndex, key(i), vec![i as u8]);
    }
    store.write(set).unwrap();
    let range = |store: &Store| {
        let mut seen = Vec::new();
        store
            .for_each_raw_between(Space::EventIndex, &key(3), &key(7), |_, value| {
                seen.push(value[0]);
                Ok(())
            })
            .unwrap();
        seen
    };
    assert_eq!(range(&store), [3, 4, 5, 6]);
    // After a checkpoint the range reads fjall's tables, with newer changes on top.
    store.checkpoint().unwrap();
    let mut set = WriteSet::new();
    set.delete(Space::EventIndex, key(4));
    set.put_raw(Space::EventIndex, key(5), vec![50]);
    store.write(set).unwrap();
    assert_eq!(range(&store), [3, 50, 6]);
}

/// Many write sets submitted at once, each adding to several counters: one key twice in a set,
/// one that only the keyspaces hold (written, checkpointed, and the store reopened, so the new
/// writer's cache does not know it), one the writer's cache holds. Every sum is right, and again
/// after the log's records are replayed (closed without a checkpoint).
#[test]
fn counters_of_many_keys_in_one_commit_sum_each_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffered);
    let mut first = WriteSet::new();
    first.add_counter(b"checkpointed", [100, 10]);
    store.write(first).unwrap();
    store.close();
    drop(store);
    let store = open(dir.path(), Durability::Buffered);
    assert_eq!(store.replayed_at_open(), 0, "the close checkpointed it");
    let mut second = WriteSet::new();
    second.add_counter(b"cached", [7, 1]);
    store.write(second).unwrap();
    let sets = 300i64;
    let (done, acks) = std::sync::mpsc::channel();
    for i in 0..sets {
        let mut set = WriteSet::new();
        set.put(Space::Wallets, i.to_be_bytes().to_vec(), &thing(i));
        set.add_counter(b"checkpointed", [i, 1]);
        set.add_counter(b"cached", [1, 1]);
        set.add_counter(format!("key-{}", i % 7).into_bytes(), [i, 1]);
        set.add_counter(b"twice", [1, 0]);
        set.add_counter(b"twice", [2, 1]);
        let done = done.clone();
        store
            .submit(set, Box::new(move |result| done.send(result).unwrap()))
            .unwrap();
    }
    for _ in 0..sets {
        acks.recv().unwrap().unwrap();
    }
    let expect = |store: &Store| {
        let sum: i64 = (0..sets).sum();
        assert_eq!(
            store.counter(b"checkpointed").unwrap(),
            [100 + sum, 10 + sets]
        );
        assert_eq!(store.counter(b"cached").unwrap(), [7 + sets, 1 + sets]);
        assert_eq!(store.counter(b"twice").unwrap(), [3 * sets, sets]);
        for k in 0..7 {
            let (total, count) = (0..sets)
                .filter(|i| i % 7 == k)
                .fold((0, 0), |(t, c), i| (t + i, c + 1));
            let key = format!("key-{k}").into_bytes();
            assert_eq!(store.counter(&key).unwrap(), [total, count], "key-{k}");
        }
    };
    expect(&store);
    store.close_without_checkpoint();
    drop(store);
    let reopened = open(dir.path(), Durability::Buffered);
    assert!(
        reopened.replayed_at_open() > 0,
        "the counters came from the log"
    );
    expect(&reopened);
}

#[test]
fn concurrent_writers_share_commits_and_lose_no_counter_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Sync);
    let threads = 8;
    let per_thread = 200;
    let acked = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = store.clone();
            let acked = acked.clone();
            scope.spawn(move || {
                for i in 0..per_thread {
                    let mut set = WriteSet::new();
                    let id = (t * per_thread + i) as u64;
                    set.put(Space::Wallets, id.to_be_bytes().to_vec(), &thing(id as i64));
                    set.add_counter(b"offer-1", [5, 1]);
                    store.write(set).unwrap();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let total = threads * per_thread;
    assert_eq!(acked.load(Ordering::Relaxed), total);
    assert_eq!(
        store.counter(b"offer-1").unwrap(),
        [5 * total as i64, total as i64]
    );
    let stats = store.writer_stats();
    assert_eq!(stats.sets, total as u64);
    assert!(stats.commits <= stats.sets);
    println!("{} sets in {} commits", stats.sets, stats.commits);

    store.close();
    drop(store);
    let reopened = open(dir.path(), Durability::Sync);
    assert_eq!(
        reopened.counter(b"offer-1").unwrap(),
        [5 * total as i64, total as i64]
    );
    let count = reopened
        .for_each::<Thing>(Space::Wallets, &[], |_, _| Ok(()))
        .unwrap();
    assert_eq!(count, total);
}

#[test]
fn a_failed_commit_poisons_the_store_and_acknowledges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let poisoned_calls = Arc::new(AtomicUsize::new(0));
    let hook_calls = poisoned_calls.clone();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Sync,
            on_poison: Some(Arc::new(move |_| {
                hook_calls.fetch_add(1, Ordering::SeqCst);
            })),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let mut first = WriteSet::new();
    first.put(Space::Contacts, b"a".to_vec(), &thing(1));
    store.write(first).unwrap();

    store.inject_commit_failure();
    let mut failing = WriteSet::new();
    failing.put(Space::Contacts, b"b".to_vec(), &thing(2));
    assert!(matches!(store.write(failing), Err(StoreError::Poisoned)));
    assert!(store.is_poisoned());
    assert_eq!(poisoned_calls.load(Ordering::SeqCst), 1);

    let mut later = WriteSet::new();
    later.put(Space::Contacts, b"c".to_vec(), &thing(3));
    assert!(matches!(store.write(later), Err(StoreError::Poisoned)));
    assert!(store.get::<Thing>(Space::Contacts, b"b").unwrap().is_none());
    assert!(store.get::<Thing>(Space::Contacts, b"c").unwrap().is_none());
    assert_eq!(
        store.get::<Thing>(Space::Contacts, b"a").unwrap(),
        Some(thing(1))
    );
}

#[test]
fn a_full_queue_is_overloaded_not_a_wait() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            durability: Durability::Sync,
            queue_capacity: 1,
            max_batch_sets: 1,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    // Submit faster than fsyncs complete until the one-slot queue refuses.
    let mut refused = false;
    for i in 0..10_000u64 {
        let mut set = WriteSet::new();
        set.put(Space::Meta, i.to_be_bytes().to_vec(), &thing(i as i64));
        match store.submit(set, Box::new(|_| {})) {
            Ok(()) => {}
            Err(StoreError::Overloaded) => {
                refused = true;
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(refused, "a one-slot queue never filled");
    store.close();
}

#[test]
fn deletes_commit_with_puts_in_one_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffered);
    let mut set = WriteSet::new();
    set.put(Space::Identities, b"k1".to_vec(), &thing(1));
    set.put_raw(Space::Identities, b"k2".to_vec(), b"raw".to_vec());
    store.write(set).unwrap();
    let mut set = WriteSet::new();
    set.delete(Space::Identities, b"k1".to_vec());
    store.write(set).unwrap();
    assert!(!store.contains(Space::Identities, b"k1").unwrap());
    assert_eq!(
        store.get_raw(Space::Identities, b"k2").unwrap().unwrap(),
        b"raw"
    );
}

#[test]
fn an_oversized_key_is_refused_whole_and_the_store_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Buffered);
    // fjall's own limit is 65,535 bytes; a key past it once took the writer thread down.
    let huge = vec![b'k'; 70_000];
    let mut set = WriteSet::new();
    set.put(Space::Events, b"fine".to_vec(), &thing(1));
    set.put(Space::Events, huge.clone(), &thing(2));
    let refused = store.write(set);
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    // Nothing of the set was written, reads of such a key find nothing, writes go on.
    assert!(store
        .get::<Thing>(Space::Events, b"fine")
        .unwrap()
        .is_none());
    assert!(store.get::<Thing>(Space::Events, &huge).unwrap().is_none());
    assert!(!store.contains(Space::Events, &huge).unwrap());
    let (page, next) = store
        .page_raw(Space::Events, &huge, Some(&huge), false, 10)
        .unwrap();
    assert!(page.is_empty() && next.is_none());
    assert!(!store.is_poisoned());
    let mut set = WriteSet::new();
    set.put(Space::Events, b"fine".to_vec(), &thing(3));
    store.write(set).unwrap();
    assert_eq!(
        store.get::<Thing>(Space::Events, b"fine").unwrap(),
        Some(thing(3))
    );
}

#[test]
fn a_corrupt_length_is_an_error_not_an_allocation() {
    // The version byte, then a string length of 2^64 - 1 (bincode's varint: 253 and 8 bytes).
    let mut bytes = vec![Thing::VERSION, 253];
    bytes.extend_from_slice(&[0xff; 8]);
    assert!(decode::<Thing>(&bytes).is_err());
    let mut bytes = vec![Thing::VERSION, 253];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(decode::<Thing>(&bytes).is_err());
}

#[test]
fn money_is_stored_as_its_minor_units_and_a_decoded_currency_is_checked() {
    // Stored records keep decoding: an amount's bytes are those of its i64 count of minor units,
    // a currency's are its three letters and its number of decimals.
    let eur = Currency::parse("EUR").unwrap();
    for minor in [0, 705, -705, i64::MAX, i64::MIN] {
        let priced = Priced {
            name: "p".into(),
            amount: Money::from_minor(minor),
            currency: eur,
        };
        let mut plain = encode(&Thing {
            name: "p".into(),
            amount: minor,
        });
        plain.extend_from_slice(b"EUR\x02");
        assert_eq!(encode(&priced), plain);
        assert_eq!(decode::<Priced>(&plain).unwrap(), priced);
    }
    // A currency that parsing would refuse is refused when decoded too.
    for currency in [b"eur\x02", b"E\xffR\x02", b"EUR\x09"] {
        let mut bytes = encode(&thing(1));
        bytes.extend_from_slice(currency);
        assert!(decode::<Priced>(&bytes).is_err(), "{currency:?}");
    }
}

#[test]
fn a_store_is_opened_by_one_process_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Sync);
    // A second opening (another server, an audit, on the same directory) is refused while the
    // first holds it, whatever the process: the lock is the directory's, not the process's.
    match Store::open(dir.path(), StoreOptions::default()) {
        Err(StoreError::InUse(path)) => assert!(path.contains(&*dir.path().to_string_lossy())),
        Err(other) => panic!("a second opening failed otherwise: {other}"),
        Ok(_) => panic!("a second opening of an open store succeeded"),
    }
    store.close();
    drop(store);
    let again = open(dir.path(), Durability::Sync);
    again.close();
}

fn key(i: u32) -> Vec<u8> {
    KeyBuilder::new().u64(u64::from(i)).finish()
}

#[test]
fn a_backup_is_the_store_at_one_moment_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir.path().join("live"), Durability::Sync));
    // Half the records checkpointed into the keyspaces, half only in the log and overlay;
    // deletions of both kinds; a counter.
    for i in 0..400u32 {
        let mut set = WriteSet::new();
        set.put(Space::Events, key(i), &thing(i64::from(i)));
        set.add_counter(b"o-total", [i64::from(i), 1]);
        store.write(set).unwrap();
        if i == 199 {
            store.checkpoint().unwrap();
        }
    }
    let mut set = WriteSet::new();
    set.delete(Space::Events, key(10));
    set.delete(Space::Events, key(300));
    set.put(Space::Events, key(20), &thing(-20));
    store.write(set).unwrap();
    // Writes go on during the backup, from another thread.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let store = store.clone();
        let writing = writing.clone();
        std::thread::spawn(move || {
            let mut i = 1000u32;
            while writing.load(Ordering::Acquire) {
                let mut set = WriteSet::new();
                set.put(Space::Events, key(i), &thing(i64::from(i)));
                store.write(set).unwrap();
                i += 1;
            }
            i
        })
    };
    let copy_dir = dir.path().join("copy");
    let stats = store.backup(&copy_dir).unwrap();
    writing.store(false, Ordering::Release);
    let last = writer.join().unwrap();
    assert!(stats.records >= 399, "{stats:?}");
    assert!(copy_dir.join(rewards_storage::BACKUP_MARKER).is_file());
    // A second backup into the same directory is refused: it is not empty.
    assert!(matches!(
        store.backup(&copy_dir),
        Err(StoreError::Refused(_))
    ));
    store.close();

    let copy = open(&copy_dir, Durability::Sync);
    for i in 0..400u32 {
        let found: Option<Thing> = copy.get(Space::Events, &key(i)).unwrap();
        match i {
            10 | 300 => assert_eq!(found, None, "{i}"),
            20 => assert_eq!(found, Some(thing(-20))),
            _ => assert_eq!(found, Some(thing(i64::from(i))), "{i}"),
        }
    }
    let total: i64 = (0..400).sum();
    assert_eq!(copy.counter(b"o-total").unwrap(), [total, 400]);
    // The writes made during the backup are in it up to one point, without a gap.
    let mut during = 0u32;
    while copy
        .get::<Thing>(Space::Events, &key(1000 + during))
        .unwrap()
        .is_some()
    {
        during += 1;
    }
    assert!(1000 + during <= last);
    for i in 1000 + during..last {
        assert_eq!(
            copy.get::<Thing>(Space::Events, &key(i)).unwrap(),
            None,
            "{i}"
        );
    }
    copy.close();
}

/// Events, ledger entries and first responses keep their large values apart from their keys
/// (fjall's key-value separation): values on both sides of the threshold read back the same
/// through checkpoints of both kinds (new tables for many changes, a batch for a few),
/// overwrites, deletions, scans and a reopening.
#[test]
fn values_kept_apart_from_their_keys_read_back_through_checkpoints_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let spaces = [Space::Events, Space::Ledger, Space::Idempotency];
    let key = |i: u64| i.to_be_bytes().to_vec();
    let value = |i: u64, round: u8| {
        let mut value = vec![round; 300 + (i % 900) as usize];
        value.extend_from_slice(&i.to_be_bytes());
        value
    };
    let expected = |i: u64| match i {
        0..100 if i.is_multiple_of(2) => Some(value(i, 2)),
        0..100 => None,
        _ => Some(value(i, 1)),
    };
    let keys = 10_000u64;
    {
        let store = open(dir.path(), Durability::Buffered);
        for start in (0..keys).step_by(50) {
            let mut set = WriteSet::new();
            for i in start..start + 50 {
                for space in spaces {
                    set.put_raw(space, key(i), value(i, 1));
                }
            }
            store.write(set).unwrap();
        }
        assert!(store.checkpoint().unwrap().unwrap().keys >= 3 * keys as usize);
        let mut set = WriteSet::new();
        for i in 0..100u64 {
            for space in spaces {
                match expected(i) {
                    Some(value) => set.put_raw(space, key(i), value),
                    None => set.delete(space, key(i)),
                }
            }
        }
        store.write(set).unwrap();
        store.checkpoint().unwrap();
        store.close();
    }
    let store = open(dir.path(), Durability::Buffered);
    for space in spaces {
        for i in 0..keys {
            assert_eq!(
                store.get_raw(space, &key(i)).unwrap(),
                expected(i),
                "{space:?} {i}"
            );
        }
        let mut seen = 0u64;
        store
            .for_each_raw(space, &[], |k, v| {
                let i = u64::from_be_bytes(k.try_into().unwrap());
                assert_eq!(Some(v.to_vec()), expected(i));
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, keys - 50);
    }
}
