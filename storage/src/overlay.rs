//! Writes that are durable in the log but not yet materialised into the keyspaces.
//!
//! The writer applies every logged batch here before it acknowledges it, so a read sees every
//! acknowledged write: it asks the overlay first and fjall only for a key the overlay does not
//! hold. A checkpoint freezes the active generation (a new, empty one takes the writes that
//! follow), writes the frozen one into fjall, makes it durable, and only then drops it: a key
//! is always in the overlay or in fjall. A key written fifty times between two checkpoints is
//! written to fjall once.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockWriteGuard};
use smallvec::SmallVec;

use crate::log::Position;
use crate::store::Space;

/// About how many changes are applied under one hold of the overlay's lock.
const APPLY_CHUNK: usize = 256;

/// One change of one key: its new value, or `None` when it was deleted.
pub(crate) type Change = Option<Vec<u8>>;

/// Bytes of a key kept inside the B-tree's node; a longer key goes to the heap.
const INLINE_KEY_BYTES: usize = 64;

/// A key as the overlay holds it, ordered as its bytes (the order of fjall's keyspaces). The
/// writer inserts every changed key into a B-tree; with keys on the heap each comparison on
/// the way down first fetched the key through its pointer, a cache miss. Every key a purchase
/// writes (ids, index entries of 41 bytes, settlement entries of 58) fits inline; per key that
/// is about the memory of a heap key and its vector.
pub(crate) type Key = SmallVec<[u8; INLINE_KEY_BYTES]>;

/// The changes of one generation, by space and key; the latest change of each key wins.
#[derive(Default)]
pub(crate) struct Generation {
    spaces: Vec<BTreeMap<Key, Change>>,
    bytes: usize,
}

impl Generation {
    fn new() -> Generation {
        Generation {
            spaces: Space::ALL.iter().map(|_| BTreeMap::new()).collect(),
            bytes: 0,
        }
    }

    fn space(&self, space: Space) -> Option<&BTreeMap<Key, Change>> {
        self.spaces.get(space.index())
    }

    fn is_empty(&self) -> bool {
        self.spaces.iter().all(BTreeMap::is_empty)
    }

    pub(crate) fn len(&self) -> usize {
        self.spaces.iter().map(BTreeMap::len).sum()
    }

    /// The changes of each space that has any, in key order.
    pub(crate) fn spaces(&self) -> impl Iterator<Item = (Space, &BTreeMap<Key, Change>)> {
        Space::ALL
            .iter()
            .copied()
            .zip(&self.spaces)
            .filter(|(_, map)| !map.is_empty())
    }
}

/// What the overlay knows of one key.
pub(crate) enum Lookup {
    Found(Vec<u8>),
    Deleted,
    Unknown,
}

struct State {
    active: Generation,
    frozen: Option<Arc<Generation>>,
    /// Position of the last log record applied.
    applied: Position,
}

pub(crate) struct Overlay {
    state: RwLock<State>,
    /// Held across each whole `apply`: a copy of the overlay ([`Overlay::copy_all`]) takes it
    /// too, so it sees whole log records (a record's counter values are its last set).
    whole_records: parking_lot::Mutex<()>,
}

impl Overlay {
    pub(crate) fn new(applied: Position) -> Overlay {
        Overlay {
            state: RwLock::new(State {
                active: Generation::new(),
                frozen: None,
                applied,
            }),
            whole_records: parking_lot::Mutex::new(()),
        }
    }

    /// Position of the last log record applied.
    pub(crate) fn applied(&self) -> Position {
        self.state.read().applied
    }

    /// Applies the changes of the log record at `position`: its write sets in order, each
    /// a list of changes. The record is durable already, so readers may see its first sets
    /// before its last; the lock is let go between sets, every `APPLY_CHUNK` changes or so, so
    /// reads do not wait for a whole large batch. A set is always seen whole.
    pub(crate) fn apply(
        &self,
        position: Position,
        sets: impl IntoIterator<Item = Vec<(Space, Vec<u8>, Change)>>,
    ) {
        // Only the writer applies, so this is taken without waiting but during a backup's copy.
        let _whole = self.whole_records.lock();
        let mut state = self.state.write();
        let mut since_bump = 0usize;
        for set in sets {
            if since_bump >= APPLY_CHUNK {
                RwLockWriteGuard::bump(&mut state);
                since_bump = 0;
            }
            since_bump += set.len();
            let generation = &mut state.active;
            for (space, key, change) in set {
                let size = key.len() + change.as_ref().map_or(0, Vec::len);
                if let Some(map) = generation.spaces.get_mut(space.index()) {
                    // The bytes count what was written since the last checkpoint, replaced
                    // values included: it decides when the next checkpoint is due.
                    generation.bytes = generation.bytes.saturating_add(size);
                    map.insert(Key::from_vec(key), change);
                }
            }
        }
        state.applied = state.applied.max(position);
    }

    pub(crate) fn get(&self, space: Space, key: &[u8]) -> Lookup {
        let state = self.state.read();
        let generations = std::iter::once(&state.active).chain(state.frozen.as_deref());
        for generation in generations {
            match generation.space(space).and_then(|map| map.get(key)) {
                Some(Some(value)) => return Lookup::Found(value.clone()),
                Some(None) => return Lookup::Deleted,
                None => {}
            }
        }
        Lookup::Unknown
    }

    /// The changes of keys in the range, in ascending key order, the newest change of each.
    pub(crate) fn range(
        &self,
        space: Space,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Vec<(Vec<u8>, Change)> {
        let state = self.state.read();
        let mut merged: BTreeMap<&[u8], &Change> = BTreeMap::new();
        // The frozen generation first, so the active one's changes replace its.
        let generations = state.frozen.as_deref().into_iter().chain([&state.active]);
        for generation in generations {
            if let Some(map) = generation.space(space) {
                let range = map.range::<[u8], _>((lower, upper));
                merged.extend(range.map(|(k, v)| (k.as_slice(), v)));
            }
        }
        merged
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.clone()))
            .collect()
    }

    /// Every change not yet in the keyspaces, newest of each key, per space (in `Space::ALL`
    /// order), with the position of the last log record applied: a point between two whole
    /// log records, never inside one.
    pub(crate) fn copy_all(&self) -> (Vec<BTreeMap<Vec<u8>, Change>>, Position) {
        let _whole = self.whole_records.lock();
        let state = self.state.read();
        let mut spaces: Vec<BTreeMap<Vec<u8>, Change>> =
            Space::ALL.iter().map(|_| BTreeMap::new()).collect();
        let generations = state.frozen.as_deref().into_iter().chain([&state.active]);
        for generation in generations {
            for (merged, changes) in spaces.iter_mut().zip(&generation.spaces) {
                merged.extend(changes.iter().map(|(k, v)| (k.to_vec(), v.clone())));
            }
        }
        (spaces, state.applied)
    }

    /// Bytes written since the last checkpoint began.
    pub(crate) fn active_bytes(&self) -> usize {
        self.state.read().active.bytes
    }

    /// Keys changed and not yet materialised.
    pub(crate) fn len(&self) -> usize {
        let state = self.state.read();
        state.active.len() + state.frozen.as_ref().map_or(0, |f| f.len())
    }

    /// Starts a checkpoint: the active generation is frozen and returned with the position of
    /// the last record it holds. `None` when nothing was written since the last checkpoint or
    /// a frozen generation is still being written.
    pub(crate) fn freeze(&self) -> Option<(Arc<Generation>, Position)> {
        let mut state = self.state.write();
        if state.active.is_empty() || state.frozen.is_some() {
            return None;
        }
        let generation = Arc::new(std::mem::replace(&mut state.active, Generation::new()));
        state.frozen = Some(generation.clone());
        Some((generation, state.applied))
    }

    /// Ends a checkpoint: the frozen generation is in fjall, durably.
    pub(crate) fn release_frozen(&self) {
        self.state.write().frozen = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(changes: &[(Vec<u8>, Change)]) -> Vec<(&[u8], Option<&[u8]>)> {
        changes
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect()
    }

    #[test]
    fn the_newest_change_wins_across_generations() {
        let overlay = Overlay::new(0);
        overlay.apply(
            1,
            [vec![
                (Space::Wallets, b"a".to_vec(), Some(b"1".to_vec())),
                (Space::Wallets, b"b".to_vec(), Some(b"1".to_vec())),
            ]],
        );
        let (frozen, through) = overlay.freeze().unwrap();
        assert_eq!((frozen.len(), through), (2, 1));
        assert!(overlay.freeze().is_none(), "one checkpoint at a time");
        overlay.apply(
            2,
            [vec![
                (Space::Wallets, b"a".to_vec(), None),
                (Space::Wallets, b"c".to_vec(), Some(b"2".to_vec())),
            ]],
        );
        assert!(matches!(overlay.get(Space::Wallets, b"a"), Lookup::Deleted));
        assert!(matches!(overlay.get(Space::Wallets, b"b"), Lookup::Found(v) if v == b"1"));
        assert!(matches!(overlay.get(Space::Events, b"b"), Lookup::Unknown));
        let range = overlay.range(Space::Wallets, Bound::Unbounded, Bound::Unbounded);
        assert_eq!(
            keys(&range),
            vec![
                (&b"a"[..], None),
                (&b"b"[..], Some(&b"1"[..])),
                (&b"c"[..], Some(&b"2"[..]))
            ]
        );
        overlay.release_frozen();
        assert!(matches!(overlay.get(Space::Wallets, b"b"), Lookup::Unknown));
        assert_eq!(overlay.len(), 2);
    }

    #[test]
    fn keys_inline_and_on_the_heap_keep_byte_order() {
        let overlay = Overlay::new(0);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for length in [0, 1, 40, 63, 64, 65, 100] {
            for last in [0u8, 1, 255] {
                let mut key = vec![7u8; length];
                key.push(last);
                keys.push(key);
            }
        }
        keys.push(vec![6; 200]);
        keys.push(vec![8]);
        let set = keys
            .iter()
            .rev()
            .map(|k| (Space::Events, k.clone(), Some(k.clone())))
            .collect();
        overlay.apply(1, [set]);
        keys.sort();
        let range = overlay.range(Space::Events, Bound::Unbounded, Bound::Unbounded);
        let found: Vec<Vec<u8>> = range.into_iter().map(|(k, _)| k).collect();
        assert_eq!(found, keys);
        for key in &keys {
            assert!(matches!(overlay.get(Space::Events, key), Lookup::Found(v) if &v == key));
        }
        let (spaces, _) = overlay.copy_all();
        let copied: Vec<&Vec<u8>> = spaces[Space::Events.index()].keys().collect();
        assert_eq!(copied, keys.iter().collect::<Vec<_>>());
    }
}
