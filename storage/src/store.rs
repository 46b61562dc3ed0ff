//! The store: one fjall database with a keyspace per kind of record, typed reads, and writes
//! through the group-commit writer.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointStats, Checkpointer};
use crate::codec::{self, CodecError, Record};
use crate::keys::prefix_end;
use crate::log::{FileLog, Log, Position};
use crate::overlay::{Change, Lookup, Overlay};
use crate::writer::{Ack, Writer, WriterStats};

/// The keyspaces. Each holds one kind of record; their names are part of the on-disk format.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum Space {
    /// Businesses, settings, merchants, TAPs, exchange rates, schemes, tiers, offers, processors.
    Config,
    /// API keys, by id; only hashes of secrets.
    Keys,
    /// Contacts by id.
    Contacts,
    /// The latest state of each wallet, by wallet id.
    Wallets,
    /// Event records by id.
    Events,
    /// Event index entries: by business and time, by contact and time.
    EventIndex,
    /// Ledger entries by wallet and sequence number.
    Ledger,
    /// First responses by idempotency key.
    Idempotency,
    /// Identity indexes: (business, kind, identifier) to contact.
    Identities,
    /// Counters merged by the writer (offer totals and the like): two i64 per key.
    Counters,
    /// Server-level facts (format version, operator key state).
    Meta,
    /// Award lots with nothing left in commerce, by wallet, event and lot: kept out of the
    /// wallet's own record so it stays small, read back to reverse their event.
    Lots,
    /// The part of each contact its wallet actor owns (reward state, schemes, spend block), by
    /// contact id; `Contacts` holds the profile.
    ContactStates,
    /// Processor routing: purchases waiting for their match or their claim, by id; the live
    /// ones by TAP code (what a router rebuilds from); claim codes by business.
    Routes,
    /// Purchase estimates by id, and the open holds by expiry (what start-up wakes).
    Estimates,
    /// Webhook deliveries by webhook, and the pending ones (the durable outbox).
    Outbox,
    /// A wallet's open lots, one record each, by wallet and lot: a purchase writes the lots it
    /// changed, not every lot of the wallet.
    OpenLots,
}

impl Space {
    pub const ALL: [Space; 17] = [
        Space::Config,
        Space::Keys,
        Space::Contacts,
        Space::Wallets,
        Space::Events,
        Space::EventIndex,
        Space::Ledger,
        Space::Idempotency,
        Space::Identities,
        Space::Counters,
        Space::Meta,
        Space::Lots,
        Space::ContactStates,
        Space::Routes,
        Space::Estimates,
        Space::Outbox,
        Space::OpenLots,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Space::Config => "config",
            Space::Keys => "keys",
            Space::Contacts => "contacts",
            Space::Wallets => "wallets",
            Space::Events => "events",
            Space::EventIndex => "event_index",
            Space::Ledger => "ledger",
            Space::Idempotency => "idempotency",
            Space::Identities => "identities",
            Space::Counters => "counters",
            Space::Meta => "meta",
            Space::Lots => "lots",
            Space::ContactStates => "contact_states",
            Space::Routes => "routes",
            Space::Estimates => "estimates",
            Space::Outbox => "outbox",
            Space::OpenLots => "open_lots",
        }
    }

    // Every space is in ALL (a test opens a store with each).
    #[allow(clippy::expect_used)]
    pub(crate) fn index(self) -> usize {
        Space::ALL
            .iter()
            .position(|s| *s == self)
            .expect("every space is in ALL")
    }

    /// The space's number in log records: its place in [`Space::ALL`], so that order is part
    /// of the log's format (new spaces go at the end).
    pub(crate) fn number(self) -> u8 {
        self.index() as u8
    }

    pub(crate) fn from_number(number: u8) -> Option<Space> {
        Space::ALL.get(usize::from(number)).copied()
    }
}

/// When a write is acknowledged.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// After the journal is fsynced (fdatasync): survives a power loss.
    Sync,
    /// After the journal reached the OS buffers: survives a process crash, not a power loss.
    Buffered,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(Durability::Sync),
            "buffered" => Ok(Durability::Buffered),
            other => Err(format!(
                "durability must be sync or buffered, not {other:?}"
            )),
        }
    }
}

/// The longest key the store takes (fjall's own limit is 65,535 bytes): callers bound their
/// inputs far below it, and a longer key is refused here instead of failing inside fjall.
pub const MAX_KEY_BYTES: usize = 16 * 1024;
/// The largest value the store takes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024 * 1024;
/// The largest write set the store takes, all its keys and values together.
pub const MAX_SET_BYTES: usize = 256 * 1024 * 1024;
/// The writer stops adding sets to a commit batch past this many bytes, so a log record stays
/// below [`crate::log::MAX_RECORD_BYTES`] (one set of at most `MAX_SET_BYTES` may follow).
pub(crate) const BATCH_BYTES: usize = 64 * 1024 * 1024;
const _: () = assert!(BATCH_BYTES + MAX_SET_BYTES < crate::log::MAX_RECORD_BYTES);

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the writer's queue is full")]
    Overloaded,
    /// A write set the store cannot take (a key or value beyond its limits): refused whole,
    /// nothing written, the store unharmed.
    #[error("write refused: {0}")]
    Refused(String),
    #[error("a commit failed earlier; the store accepts no more writes")]
    Poisoned,
    #[error("the store is closed")]
    Closed,
    /// Another writer took the replicated log over: this one's appends are refused for good.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("storage failure: {0}")]
    Io(String),
    /// The log cannot give records this store needs: they are gone from it (a replicated log's
    /// retention or a purge dropped them, or it ends before what a checkpoint covers). Reading
    /// again does not help: the store's copy must be replaced by a newer one.
    #[error("the log cannot give what this store needs: {0}")]
    LogLost(String),
    /// Another process (a running server, an audit) has the store's directory open.
    #[error("the store in {0} is in use by another process")]
    InUse(String),
    #[error("record {space}/{key}: {error}")]
    Codec {
        space: &'static str,
        key: String,
        error: String,
    },
}

/// Takes the directory's exclusive lock, or says who holds it. The lock goes with the process,
/// so a crashed server leaves none behind.
pub(crate) fn lock_directory(path: &Path) -> Result<std::fs::File, StoreError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join("LOCK"))
        .map_err(|e| StoreError::Io(format!("opening {}: {e}", path.join("LOCK").display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::InUse(path.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(format!(
            "locking {}: {e}",
            path.join("LOCK").display()
        ))),
    }
}

/// The file a whole backup has, written last: `restore` refuses a directory without it.
pub const BACKUP_MARKER: &str = "BACKUP";

/// What [`Store::backup`] copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStats {
    /// Records copied.
    pub records: u64,
    /// The log position the copy is as of: every write acknowledged before the backup began
    /// is at or below it.
    pub position: u64,
    /// How long checkpoints were held off (writes never are).
    pub paused_micros: u64,
    pub elapsed_ms: u64,
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

fn codec_error(space: Space, key: &[u8], error: CodecError) -> StoreError {
    StoreError::Codec {
        space: space.name(),
        key: key.iter().map(|b| format!("{b:02x}")).collect(),
        error: error.to_string(),
    }
}

/// Called once, from the writer thread, with the error that poisoned the store.
pub type PoisonHook = Arc<dyn Fn(&str) + Send + Sync>;

pub struct StoreOptions {
    pub durability: Durability,
    /// Write sets queued before `submit` answers `Overloaded`.
    pub queue_capacity: usize,
    /// Most write sets in one commit.
    pub max_batch_sets: usize,
    /// Called once, from the writer thread, when a commit or fsync fails.
    pub on_poison: Option<PoisonHook>,
    /// Fault injection for tests: the commit after this many successful ones fails as a
    /// broken disk's fsync would.
    pub fail_commit_after: Option<u64>,
    /// A checkpoint runs at least this often while there are changes to materialise.
    pub checkpoint_interval: Duration,
    /// A checkpoint runs as soon as this many bytes were written since the last one.
    pub checkpoint_bytes: usize,
    /// The log starts a new segment file past this size (a checkpoint deletes whole segments).
    pub log_segment_bytes: u64,
    /// Fault injection for tests: a checkpoint stops as a crash would after writing the
    /// changes of this many keyspaces, before it is complete.
    pub crash_in_checkpoint_after_spaces: Option<usize>,
    /// Replays the log's records after the checkpoint when the store opens (the default). A
    /// store that follows a log it does not write opens without, and reads them with
    /// [`Store::catch_up`], with checkpoints running.
    pub replay_at_open: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Sync,
            queue_capacity: 65_536,
            max_batch_sets: 4_096,
            on_poison: None,
            fail_commit_after: None,
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_bytes: 128 * 1024 * 1024,
            log_segment_bytes: 64 * 1024 * 1024,
            crash_in_checkpoint_after_spaces: None,
            replay_at_open: true,
        }
    }
}

/// A counter's key, held inline: a purchase adds to one counter per award, and these keys are
/// short (an offer's totals: 17 bytes).
pub(crate) type CounterKey = smallvec::SmallVec<[u8; 24]>;

#[derive(Clone)]
pub(crate) enum Op {
    Put(Space, Vec<u8>, Vec<u8>),
    Delete(Space, Vec<u8>),
    AddCounter(CounterKey, [i64; 2]),
}

/// Records that commit together or not at all.
#[derive(Default, Clone)]
pub struct WriteSet {
    pub(crate) ops: Vec<Op>,
}

impl WriteSet {
    pub fn new() -> WriteSet {
        WriteSet::default()
    }

    /// A set with room for `records` records before it grows.
    pub fn with_capacity(records: usize) -> WriteSet {
        WriteSet {
            ops: Vec::with_capacity(records),
        }
    }

    pub fn put<T: Record>(&mut self, space: Space, key: Vec<u8>, value: &T) {
        self.ops.push(Op::Put(space, key, codec::encode(value)));
    }

    /// Stores bytes as they are (index entries whose value is a key, stored responses).
    pub fn put_raw(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(space, key, value));
    }

    pub fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.ops.push(Op::Delete(space, key));
    }

    /// Adds `deltas` to the two counters at `key` in [`Space::Counters`]. The writer merges
    /// additions in commit order, so concurrent writers never lose an update.
    pub fn add_counter(&mut self, key: impl AsRef<[u8]>, deltas: [i64; 2]) {
        self.ops
            .push(Op::AddCounter(CounterKey::from_slice(key.as_ref()), deltas));
    }

    /// Adds every record of `other`, after this set's own: they commit together.
    pub fn append(&mut self, mut other: WriteSet) {
        self.ops.append(&mut other.ops);
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Bytes of keys and values in the set: about its size in a log record.
    pub(crate) fn encoded_len(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Put(_, key, value) => 10 + key.len() + value.len(),
                Op::Delete(_, key) => 6 + key.len(),
                Op::AddCounter(key, _) => 26 + key.len(),
            })
            .sum()
    }

    /// What makes this set one the store cannot take, if anything.
    pub(crate) fn oversized(&self) -> Option<String> {
        let total = self.encoded_len();
        if total > MAX_SET_BYTES {
            return Some(format!("a write set of {total} bytes"));
        }
        self.ops.iter().find_map(|op| {
            let (space, key, value) = match op {
                Op::Put(space, key, value) => (space.name(), key.as_slice(), value.len()),
                Op::Delete(space, key) => (space.name(), key.as_slice(), 0),
                Op::AddCounter(key, _) => (Space::Counters.name(), key.as_slice(), 0),
            };
            if key.is_empty() || key.len() > MAX_KEY_BYTES {
                Some(format!("a key of {} bytes in {space}", key.len()))
            } else if value > MAX_VALUE_BYTES {
                Some(format!("a value of {value} bytes in {space}"))
            } else {
                None
            }
        })
    }
}

/// A key no write could have stored: a read of it finds nothing, without asking fjall.
fn unstorable(key: &[u8]) -> bool {
    key.is_empty() || key.len() > MAX_KEY_BYTES
}

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) spaces: Vec<Keyspace>,
    /// The durable home of every write until a checkpoint covers it.
    pub(crate) log: Box<dyn Log>,
    /// Logged writes not yet in the keyspaces; reads look here first.
    pub(crate) overlay: Overlay,
    pub(crate) poisoned: AtomicBool,
    on_poison: Option<PoisonHook>,
    pub(crate) checkpoint_lock: Mutex<()>,
    /// The log position the last durable checkpoint covers.
    pub(crate) checkpointed: Arc<AtomicU64>,
    pub(crate) checkpoint_bytes: usize,
    pub(crate) crash_in_checkpoint_after_spaces: Option<usize>,
    /// Marked by each checkpoint so that the trickle thread writes its files back as they grow
    /// (with durability `sync`; see `trickle.rs`).
    pub(crate) trickle_activity: Option<Arc<AtomicU64>>,
    /// The directory's `LOCK` file, locked exclusively while the store is open: two processes
    /// writing one store would corrupt it.
    _lock: std::fs::File,
}

impl Inner {
    // `spaces` holds one keyspace per entry of `Space::ALL`, in its order, from `open`.
    #[allow(clippy::indexing_slicing)]
    pub(crate) fn space(&self, space: Space) -> &Keyspace {
        &self.spaces[space.index()]
    }

    /// Keeps the trickle thread's passes going (from a checkpoint's start and end).
    pub(crate) fn mark_trickle_busy(&self) {
        if let Some(activity) = &self.trickle_activity {
            crate::trickle::mark_busy(activity);
        }
    }

    /// Stops every later write, once: a failed commit, fsync or checkpoint (fjall's guidance:
    /// do not retry and carry on).
    pub(crate) fn poison(&self, message: &str) {
        if self.poisoned.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(error = %message, "the store is poisoned and accepts no more writes; nothing acknowledged was lost");
        metrics::counter!("rewards_store_poisoned_total").increment(1);
        if let Some(hook) = &self.on_poison {
            hook(message);
        }
    }

    /// A value as the store holds it: the overlay's change, else fjall's.
    pub(crate) fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(space, key) {
            Lookup::Found(value) => Ok(Some(value)),
            Lookup::Deleted => Ok(None),
            Lookup::Unknown => Ok(self.space(space).get(key)?.map(|v| v.to_vec())),
        }
    }
}

/// A handle to the open store; clones share it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    writer: Arc<Writer>,
    checkpointer: Arc<Checkpointer>,
    durability: Durability,
    /// Log records replayed when the store was opened.
    replayed: u64,
    /// How far [`Store::catch_up`] read the log (see [`Store::followed_position`]).
    followed: Arc<AtomicU64>,
    /// Writes checkpoints' files back as they grow; stops when the last clone is dropped.
    trickle: Option<Arc<crate::trickle::Trickle>>,
}

pub(crate) fn decode_counter(bytes: &[u8]) -> [i64; 2] {
    let half = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, i64::from_be_bytes)
    };
    if bytes.len() == 16 {
        [half(0..8), half(8..16)]
    } else {
        [0, 0]
    }
}

pub(crate) fn encode_counter(value: [i64; 2]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&value[0].to_be_bytes());
    out.extend_from_slice(&value[1].to_be_bytes());
    out
}

impl Store {
    /// Opens (or creates) the store in `path` and starts its writer and checkpointer.
    /// Recovery is fjall's own (the last checkpoint) plus the log's records after the position
    /// that checkpoint covers, applied to the overlay: everything acknowledged before a crash
    /// is there.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let (durability, segment_bytes) = (options.durability, options.log_segment_bytes);
        let log_dir = path.join("log");
        Store::open_on(path, options, move |checkpoint| {
            Ok(Box::new(FileLog::open(
                &log_dir,
                durability,
                segment_bytes,
                checkpoint,
            )?))
        })
    }

    /// Opens the store in `path` on a log of the caller's choosing: `open_log` is given the
    /// position the keyspaces' checkpoint covers and returns the log to replay after it and to
    /// append to. [`Store::open`] passes the local [`FileLog`] in `path/log`.
    pub fn open_on(
        path: &Path,
        options: StoreOptions,
        open_log: impl FnOnce(Position) -> Result<Box<dyn Log>, StoreError>,
    ) -> Result<Store, StoreError> {
        assert!(options.queue_capacity >= 1 && options.max_batch_sets >= 1);
        let started = Instant::now();
        std::fs::create_dir_all(path).map_err(|e| StoreError::Io(e.to_string()))?;
        let lock = lock_directory(path)?;
        let db = open_database(path)?;
        let spaces = Space::ALL
            .iter()
            .map(|s| db.keyspace(s.name(), || keyspace_options(*s)))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpoint = crate::checkpoint::read_position_of(&spaces)?;
        let log = open_log(checkpoint)?;
        // The trickle only shortens commits' waits: without it the store works as before.
        let trickle = match options.durability {
            Durability::Sync => match crate::trickle::Trickle::start(path) {
                Ok(trickle) => Some(Arc::new(trickle)),
                Err(error) => {
                    tracing::warn!(%error, "the trickle thread did not start; checkpoints' files reach the disk at their own fsyncs");
                    None
                }
            },
            Durability::Buffered => None,
        };
        let mut inner = Inner {
            db,
            spaces,
            log,
            overlay: Overlay::new(0),
            poisoned: AtomicBool::new(false),
            on_poison: options.on_poison.clone(),
            checkpoint_lock: Mutex::new(()),
            checkpointed: Arc::new(AtomicU64::new(checkpoint)),
            checkpoint_bytes: options.checkpoint_bytes,
            crash_in_checkpoint_after_spaces: options.crash_in_checkpoint_after_spaces,
            trickle_activity: trickle.as_ref().map(|t| t.activity()),
            _lock: lock,
        };
        inner.overlay = Overlay::new(checkpoint);
        let mut replayed = 0u64;
        if options.replay_at_open {
            inner.log.read_after(checkpoint, &mut |position, record| {
                // The record's write sets are not told apart in the log: replayed before anything
                // reads, it is applied as one.
                inner
                    .overlay
                    .apply(position, [crate::batch::decode(position, record)?]);
                replayed += 1;
                Ok(())
            })?;
        }
        let inner = Arc::new(inner);
        let checkpointer = Arc::new(Checkpointer::start(
            inner.clone(),
            options.checkpoint_interval,
        )?);
        let writer = Writer::start(inner.clone(), checkpointer.clone(), &options)?;
        let recovery_seconds = started.elapsed().as_secs_f64();
        metrics::gauge!("rewards_store_recovery_seconds").set(recovery_seconds);
        tracing::info!(
            path = %path.display(),
            checkpoint,
            log_records_replayed = replayed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        Ok(Store {
            inner,
            writer: Arc::new(writer),
            checkpointer,
            durability: options.durability,
            replayed,
            followed: Arc::new(AtomicU64::new(0)),
            trickle,
        })
    }

    /// How many log records opening the store replayed (those its checkpoint did not cover).
    pub fn replayed_at_open(&self) -> u64 {
        self.replayed
    }

    /// Applies the log's records after the last one this store applied, as a replay at start-up
    /// does: for a store opened on a log it follows and does not write (a cluster's follower,
    /// whose copy stays close to the stream, so that taking the data over replays little).
    /// Checkpoints run as they do under writes, and this waits for them when the changes not yet
    /// checkpointed pass twice `checkpoint_bytes`. Answers how many records it applied.
    ///
    /// `stop` is asked before each record: once it says so, this returns with what it applied.
    pub fn catch_up(&self, stop: &dyn Fn() -> bool) -> Result<u64, StoreError> {
        let inner = &self.inner;
        let limit = inner.checkpoint_bytes.saturating_mul(2);
        let mut applied = 0u64;
        let from = self.followed_position();
        let read = inner.log.read_after(from, &mut |position, record| {
            if stop() {
                return Err(StoreError::Closed);
            }
            inner
                .overlay
                .apply(position, [crate::batch::decode(position, record)?]);
            applied += 1;
            if inner.overlay.active_bytes() >= inner.checkpoint_bytes {
                self.checkpointer.kick();
            }
            while inner.overlay.active_bytes() >= limit && !self.is_poisoned() {
                self.checkpointer.kick();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(())
        });
        match read {
            Ok(through) => {
                self.followed.fetch_max(through, Ordering::AcqRel);
                Ok(applied)
            }
            Err(StoreError::Closed) => Ok(applied),
            Err(error) => Err(error),
        }
    }

    /// How far [`Store::catch_up`] has read the log: the last record it applied, or a later
    /// entry that holds no record (a fence marker), so that the next pass starts after it.
    pub fn followed_position(&self) -> Position {
        self.inner
            .overlay
            .applied()
            .max(self.followed.load(Ordering::Acquire))
    }

    /// The log position the last checkpoint covers, once that checkpoint is durable: a copy
    /// opened on this directory needs the log only after it.
    pub fn checkpointed_position(&self) -> Position {
        self.inner.checkpointed.load(Ordering::Acquire)
    }

    /// [`Store::checkpointed_position`] as a handle that outlives the store without keeping it
    /// open: it reads the position of the store's last checkpoint, its closing one included.
    pub fn checkpointed_handle(&self) -> Arc<AtomicU64> {
        self.inner.checkpointed.clone()
    }

    /// Position of the last log record this store applied.
    pub fn applied_position(&self) -> Position {
        self.inner.overlay.applied()
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub fn get_raw(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if unstorable(key) {
            return Ok(None);
        }
        self.inner.get(space, key)
    }

    pub fn get<T: Record>(&self, space: Space, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.get_raw(space, key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes)
                .map(Some)
                .map_err(|e| codec_error(space, key, e)),
        }
    }

    pub fn contains(&self, space: Space, key: &[u8]) -> Result<bool, StoreError> {
        if unstorable(key) {
            return Ok(false);
        }
        match self.inner.overlay.get(space, key) {
            Lookup::Found(_) => Ok(true),
            Lookup::Deleted => Ok(false),
            Lookup::Unknown => Ok(self.inner.space(space).contains_key(key)?),
        }
    }

    /// The two counters at `key` (zero when never added to).
    pub fn counter(&self, key: &[u8]) -> Result<[i64; 2], StoreError> {
        Ok(self
            .get_raw(Space::Counters, key)?
            .map_or([0, 0], |v| decode_counter(&v)))
    }

    /// One page of the records under `prefix`, in key order or reversed, after `cursor` (a key
    /// a previous page returned). The second value is the cursor of the next page, if any.
    #[allow(clippy::type_complexity)]
    pub fn page<T: Record>(
        &self,
        space: Space,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<(Vec<(Vec<u8>, T)>, Option<Vec<u8>>), StoreError> {
        let (raw, next) = self.page_raw(space, prefix, cursor, reverse, limit)?;
        let items = raw
            .into_iter()
            .map(|(key, value)| {
                let record = codec::decode(&value).map_err(|e| codec_error(space, &key, e))?;
                Ok((key, record))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, next))
    }

    /// [`Store::page`] without decoding: index entries whose values are keys.
    #[allow(clippy::type_complexity)]
    pub fn page_raw(
        &self,
        space: Space,
        prefix: &[u8],
        cursor: Option<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, Option<Vec<u8>>), StoreError> {
        if prefix.len() > MAX_KEY_BYTES || cursor.is_some_and(|c| c.len() > MAX_KEY_BYTES) {
            return Ok((Vec::new(), None));
        }
        let end = prefix_end(prefix);
        let cursor = cursor.filter(|c| c.starts_with(prefix));
        let (lower, upper) = if reverse {
            let upper = match (cursor, &end) {
                (Some(c), _) => Bound::Excluded(c),
                (None, Some(end)) => Bound::Excluded(end.as_slice()),
                (None, None) => Bound::Unbounded,
            };
            (Bound::Included(prefix), upper)
        } else {
            let lower = cursor.map_or(Bound::Included(prefix), Bound::Excluded);
            let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            (lower, upper)
        };
        let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(limit.min(1024));
        let mut next = None;
        for item in self.merged(space, lower, upper, reverse) {
            let (key, value) = item?;
            if items.len() == limit {
                next = items.last().map(|(k, _)| k.clone());
                break;
            }
            items.push((key, value));
        }
        Ok((items, next))
    }

    /// Calls `f` with every record under `prefix`, in key order (recovery, reports).
    pub fn for_each<T: Record>(
        &self,
        space: Space,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], T) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        self.for_each_raw(space, prefix, |key, value| {
            let record = codec::decode(value).map_err(|e| codec_error(space, key, e))?;
            f(key, record)
        })
    }

    /// Raw keys and values under `prefix` (index entries).
    pub fn for_each_raw(
        &self,
        space: Space,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let end = prefix_end(prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut count = 0;
        for item in self.merged(space, Bound::Included(prefix), upper, false) {
            let (key, value) = item?;
            f(&key, &value)?;
            count += 1;
        }
        Ok(count)
    }

    /// Raw keys and values from `lower` (inclusive) to `upper` (exclusive), in key order
    /// (reports over a period of a time-ordered index).
    pub fn for_each_raw_between(
        &self,
        space: Space,
        lower: &[u8],
        upper: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for item in self.merged(space, Bound::Included(lower), Bound::Excluded(upper), false) {
            let (key, value) = item?;
            f(&key, &value)?;
            count += 1;
        }
        Ok(count)
    }

    /// The records in a key range as the store holds them: fjall's, with the overlay's
    /// changes on top (a newer value replaces fjall's, a deletion hides it).
    fn merged<'a>(
        &'a self,
        space: Space,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a {
        let mut changes = self.inner.overlay.range(space, lower, upper);
        let range: (Bound<Vec<u8>>, Bound<Vec<u8>>) =
            (lower.map(<[u8]>::to_vec), upper.map(<[u8]>::to_vec));
        let keyspace = self.inner.space(space);
        let stored: Box<dyn Iterator<Item = fjall::Guard>> = if reverse {
            changes.reverse();
            Box::new(keyspace.range(range).rev())
        } else {
            Box::new(keyspace.range(range))
        };
        Merged {
            changes: changes.into_iter().peekable(),
            stored,
            head: None,
            stored_done: false,
            reverse,
        }
    }

    /// An estimate of the number of records in a space (for logs and metrics).
    pub fn approximate_len(&self, space: Space) -> usize {
        self.inner.space(space).approximate_len()
    }

    /// Bytes the store takes on disk.
    pub fn disk_space(&self) -> u64 {
        self.inner.db.disk_space().unwrap_or(0)
    }

    /// Hands a write set to the writer; `ack` is called exactly once: when the set is durable,
    /// when its commit failed, or at once (before this returns the same error) when the set is
    /// refused. Never waits: a full queue is `Overloaded`, a poisoned writer `Poisoned`.
    pub fn submit(&self, set: WriteSet, ack: Ack) -> Result<(), StoreError> {
        self.writer.submit(set, ack)
    }

    /// Writes a set and waits until it is durable (configuration changes, tests). Blocks the
    /// calling thread; async callers use [`Store::submit`].
    pub fn write(&self, set: WriteSet) -> Result<(), StoreError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        // A refusal is also delivered to the ack, so the answer is always on the channel.
        let _ = self.submit(
            set,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    pub fn is_poisoned(&self) -> bool {
        self.writer.is_poisoned()
    }

    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats()
    }

    pub fn queue_depth(&self) -> usize {
        self.writer.queue_depth()
    }

    /// Stops taking writes, commits everything already queued, waits for the writer to end,
    /// and checkpoints what the log holds, so the next start replays nothing.
    pub fn close(&self) {
        self.writer.close();
        self.checkpointer.stop();
        if !self.is_poisoned() {
            if let Err(error) = crate::checkpoint::run_once(&self.inner) {
                tracing::warn!(%error, "the closing checkpoint failed; the log still holds every write");
            }
        }
        if let Some(trickle) = &self.trickle {
            trickle.stop();
        }
    }

    /// Stops as a crash would: the writer and checkpointer end, nothing more is materialised
    /// (a test of recovery reopens the directory afterwards).
    #[doc(hidden)]
    pub fn close_without_checkpoint(&self) {
        self.writer.close();
        self.checkpointer.stop();
        if let Some(trickle) = &self.trickle {
            trickle.stop();
        }
    }

    /// Copies every record, as of one moment, into a new store at `to` (a directory that does
    /// not exist, or is empty), while writes go on.
    ///
    /// The moment: with checkpoints held off for an instant, the keyspaces are exactly what
    /// the last checkpoint wrote, and the overlay holds every change after it. A copy of the
    /// overlay's changes (taken under its read lock, so between two write sets) and a fjall
    /// snapshot of the keyspaces together are the store at the overlay's last applied log
    /// position. Then the lock is let go, and the copy is written from the two without holding
    /// anything: new writes and checkpoints go on meanwhile. The copy is a closed store,
    /// checkpointed and persisted, opened by [`Store::open`] like any other.
    pub fn backup(&self, to: &Path) -> Result<BackupStats, StoreError> {
        let existed = to.exists();
        let result = self.backup_into(to);
        if result.is_err() && !matches!(result, Err(StoreError::Refused(_))) {
            // A partial copy is no backup: it goes (the directory too, if this made it).
            if existed {
                if let Ok(entries) = std::fs::read_dir(to) {
                    for entry in entries.flatten() {
                        let path = entry.path();
                        let _ = if path.is_dir() {
                            std::fs::remove_dir_all(&path)
                        } else {
                            std::fs::remove_file(&path)
                        };
                    }
                }
            } else {
                let _ = std::fs::remove_dir_all(to);
            }
        }
        result
    }

    fn backup_into(&self, to: &Path) -> Result<BackupStats, StoreError> {
        let started = Instant::now();
        if to.exists()
            && std::fs::read_dir(to)
                .map_err(|e| StoreError::Io(format!("{}: {e}", to.display())))?
                .next()
                .is_some()
        {
            return Err(StoreError::Refused(format!(
                "{} exists and is not empty",
                to.display()
            )));
        }
        let (changes, position, snapshot) = {
            let _no_checkpoint = self.inner.checkpoint_lock.lock();
            let (changes, position) = self.inner.overlay.copy_all();
            (changes, position, self.inner.db.snapshot())
        };
        let paused = started.elapsed();
        let copy = Store::open(
            to,
            StoreOptions {
                durability: Durability::Buffered,
                checkpoint_interval: Duration::from_secs(3600),
                ..StoreOptions::default()
            },
        )?;
        let mut records = 0u64;
        let mut set = WriteSet::new();
        for (space, changes) in Space::ALL.into_iter().zip(changes) {
            // The position of the copy's own checkpoints is its own business.
            if space == Space::Meta {
                continue;
            }
            let stored = fjall::Readable::iter(&snapshot, self.inner.space(space));
            let mut changes = changes.into_iter().peekable();
            let mut put = |key: Vec<u8>, value: Vec<u8>| -> Result<(), StoreError> {
                set.put_raw(space, key, value);
                records += 1;
                if set.len() >= 1024 {
                    copy.write(std::mem::take(&mut set))?;
                }
                Ok(())
            };
            for guard in stored {
                let (key, value) = guard.into_inner()?;
                // Changes of keys before this one, then this key's own change, if any.
                while let Some((changed, _)) = changes.peek() {
                    if changed.as_slice() >= &*key {
                        break;
                    }
                    if let Some((changed, Some(value))) = changes.next() {
                        put(changed, value)?;
                    }
                }
                match changes.peek() {
                    Some((changed, change)) if changed.as_slice() == &*key => {
                        let change = change.clone();
                        changes.next();
                        if let Some(value) = change {
                            put(key.to_vec(), value)?;
                        }
                    }
                    _ => put(key.to_vec(), value.to_vec())?,
                }
            }
            for (changed, change) in changes {
                if let Some(value) = change {
                    put(changed, value)?;
                }
            }
        }
        if !set.is_empty() {
            copy.write(set)?;
        }
        copy.close();
        if copy.is_poisoned() {
            return Err(StoreError::Io("the copy could not be written".into()));
        }
        drop(copy);
        let stats = BackupStats {
            records,
            position,
            paused_micros: paused.as_micros() as u64,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        // Written last and synced: a directory without it is not a whole backup.
        let marker = to.join(BACKUP_MARKER);
        let text = format!(
            "{{\"records\":{},\"position\":{}}}\n",
            stats.records, stats.position
        );
        std::fs::write(&marker, text)
            .and_then(|()| std::fs::File::open(&marker)?.sync_all())
            .and_then(|()| std::fs::File::open(to)?.sync_all())
            .map_err(|e| StoreError::Io(format!("{}: {e}", marker.display())))?;
        Ok(stats)
    }

    /// Makes the closed store in `dir` (a [`Store::backup`]) a copy of a log that lives
    /// elsewhere, as of `position` of that log: its checkpoint is said to cover `position`
    /// (the backup's [`BackupStats::position`]), and its own log's directory goes. Opened with
    /// [`Store::open_on`] on that log, it replays only what came after `position`.
    pub fn rebase(dir: &Path, position: Position) -> Result<(), StoreError> {
        let lock = lock_directory(dir)?;
        let db = open_database(dir)?;
        let meta = db.keyspace(Space::Meta.name(), || keyspace_options(Space::Meta))?;
        meta.insert(
            crate::checkpoint::CHECKPOINT_KEY,
            position.to_be_bytes().as_slice(),
        )?;
        db.persist(fjall::PersistMode::SyncAll)?;
        drop(meta);
        drop(db);
        let log = dir.join("log");
        if log.exists() {
            std::fs::remove_dir_all(&log)
                .map_err(|e| StoreError::Io(format!("removing {}: {e}", log.display())))?;
        }
        drop(lock);
        Ok(())
    }

    /// Materialises every logged write into the keyspaces now (tests, tools); `None` when
    /// there was nothing to write.
    pub fn checkpoint(&self) -> Result<Option<CheckpointStats>, StoreError> {
        crate::checkpoint::run_once(&self.inner)
    }

    /// Keys changed since the last checkpoint, not yet in the keyspaces.
    pub fn unmaterialised_keys(&self) -> usize {
        self.inner.overlay.len()
    }

    /// Makes the next commit fail as a broken disk would, to test that a failure poisons.
    #[doc(hidden)]
    pub fn inject_commit_failure(&self) {
        self.writer.inject_failure();
    }
}

/// Fjall's records in a range merged with the overlay's changes, in key order (or reversed).
struct Merged<C: Iterator<Item = (Vec<u8>, Change)>, S: Iterator<Item = fjall::Guard>> {
    changes: std::iter::Peekable<C>,
    stored: S,
    /// Fjall's next record, read ahead to compare with the next change.
    head: Option<(Vec<u8>, Vec<u8>)>,
    stored_done: bool,
    reverse: bool,
}

impl<C, S> Merged<C, S>
where
    C: Iterator<Item = (Vec<u8>, Change)>,
    S: Iterator<Item = fjall::Guard>,
{
    fn fill_head(&mut self) -> Result<(), StoreError> {
        if self.head.is_none() && !self.stored_done {
            match self.stored.next() {
                None => self.stored_done = true,
                Some(guard) => {
                    let (key, value) = guard.into_inner()?;
                    self.head = Some((key.to_vec(), value.to_vec()));
                }
            }
        }
        Ok(())
    }
}

impl<C, S> Iterator for Merged<C, S>
where
    C: Iterator<Item = (Vec<u8>, Change)>,
    S: Iterator<Item = fjall::Guard>,
{
    type Item = Result<(Vec<u8>, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering as Order;
        loop {
            if let Err(error) = self.fill_head() {
                return Some(Err(error));
            }
            // Which comes first in the iteration's order: the next change or fjall's record.
            let order = match (self.changes.peek(), &self.head) {
                (None, None) => return None,
                (None, Some(_)) => Order::Greater,
                (Some(_), None) => Order::Less,
                (Some((change_key, _)), Some((stored_key, _))) if self.reverse => {
                    stored_key.cmp(change_key)
                }
                (Some((change_key, _)), Some((stored_key, _))) => change_key.cmp(stored_key),
            };
            if order == Order::Greater {
                return self.head.take().map(Ok);
            }
            if order == Order::Equal {
                // The change replaces or hides fjall's record of the same key.
                self.head = None;
            }
            if let Some((key, Some(value))) = self.changes.next() {
                return Some(Ok((key, value)));
            }
        }
    }
}

/// How a keyspace is created (an existing one keeps the options it was created with).
///
/// Events, ledger entries and first responses are written once and rarely read, and they are
/// most of the bytes a purchase leaves (about 760 + 740 bytes of its 2,750): their values go
/// to blob files beside the tree (fjall's key-value separation), so compactions move their
/// keys and not their values again at every level.
fn keyspace_options(space: Space) -> KeyspaceCreateOptions {
    let options = KeyspaceCreateOptions::default();
    match space {
        Space::Events | Space::Ledger | Space::Idempotency => options.with_kv_separation(Some(
            fjall::KvSeparationOptions::default()
                .separation_threshold(BLOB_VALUE_BYTES)
                .compression(fjall::CompressionType::None),
        )),
        _ => options,
    }
}

/// Values from this size on are kept apart from the keys in the spaces that separate them.
const BLOB_VALUE_BYTES: u32 = 512;

/// Opens fjall's database on a thread of lower priority
/// ([`crate::checkpoint::lower_priority`]): its workers, which flush and compact, are started
/// by the opening and take that thread's niceness. A compaction after a large checkpoint keeps
/// a core or two busy for seconds; at the request threads' priority it took their share of a
/// small machine and queued requests behind it, at a lower one it takes the time they leave.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                crate::checkpoint::lower_priority();
                Database::builder(path)
                    .worker_threads(fjall_workers())
                    .open()
            })
            .join()
    })
    .map_err(|_| StoreError::Io("opening the database panicked".into()))?
    .map_err(StoreError::from)
}

/// fjall's background workers: at least three. With two (its default on two cores), worker 0
/// hands every compaction request back to the queue to stay free for flushes, and while worker
/// 1 compacts it keeps taking that request and putting it back: a busy loop that cost 3 to 6 %
/// of the server's CPU in profiles (`flume` send and receive on a `fjall:worker` thread). With a
/// third worker, the request goes to an idle compactor instead. Capped at four as fjall's own
/// default is.
fn fjall_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.clamp(3, 4)
}
