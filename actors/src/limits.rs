//! Limits of the HTTP surface, in one place, with their relations asserted at compile time.

/// Time a request's whole body has to arrive (from when its headers did); later is refused
/// and the connection closed.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Time a client has to send a request's headers (actix-web's client request timeout).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// File descriptors kept out of the HTTP connections' share, for the store's journal and
/// tables and the process's own files.
pub const STORE_FILE_RESERVE: usize = 256;
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
/// Longest text field accepted (names, codes, references, identifiers).
pub const MAX_TEXT_CHARS: usize = 256;
/// Longest string anywhere in a request body, in bytes as written; longer is refused before
/// the body is read further. Every string that becomes part of a store key is also bounded by
/// [`MAX_TEXT_CHARS`]; both keep keys far below the store's limit.
pub const MAX_STRING_BYTES: usize = 4096;
/// Exchange rates are between 10^-MIN_EXCHANGE_RATE_SCALE and MAX_EXCHANGE_RATE business
/// currency units per unit: wide enough for any real pair (1 BTC in IDR, 1 IDR in KWD), narrow
/// enough that a converted bounded amount stays bounded and never rounds to nothing.
pub const MIN_EXCHANGE_RATE_SCALE: u32 = 6;
pub const MAX_EXCHANGE_RATE: i64 = 1_000_000_000;
/// Concurrent copies of one idempotent request that may wait for the first; more are
/// `overloaded`.
pub const MAX_IDEMPOTENCY_WAITERS: usize = 1024;
/// Most index entries one page of the event list reads; a page that reaches it ends early
/// with a cursor to go on.
pub const MAX_EVENT_SCAN: usize = 10_000;
/// Most lines in one purchase.
pub const MAX_PURCHASE_LINES: usize = 1000;
/// Most items of any other list in a request (offer conditions, payment media, gift cards,
/// tier levels, email domains).
pub const MAX_LIST_ITEMS: usize = 1000;
/// Most closed-loop codes imported with one scheme.
pub const MAX_SCHEME_CODES: usize = 100_000;

const _: () = assert!(DEFAULT_PAGE_LIMIT <= MAX_PAGE_LIMIT);
// The lists of structs and the purchase lines share one bounded reader.
const _: () = assert!(MAX_PURCHASE_LINES == MAX_LIST_ITEMS);
// A full import of short codes fits in a body.
const _: () = assert!(MAX_SCHEME_CODES * 16 <= MAX_BODY_BYTES);
const _: () = assert!(MAX_PAGE_LIMIT < MAX_EVENT_SCAN);
const _: () = assert!(4 * MAX_TEXT_CHARS <= MAX_STRING_BYTES);
// A key holds at most three strings of a body and a few ids.
const _: () = assert!(3 * MAX_STRING_BYTES + 64 <= rewards_storage::MAX_KEY_BYTES);
const _: () = assert!(DEFAULT_SESSION_TTL_SECONDS <= MAX_SESSION_TTL_SECONDS);
// A full batch of maximal purchases must not be cut by the body limit before the item limit.
const _: () = assert!(MAX_BATCH_ITEMS * 2048 <= MAX_BODY_BYTES);
