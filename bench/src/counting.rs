//! A global allocator that counts allocations, frees and bytes allocated, around mimalloc.
//!
//! Counts are kept per thread in plain cells and added to the shared totals in blocks, so the
//! counting does not make every allocation contend on one cache line.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations (including reallocations), frees, and bytes requested, over the whole process.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub allocations: u64,
    pub frees: u64,
    pub bytes: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        Counts {
            allocations: self.allocations + other.allocations,
            frees: self.frees + other.frees,
            bytes: self.bytes + other.bytes,
        }
    }
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, earlier: Counts) -> Counts {
        Counts {
            allocations: self.allocations - earlier.allocations,
            frees: self.frees - earlier.frees,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// How many events a thread counts before it adds them to the totals.
const BLOCK: u64 = 64;

thread_local! {
    static LOCAL: Cell<(u64, u64, u64)> = const { Cell::new((0, 0, 0)) };
}

fn count(allocations: u64, frees: u64, bytes: u64) {
    // `try_with`: a thread's last frees can come after its locals are gone; count them directly.
    let counted = LOCAL.try_with(|local| {
        let (a, f, b) = local.get();
        let (a, f, b) = (a + allocations, f + frees, b + bytes);
        if a + f >= BLOCK {
            ALLOCATIONS.fetch_add(a, Ordering::Relaxed);
            FREES.fetch_add(f, Ordering::Relaxed);
            BYTES.fetch_add(b, Ordering::Relaxed);
            local.set((0, 0, 0));
        } else {
            local.set((a, f, b));
        }
    });
    if counted.is_err() {
        ALLOCATIONS.fetch_add(allocations, Ordering::Relaxed);
        FREES.fetch_add(frees, Ordering::Relaxed);
        BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The totals so far. Each thread may still hold up to [`BLOCK`] uncounted events, so compare
/// totals over many more events than threads × `BLOCK`.
pub fn counts() -> Counts {
    Counts {
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        frees: FREES.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    }
}

/// mimalloc, counted.
pub struct Counting;

// SAFETY: every call is passed to mimalloc unchanged; counting touches no memory it hands out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(1, 0, layout.size() as u64);
        // SAFETY: the caller's contract is mimalloc's.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(1, 0, layout.size() as u64);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, 1, 0);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(1, 1, new_size as u64);
        // SAFETY: as above.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}
