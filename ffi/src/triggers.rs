//! Triggers: starting and escalating the shutdown, readiness probes, aborted work.

use crate::engine::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, c_str, status, MAX_NAME, MAX_TEXT};
use shutdown_core::Reason;
use std::ffi::{c_char, c_int};

/// Starts the shutdown (the first call) or escalates (later calls, as configured).
/// `kind` is a shutdown_reason_kind_t; `detail` (at most 4096 bytes, UTF-8) says more:
/// the signal name, "deploy", the error.
///
/// Thread: any. Callbacks: milestone and cancellation callbacks run on this thread
/// before it returns; so do the start functions of deferred hooks when the trigger
/// forces Closing (and, with a manual clock, blocking hooks).
#[no_mangle]
pub unsafe extern "C" fn shutdown_trigger(
    engine: *const Engine,
    kind: u32,
    detail: *const c_char,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let detail = unsafe { c_str(detail, MAX_TEXT)? }.to_string();
        let reason = match kind {
            0 => Reason::Manual(detail),
            1 => Reason::Signal(detail),
            2 => Reason::Fatal(detail),
            _ => return Err(ShutdownStatus::INVALID_ARGUMENT),
        };
        e.core.trigger(reason);
        Ok(())
    })
}

/// Like shutdown_trigger() with SHUTDOWN_REASON_KIND_SIGNAL and the signal's name
/// ("SIGTERM" for 15), for hosts that receive signals themselves (signalfd, libuv).
///
/// Thread: any. Callbacks: as shutdown_trigger().
#[no_mangle]
pub unsafe extern "C" fn shutdown_trigger_signal(
    engine: *const Engine,
    signum: c_int,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.core.trigger(Reason::signal(signum));
        Ok(())
    })
}

/// Reports a readiness probe answered "not ready" (the adaptive announce window:
/// after `announce_probes` of them, admission closes). Does nothing outside the
/// announce window.
///
/// Thread: any. Callbacks: when this closes admission, milestone callbacks run on
/// this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_readiness_probed(engine: *const Engine) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.core.readiness_probed();
        Ok(())
    })
}

/// Counts work the host cut outside any guard, such as a connection closed while its
/// request was still arriving: the report's `aborted` grows by `count` (and, with a
/// non-NULL `kind_name`, its count for that kind), and the exit code is not 0.
/// SHUTDOWN_STATUS_TOO_LATE once Done (the report is final; nothing is counted).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_record_aborted(
    engine: *const Engine,
    count: u64,
    kind_name: *const c_char,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / NULL or a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let kind = if kind_name.is_null() {
            None
        } else {
            let name = unsafe { c_str(kind_name, MAX_NAME)? };
            let id = e.intern(name)?;
            Some(e.kind_of(id).ok_or(ShutdownStatus::INVALID_ARGUMENT)?)
        };
        if e.core.record_aborted(count, kind) {
            Ok(())
        } else {
            Err(ShutdownStatus::TOO_LATE)
        }
    })
}
