//! Checkpoints: the overlay's changes materialised into the keyspaces, off the hot path.
//!
//! A checkpoint freezes the overlay's active generation (the writer goes on into a new one),
//! writes the frozen changes of each keyspace into new tables of it (fjall's ingestion, which
//! syncs them), then writes the position it covers into `meta` and persists fjall. Only then does
//! it drop the frozen generation and delete the log segments it covers. A crash anywhere in
//! between leaves the previous checkpoint's position in `meta`: recovery replays the log from
//! there, and replaying a change fjall already holds writes the same value again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::PersistMode;
use parking_lot::{Condvar, Mutex};

use crate::log::Position;
use crate::overlay::Generation;
use crate::store::{Inner, Space, StoreError};

/// The key in [`Space::Meta`] of the log position the last checkpoint covers.
pub(crate) const CHECKPOINT_KEY: &[u8] = b"checkpoint";

/// A space with at least this many changes in a checkpoint gets them as new tables.
const INGEST_MIN_KEYS: usize = 8_192;

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

/// Runs one checkpoint now; `None` when there was nothing to write. One at a time. A
/// checkpoint that fails (or panics) poisons the store: its frozen changes stay readable in the
/// overlay and the log still holds them, but no later write or checkpoint is taken.
pub(crate) fn run_once(inner: &Inner) -> Result<Option<CheckpointStats>, StoreError> {
    let _one_at_a_time = inner.checkpoint_lock.lock();
    if inner.poisoned.load(Ordering::Acquire) {
        return Err(StoreError::Poisoned);
    }
    let Some((generation, through)) = inner.overlay.freeze() else {
        return Ok(None);
    };
    inner.mark_trickle_busy();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        write(inner, &generation, through)
    }))
    .unwrap_or_else(|_| Err(StoreError::Io("the checkpoint panicked".into())));
    // fjall compacts the tables the checkpoint added: their files are written back as well.
    inner.mark_trickle_busy();
    match result {
        Ok(stats) => Ok(Some(stats)),
        Err(error) => {
            inner.poison(&format!("checkpoint failed: {error}"));
            Err(error)
        }
    }
}

/// Writes a frozen generation into the keyspaces, records the position it covers, persists,
/// and only then lets the generation and the log segments it covers go.
fn write(
    inner: &Inner,
    generation: &Generation,
    through: Position,
) -> Result<CheckpointStats, StoreError> {
    let started = Instant::now();
    // A space with many changes gets them, already in key order, straight into new tables of
    // its keyspace (fjall's ingestion): no memtable, no second journal, since the log is the
    // journal. A table costs a few fsyncs, so a space with few changes gets them through a
    // batch into its memtable instead, made durable by the persist below.
    let mut spaces_written = 0usize;
    let mut small = inner.db.batch().durability(None);
    for (space, changes) in generation.spaces() {
        if changes.len() >= INGEST_MIN_KEYS {
            let mut ingestion = inner.space(space).start_ingestion()?;
            for (key, change) in changes {
                match change {
                    Some(value) => ingestion.write(key.as_slice(), value.as_slice())?,
                    None => ingestion.write_tombstone(key.as_slice())?,
                }
            }
            ingestion.finish()?;
        } else {
            for (key, change) in changes {
                match change {
                    Some(value) => {
                        small.insert(inner.space(space), key.as_slice(), value.as_slice())
                    }
                    None => small.remove(inner.space(space), key.as_slice()),
                }
            }
        }
        spaces_written += 1;
        if inner.crash_in_checkpoint_after_spaces == Some(spaces_written) {
            return Err(StoreError::Io("injected crash in a checkpoint".into()));
        }
    }
    let mut batch = small;
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
    inner.checkpointed.fetch_max(through, Ordering::AcqRel);
    inner.log.truncate_through(through)?;
    let stats = CheckpointStats {
        keys: generation.len(),
        through,
    };
    metrics::histogram!("rewards_checkpoint_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("rewards_checkpoint_keys").record(stats.keys as f64);
    if let Some(segments) = inner.log.segment_count() {
        metrics::gauge!("rewards_log_segments").set(segments as f64);
    }
    tracing::debug!(
        keys = stats.keys,
        through,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "checkpoint"
    );
    Ok(stats)
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

/// How much lower than the request threads the checkpointer runs (a nice value): on a machine
/// whose cores serve requests, a checkpoint takes the time they leave, so it does not add to
/// their latency. Checkpoints are bounded by memory, not by a deadline.
const CHECKPOINT_NICENESS: libc::c_int = 10;

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lowers the calling thread's priority to [`CHECKPOINT_NICENESS`]; threads it starts later
/// inherit it.
pub(crate) fn lower_priority() {
    // SAFETY: setpriority with `who` 0 changes only the calling thread's nice value on Linux
    // (threads are tasks); it reads and writes no memory of ours. Failing is harmless.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, CHECKPOINT_NICENESS);
    }
}

fn run(inner: &Inner, signal: &(Mutex<Signal>, Condvar), interval: Duration) {
    lower_priority();
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
        // A failure poisons the store inside; there is nothing more to do here.
        let _ = run_once(inner);
    }
}
