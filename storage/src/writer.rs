//! The group-commit writer: one thread that drains its bounded queue into one log record, appends
//! it with one fsync, applies it to the overlay, and acknowledges every waiter of that batch.
//!
//! Callers never append themselves: N waiting write sets cost one record and one fsync. The
//! keyspaces are written later, by checkpoints, once per key however often it changed. A failed
//! append poisons the store: it never acknowledges a write that is not durable, and every later
//! write fails (fjall's guidance: do not retry and carry on).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::checkpoint::Checkpointer;
use crate::overlay::Change;
use crate::store::{
    decode_counter, encode_counter, CounterKey, Durability, Inner, Op, Space, StoreError,
    StoreOptions, WriteSet, BATCH_BYTES,
};

/// Called once per write set, from the writer thread, with the outcome of its commit. It must be
/// quick: the next batch waits for it.
pub type Ack = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

struct Job {
    set: WriteSet,
    ack: Ack,
}

/// Counts of what the writer did, for tests and reports.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub commits: u64,
    pub sets: u64,
}

struct Shared {
    inject_failure: AtomicBool,
    fail_commit_after: Option<u64>,
    commits: AtomicU64,
    sets: AtomicU64,
}

pub(crate) struct Writer {
    sender: RwLock<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    inner: Arc<Inner>,
}

/// Counter values the writer has seen, so merging an addition does not read the store each time.
/// Bounded: cleared when it grows past this many keys (they are read again on demand).
const COUNTER_CACHE_KEYS: usize = 100_000;

/// How far the overlay may grow past `checkpoint_bytes` before the writer waits.
const OVERLAY_LIMIT_FACTOR: usize = 2;

/// The writer keeps its record buffer between batches up to this capacity.
const RECORD_BUFFER_KEPT: usize = 16 * 1024 * 1024;

/// How much higher than the rest of the process the writer asks to run (nice values). Every
/// acknowledgement waits for the writer, and it uses a small share of a core: when it waits
/// for a core behind the request threads, every write set queued behind it waits too.
const WRITER_PRIORITY_RAISE: libc::c_int = 5;

/// Raises the calling thread's priority [`WRITER_PRIORITY_RAISE`] above the process's. That
/// needs `CAP_SYS_NICE`, or an `RLIMIT_NICE` that allows it (systemd's `LimitNICE=`); without
/// either the thread stays where it was. Reported once in the log and in the gauge
/// `rewards_writer_priority_raised` (1 raised, 0 not).
fn raise_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority and setpriority with `who` 0 read and change only the calling
        // thread's nice value on Linux (threads are tasks); errno is this thread's own and is
        // cleared first, because -1 is also a valid nice value. They touch no memory of ours.
        let (now, raised) = unsafe {
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, 0);
            let known = now != -1 || *libc::__errno_location() == 0;
            let target = now.saturating_sub(WRITER_PRIORITY_RAISE).max(-20);
            let raised =
                known && target < now && libc::setpriority(libc::PRIO_PROCESS, 0, target) == 0;
            (now, raised)
        };
        metrics::gauge!("rewards_writer_priority_raised").set(if raised { 1.0 } else { 0.0 });
        if raised {
            tracing::info!(
                nice = now.saturating_sub(WRITER_PRIORITY_RAISE).max(-20),
                "the store's writer runs at a higher priority than the request threads"
            );
        } else {
            tracing::info!(
                error = %std::io::Error::last_os_error(),
                "the store's writer runs at the request threads' priority (raising it needs \
                 CAP_SYS_NICE or a LimitNICE that allows it)"
            );
        }
    }
}

impl Writer {
    pub(crate) fn start(
        inner: Arc<Inner>,
        checkpointer: Arc<Checkpointer>,
        options: &StoreOptions,
    ) -> Result<Writer, StoreError> {
        let (sender, receiver) = crossbeam_channel::bounded(options.queue_capacity);
        let shared = Arc::new(Shared {
            inject_failure: AtomicBool::new(false),
            fail_commit_after: options.fail_commit_after,
            commits: AtomicU64::new(0),
            sets: AtomicU64::new(0),
        });
        let thread_shared = shared.clone();
        let max_batch = options.max_batch_sets;
        let durability = options.durability;
        let thread_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                raise_priority();
                run(
                    &thread_inner,
                    &checkpointer,
                    receiver,
                    &thread_shared,
                    max_batch,
                    durability,
                )
            })
            .map_err(|e| StoreError::Io(format!("spawning the writer thread: {e}")))?;
        Ok(Writer {
            sender: RwLock::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            shared,
            inner,
        })
    }

    pub(crate) fn submit(&self, set: WriteSet, ack: Ack) -> Result<(), StoreError> {
        if let Some(problem) = set.oversized() {
            ack(Err(StoreError::Refused(problem.clone())));
            return Err(StoreError::Refused(problem));
        }
        if self.is_poisoned() {
            ack(Err(StoreError::Poisoned));
            return Err(StoreError::Poisoned);
        }
        let guard = self.sender.read();
        let Some(sender) = guard.as_ref() else {
            ack(Err(StoreError::Closed));
            return Err(StoreError::Closed);
        };
        match sender.try_send(Job { set, ack }) {
            Ok(()) => {
                metrics::gauge!("rewards_writer_queue_depth").set(sender.len() as f64);
                Ok(())
            }
            Err(TrySendError::Full(job)) => {
                (job.ack)(Err(StoreError::Overloaded));
                Err(StoreError::Overloaded)
            }
            Err(TrySendError::Disconnected(job)) => {
                (job.ack)(Err(StoreError::Closed));
                Err(StoreError::Closed)
            }
        }
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            sets: self.shared.sets.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn queue_depth(&self) -> usize {
        self.sender.read().as_ref().map_or(0, |s| s.len())
    }

    pub(crate) fn inject_failure(&self) {
        self.shared.inject_failure.store(true, Ordering::Release);
    }

    pub(crate) fn close(&self) {
        // Dropping the only sender ends the writer's loop once the queue is drained.
        self.sender.write().take();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(
    inner: &Inner,
    checkpointer: &Checkpointer,
    receiver: Receiver<Job>,
    shared: &Shared,
    max_batch: usize,
    durability: Durability,
) {
    // However this thread ends, a store whose writer is gone takes no more writes and says so.
    let _poison_on_exit = PoisonOnExit(inner);
    let mut counters: HashMap<CounterKey, [i64; 2]> = HashMap::new();
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    let mut record: Vec<u8> = Vec::new();
    let durability_label = match durability {
        Durability::Sync => "sync",
        Durability::Buffered => "buffered",
    };
    while let Ok(first) = receiver.recv() {
        let mut bytes = first.set.encoded_len();
        jobs.push(first);
        while jobs.len() < max_batch && bytes < BATCH_BYTES {
            match receiver.try_recv() {
                Ok(job) => {
                    bytes += job.set.encoded_len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        metrics::gauge!("rewards_writer_queue_depth").set(receiver.len() as f64);
        if inner.poisoned.load(Ordering::Acquire) {
            for job in jobs.drain(..) {
                (job.ack)(Err(StoreError::Poisoned));
            }
            continue;
        }
        wait_for_checkpoint(inner, checkpointer);
        let started = Instant::now();
        // A panic inside the commit must poison like a failed fsync: nothing of this batch is
        // acknowledged, and no later write is taken.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit(inner, &mut jobs, bytes, &mut record, &mut counters, shared)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(StoreError::Io(format!("the commit panicked: {what}")))
        });
        let elapsed = started.elapsed().as_secs_f64();
        // Keep the buffer for the next batch, unless one huge batch grew it.
        if record.capacity() > RECORD_BUFFER_KEPT {
            record = Vec::new();
        }
        match result {
            Ok(()) => {
                shared.commits.fetch_add(1, Ordering::Relaxed);
                shared.sets.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                metrics::histogram!("rewards_commit_batch_sets").record(jobs.len() as f64);
                metrics::histogram!("rewards_commit_seconds", "durability" => durability_label)
                    .record(elapsed);
                for job in jobs.drain(..) {
                    (job.ack)(Ok(()));
                }
                if inner.overlay.active_bytes() >= inner.checkpoint_bytes {
                    checkpointer.kick();
                }
            }
            Err(error) => {
                counters.clear();
                inner.poison(&format!("commit failed: {error}"));
                for job in jobs.drain(..) {
                    (job.ack)(Err(StoreError::Poisoned));
                }
            }
        }
    }
}

/// When writes outrun checkpoints (the overlay holds `OVERLAY_LIMIT_FACTOR` times
/// `checkpoint_bytes` not yet frozen), the writer waits for the checkpointer to take them:
/// memory and the log stay bounded, and callers meet the full queue (`Overloaded`) instead.
fn wait_for_checkpoint(inner: &Inner, checkpointer: &Checkpointer) {
    let limit = inner.checkpoint_bytes.saturating_mul(OVERLAY_LIMIT_FACTOR);
    let mut waited = false;
    while inner.overlay.active_bytes() >= limit && !inner.poisoned.load(Ordering::Acquire) {
        checkpointer.kick();
        waited = true;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if waited {
        metrics::counter!("rewards_writer_checkpoint_waits_total").increment(1);
    }
}

/// Marks the store poisoned when the writer thread ends by a panic (an acknowledgement that
/// panicked, say): `is_poisoned` and readiness then tell the truth.
struct PoisonOnExit<'a>(&'a Inner);

impl Drop for PoisonOnExit<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison("the writer thread panicked");
        }
    }
}

/// Appends the batch's changes to the log as one record and applies them to the overlay. The
/// write sets' changes are taken out of `jobs` (their acknowledgements stay); `bytes` is their
/// size, counted as the batch was drained.
fn commit(
    inner: &Inner,
    jobs: &mut [Job],
    bytes: usize,
    record: &mut Vec<u8>,
    counters: &mut HashMap<CounterKey, [i64; 2]>,
    shared: &Shared,
) -> Result<(), StoreError> {
    let due = shared
        .fail_commit_after
        .is_some_and(|after| shared.commits.load(Ordering::Relaxed) >= after);
    if shared.inject_failure.swap(false, Ordering::AcqRel) || due {
        return Err(StoreError::Io("injected commit failure".into()));
    }
    if counters.len() > COUNTER_CACHE_KEYS {
        counters.clear();
    }
    crate::batch::restart(record, bytes + 16);
    // The changes by write set, so the overlay shows each set whole.
    let mut sets: Vec<Vec<(Space, Vec<u8>, Change)>> = Vec::with_capacity(jobs.len() + 1);
    // Counter additions of this batch, merged before they are logged once as new values, in
    // the order their keys were first touched.
    let mut pending: HashMap<CounterKey, (usize, [i64; 2])> = HashMap::new();
    for job in jobs.iter_mut() {
        let mut changes = Vec::with_capacity(job.set.ops.len());
        for op in std::mem::take(&mut job.set.ops) {
            match op {
                Op::Put(space, key, value) => {
                    crate::batch::push(record, space, &key, Some(&value));
                    changes.push((space, key, Some(value)));
                }
                Op::Delete(space, key) => {
                    crate::batch::push(record, space, &key, None);
                    changes.push((space, key, None));
                }
                Op::AddCounter(key, deltas) => {
                    let order = pending.len();
                    let entry = match pending.entry(key) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => {
                            let current = match counters.get(entry.key()) {
                                Some(v) => *v,
                                None => inner
                                    .get(Space::Counters, entry.key())?
                                    .map_or([0, 0], |v| decode_counter(&v)),
                            };
                            entry.insert((order, current))
                        }
                    };
                    // Saturating: totals of bounded amounts never come near i64's range, and a
                    // counter must never stop the writer.
                    entry.1 = [
                        entry.1[0].saturating_add(deltas[0]),
                        entry.1[1].saturating_add(deltas[1]),
                    ];
                }
            }
        }
        sets.push(changes);
    }
    let mut merged: Vec<_> = pending.into_iter().collect();
    merged.sort_unstable_by_key(|(_, (order, _))| *order);
    let mut counter_changes = Vec::with_capacity(merged.len());
    for (key, (_, value)) in merged {
        let encoded = encode_counter(value);
        crate::batch::push(record, Space::Counters, &key, Some(&encoded));
        counter_changes.push((Space::Counters, key.to_vec(), Some(encoded)));
        counters.insert(key, value);
    }
    // The durability of the append is decided where the log was opened for it: `sync`
    // fdatasyncs before the position comes back. Only then do reads see the changes and the
    // sets get acknowledged.
    sets.push(counter_changes);
    let position = inner.log.append(record)?;
    inner.overlay.apply(position, sets);
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice() -> libc::c_int {
        // SAFETY: reads the calling thread's nice value; no memory of ours is touched.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn the_writer_thread_runs_higher_than_the_process_or_where_it_was() {
        let (before, after) = std::thread::spawn(|| {
            let before = nice();
            raise_priority();
            (before, nice())
        })
        .join()
        .unwrap();
        let raised = before.saturating_sub(WRITER_PRIORITY_RAISE).max(-20);
        assert!(
            after == raised || after == before,
            "nice {before} became {after}"
        );
        // Only the writer's own thread changed.
        assert_eq!(nice(), before);
    }
}
