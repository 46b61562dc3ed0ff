//! The write-ahead log: the durable home of every write until a checkpoint has materialised it
//! into the keyspaces.
//!
//! The writer appends one record per commit batch (everything a batch of write sets changed)
//! and acknowledges its sets when the append is durable: one sequential write and one fdatasync
//! for many events, as Redis's AOF and TigerBeetle's WAL do. The [`Log`] trait is the seam: the
//! local [`FileLog`] implements it today; a replicated log can implement it later, with the
//! same three calls (append and get a durable position, read after a position, forget what a
//! checkpoint covers).

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::store::{Durability, StoreError};

/// A position in the log: the sequence number of one record, counted from 1.
pub type Position = u64;

/// Called with each record read back and its position.
pub type Visit<'a> = dyn FnMut(Position, &[u8]) -> Result<(), StoreError> + 'a;

/// An ordered, durable sequence of records.
pub trait Log: Send + Sync {
    /// Appends one record and returns its position. When this returns `Ok` with durability
    /// `sync`, the record survives a power loss.
    fn append(&self, record: &[u8]) -> Result<Position, StoreError>;

    /// Calls `visit` with every record after `position`, in order, and returns the position
    /// through which it read the log: its last record's, or that of a later entry of the log's
    /// own (a replicated log's fence marker), `position` itself when none follows. A later
    /// call may start from it and miss nothing.
    fn read_after(&self, position: Position, visit: &mut Visit<'_>)
        -> Result<Position, StoreError>;

    /// Forgets records up to `position`: a checkpoint holds everything they changed.
    fn truncate_through(&self, position: Position) -> Result<(), StoreError>;

    /// Segment files the log holds on this machine, for the `rewards_log_segments` gauge; none
    /// for a log that lives elsewhere.
    fn segment_count(&self) -> Option<usize> {
        None
    }
}

/// A log with nothing in it that takes nothing: opens a store as its last checkpoint left its
/// keyspaces, for reading only (an audit of a cluster node's copy, whose log lives on the NATS
/// servers). An append is refused.
pub struct NoLog;

impl Log for NoLog {
    fn append(&self, _record: &[u8]) -> Result<Position, StoreError> {
        Err(StoreError::Refused(
            "this store was opened to be read, without its log".to_string(),
        ))
    }

    fn read_after(
        &self,
        position: Position,
        _visit: &mut Visit<'_>,
    ) -> Result<Position, StoreError> {
        Ok(position)
    }

    fn truncate_through(&self, _position: Position) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Bytes before a record's body: its length (u32), a CRC-32 of length, sequence and body (u32),
/// its sequence number (u64), all little-endian.
const HEADER_BYTES: usize = 16;
/// The largest record the log takes: a commit batch of at most `max_batch_sets` sets, each
/// bounded by the store's limits, stays far below this in practice; a larger one is refused.
pub const MAX_RECORD_BYTES: usize = 1 << 30;
const SEGMENT_SUFFIX: &str = ".wal";
/// The next segment while it is being prepared: not a segment until it is renamed to one.
const SPARE_NAME: &str = "next-segment.prepare";
/// Zeros written per system call while a segment is prepared.
const PREPARE_CHUNK: usize = 1 << 20;
/// The next segment is prepared only while the active one's appends average at most this many
/// bytes. Preparing writes each byte of the log twice, which costs CPU (about 1.2 µs per KiB
/// here), and saves each fdatasync its journal commit. Measured under `rewards-load`: with 4
/// connections (about 5 KiB per commit) it gave 26 to 31 % more purchases/s; with 64 (about
/// 48 KiB per commit) it was level within the noise; with batches of 100 (over 100 KiB per
/// commit) it cost 2 to 6 % more CPU per purchase.
const PREPARE_MAX_AVERAGE_APPEND: u64 = 64 * 1024;

struct Active {
    file: File,
    /// Position of the next record.
    next: Position,
    /// Bytes written to the active segment.
    bytes: u64,
    /// Appends to the active segment.
    appends: u64,
    /// The next segment has been asked of the preparer (or judged not worth preparing).
    spare_asked: bool,
}

/// The preparer's side: the next segment, written full of zeros and synced ahead of the writer.
#[derive(Default)]
struct SpareSlot {
    asked: bool,
    busy: bool,
    ready: Option<File>,
}

struct Preparer {
    slot: Mutex<SpareSlot>,
    wake: Condvar,
    stop: AtomicBool,
}

/// A log in a directory of segment files, each named by the position of its first record. The
/// writer appends to the newest; a new segment starts when the active one passes
/// `segment_bytes`; a truncation deletes whole segments a checkpoint covers.
///
/// Segments are prepared ahead of the writer: once the active segment is half full, a
/// background thread writes the next one full of zeros and syncs it, and the writer renames it
/// into place when it rolls over. An fdatasync after a write into space the file already holds
/// flushes the data alone; after an append that grows the file it also commits the new size
/// through the file system's journal, which costs about as much again (`fsync-probe`). Reading
/// a segment, zeros after the last record are the end of the log, not damage.
pub struct FileLog {
    dir: PathBuf,
    durability: Durability,
    segment_bytes: u64,
    active: Mutex<Active>,
    preparer: Arc<Preparer>,
    preparing: Option<JoinHandle<()>>,
}

fn io(what: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {error}", path.display()))
}

fn segment_name(first: Position) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// The segments in `dir`, by the position of their first record, oldest first.
pub(crate) fn segments(dir: &Path) -> Result<Vec<(Position, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io("reading", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io("reading", dir, e))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<Position>().ok())
        else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort_by_key(|(first, _)| *first);
    Ok(found)
}

/// Makes a directory entry (a new or deleted segment) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, e))
}

/// Writes `head` then `body` with as few system calls as the kernel allows, without copying
/// them into one buffer first.
fn write_both(file: &mut File, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    let total = head.len() + body.len();
    let written = file.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])?;
    if written < head.len() {
        file.write_all(head.get(written..).unwrap_or_default())?;
        file.write_all(body)
    } else if written < total {
        file.write_all(body.get(written - head.len()..).unwrap_or_default())
    } else {
        Ok(())
    }
}

fn checksum(length: usize, sequence: Position, body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(length as u32).to_le_bytes());
    hasher.update(&sequence.to_le_bytes());
    hasher.update(body);
    hasher.finalize()
}

/// What reading one segment found.
struct Scan {
    /// Position of the last whole record (0 if none).
    last: Position,
    /// Bytes of whole records; anything after is zeros or a torn write.
    valid_bytes: u64,
    /// The segment ends with a record cut short or with a bad checksum (not with zeros).
    torn: bool,
    /// A bad record is followed by more records: not a crash's torn write.
    corrupt: bool,
}

/// Positions after `expected` a whole record found after a bad one may have: a damaged stretch
/// of the log is not expected to swallow more records than this.
const LATER_RECORD_WINDOW: u64 = 1 << 16;
/// Candidates whose checksum is computed before the search gives up and calls the segment
/// corrupt: bytes that look like many headers cannot make start-up slow.
const LATER_RECORD_CHECKS: usize = 1024;

/// Whether a record with a position just after `expected` and a good checksum starts anywhere
/// in `rest`: a bad record with whole records after it was damaged after it was written. Only
/// the stretch up to the last non-zero byte is searched (a header holds a non-zero position),
/// so a torn record followed by a prepared segment's zeros costs a scan of the torn bytes. Past
/// [`LATER_RECORD_CHECKS`] candidates the answer is yes: refusing to start is the safe mistake.
fn a_later_record_in(rest: &[u8], expected: Position) -> bool {
    let searched = rest
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    let mut checks = 0usize;
    (0..searched).any(|at| {
        let field = |from: usize, to: usize| rest.get(at + from..at + to).unwrap_or_default();
        let sequence = u64::from_le_bytes(field(8, 16).try_into().unwrap_or_default());
        if sequence <= expected || sequence - expected > LATER_RECORD_WINDOW {
            return false;
        }
        let length = u32::from_le_bytes(field(0, 4).try_into().unwrap_or_default()) as usize;
        let Some(body) = rest.get(at + HEADER_BYTES..(at + HEADER_BYTES).saturating_add(length))
        else {
            return false;
        };
        checks += 1;
        let crc = u32::from_le_bytes(field(4, 8).try_into().unwrap_or_default());
        checks > LATER_RECORD_CHECKS || checksum(length, sequence, body) == crc
    })
}

/// Bytes a disk writes whole: a header inside one of them is either all new or all old after
/// a power loss, so its length can be trusted when its position is the expected one.
const SECTOR_BYTES: usize = 512;

/// Tells what follows the last whole record at `at` in `bytes`, where the record `expected`
/// did not read back whole.
fn classify_end(bytes: &[u8], at: usize, expected: Position, last: Position) -> Scan {
    let rest = bytes.get(at..).unwrap_or_default();
    let end = |torn, corrupt| Scan {
        last,
        valid_bytes: at as u64,
        torn,
        corrupt,
    };
    if rest.iter().all(|b| *b == 0) {
        // The end of the file, or the zeros of a prepared segment the writer had not reached.
        return end(false, false);
    }
    // Whatever a crash tore is the one record that was being written: it lies wholly inside
    // the length its header gives, when the header survived whole. Bytes past it, or whole
    // records anywhere after it, were written after it, so it was damaged after it was
    // acknowledged. A header across a sector boundary may mix new and old bytes (in prepared
    // space any sector can reach the disk without the others), so its length is not trusted.
    let header = rest.get(..HEADER_BYTES);
    let length = header.and_then(|h| h.get(0..4)).map_or(0, |w| {
        u32::from_le_bytes(w.try_into().unwrap_or_default()) as usize
    });
    let sequence = header
        .and_then(|h| h.get(8..16))
        .map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    let claimed_end = HEADER_BYTES.saturating_add(length);
    let header_whole = at % SECTOR_BYTES + HEADER_BYTES <= SECTOR_BYTES;
    let header_sane = header_whole && sequence == expected && claimed_end <= rest.len();
    let bytes_past_it = header_sane
        && rest
            .get(claimed_end..)
            .is_some_and(|after| after.iter().any(|b| *b != 0));
    end(true, bytes_past_it || a_later_record_in(rest, expected))
}

/// Reads the records of one segment in order, calling `visit` with those after `after`.
fn scan(
    path: &Path,
    first: Position,
    after: Position,
    visit: &mut Visit<'_>,
) -> Result<Scan, StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io("reading", path, e))?;
    let mut at = 0usize;
    let mut expected = first;
    let mut last = first.saturating_sub(1);
    loop {
        let Some(header) = bytes.get(at..at + HEADER_BYTES) else {
            return Ok(classify_end(&bytes, at, expected, last));
        };
        let word = |range: std::ops::Range<usize>| header.get(range).unwrap_or_default();
        let length = u32::from_le_bytes(word(0..4).try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(word(4..8).try_into().unwrap_or_default());
        let sequence = u64::from_le_bytes(word(8..16).try_into().unwrap_or_default());
        let body_at = at + HEADER_BYTES;
        let body = bytes.get(body_at..body_at.saturating_add(length));
        match body {
            Some(body) if sequence == expected && checksum(length, sequence, body) == crc => {
                if sequence > after {
                    visit(sequence, body)?;
                }
                last = sequence;
                expected += 1;
                at = body_at + length;
            }
            _ => return Ok(classify_end(&bytes, at, expected, last)),
        }
    }
}

/// Writes the spare segment full of zeros and syncs it; `None` if asked to stop first.
fn prepare_spare(dir: &Path, bytes: u64, stop: &AtomicBool) -> Result<Option<File>, StoreError> {
    let path = dir.join(SPARE_NAME);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io("creating", &path, e))?;
    let zeros = vec![0u8; PREPARE_CHUNK];
    let mut left = bytes;
    while left > 0 {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = left.min(PREPARE_CHUNK as u64) as usize;
        file.write_all(zeros.get(..n).unwrap_or_default())
            .map_err(|e| io("preparing", &path, e))?;
        write_back(&file, bytes - left, n).map_err(|e| io("preparing", &path, e))?;
        left -= n as u64;
    }
    file.sync_all()
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .map_err(|e| io("syncing", &path, e))?;
    Ok(Some(file))
}

/// Writes one chunk of the spare to the disk and waits for it, so that the spare never holds
/// more than a chunk of dirty pages: a whole segment flushed at once would hold the disk for
/// long enough to delay the writer's fdatasyncs behind it.
#[cfg(target_os = "linux")]
fn write_back(file: &File, offset: u64, bytes: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: the descriptor is open for the call's duration; the range is plain integers.
    let done =
        unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, bytes as i64, flags) };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(_file: &File, _offset: u64, _bytes: usize) -> std::io::Result<()> {
    Ok(())
}

/// The preparer's thread: prepares a spare segment each time the writer asks for one.
fn run_preparer(dir: PathBuf, bytes: u64, preparer: Arc<Preparer>) {
    loop {
        {
            let mut slot = preparer.slot.lock();
            while !slot.asked && !preparer.stop.load(Ordering::Relaxed) {
                preparer.wake.wait(&mut slot);
            }
            if preparer.stop.load(Ordering::Relaxed) {
                return;
            }
            slot.asked = false;
            slot.busy = true;
        }
        let prepared = prepare_spare(&dir, bytes, &preparer.stop);
        let mut slot = preparer.slot.lock();
        slot.busy = false;
        match prepared {
            Ok(Some(file)) => {
                slot.ready = Some(file);
                metrics::counter!("rewards_log_segments_prepared_total").increment(1);
            }
            Ok(None) => {
                // Stopped half way: a part-written spare is not left taking space.
                let _ = std::fs::remove_file(dir.join(SPARE_NAME));
            }
            Err(error) => {
                // The writer starts its next segment empty, as it would without a preparer.
                tracing::warn!(%error, "preparing the next log segment failed");
                let _ = std::fs::remove_file(dir.join(SPARE_NAME));
            }
        }
        preparer.wake.notify_all();
    }
}

impl FileLog {
    /// Opens the log in `dir` (created if missing). A record torn by a crash at the end of the
    /// newest segment was never acknowledged: it is cut off. A bad record anywhere else is
    /// corruption, and opening fails rather than lose what follows it. `checkpoint` is the
    /// position the store's last checkpoint covers: a log that ends before it (new, or lost)
    /// starts after it, so no new record gets a position recovery would skip.
    pub fn open(
        dir: &Path,
        durability: Durability,
        segment_bytes: u64,
        checkpoint: Position,
    ) -> Result<FileLog, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
        // A spare left by a stop or a crash may be partly written: it is prepared again.
        let spare = dir.join(SPARE_NAME);
        if spare.exists() {
            std::fs::remove_file(&spare).map_err(|e| io("removing", &spare, e))?;
        }
        let found = segments(dir)?;
        if let Some((first, path)) = found.first() {
            if *first > checkpoint.saturating_add(1) {
                return Err(StoreError::Io(format!(
                    "the log is missing records {} to {}: its oldest segment {} starts after \
                     the last checkpoint",
                    checkpoint + 1,
                    first - 1,
                    path.display()
                )));
            }
        }
        let mut next = 1;
        let mut tail: Option<(PathBuf, u64, bool, u64)> = None;
        let count = found.len();
        for (index, (first, path)) in found.iter().enumerate() {
            // Segments whose records the checkpoint covers may be gone or torn (a crash while
            // they were being deleted, or a power loss in `buffered` mode): only what follows
            // the checkpoint must be whole and in order.
            let covered_to = found.get(index + 1).map(|(f, _)| f.saturating_sub(1));
            let covered = covered_to.is_some_and(|to| to <= checkpoint);
            if *first != next && index > 0 && *first > checkpoint.saturating_add(1) {
                return Err(StoreError::Io(format!(
                    "log segment {} starts at record {first}, expected {next}",
                    path.display()
                )));
            }
            let scan = scan(path, *first, Position::MAX, &mut |_, _| Ok(()))?;
            let newest = index + 1 == count;
            if (scan.corrupt || (scan.torn && !newest)) && !covered {
                return Err(StoreError::Io(format!(
                    "log segment {} is corrupt after record {}",
                    path.display(),
                    scan.last
                )));
            }
            next = scan.last + 1;
            tail = Some((path.clone(), scan.valid_bytes, scan.torn, next - first));
        }
        if next <= checkpoint {
            // Every record on disk is covered by the checkpoint: the old segments go first,
            // then the log starts after the checkpoint (a crash in between leaves an empty
            // directory, which starts the same way).
            for (_, path) in &found {
                std::fs::remove_file(path).map_err(|e| io("removing", path, e))?;
            }
            sync_dir(dir)?;
            let active = Active {
                file: Self::create_segment(dir, checkpoint + 1)?,
                next: checkpoint + 1,
                bytes: 0,
                appends: 0,
                spare_asked: false,
            };
            return Self::start(dir, durability, segment_bytes, active);
        }
        let active = match tail {
            Some((path, valid_bytes, torn, records)) => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io("opening", &path, e))?;
                if torn {
                    // Cut a torn record off, so the next append follows the last whole one
                    // and nothing of it is left after a shorter record written over it.
                    file.set_len(valid_bytes)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| io("truncating", &path, e))?;
                }
                // Zeros after the last record (a prepared segment) stay: appends write over them.
                file.seek(SeekFrom::Start(valid_bytes))
                    .map_err(|e| io("seeking", &path, e))?;
                Active {
                    file,
                    next,
                    bytes: valid_bytes,
                    appends: records,
                    spare_asked: false,
                }
            }
            None => Active {
                file: Self::create_segment(dir, next)?,
                next,
                bytes: 0,
                appends: 0,
                spare_asked: false,
            },
        };
        Self::start(dir, durability, segment_bytes, active)
    }

    /// The log around its active segment, with its preparer's thread started.
    fn start(
        dir: &Path,
        durability: Durability,
        segment_bytes: u64,
        active: Active,
    ) -> Result<FileLog, StoreError> {
        let segment_bytes = segment_bytes.max(1);
        let preparer = Arc::new(Preparer {
            slot: Mutex::new(SpareSlot::default()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let preparing = {
            let (owned, preparer) = (dir.to_path_buf(), preparer.clone());
            std::thread::Builder::new()
                .name("log-preparer".into())
                .spawn(move || run_preparer(owned, segment_bytes, preparer))
                .map_err(|e| io("starting the preparer of", dir, e))?
        };
        Ok(FileLog {
            dir: dir.to_path_buf(),
            durability,
            segment_bytes,
            active: Mutex::new(active),
            preparer,
            preparing: Some(preparing),
        })
    }

    fn create_segment(dir: &Path, first: Position) -> Result<File, StoreError> {
        let path = dir.join(segment_name(first));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("creating", &path, e))?;
        sync_dir(dir)?;
        Ok(file)
    }

    /// The next segment: the prepared spare renamed into place when it is ready, else a new
    /// empty file (the preparer was late, failed, or was never asked).
    fn next_segment(&self, first: Position) -> Result<File, StoreError> {
        let ready = self.preparer.slot.lock().ready.take();
        let Some(file) = ready else {
            metrics::counter!("rewards_log_segments_unprepared_total").increment(1);
            return Self::create_segment(&self.dir, first);
        };
        let path = self.dir.join(segment_name(first));
        std::fs::rename(self.dir.join(SPARE_NAME), &path)
            .map_err(|e| io("renaming the prepared segment to", &path, e))?;
        // The new name is durable before any record is written under it.
        sync_dir(&self.dir)?;
        Ok(file)
    }

    /// Blocks until the preparer is idle (a test sees whether a spare was made).
    #[cfg(test)]
    fn wait_for_preparer(&self) {
        let mut slot = self.preparer.slot.lock();
        while slot.asked || slot.busy {
            self.preparer.wake.wait(&mut slot);
        }
    }

    /// The position the next append gets.
    pub fn next_position(&self) -> Position {
        self.active.lock().next
    }

    /// Segment files on disk (for metrics and tests).
    pub fn segment_count(&self) -> usize {
        segments(&self.dir).map_or(0, |s| s.len())
    }
}

impl Log for FileLog {
    fn append(&self, record: &[u8]) -> Result<Position, StoreError> {
        if record.len() > MAX_RECORD_BYTES {
            return Err(StoreError::Refused(format!(
                "a log record of {} bytes",
                record.len()
            )));
        }
        let mut active = self.active.lock();
        if active.bytes >= self.segment_bytes {
            // The previous segment is complete; it is synced (a no-op in `sync` durability,
            // where every append was) so no segment but the newest can be torn.
            active
                .file
                .sync_data()
                .map_err(|e| io("syncing", &self.dir, e))?;
            active.file = self.next_segment(active.next)?;
            active.bytes = 0;
            active.appends = 0;
            active.spare_asked = false;
        }
        let sequence = active.next;
        let length = (record.len() as u32).to_le_bytes();
        let crc = checksum(record.len(), sequence, record).to_le_bytes();
        let sequence_bytes = sequence.to_le_bytes();
        let mut header = [0u8; HEADER_BYTES];
        let fields = length.iter().chain(&crc).chain(&sequence_bytes);
        for (slot, byte) in header.iter_mut().zip(fields) {
            *slot = *byte;
        }
        write_both(&mut active.file, &header, record)
            .map_err(|e| io("appending to", &self.dir, e))?;
        // The durability of the append is decided here, where it happens: `sync` fdatasyncs
        // the segment before the record's position is returned; `buffered` leaves it with the
        // OS (it survives a crash of the process, not of the machine).
        if self.durability == Durability::Sync {
            active
                .file
                .sync_data()
                .map_err(|e| io("syncing", &self.dir, e))?;
        }
        active.bytes += (HEADER_BYTES + record.len()) as u64;
        active.appends += 1;
        active.next += 1;
        if !active.spare_asked && active.bytes >= self.segment_bytes / 2 {
            // Half full: the next segment is prepared while the writer fills this one, when
            // its appends are fdatasynced and small enough for it to pay.
            active.spare_asked = true;
            let average = active.bytes / active.appends.max(1);
            if self.durability != Durability::Sync || average > PREPARE_MAX_AVERAGE_APPEND {
                return Ok(sequence);
            }
            let mut slot = self.preparer.slot.lock();
            if slot.ready.is_none() && !slot.busy {
                slot.asked = true;
                self.preparer.wake.notify_all();
            }
        }
        Ok(sequence)
    }

    fn read_after(
        &self,
        position: Position,
        visit: &mut Visit<'_>,
    ) -> Result<Position, StoreError> {
        // Appends wait while the log is read, so the reader sees a whole prefix.
        let active = self.active.lock();
        let found = segments(&self.dir)?;
        let mut last = position;
        for (index, (first, path)) in found.iter().enumerate() {
            let next_first = found.get(index + 1).map(|(f, _)| *f);
            if next_first.is_some_and(|next| next <= position + 1) {
                continue; // every record of this segment is at or below `position`
            }
            let scan = scan(path, *first, position, visit)?;
            last = last.max(scan.last);
        }
        drop(active);
        Ok(last)
    }

    fn truncate_through(&self, position: Position) -> Result<(), StoreError> {
        let found = segments(&self.dir)?;
        let mut removed = false;
        for (index, (_, path)) in found.iter().enumerate() {
            // A segment can go when the next one starts at or below position + 1: every record
            // of it is covered. The newest segment always stays (the writer appends to it).
            let Some((next_first, _)) = found.get(index + 1) else {
                break;
            };
            if *next_first > position.saturating_add(1) {
                break;
            }
            std::fs::remove_file(path).map_err(|e| io("removing", path, e))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn segment_count(&self) -> Option<usize> {
        Some(FileLog::segment_count(self))
    }
}

impl Drop for FileLog {
    fn drop(&mut self) {
        {
            // Under the lock, so the preparer cannot check `stop` and then miss the wake-up.
            let _slot = self.preparer.slot.lock();
            self.preparer.stop.store(true, Ordering::Relaxed);
            self.preparer.wake.notify_all();
        }
        if let Some(thread) = self.preparing.take() {
            let _ = thread.join();
        }
        // An unused spare is only zeros: it is not left taking a segment's space.
        if self.preparer.slot.lock().ready.take().is_some() {
            let _ = std::fs::remove_file(self.dir.join(SPARE_NAME));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(log: &FileLog, after: Position) -> Vec<(Position, Vec<u8>)> {
        let mut out = Vec::new();
        log.read_after(after, &mut |p, r| {
            out.push((p, r.to_vec()));
            Ok(())
        })
        .unwrap();
        out
    }

    /// The header of [`crate::batch::tests::GOLDEN_BATCH`] as the first record of a log: its
    /// length, CRC-32 and position, little-endian, as the build before this test existed wrote.
    const GOLDEN_HEADER: &str = "51000000 7dadde99 0100000000000000";

    #[test]
    fn a_framed_record_is_its_golden_bytes() {
        use crate::batch::tests::{hex_bytes, GOLDEN_BATCH};
        let body = hex_bytes(GOLDEN_BATCH);
        let mut golden = hex_bytes(GOLDEN_HEADER);
        golden.extend_from_slice(&body);
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        assert_eq!(log.append(&body).unwrap(), 1);
        drop(log);
        let (first, path) = segments(dir.path()).unwrap().pop().unwrap();
        assert_eq!(first, 1);
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("00000000000000000001.wal")
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            golden,
            "the log frames records differently"
        );
        // A log holding exactly the golden bytes reads back the golden record.
        std::fs::write(&path, &golden).unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        assert_eq!(collect(&log, 0), vec![(1, body)]);
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Buffered, 64, 0).unwrap();
        for i in 0..10u8 {
            assert_eq!(log.append(&[i; 40]).unwrap(), u64::from(i) + 1);
        }
        assert!(log.segment_count() > 1);
        drop(log);
        let log = FileLog::open(dir.path(), Durability::Buffered, 64, 0).unwrap();
        let records = collect(&log, 3);
        assert_eq!(records.len(), 7);
        assert_eq!(records[0], (4, vec![3; 40]));
        assert_eq!(log.append(b"next").unwrap(), 11);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appends_follow_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        log.append(b"one").unwrap();
        log.append(b"two").unwrap();
        drop(log);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(file);
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        assert_eq!(log.append(b"three").unwrap(), 3);
        let bodies: Vec<Vec<u8>> = collect(&log, 0).into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            bodies,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }

    #[test]
    fn a_damaged_record_followed_by_others_refuses_to_open_even_in_the_newest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Buffered, 1 << 20, 0).unwrap();
        for _ in 0..4 {
            log.append(&[7; 30]).unwrap();
        }
        drop(log);
        let (_, newest) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&newest).unwrap();
        bytes[HEADER_BYTES + 3] ^= 0xff;
        std::fs::write(&newest, bytes).unwrap();
        assert!(FileLog::open(dir.path(), Durability::Buffered, 1 << 20, 0).is_err());
    }

    #[test]
    fn a_corrupt_record_before_the_newest_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Buffered, 32, 0).unwrap();
        for _ in 0..4 {
            log.append(&[7; 30]).unwrap();
        }
        drop(log);
        let (_, oldest) = segments(dir.path()).unwrap().remove(0);
        let mut bytes = std::fs::read(&oldest).unwrap();
        bytes[HEADER_BYTES + 3] ^= 0xff;
        std::fs::write(&oldest, bytes).unwrap();
        assert!(FileLog::open(dir.path(), Durability::Buffered, 32, 0).is_err());
    }

    #[test]
    fn truncation_keeps_every_record_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Buffered, 64, 0).unwrap();
        for i in 0..10u8 {
            log.append(&[i; 40]).unwrap();
        }
        log.truncate_through(6).unwrap();
        let records = collect(&log, 6);
        assert_eq!(
            records.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![7, 8, 9, 10]
        );
        log.truncate_through(10).unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.append(b"x").unwrap(), 11);
    }

    #[test]
    fn a_log_that_ends_before_the_checkpoint_starts_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Buffered, 64, 0).unwrap();
        log.append(b"old").unwrap();
        drop(log);
        let log = FileLog::open(dir.path(), Durability::Buffered, 64, 41).unwrap();
        assert_eq!(log.append(b"new").unwrap(), 42);
        assert_eq!(collect(&log, 0), vec![(42, b"new".to_vec())]);
        drop(log);
        let log = FileLog::open(dir.path(), Durability::Buffered, 64, 41).unwrap();
        assert_eq!(log.next_position(), 43);
        drop(log);
        // Records after a checkpoint that are gone are an error, not a silent gap.
        assert!(FileLog::open(dir.path(), Durability::Buffered, 64, 10).is_err());
    }

    /// A log of 4 KiB segments whose second segment is a prepared one, holding records 6
    /// and 7 (1,000 bytes each) before its zeros. Returns the second segment's path.
    fn log_on_a_prepared_segment(dir: &Path) -> PathBuf {
        let log = FileLog::open(dir, Durability::Sync, 4096, 0).unwrap();
        for i in 1..=3u8 {
            assert_eq!(log.append(&[i; 1000]).unwrap(), u64::from(i));
        }
        // Three records fill the segment past half: the next one is being prepared.
        log.wait_for_preparer();
        assert!(dir.join(SPARE_NAME).exists(), "no spare was prepared");
        for i in 4..=7u8 {
            assert_eq!(log.append(&[i; 1000]).unwrap(), u64::from(i));
        }
        drop(log);
        let found = segments(dir).unwrap();
        assert_eq!(
            found.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
            vec![1, 6]
        );
        let (_, second) = found.into_iter().nth(1).unwrap();
        assert_eq!(std::fs::metadata(&second).unwrap().len(), 4096);
        assert!(
            !dir.join(SPARE_NAME).exists(),
            "an unused spare was left behind"
        );
        second
    }

    fn bodies(log: &FileLog) -> Vec<(Position, u8)> {
        collect(log, 0)
            .into_iter()
            .map(|(p, r)| (p, r.first().copied().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_prepared_segment_reads_back_to_its_last_record_and_keeps_its_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let second = log_on_a_prepared_segment(dir.path());
        let log = FileLog::open(dir.path(), Durability::Sync, 4096, 0).unwrap();
        assert_eq!(
            bodies(&log),
            (1..=7u8).map(|i| (u64::from(i), i)).collect::<Vec<_>>()
        );
        assert_eq!(log.append(&[8; 1000]).unwrap(), 8);
        drop(log);
        // The record went into the prepared space: the file did not grow.
        assert_eq!(std::fs::metadata(&second).unwrap().len(), 4096);
        let log = FileLog::open(dir.path(), Durability::Sync, 4096, 0).unwrap();
        assert_eq!(bodies(&log).last(), Some(&(8, 8)));
        assert_eq!(log.next_position(), 9);
    }

    #[test]
    fn a_record_torn_inside_a_prepared_segment_is_cut_off() {
        // A crash can leave any of the pages of the record being written: its header and part
        // of its body, or its body without its header.
        let torn_writes: [&[(usize, &[u8])]; 3] = [
            &[
                (0, &[0xe8, 3, 0, 0, 1, 2, 3, 4, 8, 0, 0, 0, 0, 0, 0, 0]),
                (16, &[8; 300]),
            ],
            &[(16 + 500, &[8; 300])],
            &[(0, &[0xe8, 3])],
        ];
        for writes in torn_writes {
            let dir = tempfile::tempdir().unwrap();
            let second = log_on_a_prepared_segment(dir.path());
            let mut bytes = std::fs::read(&second).unwrap();
            let end = 2 * (HEADER_BYTES + 1000);
            for (offset, data) in writes {
                bytes[end + offset..end + offset + data.len()].copy_from_slice(data);
            }
            std::fs::write(&second, &bytes).unwrap();
            let log = FileLog::open(dir.path(), Durability::Sync, 4096, 0).unwrap();
            assert_eq!(log.append(&[9; 10]).unwrap(), 8);
            drop(log);
            let log = FileLog::open(dir.path(), Durability::Sync, 4096, 0).unwrap();
            assert_eq!(
                bodies(&log),
                (1..=7u8)
                    .map(|i| (u64::from(i), i))
                    .chain([(8, 9)])
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_damaged_record_in_a_prepared_segment_with_records_after_it_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let second = log_on_a_prepared_segment(dir.path());
        let mut bytes = std::fs::read(&second).unwrap();
        // The header of record 6 zeroed, or its body changed, with record 7 whole after it.
        let mut zeroed = bytes.clone();
        zeroed[..HEADER_BYTES].fill(0);
        bytes[HEADER_BYTES + 10] ^= 1;
        for damaged in [zeroed, bytes] {
            std::fs::write(&second, &damaged).unwrap();
            assert!(FileLog::open(dir.path(), Durability::Sync, 4096, 0).is_err());
        }
    }

    #[test]
    fn a_spare_left_by_a_crash_is_prepared_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPARE_NAME), [5u8; 100]).unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 4096, 0).unwrap();
        assert!(!dir.path().join(SPARE_NAME).exists());
        for i in 1..=7u8 {
            log.append(&[i; 1000]).unwrap();
            log.wait_for_preparer();
        }
        drop(log);
        assert_eq!(
            std::fs::metadata(&segments(dir.path()).unwrap()[1].1)
                .unwrap()
                .len(),
            4096
        );
        let log = FileLog::open(dir.path(), Durability::Sync, 4096, 0).unwrap();
        assert_eq!(bodies(&log).len(), 7);
    }

    #[test]
    fn a_header_torn_across_a_sector_boundary_is_cut_off_not_called_corrupt() {
        // Record 1 ends 6 bytes before a sector boundary, so record 2's header straddles it.
        // In prepared space the sector after the boundary can reach the disk without the one
        // before: the header's length then reads as zeros while its position reads right.
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        log.append(&[1; 4096 - 6 - HEADER_BYTES]).unwrap();
        log.append(&[2; 500]).unwrap();
        drop(log);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[4090..4096].fill(0);
        bytes.resize(8192, 0);
        std::fs::write(&path, &bytes).unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        assert_eq!(log.next_position(), 2);
        assert_eq!(log.append(&[3; 10]).unwrap(), 2);
        assert_eq!(bodies(&log), vec![(1, 1), (2, 3)]);
    }

    #[test]
    fn a_damaged_record_with_bytes_past_its_length_refuses_to_open() {
        // A whole header inside one sector is trusted: bytes past the length it gives were
        // written after the record, so the record was damaged after it was acknowledged.
        let dir = tempfile::tempdir().unwrap();
        let log = FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).unwrap();
        log.append(&[1; 100]).unwrap();
        drop(log);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_BYTES + 5] ^= 1;
        bytes.extend_from_slice(&[9; 40]);
        bytes.resize(4096, 0);
        std::fs::write(&path, &bytes).unwrap();
        assert!(FileLog::open(dir.path(), Durability::Sync, 1 << 20, 0).is_err());
    }
}
