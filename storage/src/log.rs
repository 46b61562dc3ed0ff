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
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

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

    /// Calls `visit` with every record after `position`, in order, and returns the position of
    /// the last record in the log (`position` itself when none follows).
    fn read_after(&self, position: Position, visit: &mut Visit<'_>)
        -> Result<Position, StoreError>;

    /// Forgets records up to `position`: a checkpoint holds everything they changed.
    fn truncate_through(&self, position: Position) -> Result<(), StoreError>;
}

/// Bytes before a record's body: its length (u32), a CRC-32 of length, sequence and body (u32),
/// its sequence number (u64), all little-endian.
const HEADER_BYTES: usize = 16;
/// The largest record the log takes: a commit batch of at most `max_batch_sets` sets, each
/// bounded by the store's limits, stays far below this in practice; a larger one is refused.
pub const MAX_RECORD_BYTES: usize = 1 << 30;
const SEGMENT_SUFFIX: &str = ".wal";

struct Active {
    file: File,
    /// Position of the next record.
    next: Position,
    /// Bytes written to the active segment.
    bytes: u64,
}

/// A log in a directory of segment files, each named by the position of its first record. The
/// writer appends to the newest; a new segment starts when the active one passes
/// `segment_bytes`; a truncation deletes whole segments a checkpoint covers.
pub struct FileLog {
    dir: PathBuf,
    durability: Durability,
    segment_bytes: u64,
    active: Mutex<Active>,
}

fn io(what: &str, path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Io(format!("{what} {}: {error}", path.display()))
}

fn segment_name(first: Position) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// The segments in `dir`, by the position of their first record, oldest first.
fn segments(dir: &Path) -> Result<Vec<(Position, PathBuf)>, StoreError> {
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
    /// Bytes of whole records; anything after is a torn write.
    valid_bytes: u64,
    /// The segment ends with a record cut short or with a bad checksum.
    torn: bool,
    /// A bad record is followed by more bytes: not a crash's torn write.
    corrupt: bool,
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
            return Ok(Scan {
                last,
                valid_bytes: at as u64,
                torn: at != bytes.len(),
                corrupt: false,
            });
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
            _ => {
                // A record cut short by a crash is the last thing in the file. A bad record
                // with bytes after it was written whole and damaged later: corruption.
                let reaches_end = body_at.saturating_add(length) >= bytes.len();
                return Ok(Scan {
                    last,
                    valid_bytes: at as u64,
                    torn: true,
                    corrupt: !reaches_end,
                });
            }
        }
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
        let mut tail: Option<(PathBuf, u64)> = None;
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
            tail = Some((path.clone(), scan.valid_bytes));
        }
        if next <= checkpoint {
            // Every record on disk is covered by the checkpoint: the old segments go first,
            // then the log starts after the checkpoint (a crash in between leaves an empty
            // directory, which starts the same way).
            for (_, path) in &found {
                std::fs::remove_file(path).map_err(|e| io("removing", path, e))?;
            }
            sync_dir(dir)?;
            return Ok(FileLog {
                dir: dir.to_path_buf(),
                durability,
                segment_bytes: segment_bytes.max(1),
                active: Mutex::new(Active {
                    file: Self::create_segment(dir, checkpoint + 1)?,
                    next: checkpoint + 1,
                    bytes: 0,
                }),
            });
        }
        let active = match tail {
            Some((path, valid_bytes)) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io("opening", &path, e))?;
                // Cut a torn record off, so the next append follows the last whole one.
                file.set_len(valid_bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io("truncating", &path, e))?;
                let mut file = file;
                std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
                    .map_err(|e| io("seeking", &path, e))?;
                Active {
                    file,
                    next,
                    bytes: valid_bytes,
                }
            }
            None => Active {
                file: Self::create_segment(dir, next)?,
                next,
                bytes: 0,
            },
        };
        Ok(FileLog {
            dir: dir.to_path_buf(),
            durability,
            segment_bytes: segment_bytes.max(1),
            active: Mutex::new(active),
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
            active.file = Self::create_segment(&self.dir, active.next)?;
            active.bytes = 0;
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
        active.next += 1;
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
}
