//! One-time passwords and dynamic wallet codes: short-lived identities a contact asks for, each
//! usable by one event.
//!
//! They live in memory only. A restart forgets the live ones (the contact asks for another); it
//! can never make one usable twice. Each is found by a keyed digest of (business, code), with
//! a secret drawn at start-up, so a lookup's timing says nothing about the codes held, and the
//! code itself is then compared in constant time. Codes come from the operating system's
//! secure random source and are unique among the business's live codes of their kind.
//!
//! A code is taken out when an event names it, and given back if that event fails, so "used"
//! means used by a posted event; two events naming one code at once cannot both have it.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use rewards_core::{BusinessId, ContactId, DomainError, Money, Timestamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use rewards_core::KeyId;

/// Digits of an OTP.
pub const OTP_DIGITS: usize = 6;

/// Digits of a dynamic wallet code: longer than a static wallet code (16), so the two never
/// meet.
pub const DYNAMIC_CODE_DIGITS: usize = 20;

/// Live codes of one kind held at most, all businesses together; past it, issuing is refused
/// with `rate_limited` until some expire or are used.
pub const MAX_LIVE_CODES: usize = 1_000_000;

/// Wrong OTPs one API key may present per window before it is refused with `rate_limited`.
pub const WRONG_OTPS_PER_WINDOW: u32 = 10;

const WRONG_OTP_WINDOW_MILLIS: i64 = 60_000;

/// When codes cannot be issued for want of room: about when some will have expired.
const FULL_RETRY_AFTER_SECONDS: u32 = 10;

/// Attempts at drawing a code no live code of the business has.
const DRAW_ATTEMPTS: usize = 64;

/// A live code: whose it is, until when, and an OTP's spend amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub contact: ContactId,
    pub spend_amount: Option<Money>,
    pub expires_at: Timestamp,
    code: Box<str>,
}

/// A code taken for an event: give it back with [`OneTimeCodes::give_back`] if the event
/// fails.
#[derive(Debug)]
pub struct Taken {
    kind: CodeKind,
    digest: [u8; 32],
    pub live: Live,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
enum CodeKind {
    Otp,
    WalletCode,
}

pub struct OneTimeCodes {
    secret: [u8; 32],
    otps: DashMap<[u8; 32], Live>,
    wallet_codes: DashMap<[u8; 32], Live>,
    /// Each contact's live code of each kind: a new one replaces it, so a contact (or a key
    /// looping on one) holds one at a time.
    by_contact: DashMap<(ContactId, CodeKind), [u8; 32]>,
    wrong_otps: DashMap<KeyId, Window>,
    issued: AtomicU64,
    /// When expired codes were last swept out (milliseconds).
    swept_at: std::sync::atomic::AtomicI64,
}

#[derive(Clone, Copy)]
struct Window {
    started: Timestamp,
    wrong: u32,
}

impl Default for OneTimeCodes {
    fn default() -> OneTimeCodes {
        OneTimeCodes {
            secret: crate::clock::secure_bytes::<32>(),
            otps: DashMap::new(),
            wallet_codes: DashMap::new(),
            by_contact: DashMap::new(),
            wrong_otps: DashMap::new(),
            issued: AtomicU64::new(0),
            swept_at: std::sync::atomic::AtomicI64::new(0),
        }
    }
}

impl OneTimeCodes {
    /// A new OTP for the contact, valid `ttl_seconds` from `now`.
    pub fn issue_otp(
        &self,
        business: BusinessId,
        contact: ContactId,
        spend_amount: Option<Money>,
        ttl_seconds: u32,
        now: Timestamp,
    ) -> Result<(String, Live), DomainError> {
        self.issue(
            CodeKind::Otp,
            business,
            contact,
            spend_amount,
            ttl_seconds,
            now,
        )
    }

    /// A new dynamic wallet code for the contact, valid `ttl_seconds` from `now`.
    pub fn issue_wallet_code(
        &self,
        business: BusinessId,
        contact: ContactId,
        ttl_seconds: u32,
        now: Timestamp,
    ) -> Result<(String, Live), DomainError> {
        self.issue(
            CodeKind::WalletCode,
            business,
            contact,
            None,
            ttl_seconds,
            now,
        )
    }

    /// Takes the OTP out for an event. A wrong, used or expired OTP is `otp_invalid` and counts
    /// against the presenting key; past [`WRONG_OTPS_PER_WINDOW`] in a minute the key is
    /// refused with `rate_limited` before the OTP is even looked at.
    pub fn take_otp(
        &self,
        business: BusinessId,
        otp: &str,
        presented_by: KeyId,
        now: Timestamp,
    ) -> Result<Taken, DomainError> {
        if let Some(window) = self.wrong_otps.get(&presented_by) {
            let ends = window.started.millis() + WRONG_OTP_WINDOW_MILLIS;
            if window.wrong >= WRONG_OTPS_PER_WINDOW && now.millis() < ends && now >= window.started
            {
                // The rest of the window, in whole seconds, at least one.
                let seconds = (ends - now.millis() + 999) / 1000;
                return Err(DomainError::RateLimited {
                    retry_after_seconds: u32::try_from(seconds).unwrap_or(60).max(1),
                });
            }
        }
        match self.take(CodeKind::Otp, business, otp, now) {
            Some(taken) => Ok(taken),
            None => {
                let mut window = self.wrong_otps.entry(presented_by).or_insert(Window {
                    started: now,
                    wrong: 0,
                });
                // A new window when this one ended (or the clock stepped back before it).
                if now.millis() >= window.started.millis() + WRONG_OTP_WINDOW_MILLIS
                    || now < window.started
                {
                    *window = Window {
                        started: now,
                        wrong: 0,
                    };
                }
                window.wrong = window.wrong.saturating_add(1);
                Err(DomainError::OtpInvalid)
            }
        }
    }

    /// Takes the dynamic wallet code out for an event; `None` when it is not a live code (the
    /// caller answers `contact_not_found`, as for any unknown identity).
    pub fn take_wallet_code(
        &self,
        business: BusinessId,
        code: &str,
        now: Timestamp,
    ) -> Option<Taken> {
        self.take(CodeKind::WalletCode, business, code, now)
    }

    /// Gives a code back after the event that took it failed, unless it expired meanwhile, or
    /// its contact was issued a new one, or its digits were issued again meanwhile (the new
    /// code keeps them: the old one is then simply used up).
    pub fn give_back(&self, taken: Taken, now: Timestamp) {
        if now >= taken.live.expires_at {
            return;
        }
        let current = self
            .by_contact
            .get(&(taken.live.contact, taken.kind))
            .map(|d| *d);
        if current != Some(taken.digest) {
            return;
        }
        if let dashmap::Entry::Vacant(slot) = self.map(taken.kind).entry(taken.digest) {
            slot.insert(taken.live);
        }
    }

    /// Live codes held (OTPs, dynamic wallet codes), expired ones not yet swept included.
    pub fn held(&self) -> (usize, usize) {
        (self.otps.len(), self.wallet_codes.len())
    }

    fn map(&self, kind: CodeKind) -> &DashMap<[u8; 32], Live> {
        match kind {
            CodeKind::Otp => &self.otps,
            CodeKind::WalletCode => &self.wallet_codes,
        }
    }

    fn digest(&self, kind: CodeKind, business: BusinessId, code: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update([kind as u8]);
        hasher.update(business.as_bytes());
        hasher.update(code.as_bytes());
        hasher.finalize().into()
    }

    fn issue(
        &self,
        kind: CodeKind,
        business: BusinessId,
        contact: ContactId,
        spend_amount: Option<Money>,
        ttl_seconds: u32,
        now: Timestamp,
    ) -> Result<(String, Live), DomainError> {
        let map = self.map(kind);
        // Every so often, and when the bound is reached (at most once a second then, so a full
        // table is not scanned on every request), drop what has expired.
        let due = self
            .issued
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024);
        let full = map.len() >= MAX_LIVE_CODES
            && now
                .millis()
                .saturating_sub(self.swept_at.load(Ordering::Relaxed))
                >= 1_000;
        if due || full {
            self.swept_at.store(now.millis(), Ordering::Relaxed);
            map.retain(|_, live| now < live.expires_at);
            self.by_contact.retain(|_, digest| {
                self.otps.contains_key(digest) || self.wallet_codes.contains_key(digest)
            });
            self.wrong_otps
                .retain(|_, w| now.millis() < w.started.millis() + WRONG_OTP_WINDOW_MILLIS);
        }
        if map.len() >= MAX_LIVE_CODES {
            return Err(DomainError::RateLimited {
                retry_after_seconds: FULL_RETRY_AFTER_SECONDS,
            });
        }
        let digits = match kind {
            CodeKind::Otp => OTP_DIGITS,
            CodeKind::WalletCode => DYNAMIC_CODE_DIGITS,
        };
        for _ in 0..DRAW_ATTEMPTS {
            let code = crate::clock::secure_digits(digits);
            let digest = self.digest(kind, business, &code);
            let live = Live {
                contact,
                spend_amount,
                expires_at: now.plus_seconds(i64::from(ttl_seconds)),
                code: code.clone().into_boxed_str(),
            };
            match map.entry(digest) {
                dashmap::Entry::Occupied(mut held) => {
                    // Taken by a live code of the business: draw again. An expired one makes room.
                    if now < held.get().expires_at {
                        continue;
                    }
                    held.insert(live.clone());
                }
                dashmap::Entry::Vacant(room) => {
                    room.insert(live.clone());
                }
            }
            // The contact's previous code of this kind stops working.
            if let Some(previous) = self.by_contact.insert((contact, kind), digest) {
                if previous != digest {
                    map.remove_if(&previous, |_, live| live.contact == contact);
                }
            }
            return Ok((code, live));
        }
        // The business holds so many live codes that fresh ones keep meeting them.
        Err(DomainError::RateLimited {
            retry_after_seconds: FULL_RETRY_AFTER_SECONDS,
        })
    }

    fn take(
        &self,
        kind: CodeKind,
        business: BusinessId,
        code: &str,
        now: Timestamp,
    ) -> Option<Taken> {
        let digest = self.digest(kind, business, code);
        let (digest, live) = self.map(kind).remove(&digest)?;
        let same = bool::from(live.code.as_bytes().ct_eq(code.as_bytes()));
        if !same || now >= live.expires_at {
            return None;
        }
        Some(Taken { kind, digest, live })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (BusinessId, ContactId, KeyId) {
        (
            BusinessId::from_bytes([1; 16]),
            ContactId::from_bytes([2; 16]),
            KeyId::from_bytes([3; 16]),
        )
    }

    #[test]
    fn an_otp_is_six_digits_usable_once_and_given_back_on_failure() {
        let codes = OneTimeCodes::default();
        let (b, c, k) = ids();
        let now = Timestamp(1_000_000);
        let spend = Some(Money::from_minor(500));
        let (otp, live) = codes.issue_otp(b, c, spend, 300, now).unwrap();
        assert_eq!(otp.len(), OTP_DIGITS);
        assert!(otp.bytes().all(|d| d.is_ascii_digit()));
        assert_eq!(live.expires_at, Timestamp(1_300_000));
        let taken = codes.take_otp(b, &otp, k, now).unwrap();
        assert_eq!((taken.live.contact, taken.live.spend_amount), (c, spend));
        assert_eq!(
            codes.take_otp(b, &otp, k, now).unwrap_err(),
            DomainError::OtpInvalid
        );
        codes.give_back(taken, now);
        assert!(codes.take_otp(b, &otp, k, now).is_ok());
        assert_eq!(
            codes.take_otp(b, &otp, k, now).unwrap_err(),
            DomainError::OtpInvalid
        );
    }

    #[test]
    fn an_otp_belongs_to_its_business_and_expires() {
        let codes = OneTimeCodes::default();
        let (b, c, k) = ids();
        let other = BusinessId::from_bytes([9; 16]);
        let now = Timestamp(0);
        let (otp, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        assert_eq!(
            codes.take_otp(other, &otp, k, now).unwrap_err(),
            DomainError::OtpInvalid
        );
        let late = Timestamp(300_000);
        assert_eq!(
            codes.take_otp(b, &otp, k, late).unwrap_err(),
            DomainError::OtpInvalid
        );
        let (otp, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let taken = codes.take_otp(b, &otp, k, now).unwrap();
        codes.give_back(taken, late);
        assert_eq!(
            codes.take_otp(b, &otp, k, now).unwrap_err(),
            DomainError::OtpInvalid
        );
    }

    #[test]
    fn wrong_otps_are_limited_per_key_and_window() {
        let codes = OneTimeCodes::default();
        let (b, c, k) = ids();
        let other_key = KeyId::from_bytes([4; 16]);
        let now = Timestamp(0);
        let (otp, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let wrong = if otp == "000000" { "000001" } else { "000000" };
        for _ in 0..WRONG_OTPS_PER_WINDOW {
            assert_eq!(
                codes.take_otp(b, wrong, k, now).unwrap_err(),
                DomainError::OtpInvalid
            );
        }
        // Even the right OTP is refused to this key for the rest of the minute.
        assert_eq!(
            codes.take_otp(b, &otp, k, Timestamp(500)).unwrap_err(),
            DomainError::RateLimited {
                retry_after_seconds: 60
            }
        );
        assert!(codes.take_otp(b, &otp, other_key, now).is_ok());
        let (otp, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        assert!(codes.take_otp(b, &otp, k, Timestamp(60_000)).is_ok());
    }

    #[test]
    fn live_otps_of_a_business_are_unique() {
        let codes = OneTimeCodes::default();
        let (b, _, k) = ids();
        let now = Timestamp(0);
        let mut seen = std::collections::HashMap::new();
        for n in 0..5_000u128 {
            let contact = ContactId::from_bytes(n.to_be_bytes());
            let (otp, _) = codes.issue_otp(b, contact, None, 300, now).unwrap();
            assert!(
                seen.insert(otp, contact).is_none(),
                "a live OTP was issued twice"
            );
        }
        for (otp, contact) in &seen {
            assert_eq!(
                codes.take_otp(b, otp, k, now).unwrap().live.contact,
                *contact
            );
        }
    }

    #[test]
    fn a_new_code_replaces_the_contacts_previous_one() {
        let codes = OneTimeCodes::default();
        let (b, c, k) = ids();
        let now = Timestamp(0);
        let (first, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let (second, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        // Looping on one contact holds one live OTP, not one per call.
        for _ in 0..100 {
            codes.issue_otp(b, c, None, 300, now).unwrap();
        }
        assert_eq!(codes.held().0, 1);
        if first != second {
            assert!(codes.take_otp(b, &first, k, now).is_err());
        }
        // A wallet code is a kind of its own: it does not replace the OTP.
        let (otp, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let (code, _) = codes.issue_wallet_code(b, c, 60, now).unwrap();
        assert!(codes.take_otp(b, &otp, k, now).is_ok());
        assert!(codes.take_wallet_code(b, &code, now).is_some());
    }

    #[test]
    fn a_code_is_not_given_back_over_a_newer_one() {
        let codes = OneTimeCodes::default();
        let (b, c, k) = ids();
        let now = Timestamp(0);
        // Taken by a failing event while the contact gets a new OTP: the old one stays used.
        let (old, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let taken = codes.take_otp(b, &old, k, now).unwrap();
        let (new, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        codes.give_back(taken, now);
        if old != new {
            assert!(codes.take_otp(b, &old, k, now).is_err());
        }
        assert!(codes.take_otp(b, &new, k, now).is_ok());
        // Taken while the same digits went to another contact: theirs is kept, not overwritten.
        let other = ContactId::from_bytes([7; 16]);
        let (digits, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let taken = codes.take_otp(b, &digits, k, now).unwrap();
        let digest = codes.digest(CodeKind::Otp, b, &digits);
        codes.otps.insert(
            digest,
            Live {
                contact: other,
                spend_amount: None,
                expires_at: Timestamp(300_000),
                code: digits.clone().into_boxed_str(),
            },
        );
        codes.give_back(taken, now);
        assert_eq!(
            codes.take_otp(b, &digits, k, now).unwrap().live.contact,
            other
        );
    }

    #[test]
    fn a_clock_stepping_back_opens_a_new_window() {
        let codes = OneTimeCodes::default();
        let (b, c, k) = ids();
        let now = Timestamp(1_000_000);
        let (otp, _) = codes.issue_otp(b, c, None, 300, now).unwrap();
        let wrong = if otp == "000000" { "000001" } else { "000000" };
        for _ in 0..WRONG_OTPS_PER_WINDOW {
            assert!(codes.take_otp(b, wrong, k, now).is_err());
        }
        assert!(matches!(
            codes.take_otp(b, &otp, k, now),
            Err(DomainError::RateLimited { .. })
        ));
        assert!(codes.take_otp(b, &otp, k, Timestamp(999_000)).is_ok());
    }

    #[test]
    fn a_dynamic_wallet_code_is_twenty_digits_usable_once() {
        let codes = OneTimeCodes::default();
        let (b, c, _) = ids();
        let now = Timestamp(0);
        let (code, live) = codes.issue_wallet_code(b, c, 60, now).unwrap();
        assert_eq!(code.len(), DYNAMIC_CODE_DIGITS);
        assert_eq!(live.expires_at, Timestamp(60_000));
        assert!(codes
            .take_wallet_code(b, &code, Timestamp(59_999))
            .is_some());
        assert!(codes.take_wallet_code(b, &code, now).is_none());
        let (code, _) = codes.issue_wallet_code(b, c, 60, now).unwrap();
        assert!(codes
            .take_wallet_code(b, &code, Timestamp(60_000))
            .is_none());
    }
}
