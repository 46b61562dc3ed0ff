//! Checkpoints: the overlay's changes materialised into the keyspaces, off the hot path.
//!
//! A checkpoint freezes the overlay's active generation (the writer goes on into a new one),
//! writes the frozen changes into fjall in chunks with fjall's journal left to the OS, then
//! writes the position it covers into `meta` and persists fjall with one fsync. Only then does
//! it drop the frozen generation and delete the log segments it covers. A crash anywhere in
//! between leaves the previous checkpoint's position in `meta`: recovery replays the log from
//! there, and replaying a change fjall already holds writes the same value again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::PersistMode;
use parking_lot::{Condvar, Mutex};

use crate::log::{Log, Position};
use crate::store::{Inner, Space, StoreError};

/// The key in [`Space::Meta`] of the log position the last checkpoint covers.
pub(crate) const CHECKPOINT_KEY: &[u8] = b"checkpoint";
/// Changes per fjall batch while a checkpoint writes: bounds the batch's memory.
const CHUNK_CHANGES: usize = 16_384;

/// What one checkpoint did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Keys written (each once, however often it changed).
    pub keys: usize,
    /// The log position it covers.
    pub through: Position,
}

/// The position the last checkpoint covers, from the keyspaces (in [`Space::ALL`]'s order).
pub(crate) fn read_position_of(spaces: &[fjall::Keyspace]) -> Result<Position, StoreError> {
    let Some(meta) = spaces.get(Space::Meta.index()) else {
        return Ok(0);
    };
    let stored = meta.get(CHECKPOINT_KEY)?;
    Ok(stored
        .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Runs one checkpoint now; `None` when there was nothing to write. One at a time.
pub(crate) fn run_once(inner: &Inner) -> Result<Option<CheckpointStats>, StoreError> {
    let _one_at_a_time = inner.checkpoint_lock.lock();
    if inner.poisoned.load(Ordering::Acquire) {
        return Err(StoreError::Poisoned);
    }
    let Some((generation, through)) = inner.overlay.freeze() else {
        return Ok(None);
    };
    let started = Instant::now();
    let mut batch = inner.db.batch().durability(None);
    let mut in_batch = 0usize;
    let mut chunks = 0usize;
    for (space, key, change) in generation.changes() {
        match change {
            Some(value) => batch.insert(inner.space(space), key, value.as_slice()),
            None => batch.remove(inner.space(space), key),
        }
        in_batch += 1;
        if in_batch == CHUNK_CHANGES {
            batch.commit()?;
            chunks += 1;
            if inner.crash_in_checkpoint_after_chunks == Some(chunks) {
                return Err(StoreError::Io("injected crash in a checkpoint".into()));
            }
            batch = inner.db.batch().durability(None);
            in_batch = 0;
        }
    }
    batch.insert(
        inner.space(Space::Meta),
        CHECKPOINT_KEY,
        through.to_be_bytes().as_slice(),
    );
    batch.commit()?;
    // The checkpoint is durable only once fjall's journal and everything it wrote are on disk;
    // until then the log still holds the changes.
    inner.db.persist(PersistMode::SyncAll)?;
    inner.overlay.release_frozen();
    inner.log.truncate_through(through)?;
    let stats = CheckpointStats {
        keys: generation.len(),
        through,
    };
    metrics::histogram!("rewards_checkpoint_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("rewards_checkpoint_keys").record(stats.keys as f64);
    metrics::gauge!("rewards_log_segments").set(inner.log.segment_count() as f64);
    tracing::debug!(
        keys = stats.keys,
        through,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "checkpoint"
    );
    Ok(Some(stats))
}

/// Tells the checkpointer to run now or to stop.
#[derive(Default)]
struct Signal {
    due: bool,
    stop: bool,
}

/// The thread that runs checkpoints every `interval`, or sooner when the writer says the
/// overlay passed its size.
pub(crate) struct Checkpointer {
    signal: Arc<(Mutex<Signal>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub(crate) fn start(inner: Arc<Inner>, interval: Duration) -> Result<Checkpointer, StoreError> {
        let signal: Arc<(Mutex<Signal>, Condvar)> = Arc::default();
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || run(&inner, &thread_signal, interval))
            .map_err(|e| StoreError::Io(format!("spawning the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            signal,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Asks for a checkpoint as soon as the thread is free.
    pub(crate) fn kick(&self) {
        let (lock, wake) = &*self.signal;
        lock.lock().due = true;
        wake.notify_one();
    }

    pub(crate) fn stop(&self) {
        {
            let (lock, wake) = &*self.signal;
            lock.lock().stop = true;
            wake.notify_one();
        }
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

fn run(inner: &Inner, signal: &(Mutex<Signal>, Condvar), interval: Duration) {
    let (lock, wake) = signal;
    loop {
        {
            let mut state = lock.lock();
            if !state.due && !state.stop {
                wake.wait_for(&mut state, interval);
            }
            if state.stop {
                return;
            }
            state.due = false;
        }
        if inner.poisoned.load(Ordering::Acquire) {
            continue;
        }
        if let Err(error) = run_once(inner) {
            inner.poison(&format!("checkpoint failed: {error}"));
        }
    }
}
