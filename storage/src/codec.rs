//! The one place records are encoded: a format version byte, then bincode 2 (standard config).
//!
//! A record type names its current version; a decoder meets a different version only after a
//! format change, which then adds a decoder for the old version here (rust-lightning's rule).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type stored in the store.
pub trait Record: Serialize + DeserializeOwned {
    /// The format version written in the first byte of every encoded record.
    const VERSION: u8;

    /// Decodes a record written in an older format `version` (the bytes after the version
    /// byte), or `None` when the version is not one this type knows.
    fn decode_old(version: u8, body: &[u8]) -> Option<Result<Self, CodecError>> {
        let _ = (version, body);
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error("record format version {found} is not known (this build reads version {expected})")]
    UnknownVersion { found: u8, expected: u8 },
    #[error("record is corrupt: {0}")]
    Corrupt(String),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Decoding claims at most this many bytes: a corrupt length prefix is an error, never an
/// allocation of whatever size it says (found by the `codec` fuzz target).
const DECODE_LIMIT_BYTES: usize = crate::store::MAX_VALUE_BYTES;

fn decode_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT_BYTES>,
> {
    bincode::config::standard().with_limit::<DECODE_LIMIT_BYTES>()
}

pub fn encode<T: Record>(value: &T) -> Vec<u8> {
    ENCODE_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            // Encoded into this thread's buffer, then copied out at its exact size: one
            // allocation per record, where a growing vector reallocated (and copied) each time it
            // doubled past 128 bytes. An event record is about a kilobyte.
            buffer.clear();
            encode_into(value, &mut buffer);
            let out = buffer.to_vec();
            if buffer.capacity() > ENCODE_BUFFER_KEPT {
                *buffer = Vec::new();
            }
            out
        }
        // Only reached if a record's serialization encoded another record (none does).
        Err(_) => {
            let mut out = Vec::with_capacity(128);
            encode_into(value, &mut out);
            out
        }
    })
}

/// The encoding buffer a thread keeps between records, up to this capacity.
const ENCODE_BUFFER_KEPT: usize = 64 * 1024;

thread_local! {
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn encode_into<T: Record>(value: &T, out: &mut Vec<u8>) {
    out.push(T::VERSION);
    // Writing into a Vec cannot fail, and the records are derived types whose serialization
    // cannot either; a failure would be a bug in a record type, not something a request causes.
    #[allow(clippy::expect_used)]
    bincode::serde::encode_into_writer(value, VecWriter(out), config())
        .expect("encoding into a Vec cannot fail");
}

/// bincode's output straight into a vector (its `std::io::Write` adapter costs a call and a
/// `Result` per field).
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != T::VERSION {
        return T::decode_old(version, body).unwrap_or(Err(CodecError::UnknownVersion {
            found: version,
            expected: T::VERSION,
        }));
    }
    decode_body(body)
}

/// Decodes the bincode body of a record (after its version byte); every byte must be used.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(body, decode_config())
        .map_err(|e| CodecError::Corrupt(e.to_string()))?;
    if read != body.len() {
        return Err(CodecError::Corrupt(format!(
            "{} trailing bytes",
            body.len() - read
        )));
    }
    Ok(value)
}
