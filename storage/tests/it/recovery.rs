//! The log-structured write path: reads see logged writes before and after checkpoints, a
//! checkpoint writes a key once however often it changed, and recovery after a crash (in the
//! middle of a checkpoint too) finds every acknowledged write.

use std::collections::BTreeMap;
use std::time::Duration;

use rewards_storage::keys::KeyBuilder;
use rewards_storage::{Durability, Space, Store, StoreOptions, WriteSet};

fn options() -> StoreOptions {
    StoreOptions {
        durability: Durability::Buffered,
        // Checkpoints only when a test asks for one.
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_bytes: usize::MAX,
        log_segment_bytes: 4096,
        ..StoreOptions::default()
    }
}

fn key(i: u64) -> Vec<u8> {
    KeyBuilder::new().u8(7).u64(i).finish()
}

/// A small deterministic generator, so a failure can be replayed from its printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Every record under the test's prefix, by pages of 7, in one direction.
fn walk(store: &Store, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (items, next) = store
            .page_raw(Space::Events, &[7], cursor.as_deref(), reverse, 7)
            .unwrap();
        all.extend(items);
        match next {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

/// Everything under the test's prefix, as the store shows it: by pages forward and backward,
/// and by `for_each`, each checked against the others.
fn contents(store: &Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let forward = walk(store, false);
    let mut backward = walk(store, true);
    backward.reverse();
    assert_eq!(forward, backward, "pages forward and backward disagree");
    let mut each = Vec::new();
    store
        .for_each_raw(Space::Events, &[7], |k, v| {
            each.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(forward, each, "pages and for_each disagree");
    forward.into_iter().collect()
}

fn check(store: &Store, model: &BTreeMap<Vec<u8>, Vec<u8>>, seed: u64) {
    assert_eq!(&contents(store), model, "seed {seed}");
    for i in 0..40 {
        assert_eq!(
            store.get_raw(Space::Events, &key(i)).unwrap().as_ref(),
            model.get(&key(i)),
            "seed {seed}, key {i}"
        );
    }
}

#[test]
fn reads_see_every_write_whether_logged_checkpointed_or_replayed() {
    let seed = std::env::var("REWARDS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    println!("seed {seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), options()).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for step in 0..400u64 {
        match rng.below(20) {
            // A checkpoint: what was logged moves into the keyspaces.
            0 => {
                store.checkpoint().unwrap();
            }
            // A crash and a restart: the log's tail is replayed.
            1 => {
                store.close_without_checkpoint();
                drop(store);
                store = Store::open(dir.path(), options()).unwrap();
            }
            _ => {
                let mut set = WriteSet::new();
                for _ in 0..=rng.below(3) {
                    let k = key(rng.below(40));
                    if rng.below(4) == 0 {
                        set.delete(Space::Events, k.clone());
                        model.remove(&k);
                    } else {
                        let value = format!("{step}-{}", rng.below(1000)).into_bytes();
                        set.put_raw(Space::Events, k.clone(), value.clone());
                        model.insert(k, value);
                    }
                }
                store.write(set).unwrap();
            }
        }
        check(&store, &model, seed);
    }
    store.close();
    drop(store);
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.unmaterialised_keys(), 0, "a clean close checkpoints");
    check(&store, &model, seed);
}

#[test]
fn a_checkpoint_writes_a_key_once_however_often_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    for i in 0..50 {
        let mut set = WriteSet::new();
        set.put_raw(Space::Wallets, b"hot".to_vec(), format!("{i}").into_bytes());
        store.write(set).unwrap();
    }
    let stats = store.checkpoint().unwrap().unwrap();
    assert_eq!(stats.keys, 1);
    assert_eq!(stats.through, 50);
    assert_eq!(store.checkpoint().unwrap(), None, "nothing left to write");
    assert_eq!(
        store.get_raw(Space::Wallets, b"hot").unwrap(),
        Some(b"49".to_vec())
    );
}

#[test]
fn a_crash_in_the_middle_of_a_checkpoint_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let crashing = StoreOptions {
        crash_in_checkpoint_after_spaces: Some(1),
        log_segment_bytes: 64 * 1024,
        ..options()
    };
    let total = 40_000u64;
    {
        let store = Store::open(dir.path(), crashing).unwrap();
        for chunk in 0..total / 1000 {
            let mut set = WriteSet::new();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                // Two keyspaces: the checkpoint "crashes" after writing the first.
                let space = if i % 2 == 0 {
                    Space::Ledger
                } else {
                    Space::Lots
                };
                set.put_raw(space, i.to_be_bytes().to_vec(), vec![1; 20]);
            }
            store.write(set).unwrap();
        }
        // The checkpoint writes the ledger's changes into their keyspace, then "crashes".
        assert!(store.checkpoint().is_err());
        store.close_without_checkpoint();
    }
    let store = Store::open(dir.path(), options()).unwrap();
    assert!(
        store.unmaterialised_keys() >= total as usize,
        "the log's tail was replayed"
    );
    let mut count = 0;
    for space in [Space::Ledger, Space::Lots] {
        store
            .for_each_raw(space, &[], |_, value| {
                assert_eq!(value, &[1; 20]);
                count += 1;
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(count, total);
    // The next checkpoint completes, and the log keeps only what it does not cover.
    store.checkpoint().unwrap().unwrap();
    assert_eq!(store.unmaterialised_keys(), 0);
    let mut set = WriteSet::new();
    set.put_raw(Space::Ledger, b"after".to_vec(), b"x".to_vec());
    store.write(set).unwrap();
    store.close_without_checkpoint();
    drop(store);
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(
        store.unmaterialised_keys(),
        1,
        "only the record after the checkpoint"
    );
    assert_eq!(
        store.get_raw(Space::Ledger, b"after").unwrap(),
        Some(b"x".to_vec())
    );
    assert_eq!(
        store.get_raw(Space::Lots, &7u64.to_be_bytes()).unwrap(),
        Some(vec![1; 20])
    );
}

#[test]
fn writes_that_outrun_checkpoints_wait_for_them_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            // Checkpoints only when the overlay passes its size, which writes pass quickly.
            checkpoint_bytes: 4096,
            ..options()
        },
    )
    .unwrap();
    for i in 0..300u64 {
        let mut set = WriteSet::new();
        set.put_raw(Space::Events, key(i), vec![9; 1024]);
        store.write(set).unwrap();
    }
    assert!(
        store.unmaterialised_keys() < 100,
        "{} keys still only in memory",
        store.unmaterialised_keys()
    );
    for i in 0..300u64 {
        assert_eq!(
            store.get_raw(Space::Events, &key(i)).unwrap(),
            Some(vec![9; 1024])
        );
    }
}

#[test]
fn the_logged_changes_are_read_back_from_a_stopped_store_and_refused_from_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    for i in 0..50u64 {
        let mut set = WriteSet::new();
        set.put_raw(Space::Events, key(i), vec![i as u8; 100]);
        if i % 10 == 0 {
            set.delete(Space::Events, key(i));
        }
        store.write(set).unwrap();
    }
    let mut visit = |_: Space, _: &[u8], _: Option<&[u8]>| {};
    assert!(
        matches!(
            rewards_storage::for_each_logged_change(dir.path(), &mut visit),
            Err(rewards_storage::StoreError::InUse(_))
        ),
        "a store a server has open is refused"
    );
    store.close_without_checkpoint();
    drop(store);
    let (mut puts, mut deletes, mut value_bytes) = (0, 0, 0);
    let (records, bytes) =
        rewards_storage::for_each_logged_change(dir.path(), &mut |space, key, value| {
            assert_eq!(space, Space::Events);
            assert_eq!(key.len(), 9);
            match value {
                Some(v) => {
                    puts += 1;
                    value_bytes += v.len();
                }
                None => deletes += 1,
            }
        })
        .unwrap();
    assert_eq!((puts, deletes, value_bytes), (50, 5, 5_000));
    assert_eq!(records, 50);
    assert!(bytes > 5_000);
}
