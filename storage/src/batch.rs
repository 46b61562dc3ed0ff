//! The log record of one commit batch: every change the batch's write sets made, in order.
//!
//! A record is physical (a key's new value, or its deletion; counter additions already merged
//! into the counter's new value), so replaying it is idempotent: recovery can replay a record
//! a checkpoint had already materialised and get the same state.
//!
//! Layout: a format version byte, then per change a tag (1 put, 2 delete), the space's number
//! in [`Space::ALL`], the key's length (u32 little-endian) and bytes, and for a put the value's
//! length (u32) and bytes.

use crate::overlay::Change;
use crate::store::{Space, StoreError};

/// The format of batch records this build writes and reads.
pub(crate) const VERSION: u8 = 1;
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// Appends one change to a record being built (start it with [`start`]).
pub(crate) fn push(record: &mut Vec<u8>, space: Space, key: &[u8], change: Option<&[u8]>) {
    record.push(if change.is_some() { PUT } else { DELETE });
    record.push(space.number());
    // Keys and values are bounded by the store far below u32::MAX (MAX_KEY_BYTES,
    // MAX_VALUE_BYTES), checked before a set reaches the writer.
    record.extend_from_slice(&(key.len() as u32).to_le_bytes());
    record.extend_from_slice(key);
    if let Some(value) = change {
        record.extend_from_slice(&(value.len() as u32).to_le_bytes());
        record.extend_from_slice(value);
    }
}

/// Empties `record` (a buffer the writer reuses, so large batches do not fault in fresh
/// pages each time) and starts a new record in it.
pub(crate) fn restart(record: &mut Vec<u8>, capacity: usize) {
    record.clear();
    record.reserve(capacity);
    record.push(VERSION);
}

fn corrupt(position: u64, what: &str) -> StoreError {
    StoreError::Io(format!("log record {position} is corrupt: {what}"))
}

/// The changes of the record at `position`, in order.
pub(crate) fn decode(
    position: u64,
    record: &[u8],
) -> Result<Vec<(Space, Vec<u8>, Change)>, StoreError> {
    let (&version, mut rest) = record
        .split_first()
        .ok_or_else(|| corrupt(position, "empty"))?;
    if version != VERSION {
        return Err(corrupt(
            position,
            &format!("format version {version} is not known (this build reads {VERSION})"),
        ));
    }
    let mut changes = Vec::new();
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>, StoreError> {
        if rest.len() < n {
            return Err(corrupt(position, "truncated"));
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head.to_vec())
    };
    while !rest.is_empty() {
        let head = take(&mut rest, 2)?;
        let (tag, number) = match head.as_slice() {
            [tag, number] => (*tag, *number),
            _ => return Err(corrupt(position, "truncated")),
        };
        let space = Space::from_number(number)
            .ok_or_else(|| corrupt(position, &format!("unknown space {number}")))?;
        let length = |bytes: Vec<u8>| {
            <[u8; 4]>::try_from(bytes.as_slice()).map(|b| u32::from_le_bytes(b) as usize)
        };
        let key_length = length(take(&mut rest, 4)?).map_err(|_| corrupt(position, "length"))?;
        let key = take(&mut rest, key_length)?;
        let change = match tag {
            PUT => {
                let value_length =
                    length(take(&mut rest, 4)?).map_err(|_| corrupt(position, "length"))?;
                Some(take(&mut rest, value_length)?)
            }
            DELETE => None,
            other => return Err(corrupt(position, &format!("unknown change tag {other}"))),
        };
        changes.push((space, key, change));
    }
    Ok(changes)
}

/// A visitor of [`for_each_logged_change`]: a change's space, key and new value (`None` for a
/// deletion).
pub type LoggedChange<'a> = dyn FnMut(Space, &[u8], Option<&[u8]>) + 'a;

/// Visits every change in the write-ahead log of the store at `data_dir` (a stopped server's
/// data directory, or a copy), from its oldest segment on: its space, key and new value (`None`
/// for a deletion), in log order. Returns the records and bytes read. For measuring what the
/// server writes (`log-stats`). It takes the directory's lock, so it refuses a store a server
/// has open, and opens the log as recovery does: a record torn by a crash at its end is cut off.
pub fn for_each_logged_change(
    data_dir: &std::path::Path,
    visit: &mut LoggedChange<'_>,
) -> Result<(u64, u64), StoreError> {
    use crate::log::Log;
    let _lock = crate::store::lock_directory(data_dir)?;
    let dir = data_dir.join("log");
    let oldest = crate::log::segments(&dir)?
        .first()
        .map_or(1, |(first, _)| *first);
    let log = crate::log::FileLog::open(
        &dir,
        crate::store::Durability::Buffered,
        u64::MAX,
        oldest.saturating_sub(1),
    )?;
    let (mut records, mut bytes) = (0u64, 0u64);
    log.read_after(0, &mut |position, record| {
        records += 1;
        bytes += record.len() as u64;
        for (space, key, change) in decode(position, record)? {
            visit(space, &key, change.as_deref());
        }
        Ok(())
    })?;
    Ok((records, bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::encode_counter;

    /// A fixed batch: a put, a deletion, a counter's merged value and an empty value, in spaces
    /// at both ends of `Space::ALL`.
    pub(crate) fn golden_changes() -> Vec<(Space, Vec<u8>, Change)> {
        vec![
            (Space::Wallets, vec![3; 16], Some(b"\x01wallet".to_vec())),
            (Space::Routes, b"r\x0a".to_vec(), None),
            (
                Space::Counters,
                b"o\x04".to_vec(),
                Some(encode_counter([250, 1])),
            ),
            (Space::Routes, b"l".to_vec(), Some(Vec::new())),
        ]
    }

    /// [`golden_changes`] as a log record, as the build before this test existed wrote it.
    pub(crate) const GOLDEN_BATCH: &str = "\
        01\
        01 03 10000000 03030303030303030303030303030303 07000000 0177616c6c6574\
        02 0d 02000000 720a\
        01 09 02000000 6f04 10000000 00000000000000fa0000000000000001\
        01 0d 01000000 6c 00000000";

    pub(crate) fn hex_bytes(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_record_is_its_golden_bytes() {
        let golden = hex_bytes(GOLDEN_BATCH);
        let mut record = Vec::new();
        restart(&mut record, 64);
        for (space, key, change) in golden_changes() {
            push(&mut record, space, &key, change.as_deref());
        }
        assert_eq!(
            record, golden,
            "a batch is written differently: give it a new VERSION"
        );
        assert_eq!(decode(1, &golden).unwrap(), golden_changes());
    }

    #[test]
    fn a_record_decodes_to_the_changes_it_was_built_from() {
        let mut record = Vec::new();
        restart(&mut record, 64);
        push(&mut record, Space::Wallets, b"w1", Some(b"state"));
        push(&mut record, Space::Routes, b"r1", None);
        push(&mut record, Space::Counters, b"c", Some(b""));
        let changes = decode(7, &record).unwrap();
        assert_eq!(
            changes,
            vec![
                (Space::Wallets, b"w1".to_vec(), Some(b"state".to_vec())),
                (Space::Routes, b"r1".to_vec(), None),
                (Space::Counters, b"c".to_vec(), Some(Vec::new())),
            ]
        );
        for cut in 1..record.len() {
            let _ = decode(7, &record[..cut]); // never panics
        }
        assert!(decode(7, &record[..record.len() - 1]).is_err());
        assert!(decode(7, &[9]).is_err());
    }
}
