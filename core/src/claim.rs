//! Claim codes for unclaimed purchases and the match predicate of processor routing (SPEC
//! section 7).

use crate::money::Money;
use crate::time::Timestamp;
use std::fmt;

/// Crockford's base32 alphabet: no I, L, O or U, so codes read aloud cannot be confused.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Eight base32 characters (40 bits), shown as `XXXX-XXXX`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ClaimCode([u8; 8]);

impl ClaimCode {
    /// A code from 5 random bytes supplied by the caller.
    pub fn from_random(bytes: [u8; 5]) -> ClaimCode {
        let mut value = 0u64;
        for b in bytes {
            value = (value << 8) | u64::from(b);
        }
        let mut chars = [0u8; 8];
        for (i, c) in chars.iter_mut().enumerate() {
            let shift = 35 - 5 * i;
            *c = ALPHABET[((value >> shift) & 31) as usize];
        }
        ClaimCode(chars)
    }

    /// Reads a code as a person types it: any case, with or without the hyphen or spaces, and
    /// with O read as 0 and I or L as 1.
    pub fn parse(text: &str) -> Option<ClaimCode> {
        let mut chars = [0u8; 8];
        let mut n = 0;
        for c in text.bytes() {
            if c == b'-' || c == b' ' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c => c,
            };
            if !ALPHABET.contains(&c) || n == 8 {
                return None;
            }
            chars[n] = c;
            n += 1;
        }
        (n == 8).then_some(ClaimCode(chars))
    }
}

impl fmt::Display for ClaimCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::str::from_utf8(&self.0).expect("ascii");
        write!(f, "{}-{}", &text[..4], &text[4..])
    }
}

/// A processor transaction as matching sees it.
#[derive(Clone, Debug)]
pub struct TransactionFacts<'a> {
    pub tap_code: &'a str,
    pub transaction_reference: &'a str,
    pub total: Money,
    pub at: Timestamp,
}

/// A POS purchase waiting for its processor transaction.
#[derive(Clone, Debug)]
pub struct PosPurchaseFacts<'a> {
    pub tap_code: &'a str,
    pub total: Money,
    pub at: Timestamp,
    /// The processor's reference, when the POS knows it: then only that transaction matches.
    pub transaction_reference: Option<&'a str>,
}

fn within(a: Timestamp, b: Timestamp, window_seconds: u32) -> bool {
    (a.0 - b.0).abs() <= i64::from(window_seconds) * 1000
}

/// Same TAP, same total, times within the window; a given transaction reference must be equal.
pub fn matches(tx: &TransactionFacts<'_>, pos: &PosPurchaseFacts<'_>, window_seconds: u32) -> bool {
    if let Some(reference) = pos.transaction_reference {
        return reference == tx.transaction_reference && tx.tap_code == pos.tap_code;
    }
    tx.tap_code == pos.tap_code && tx.total == pos.total && within(tx.at, pos.at, window_seconds)
}

/// Claim by receipt: the TAP, the total, the time within the window, and the receipt number if
/// the contact gave one.
#[allow(clippy::too_many_arguments)]
pub fn receipt_matches(
    tap_code: &str,
    total: Money,
    at: Timestamp,
    reference_number: Option<&str>,
    claimed_tap: &str,
    claimed_total: Money,
    claimed_at: Timestamp,
    claimed_reference: Option<&str>,
    window_seconds: u32,
) -> bool {
    tap_code == claimed_tap
        && total == claimed_total
        && within(at, claimed_at, window_seconds)
        && claimed_reference.is_none_or(|r| reference_number == Some(r))
}
