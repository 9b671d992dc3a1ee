//! The queries: phase, readiness, admission, cancellation, in flight, exit code.

use crate::engine::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, boundary, out, put, status};
use std::ffi::c_int;

/// Writes the current phase (a shutdown_phase_t) to `*out_phase`.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_phase(
    engine: *const Engine,
    out_phase: *mut ShutdownPhase,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_phase)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, e.core.phase().into()) };
        Ok(())
    })
}

/// Readiness: true only while Running. Answer readiness probes with it (503 when
/// false). NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_ready(engine: *const Engine) -> bool {
    // SAFETY: NULL or a live handle (the C contract).
    boundary(false, || {
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.is_ready())
    })
}

/// Whether new guards are admitted (Running, and the announce window). When it turns
/// false, stop accepting connections. NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_accepting(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.is_accepting())
    })
}

/// Whether a keep-alive connection should close after its current response
/// (`Connection: close`, HTTP/2 GOAWAY). One atomic load while Running. NULL gives
/// false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_should_close(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.should_close())
    })
}

/// Whether the cancellation signal has fired: the drain was cut short (its deadline
/// passed, or a repeated trigger forced it), or the shutdown is Done. Work that can
/// stop early should stop. NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_cancelled(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.is_cancelled())
    })
}

/// Writes the number of guards in flight to `*out_count`.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_in_flight(
    engine: *const Engine,
    out_count: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_count)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, e.core.in_flight()) };
        Ok(())
    })
}

/// Writes the exit code the process should end with to `*out_code`: 0 when everything
/// drained and every hook succeeded, the forced exit code otherwise.
/// SHUTDOWN_STATUS_NOT_DONE before Done.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_exit_code(
    engine: *const Engine,
    out_code: *mut c_int,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_code)?;
        let r = e.core.report().ok_or(ShutdownStatus::NOT_DONE)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, r.exit_code) };
        Ok(())
    })
}
