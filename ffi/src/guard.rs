//! Guards: one per unit of work in flight; the drain waits for them.

use std::ffi::c_char;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use shutdown_core::{raw, Guard};

use crate::engine::Engine;
use crate::status::ShutdownStatus;
use crate::util::{arg, boundary, c_str, out, put, status, MAX_NAME};

/// Proof that one unit of work (a request, a job) is in flight. Released by
/// shutdown_guard_release(); it may outlive its engine's shutdown_free().
///
/// Never allocated: the pointer is the core's tagged guard (`raw::guard_into_raw`).
pub struct GuardHandle {
    _opaque: [u8; 0],
}

/// Writes a guard's handle to `o` (checked for NULL by the caller).
pub(crate) fn put_guard(o: *mut *mut GuardHandle, guard: Guard) {
    let handle = raw::guard_into_raw(guard).as_ptr().cast::<GuardHandle>();
    // SAFETY: `o` was checked for NULL by the caller.
    unsafe { put(o, handle) };
}

fn hand_out(guard: Option<Guard>, o: *mut *mut GuardHandle) -> Result<(), ShutdownStatus> {
    put_guard(o, guard.ok_or(ShutdownStatus::ADMISSION_CLOSED)?);
    Ok(())
}

/// Borrows the guard behind a live handle without releasing it.
///
/// # Safety
/// `handle` is a live guard from this library.
unsafe fn with_guard<R>(handle: NonNull<GuardHandle>, f: impl FnOnce(&Guard) -> R) -> R {
    // SAFETY: the caller's contract; the guard is put back (forgotten) unreleased.
    let guard = ManuallyDrop::new(unsafe { raw::guard_from_raw(handle.cast()) });
    f(&guard)
}

/// Admits one unit of work and writes its guard to `*out_guard`, or returns
/// SHUTDOWN_STATUS_ADMISSION_CLOSED once admission has closed (the quiesce stage and
/// later). One atomic add, no allocation.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_guard_acquire(
    engine: *const Engine,
    out_guard: *mut *mut GuardHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_guard)?;
        hand_out(e.core.guard(), o)
    })
}

/// Interns a guard kind name ("http", "job": 1 to 64 bytes of UTF-8) and writes its
/// id to `*out_kind`, for shutdown_guard_acquire_of(). The same name always gives the
/// same id; an engine labels at most 64 kinds (SHUTDOWN_STATUS_TOO_MANY_KINDS). The
/// report counts aborted guards by kind.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_kind(
    engine: *const Engine,
    name: *const c_char,
    out_kind: *mut u32,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let name = unsafe { c_str(name, MAX_NAME)? };
        let o = out(out_kind)?;
        let id = e.intern(name)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, id) };
        Ok(())
    })
}

/// Like shutdown_guard_acquire(), labelled with a kind id from shutdown_kind()
/// (SHUTDOWN_STATUS_INVALID_ARGUMENT for an unknown id).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_guard_acquire_of(
    engine: *const Engine,
    kind: u32,
    out_guard: *mut *mut GuardHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_guard)?;
        let kind = e.kind_of(kind).ok_or(ShutdownStatus::INVALID_ARGUMENT)?;
        hand_out(e.core.guard_of(kind), o)
    })
}

/// Like shutdown_guard_acquire(), labelled with a kind by name (shutdown_kind() then
/// shutdown_guard_acquire_of(); prefer those on a hot path).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_guard_acquire_kind(
    engine: *const Engine,
    kind_name: *const c_char,
    out_guard: *mut *mut GuardHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let name = unsafe { c_str(kind_name, MAX_NAME)? };
        let o = out(out_guard)?;
        let id = e.intern(name)?;
        let kind = e.kind_of(id).ok_or(ShutdownStatus::INVALID_ARGUMENT)?;
        hand_out(e.core.guard_of(kind), o)
    })
}

/// A guard for work that `parent` starts (a job queued by a request), with the
/// parent's kind. Admitted even after admission closed, so that work begun before the
/// close can finish.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_guard_child(
    parent: *const GuardHandle,
    out_guard: *mut *mut GuardHandle,
) -> ShutdownStatus {
    status(|| {
        let p = NonNull::new(parent.cast_mut()).ok_or(ShutdownStatus::NULL_PARAMETER)?;
        let o = out(out_guard)?;
        // SAFETY: a live guard (the C contract).
        let child = unsafe { with_guard(p, Guard::child) };
        hand_out(Some(child), o)
    })
}

/// Releases a guard: its work is over. Releasing the last guard while draining ends
/// the drain. NULL does nothing.
///
/// Thread: any, once per guard. Callbacks: with a manual clock, releasing the last
/// guard while draining runs the milestone and cancellation callbacks and the hooks
/// it starts on this thread; otherwise none (the driver thread takes over).
#[no_mangle]
pub unsafe extern "C" fn shutdown_guard_release(guard: *mut GuardHandle) {
    boundary((), || {
        if let Some(g) = NonNull::new(guard) {
            // SAFETY: a guard from this library, released once (the C contract).
            drop(unsafe { raw::guard_from_raw(g.cast()) });
        }
    })
}
