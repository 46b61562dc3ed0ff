//! Claim codes for unclaimed purchases (SPEC section 7); the match book is in `matching`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Crockford's base32 alphabet: no I, L, O or U, so codes read aloud cannot be confused.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Eight base32 characters (40 bits), shown as `XXXX-XXXX`.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
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
            // Five bits index the 32 letters; the fallback is never taken.
            *c = ALPHABET
                .get(((value >> shift) & 31) as usize)
                .copied()
                .unwrap_or(b'0');
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
            if !ALPHABET.contains(&c) {
                return None;
            }
            // A ninth character is too many.
            *chars.get_mut(n)? = c;
            n += 1;
        }
        (n == 8).then_some(ClaimCode(chars))
    }
}

impl fmt::Display for ClaimCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g, h, i] = self.0.map(char::from);
        write!(f, "{a}{b}{c}{d}-{e}{g}{h}{i}")
    }
}
