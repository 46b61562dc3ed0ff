//! The server's clock and random sources: the only place the actors read time or draw randomness,
//! which they hand to the pure core as arguments.

use rand::RngCore;
use rewards_core::Timestamp;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(millis)
}

/// 16 random bytes for a new id (the thread's CSPRNG, seeded from the operating system).
pub fn id_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// Secret material (codes, OTPs, keys) straight from the operating system's secure source.
pub fn secure_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Random bytes from the thread's cryptographically secure generator (ChaCha, seeded and
/// reseeded from the operating system): for codes drawn on the hot path, without a system call.
pub fn csprng_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// A uniformly random number below `upper` (0 when `upper` is 0), from the thread's generator:
/// for spreading retries, not for secrets.
pub fn below(upper: u64) -> u64 {
    use rand::Rng;
    if upper == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..upper)
    }
}

/// A uniformly random decimal string of `digits` digits from the secure source.
pub fn secure_digits(digits: usize) -> String {
    let mut out = String::with_capacity(digits);
    while out.len() < digits {
        let [b] = secure_bytes::<1>();
        // Reject 250..=255 so every digit is equally likely.
        if b < 250 {
            out.push(char::from(b'0' + b % 10));
        }
    }
    out
}

/// A new event id that sorts by creation time (the UUID version 7 layout: 48 bits of Unix
/// milliseconds, a 12-bit sequence within the millisecond, then random bits). Events are stored
/// by id, so new ones land at the end of the key space instead of all over it, which keeps the
/// store's inserts and compactions cheap; and the ids of one process strictly increase, so two
/// events of the same millisecond are listed in the order they were made.
pub fn event_id() -> rewards_core::EventId {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let mut bytes = id_bytes();
    let floor = (now().0.max(0) as u64) << 12;
    let mut last = LAST.load(Ordering::Relaxed);
    // The millisecond and sequence: the clock's, or one past the last id's (4096 ids in one
    // millisecond borrow from the next; a clock that steps back does not reorder ids).
    let stamp = loop {
        let next = floor.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(actual) => last = actual,
        }
    };
    let millis = stamp >> 12;
    let sequence = (stamp & 0xfff) as u16;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70 | (sequence >> 8) as u8;
    bytes[7] = sequence as u8;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    rewards_core::EventId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_strictly_increase_and_carry_their_millisecond() {
        let before = now().0 as u64;
        let ids: Vec<rewards_core::EventId> = (0..10_000).map(|_| event_id()).collect();
        // 10,000 ids in a few milliseconds: many share one, and still none is out of order.
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        for id in [ids[0], ids[9_999]] {
            let bytes = id.as_bytes();
            assert_eq!(bytes[6] >> 4, 7, "a version 7 UUID");
            assert_eq!(bytes[8] >> 6, 0b10, "the RFC variant");
            let mut millis = [0u8; 8];
            millis[2..].copy_from_slice(&bytes[..6]);
            assert!(u64::from_be_bytes(millis) >= before);
        }
    }
}
