//! Waits and the virtual clock.

use crate::engine::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, out, put, status};
use std::time::Duration;

/// Blocks until the shutdown is Done and every milestone callback for Done has
/// returned. Someone must trigger it; on a manual clock, another thread must advance
/// it.
///
/// Thread: any thread but those running this engine's callbacks. Callbacks: none on
/// this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_wait(engine: *const Engine) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.shared.wait_done(None);
        Ok(())
    })
}

/// Blocks like shutdown_wait() until the shutdown is Done (SHUTDOWN_STATUS_OK) or
/// `timeout_ms` of real time passed (SHUTDOWN_STATUS_TIMED_OUT). 0 only checks.
///
/// Thread: as shutdown_wait(). Callbacks: none on this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_wait_timeout(
    engine: *const Engine,
    timeout_ms: u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let deadline = std::time::Instant::now().checked_add(Duration::from_millis(timeout_ms));
        if e.shared.wait_done(deadline) {
            Ok(())
        } else {
            Err(ShutdownStatus::TIMED_OUT)
        }
    })
}

/// Moves a manual clock forward by `ms` milliseconds, applying every deadline on the
/// way at its exact instant. SHUTDOWN_STATUS_NOT_MANUAL_CLOCK unless the engine was
/// created with a manual clock (shutdown_config_builder_set_manual_clock()).
///
/// Thread: any (one at a time). Callbacks: every callback the deadlines cause runs on
/// this thread, blocking hooks included, before it returns.
#[no_mangle]
pub unsafe extern "C" fn shutdown_advance(engine: *const Engine, ms: u64) -> ShutdownStatus {
    // SAFETY: forwarded.
    unsafe { shutdown_advance_us(engine, ms.saturating_mul(1000)) }
}

/// shutdown_advance() in microseconds.
///
/// Thread: as shutdown_advance(). Callbacks: as shutdown_advance().
#[no_mangle]
pub unsafe extern "C" fn shutdown_advance_us(engine: *const Engine, us: u64) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        e.core
            .advance(Duration::from_micros(us))
            .map_err(|_| ShutdownStatus::NOT_MANUAL_CLOCK)
    })
}

/// Writes the time since the engine was created, on its clock (virtual or not), in
/// microseconds, to `*out_us`.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_elapsed_us(
    engine: *const Engine,
    out_us: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_us)?;
        let us = u64::try_from(e.core.elapsed().as_micros()).unwrap_or(u64::MAX);
        // SAFETY: checked for NULL.
        unsafe { put(o, us) };
        Ok(())
    })
}
