//! Limits of the HTTP surface, in one place, with their relations asserted at compile time.

/// Largest request body accepted; larger is 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most items in one batch request.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Paging: default and largest page.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Seconds a client is asked to wait after `overloaded`.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Wrong OTPs allowed per API key per minute before `rate_limited`.
pub const OTP_FAILURES_PER_MINUTE: u32 = 10;
/// Longest consumer session a business may create.
pub const MAX_SESSION_TTL_SECONDS: u64 = 30 * 24 * 3600;
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 3600;
/// Longest text field accepted (names, codes, references).
pub const MAX_TEXT_CHARS: usize = 256;
/// Most lines in one purchase.
pub const MAX_PURCHASE_LINES: usize = 1000;

const _: () = assert!(DEFAULT_PAGE_LIMIT <= MAX_PAGE_LIMIT);
const _: () = assert!(DEFAULT_SESSION_TTL_SECONDS <= MAX_SESSION_TTL_SECONDS);
// A full batch of maximal purchases must not be cut by the body limit before the item limit.
const _: () = assert!(MAX_BATCH_ITEMS * 2048 <= MAX_BODY_BYTES);
