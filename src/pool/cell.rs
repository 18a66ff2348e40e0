//! Where each slot's connection lives: a cell that never moves or goes
//! away while the pool lives, reached from a connection id without the
//! pool's lock.
//!
//! A cell's `word` holds the generation of the slot's current (or last) id
//! and who governs the slot:
//!
//! - `W_LOCKED`: the pool's lock (the slot's `SlotState` says how). Only a
//!   holder of the lock reaches the connection; a ping or a rollback takes
//!   it out of the cell under the lock and puts it back under the lock.
//! - `W_PARKED`: idle outside the idle list, left by a release that found
//!   nothing to do. One compare-and-swap to `W_OUT` checks it out (the
//!   releasing thread's next checkout, through its hint), or to `W_LOCKED`
//!   hands it back to the lock.
//! - `W_OUT`: checked out, no call in flight. A call starts with a
//!   compare-and-swap to `W_CALL`; a release parks it with one to
//!   `W_PARKED`, or takes the lock and claims it (to `W_LOCKED`).
//! - `W_CALL`: a call runs; only the thread that set it reaches the
//!   connection, and it ends the call with a compare-and-swap back to
//!   `W_OUT`. A holder of the lock may only add `W_REVOKED` or `W_CLOSE`.
//!
//! Every change of the word is a compare-and-swap from the exact value
//! seen, or a store by a holder of the lock where nothing without the lock
//! changes it (`W_LOCKED`, or a revoked call's end), so an id whose
//! generation is not the word's can change nothing. Release/Acquire on the word orders the connection's
//! use by the threads it passes between.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// The pool's lock governs the slot.
pub(super) const W_LOCKED: u64 = 0;
/// Idle, outside the idle list: a checkout takes it without the lock.
pub(super) const W_PARKED: u64 = 1;
/// Checked out; no call in flight.
pub(super) const W_OUT: u64 = 2;
/// Checked out; a call is in flight.
pub(super) const W_CALL: u64 = 3;
pub(super) const W_STATE: u64 = 3;
/// A call lost the link: evict on release.
pub(super) const W_LOST: u64 = 4;
/// Revoked while in a call (`Slot::revoked` says why): the call's end
/// takes the lock and closes the connection.
pub(super) const W_REVOKED: u64 = 8;
/// Close it when it comes back (`close_all`).
pub(super) const W_CLOSE: u64 = 16;
/// Its checks are local (SQLite, PostgreSQL) and, as of the last call's
/// end or its checkout, say it is neither in a transaction nor broken: a
/// release may park it as it is.
pub(super) const W_CLEAN: u64 = 32;

#[inline]
pub(super) fn word(gen: u32, bits: u64) -> u64 {
    ((gen as u64) << 32) | bits
}

#[inline]
pub(super) fn gen_of(w: u64) -> u32 {
    (w >> 32) as u32
}

/// One slot's connection and what the paths without the lock need to know
/// of it. The times are coarse-clock nanoseconds (`now_ns`), written by
/// whoever governs the slot; a cache line of its own, so threads working on
/// neighbouring slots do not share one.
#[repr(align(64))]
pub(super) struct ConnCell<C> {
    pub(super) word: AtomicU64,
    /// When its lifetime ends (`u64::MAX`: never); set when it is installed.
    pub(super) expires_at: AtomicU64,
    pub(super) returned_at: AtomicU64,
    /// The returning thread's count of returns (`note_return`): with
    /// `returned_at`, the order the idle list keeps.
    pub(super) returned_seq: AtomicU64,
    pub(super) checked_out_at: AtomicU64,
    /// Checkouts made without the lock, counted into `Stats::checkouts`;
    /// only the thread that made one writes it.
    pub(super) fast_checkouts: AtomicU64,
    conn: UnsafeCell<Option<C>>,
}

// SAFETY: `conn` is reached by one thread at a time, as the module doc says
// (the word's Release/Acquire and the pool's lock order those threads), and
// `C: Send` lets it move between them; everything else is atomic.
unsafe impl<C: Send> Sync for ConnCell<C> {}

impl<C> ConnCell<C> {
    fn empty() -> ConnCell<C> {
        ConnCell {
            word: AtomicU64::new(0),
            expires_at: AtomicU64::new(u64::MAX),
            returned_at: AtomicU64::new(0),
            returned_seq: AtomicU64::new(0),
            checked_out_at: AtomicU64::new(0),
            fast_checkouts: AtomicU64::new(0),
            conn: UnsafeCell::new(None),
        }
    }

    /// The connection.
    ///
    /// # Safety
    /// The caller governs the cell: it holds the pool's lock while the word
    /// is `W_LOCKED`, or it set `W_CALL` and has not ended the call. No other
    /// reference from this method is alive.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(super) unsafe fn conn(&self) -> &mut Option<C> {
        // SAFETY: the caller's promise: one thread, one reference.
        unsafe { &mut *self.conn.get() }
    }
}

/// The cells: the first 16 in the table itself (one load fewer on every
/// step of a small pool), the rest in buckets that double in size (32, 64,
/// ... cells), so the table grows without moving a cell: a thread holding
/// a reference to one (in a call) is never left with a dangling one.
/// Buckets are added under the pool's lock and freed with the table.
pub(super) struct Cells<C> {
    first: [ConnCell<C>; 1 << FIRST_BITS],
    /// Bucket `b` (from 1) holds `bucket_len(b)` cells; 0 is `first`.
    buckets: [AtomicPtr<ConnCell<C>>; BUCKETS],
    /// Some cell may be parked: set by a release that parks (after its
    /// compare-and-swap, SeqCst), cleared by a holder of the lock that then
    /// looks at every cell (`State::unpark`). Spares that look while
    /// nothing is parked, which is the rule while threads queue.
    pub(super) maybe_parked: AtomicBool,
    /// Owns the cells: `Send`/`Sync` as theirs are.
    _cells: PhantomData<Box<[ConnCell<C>]>>,
}

const FIRST_BITS: u32 = 4;
/// 16 × (2^17 − 1) cells ≥ `MAX_SLOTS` (2^20).
const BUCKETS: usize = 17;

impl<C> Cells<C> {
    pub(super) fn new() -> Cells<C> {
        Cells {
            first: std::array::from_fn(|_| ConnCell::empty()),
            buckets: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            maybe_parked: AtomicBool::new(false),
            _cells: PhantomData,
        }
    }

    #[inline]
    fn locate(idx: usize) -> (usize, usize) {
        let i = idx + (1 << FIRST_BITS);
        let b = (usize::BITS - 1 - i.leading_zeros() - FIRST_BITS) as usize;
        (b, i - ((1 << FIRST_BITS) << b))
    }

    fn bucket_len(b: usize) -> usize {
        (1 << FIRST_BITS) << b
    }

    /// Cell `idx`, if its bucket exists (any index; the slot table makes a
    /// bucket before its first slot).
    #[inline]
    pub(super) fn get(&self, idx: usize) -> Option<&ConnCell<C>> {
        if let Some(c) = self.first.get(idx) {
            return Some(c);
        }
        let (b, off) = Self::locate(idx);
        let p = self.buckets.get(b)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: bucket `b` holds `bucket_len(b)` cells (`off` is below
        // it), allocated by `make` and freed only by `drop`.
        Some(unsafe { &*p.add(off) })
    }

    /// Cell `idx`, making its bucket if needed. Under the pool's lock (one
    /// writer at a time).
    pub(super) fn make(&self, idx: usize) -> &ConnCell<C> {
        let (b, _) = Self::locate(idx);
        if b > 0 && self.buckets[b].load(Ordering::Acquire).is_null() {
            let cells: Box<[ConnCell<C>]> = (0..Self::bucket_len(b))
                .map(|_| ConnCell::empty())
                .collect();
            let p = Box::into_raw(cells) as *mut ConnCell<C>;
            self.buckets[b].store(p, Ordering::Release);
        }
        match self.get(idx) {
            Some(c) => c,
            None => unreachable!("bucket {b} was just made"),
        }
    }
}

impl<C> Drop for Cells<C> {
    fn drop(&mut self) {
        for (b, p) in self.buckets.iter_mut().enumerate() {
            let p = *p.get_mut();
            if !p.is_null() {
                // SAFETY: made by `make` from a boxed slice of this length.
                drop(unsafe {
                    Box::from_raw(ptr::slice_from_raw_parts_mut(p, Self::bucket_len(b)))
                });
            }
        }
    }
}

thread_local! {
    /// The pool (by address) and slot of the connection this thread last
    /// parked (0 for none), and how many it has given back: its next
    /// checkout from that pool tries that cell first.
    static HINT: Cell<(usize, usize, u64)> = const { Cell::new((0, 0, 0)) };
}

/// Notes that the calling thread gives a connection back to `pool`,
/// parked in slot `parked` (the thread's next checkout tries it) or not
/// (the hint is cleared: a connection filed under the lock is never
/// parked, and trying its cell would only read a line another CPU may be
/// writing). The number of this return among the thread's, for the
/// cell's `returned_seq`.
#[inline]
pub(super) fn note_return(pool: usize, parked: Option<usize>) -> u64 {
    HINT.try_with(|h| {
        let seq = h.get().2 + 1;
        h.set(match parked {
            Some(idx) => (pool, idx, seq),
            None => (0, 0, seq),
        });
        seq
    })
    .unwrap_or(0)
}

/// The slot the calling thread last gave back to `pool`. A pool that reuses
/// a freed one's address may see its hint: any parked cell of its own is
/// as good a checkout as another.
#[inline]
pub(super) fn hint(pool: usize) -> Option<usize> {
    match HINT.try_with(Cell::get) {
        Ok((p, idx, _)) if p == pool => Some(idx),
        _ => None,
    }
}

impl<C> ConnCell<C> {
    /// Where it goes in the idle list: by when it came back, and among
    /// one thread's returns within a clock tick, by their order.
    pub(super) fn return_order(&self) -> (u64, u64) {
        (
            self.returned_at.load(Ordering::Relaxed),
            self.returned_seq.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_has_its_own_cell_and_buckets_double() {
        let cells: Cells<u32> = Cells::new();
        assert_eq!(Cells::<u32>::locate(0), (0, 0));
        assert_eq!(Cells::<u32>::locate(15), (0, 15));
        assert_eq!(Cells::<u32>::locate(16), (1, 0));
        assert_eq!(Cells::<u32>::locate(47), (1, 31));
        assert_eq!(Cells::<u32>::locate(48), (2, 0));
        let last = super::super::MAX_SLOTS - 1;
        assert!(Cells::<u32>::locate(last).0 < BUCKETS);
        assert!(cells.get(15).is_some(), "the first 16 are in the table");
        assert!(cells.get(16).is_none());
        let mut seen = std::collections::HashSet::new();
        for idx in 0..200 {
            let c = cells.make(idx) as *const ConnCell<u32>;
            assert!(seen.insert(c as usize), "cell {idx} shared");
            assert_eq!(cells.get(idx).map(|c| c as *const _), Some(c));
        }
        assert!(cells.get(200).is_some(), "its bucket exists");
        assert!(cells.get(100_000).is_none());
    }
}
