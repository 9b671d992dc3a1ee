//! The admission word: one packed atomic that admits work, counts it, and keeps the
//! shared state alive.
//!
//! Layout of the `u64`:
//!
//! ```text
//! bit 63      DRAINED  the drain is over (last guard left, or the deadline passed)
//! bit 62      CLOSED   admission is closed: new guards are refused
//! bits 32..62 handles  references held by `Shutdown` clones (and the drain, see below)
//! bits 0..32  guards   work in flight
//! ```
//!
//! Guards and handles are both references to the shared block, so a guard needs no
//! `Arc` clone of its own: acquiring is one `fetch_add`, releasing is one
//! compare-and-swap on the same word. That is the whole hot path.
//!
//! Closing admission adds a *drain reference*. Whoever ends the drain (the release
//! that takes the guard count to zero, or the driver at the deadline) sets `DRAINED`
//! in the same atomic step, and so becomes the only owner of that reference: it can
//! notify the waiter without racing a concurrent drop of the last handle, and then
//! drops the drain reference.

#[cfg(feature = "loom")]
use loom::sync::atomic::{fence, AtomicU64, Ordering};
#[cfg(not(feature = "loom"))]
use std::sync::atomic::{fence, AtomicU64, Ordering};

use std::ptr::NonNull;

const GUARD_ONE: u64 = 1;
const GUARD_MASK: u64 = (1 << 32) - 1;
const HANDLE_ONE: u64 = 1 << 32;
const HANDLE_MASK: u64 = ((1 << 30) - 1) << 32;
const REFS_MASK: u64 = GUARD_MASK | HANDLE_MASK;
const CLOSED: u64 = 1 << 62;
const DRAINED: u64 = 1 << 63;

/// Past this many guards in flight we abort instead of overflowing into the handle
/// bits (the same policy as `Arc`'s reference count).
const MAX_GUARDS: u64 = GUARD_MASK >> 1;
const MAX_HANDLES: u64 = (HANDLE_MASK >> 32) >> 1;

/// What the shared block is told when the drain ends because the last guard left.
pub trait DrainSink: Send + Sync + Sized {
    /// Called at most once per drain, on the thread that released the last guard.
    /// `handle` is the drain reference itself, so it may be cloned to keep the block.
    fn drained(handle: &Handle<Self>);
}

struct Block<T> {
    word: AtomicU64,
    value: T,
}

/// A counted reference to the shared block (the `Shutdown` handle holds one).
pub struct Handle<T: DrainSink> {
    ptr: NonNull<Block<T>>,
}

// SAFETY: the block is only reached through `&T`, and `T: Send + Sync`.
unsafe impl<T: DrainSink> Send for Handle<T> {}
unsafe impl<T: DrainSink> Sync for Handle<T> {}

/// Outcome of closing admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// No guard was in flight: the drain is already over.
    Drained,
    /// This many guards were in flight; `DrainSink::drained` fires when the last leaves.
    Waiting(u64),
    /// Admission had been closed before.
    AlreadyClosed,
}

impl<T: DrainSink> Handle<T> {
    /// Allocates the block with one handle reference.
    pub fn new(value: T) -> Self {
        let block = Box::new(Block {
            word: AtomicU64::new(HANDLE_ONE),
            value,
        });
        Handle {
            ptr: NonNull::from(Box::leak(block)),
        }
    }

    fn block(&self) -> &Block<T> {
        // SAFETY: a live handle is a counted reference, so the block is alive.
        unsafe { self.ptr.as_ref() }
    }

    /// The shared value.
    pub fn get(&self) -> &T {
        &self.block().value
    }

    /// Admits one unit of work, unless admission is closed.
    #[inline]
    pub fn try_acquire(&self) -> Option<RawGuard<T>> {
        let prev = self.block().word.fetch_add(GUARD_ONE, Ordering::Acquire);
        if prev & GUARD_MASK >= MAX_GUARDS {
            std::process::abort();
        }
        let guard = RawGuard { ptr: self.ptr };
        if prev & CLOSED != 0 {
            // Undo through the ordinary release: the undo may itself be the step that
            // takes the count to zero while draining, and must then end the drain.
            drop(guard);
            return None;
        }
        Some(guard)
    }

    /// Joins the work in flight, admission open or closed: one more guard while the
    /// drain still waits for some (a guard is in flight and the drain has not ended),
    /// `None` otherwise. Like a child of whichever guard is in flight, so the drain
    /// cannot end under it; unlike [`try_acquire`](Self::try_acquire) it never admits
    /// into an idle engine.
    pub fn try_join(&self) -> Option<RawGuard<T>> {
        let word = &self.block().word;
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            if cur & DRAINED != 0 || cur & GUARD_MASK == 0 {
                return None;
            }
            if cur & GUARD_MASK >= MAX_GUARDS {
                std::process::abort();
            }
            match word.compare_exchange_weak(
                cur,
                cur + GUARD_ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(RawGuard { ptr: self.ptr }),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Closes admission. Idempotent.
    pub fn close(&self) -> Close {
        let word = &self.block().word;
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return Close::AlreadyClosed;
            }
            let in_flight = cur & GUARD_MASK;
            let new = if in_flight == 0 {
                cur | CLOSED | DRAINED
            } else {
                (cur | CLOSED) + HANDLE_ONE
            };
            match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) if in_flight == 0 => return Close::Drained,
                Ok(_) => return Close::Waiting(in_flight),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Ends a drain that is still waiting (the deadline passed). Returns `false` when
    /// the drain had already ended. After this, releases no longer notify.
    pub fn end_drain(&self) -> bool {
        let word = &self.block().word;
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED == 0 || cur & DRAINED != 0 {
                return false;
            }
            // We hold a handle, so dropping the drain reference cannot free the block.
            let new = (cur | DRAINED) - HANDLE_ONE;
            match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Guards in flight now.
    #[inline]
    pub fn in_flight(&self) -> u64 {
        self.block().word.load(Ordering::Acquire) & GUARD_MASK
    }

    /// Whether admission is closed.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.block().word.load(Ordering::Acquire) & CLOSED != 0
    }
}

impl<T: DrainSink> Clone for Handle<T> {
    fn clone(&self) -> Self {
        let prev = self.block().word.fetch_add(HANDLE_ONE, Ordering::Relaxed);
        if (prev & HANDLE_MASK) >> 32 >= MAX_HANDLES {
            std::process::abort();
        }
        Handle { ptr: self.ptr }
    }
}

impl<T: DrainSink> Drop for Handle<T> {
    fn drop(&mut self) {
        // SAFETY: we own one handle reference, released exactly once here.
        unsafe { release_handle(self.ptr) }
    }
}

/// Drops one handle reference and frees the block when it was the last reference.
///
/// # Safety
/// The caller owns one handle reference to a live block.
unsafe fn release_handle<T>(ptr: NonNull<Block<T>>) {
    // SAFETY: the caller's reference keeps the block alive until this decrement.
    let prev = unsafe { ptr.as_ref() }
        .word
        .fetch_sub(HANDLE_ONE, Ordering::Release);
    if prev & REFS_MASK == HANDLE_ONE {
        // SAFETY: that was the last reference.
        unsafe { free(ptr) };
    }
}

/// # Safety
/// No reference to the block remains.
unsafe fn free<T>(ptr: NonNull<Block<T>>) {
    // Pairs with the `Release` of every other reference's drop, so the value's last
    // uses happen before it is dropped (the pattern of `Arc`).
    fence(Ordering::Acquire);
    // SAFETY: allocated by `Handle::new` through `Box`, and no reference remains.
    drop(unsafe { Box::from_raw(ptr.as_ptr()) });
}

/// One admitted unit of work. Releases on drop.
pub struct RawGuard<T: DrainSink> {
    ptr: NonNull<Block<T>>,
}

// SAFETY: as for `Handle`.
unsafe impl<T: DrainSink> Send for RawGuard<T> {}
unsafe impl<T: DrainSink> Sync for RawGuard<T> {}

impl<T: DrainSink> RawGuard<T> {
    /// The block's address, carrying this guard's reference (for a foreign handle).
    pub fn into_ptr(self) -> NonNull<u8> {
        let ptr = self.ptr.cast();
        std::mem::forget(self);
        ptr
    }

    /// Takes back a guard given out by [`into_ptr`](Self::into_ptr).
    ///
    /// # Safety
    /// `ptr` came from `into_ptr` on a guard of the same `T`, and is taken back once.
    pub unsafe fn from_ptr(ptr: NonNull<u8>) -> Self {
        RawGuard { ptr: ptr.cast() }
    }

    /// The shared value.
    pub fn get(&self) -> &T {
        // SAFETY: a live guard is a counted reference.
        unsafe { &self.ptr.as_ref().value }
    }

    /// A second guard for work started by this one; admitted even after admission
    /// closed, because the count is at least one while `self` lives.
    pub fn child(&self) -> RawGuard<T> {
        // SAFETY: as above.
        let word = unsafe { &self.ptr.as_ref().word };
        let prev = word.fetch_add(GUARD_ONE, Ordering::Acquire);
        if prev & GUARD_MASK >= MAX_GUARDS {
            std::process::abort();
        }
        RawGuard { ptr: self.ptr }
    }
}

impl<T: DrainSink> Drop for RawGuard<T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one guard reference, released exactly once here.
        let word = unsafe { &self.ptr.as_ref().word };
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            let ends_drain = cur & (CLOSED | DRAINED) == CLOSED && cur & GUARD_MASK == 1;
            let new = if ends_drain {
                (cur - GUARD_ONE) | DRAINED
            } else {
                cur - GUARD_ONE
            };
            match word.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if ends_drain {
                        // We own the drain reference now, so the block stays alive while
                        // we notify, whatever the handles do meanwhile.
                        // The drain reference becomes a handle, released when it drops.
                        let drain_ref = Handle { ptr: self.ptr };
                        T::drained(&drain_ref);
                    } else if new & REFS_MASK == 0 {
                        // SAFETY: that was the last reference of any kind.
                        unsafe { free(self.ptr) };
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[derive(Default)]
    struct Count(Arc<AtomicUsize>, Arc<AtomicUsize>);
    impl DrainSink for Count {
        fn drained(handle: &Handle<Self>) {
            handle.get().0.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl Drop for Count {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn handle() -> (Handle<Count>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let c = Count::default();
        let (n, d) = (c.0.clone(), c.1.clone());
        (Handle::new(c), n, d)
    }

    #[test]
    fn guards_count_and_refuse_after_close() {
        let (h, drained, _) = handle();
        let a = h.try_acquire().unwrap();
        let b = h.try_acquire().unwrap();
        assert_eq!(h.in_flight(), 2);
        assert_eq!(h.close(), Close::Waiting(2));
        assert_eq!(h.close(), Close::AlreadyClosed);
        assert!(h.try_acquire().is_none());
        assert_eq!(h.in_flight(), 2);
        drop(a);
        assert_eq!(drained.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(drained.load(Ordering::SeqCst), 1);
        assert!(h.try_acquire().is_none());
        assert_eq!(drained.load(Ordering::SeqCst), 1, "no second notification");
    }

    #[test]
    fn close_with_nothing_in_flight_is_drained_at_once() {
        let (h, drained, _) = handle();
        assert_eq!(h.close(), Close::Drained);
        assert!(!h.end_drain());
        assert_eq!(drained.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn child_guard_is_admitted_after_close() {
        let (h, drained, _) = handle();
        let parent = h.try_acquire().unwrap();
        h.close();
        let child = parent.child();
        drop(parent);
        assert_eq!(drained.load(Ordering::SeqCst), 0);
        assert_eq!(h.in_flight(), 1);
        drop(child);
        assert_eq!(drained.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn end_drain_stops_notifications_and_keeps_memory() {
        let (h, drained, freed) = handle();
        let g = h.try_acquire().unwrap();
        h.close();
        assert!(h.end_drain());
        drop(h);
        assert_eq!(freed.load(Ordering::SeqCst), 0, "the guard keeps the block");
        drop(g);
        assert_eq!(drained.load(Ordering::SeqCst), 0);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn last_reference_frees_once() {
        let (h, _, freed) = handle();
        let h2 = h.clone();
        let g = h.try_acquire().unwrap();
        drop(h);
        drop(h2);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        drop(g);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn handle_dropped_during_drain_frees_after_last_guard() {
        let (h, drained, freed) = handle();
        let g = h.try_acquire().unwrap();
        h.close();
        drop(h);
        assert_eq!(freed.load(Ordering::SeqCst), 0);
        drop(g);
        assert_eq!(drained.load(Ordering::SeqCst), 1);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    }
}
