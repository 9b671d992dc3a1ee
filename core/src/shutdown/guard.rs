//! `Guard`, one unit of work in flight, and its raw form: one tagged pointer for a
//! foreign-language handle.

use crate::admission::RawGuard;
use crate::kinds::Kind;

use super::inner::Inner;

/// Proof that one unit of work is in flight; the drain waits for it. Released on drop.
///
/// `Send + Sync`, no allocation: it is a pointer and a label.
#[must_use = "a guard dropped at once admits nothing: hold it while the work runs"]
pub struct Guard {
    pub(super) raw: RawGuard<Inner>,
    pub(super) kind: Option<Kind>,
}

impl Guard {
    /// A guard for work this one starts (a job queued by a request). Admitted even
    /// after admission closed, so work begun before the close can finish.
    pub fn child(&self) -> Guard {
        let raw = self.raw.child();
        if let Some(k) = self.kind {
            raw.get().kinds.enter(k);
        }
        Guard {
            raw,
            kind: self.kind,
        }
    }

    /// A child labelled `kind` instead of this guard's own label.
    pub(crate) fn child_of(&self, kind: Option<Kind>) -> Guard {
        let raw = self.raw.child();
        if let Some(k) = kind {
            raw.get().kinds.enter(k);
        }
        Guard { raw, kind }
    }

    /// The guard's label, if it has one.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// [`raw::guard_into_raw`](crate::raw::guard_into_raw).
    pub(crate) fn into_raw(self) -> std::ptr::NonNull<std::ffi::c_void> {
        let tag = self.kind.map_or(0, |k| k.0 as usize + 1);
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: read once out of a value that is never dropped.
        let raw = unsafe { std::ptr::read(&this.raw) };
        let ptr = raw.into_ptr();
        debug_assert_eq!(ptr.as_ptr() as usize & RAW_TAG_MASK, 0);
        ptr.map_addr(|a| a | tag).cast()
    }

    /// [`raw::guard_from_raw`](crate::raw::guard_from_raw).
    ///
    /// # Safety
    /// `raw` came from `into_raw` and is taken back exactly once.
    pub(crate) unsafe fn from_raw(raw: std::ptr::NonNull<std::ffi::c_void>) -> Guard {
        let tag = raw.as_ptr() as usize & RAW_TAG_MASK;
        let ptr = raw.cast::<u8>().map_addr(|a| {
            std::num::NonZeroUsize::new(a.get() & !RAW_TAG_MASK).expect("block address is not null")
        });
        Guard {
            // SAFETY: the caller's contract.
            raw: unsafe { RawGuard::from_ptr(ptr) },
            kind: tag.checked_sub(1).map(|k| Kind(k as u8)),
        }
    }
}

const RAW_TAG_MASK: usize = 127;
const _: () = assert!(std::mem::align_of::<Inner>() > RAW_TAG_MASK);
const _: () = assert!(crate::kinds::MAX_KINDS < RAW_TAG_MASK);

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if let Some(k) = self.kind {
            self.raw.get().kinds.leave(k);
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("kind", &self.kind).finish()
    }
}
