//! Starts writing the files that checkpoints and compactions make back to the disk while they
//! grow, a little at a time, rather than all at their closing fsync.
//!
//! Many disks have a volatile write cache and no FUA, as most virtual disks do. There, every
//! fdatasync of the log is a flush of the whole cache and waits for whatever was written
//! before it. A checkpoint's tables and blob files (tens of megabytes) stay dirty in the page
//! cache until fjall syncs them at the end, then reach the disk at once, and the commits
//! behind them waited 25 to 31 ms (docs/PERFORMANCE.md, "The open loop's slow fsyncs"). While a
//! checkpoint runs, and for a while after it (fjall compacts the tables it added), this thread
//! asks the kernel every [`PASS_INTERVAL`] to start writing back every file of the store's
//! directory changed since its last pass, but the log's, which syncs its own
//! (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`: it starts the writes and does not wait). The
//! closing fsyncs then find little left to write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

/// How often a pass runs while the store writes files.
const PASS_INTERVAL: Duration = Duration::from_millis(25);
/// How often an idle thread looks whether a checkpoint has begun.
const IDLE_INTERVAL: Duration = Duration::from_secs(1);
/// How long after a checkpoint the passes go on: fjall compacts the tables it added.
const AFTER_CHECKPOINT: Duration = Duration::from_secs(10);
/// Directories deeper than this under the store's are not walked (fjall's are two deep).
const MAX_DEPTH: usize = 4;
/// A file changed this long before a pass's start still counts as changed since the last one
/// (modification times are coarse).
const MARGIN: Duration = Duration::from_secs(1);

/// Milliseconds on a monotonic clock (a step of the wall clock moves no deadline).
fn now_millis() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64 + 1
}

/// The thread's handle; dropping it stops the thread.
pub(crate) struct Trickle {
    /// Until when (in [`now_millis`]) passes run.
    active_until: Arc<AtomicU64>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Trickle {
    /// Starts the thread for the store in `dir`.
    pub(crate) fn start(dir: &Path) -> std::io::Result<Trickle> {
        let active_until = Arc::new(AtomicU64::new(0));
        let stop: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let (until, halt, dir) = (active_until.clone(), stop.clone(), dir.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("store-trickle".into())
            .spawn(move || run(&dir, &until, &halt))?;
        Ok(Trickle {
            active_until,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A handle the checkpointer marks its work with (see [`mark_busy`]).
    pub(crate) fn activity(&self) -> Arc<AtomicU64> {
        self.active_until.clone()
    }

    pub(crate) fn stop(&self) {
        let (lock, wake) = &*self.stop;
        *lock.lock() = true;
        wake.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keeps the passes going until [`AFTER_CHECKPOINT`] from now: called when a checkpoint starts
/// and when it ends.
pub(crate) fn mark_busy(activity: &AtomicU64) {
    activity.fetch_max(
        now_millis() + AFTER_CHECKPOINT.as_millis() as u64,
        Ordering::Relaxed,
    );
}

fn run(dir: &Path, active_until: &AtomicU64, stop: &(Mutex<bool>, Condvar)) {
    // File modification times are wall-clock times: a pass compares them with the wall clock.
    let mut since = SystemTime::now();
    let mut busy = false;
    loop {
        {
            let (lock, wake) = stop;
            let mut stopped = lock.lock();
            if !*stopped {
                let wait = if busy { PASS_INTERVAL } else { IDLE_INTERVAL };
                wake.wait_for(&mut stopped, wait);
            }
            if *stopped {
                return;
            }
        }
        busy = now_millis() <= active_until.load(Ordering::Relaxed);
        if !busy {
            since = SystemTime::now();
            continue;
        }
        let started = SystemTime::now();
        let threshold = since.checked_sub(MARGIN).unwrap_or(UNIX_EPOCH);
        pass(dir, threshold, 0, &mut write_back);
        since = started;
    }
}

/// Hands `visit` every file under `dir` (not the log's) changed at or after `since`.
fn pass(dir: &Path, since: SystemTime, depth: usize, visit: &mut impl FnMut(PathBuf)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth < MAX_DEPTH && !(depth == 0 && entry.file_name() == "log") {
                pass(&entry.path(), since, depth + 1, visit);
            }
        } else if kind.is_file() {
            let changed = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at >= since);
            if changed {
                visit(entry.path());
            }
        }
    }
}

/// Asks the kernel to start writing `path`'s dirty pages; a file gone meanwhile is skipped.
#[cfg(target_os = "linux")]
fn write_back(path: PathBuf) {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(&path) else {
        return;
    };
    // SAFETY: the descriptor is open for the call's duration; the range (0, 0) means the whole
    // file; SYNC_FILE_RANGE_WRITE starts write-back without waiting for it. A failure is
    // harmless: the file's own fsync writes it all the same.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(_path: PathBuf) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_finds_the_files_changed_since_the_last_one_but_the_logs() {
        let dir = tempfile::tempdir().unwrap();
        let tables = dir.path().join("keyspaces").join("3").join("tables");
        std::fs::create_dir_all(&tables).unwrap();
        std::fs::create_dir_all(dir.path().join("log")).unwrap();
        std::fs::write(tables.join("1"), vec![7u8; 1 << 20]).unwrap();
        std::fs::write(dir.path().join("version"), b"v").unwrap();
        std::fs::write(dir.path().join("log").join("1.wal"), b"x").unwrap();
        let mut found = Vec::new();
        pass(dir.path(), UNIX_EPOCH, 0, &mut |path| found.push(path));
        found.sort();
        assert_eq!(found, [tables.join("1"), dir.path().join("version")]);
        // Nothing changed since a moment after them.
        let later = SystemTime::now() + Duration::from_secs(10);
        let mut none = Vec::new();
        pass(dir.path(), later, 0, &mut |path| none.push(path));
        assert!(none.is_empty(), "{none:?}");
        // The real visitor takes a file, and one gone meanwhile, without failing.
        write_back(tables.join("1"));
        write_back(tables.join("gone"));
    }

    #[test]
    fn the_thread_runs_while_marked_busy_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let trickle = Trickle::start(dir.path()).unwrap();
        assert_eq!(trickle.activity().load(Ordering::Relaxed), 0);
        mark_busy(&trickle.activity());
        assert!(trickle.activity().load(Ordering::Relaxed) > now_millis());
        trickle.stop();
        assert!(trickle.thread.lock().is_none());
        // Stopping twice (and the drop after it) is harmless.
        trickle.stop();
    }
}
