//! What a foreign-language binding needs of the engine and a Rust host does not: a
//! guard as one opaque pointer, and a driver thread that can be stopped before Done
//! (for a host that frees an engine early, as C's `shutdown_free` does). The C ABI
//! (`ffi/`) is built on these; Rust code keeps [`Guard`] values and
//! [`Shutdown::spawn_driver`].

use std::ffi::c_void;
use std::ptr::NonNull;
use std::thread::JoinHandle;

use crate::{Guard, Report, Shutdown};

/// Stops a driver started by [`spawn_stoppable_driver`].
pub type StopDriver = Box<dyn Fn() + Send + Sync>;

/// The guard as one opaque, non-null pointer, for a foreign-language handle: no
/// allocation (the kind rides in the low bits of the shared block's address). The
/// guard stays in flight until [`guard_from_raw`] takes it back.
///
/// ```
/// use libshutdown::raw;
/// let sd = libshutdown::Shutdown::builder().build().unwrap();
/// let ptr = raw::guard_into_raw(sd.guard().unwrap());
/// assert_eq!(sd.in_flight(), 1);
/// drop(unsafe { raw::guard_from_raw(ptr) });
/// assert_eq!(sd.in_flight(), 0);
/// ```
pub fn guard_into_raw(guard: Guard) -> NonNull<c_void> {
    guard.into_raw()
}

/// Takes back a guard given out by [`guard_into_raw`]; dropping it releases the
/// guard.
///
/// # Safety
/// `raw` came from `guard_into_raw` and is taken back exactly once.
pub unsafe fn guard_from_raw(raw: NonNull<c_void>) -> Guard {
    // SAFETY: the caller's contract, passed on.
    unsafe { Guard::from_raw(raw) }
}

/// Like [`Shutdown::spawn_driver`], for hosts that may drop an engine before it is
/// Done: also returns a function that stops the driver thread (`shutdown-driver`)
/// early. Stopping is idempotent and does not change the shutdown (no trigger, no
/// deadline applied); it also ends the engine's own driving for good, so afterwards no
/// deadline of this engine fires unless the host runs another driver. The thread ends
/// with `None` when stopped, with `Some(report)` at Done.
pub fn spawn_stoppable_driver(
    sd: &Shutdown,
) -> std::io::Result<(JoinHandle<Option<Report>>, StopDriver)> {
    sd.spawn_stoppable_driver()
}
