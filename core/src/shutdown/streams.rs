//! Long-lived work: whether a long-lived kind was told to end or was cut, and the
//! future that resolves when it is told.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kinds::Kind;

use super::status::reached_closing;
use super::Shutdown;

impl Shutdown {
    /// Whether the app was told to end its long-lived work of `kind` (its
    /// [`LongLived`](crate::LongLived) policy's milestone was reached).
    pub fn is_ending(&self, kind: Kind) -> bool {
        self.inner().ending.load(Ordering::Acquire) & kind_bit(kind) != 0
    }

    /// Whether the grace of long-lived `kind` ran out: what is left of it is cut.
    pub fn is_cut(&self, kind: Kind) -> bool {
        self.inner().cut.load(Ordering::Acquire) & kind_bit(kind) != 0
    }

    /// Resolves once the app is told to end its long-lived work of `kind` (or the
    /// drain is over, for a kind with no policy); a stream's task selects on it.
    pub fn ending(&self, kind: Kind) -> impl Future<Output = ()> + Send + 'static {
        crate::driver::condition::until(
            self.clone(),
            |sd: &Shutdown| &sd.inner().changed,
            move |sd: &Shutdown| sd.ending_reached(kind),
        )
    }

    /// What [`ending`](Self::ending) waits for.
    pub(crate) fn ending_reached(&self, kind: Kind) -> bool {
        self.is_ending(kind) || self.status_reached(reached_closing)
    }

    /// Marks a long-lived kind in `word` and returns it.
    pub(super) fn mark_kind(&self, word: &AtomicU64, name: &str) -> Option<Kind> {
        let kind = self.inner().kinds.intern(name).ok()?;
        word.fetch_or(kind_bit(kind), Ordering::AcqRel);
        Some(kind)
    }
}

fn kind_bit(kind: Kind) -> u64 {
    1u64 << (kind.0 as u32 % 64)
}
