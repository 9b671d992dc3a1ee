//! Cleanup hooks: blocking C functions, and deferred ones completed later through a
//! `shutdown_hook_done_t`.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::time::Duration;

use shutdown_core::{HookDone, HookError, HookOptions, HookResult};

use crate::engine::Engine;
use crate::status::ShutdownStatus;
use crate::util::{arg, c_str, status, UserData, MAX_NAME, MAX_TEXT};

/// The size of the buffer a blocking hook may write its failure message into.
pub const SHUTDOWN_HOOK_MESSAGE_LEN: usize = 1024;

/// A blocking cleanup hook. Returns 0 on success; on failure, returns non-zero and may
/// write a NUL-terminated message of at most `message_len` bytes (terminator included)
/// into `message` (it starts empty; an empty message reports the return value).
pub type ShutdownHookFn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, message: *mut c_char, message_len: usize) -> c_int,
>;

/// The start of a deferred cleanup hook: it must not block; it starts the work (on an
/// event loop, another thread) and returns. The work ends with exactly one
/// shutdown_hook_done(done, ...), from any thread.
pub type ShutdownDeferredHookFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, done: *mut HookDoneHandle)>;

/// The pending completion of a deferred hook: consumed by shutdown_hook_done().
pub struct HookDoneHandle {
    done: HookDone,
}

fn hook_error(e: HookError) -> ShutdownStatus {
    match e {
        HookError::TooLate => ShutdownStatus::TOO_LATE,
        HookError::BadTimeout(_) => ShutdownStatus::INVALID_ARGUMENT,
        HookError::BadName => ShutdownStatus::INVALID_NAME,
    }
}

fn options(order: i32, timeout_ms: u64) -> HookOptions {
    let opts = HookOptions::new().order(order);
    if timeout_ms == 0 {
        opts
    } else {
        opts.timeout(Duration::from_millis(timeout_ms))
    }
}

fn run_blocking(
    cb: unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int,
    ud: UserData,
) -> HookResult {
    let mut buf = vec![0 as c_char; SHUTDOWN_HOOK_MESSAGE_LEN];
    // SAFETY: a C callback with its own user_data and a buffer of the size it is told.
    let rc = unsafe { cb(ud.ptr(), buf.as_mut_ptr(), buf.len()) };
    if rc == 0 {
        return Ok(());
    }
    buf[SHUTDOWN_HOOK_MESSAGE_LEN - 1] = 0;
    // SAFETY: NUL-terminated within the buffer (the last byte was just set).
    let msg = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    if msg.is_empty() {
        Err(format!("hook returned {rc}").into())
    } else {
        Err(msg.into_owned().into())
    }
}

/// Registers a blocking cleanup hook named `name` (1 to 256 bytes of UTF-8): in
/// Closing, `callback(user_data, message, message_len)` runs. Hooks run in ascending
/// `order` groups; hooks of one order run concurrently. `timeout_ms` is this hook's own
/// limit (0: the whole close_timeout; more than close_timeout:
/// SHUTDOWN_STATUS_INVALID_ARGUMENT); a hook that overruns is abandoned (reported as
/// timed out, not stopped). SHUTDOWN_STATUS_TOO_LATE once hooks have started.
///
/// Thread: any. Callbacks: `callback` runs on a thread of its own
/// ("shutdown-hook-N"); with a manual clock, on the thread that starts its group
/// (shutdown_trigger(), shutdown_advance(), shutdown_hook_done(), the last
/// shutdown_guard_release()). It runs at most once, and never once shutdown_free() has
/// started.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_close(
    engine: *const Engine,
    name: *const c_char,
    order: i32,
    timeout_ms: u64,
    callback: ShutdownHookFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let name = unsafe { c_str(name, MAX_NAME)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        let ud = UserData(user_data);
        let shared = e.shared.clone();
        e.core
            .on_close(name, options(order, timeout_ms), move || {
                if !shared.gate.is_open() {
                    return Err("the engine was freed before this hook started".into());
                }
                run_blocking(cb, ud)
            })
            .map_err(hook_error)
    })
}

/// Registers a deferred cleanup hook (same `name`, `order` and `timeout_ms` rules as
/// shutdown_on_close()): in Closing, `start(user_data, done)` runs and must return at
/// once; the hook ends when shutdown_hook_done(done, ...) is called, or times out.
///
/// Thread: any. Callbacks: `start` runs on the thread that starts its group: the
/// driver thread, or the thread calling shutdown_trigger(), shutdown_hook_done(),
/// shutdown_advance() or (manual clock) the last shutdown_guard_release(), or a hook
/// thread. Never once shutdown_free() has started.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_close_deferred(
    engine: *const Engine,
    name: *const c_char,
    order: i32,
    timeout_ms: u64,
    start: ShutdownDeferredHookFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let name = unsafe { c_str(name, MAX_NAME)? };
        let cb = start.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        let ud = UserData(user_data);
        let shared = e.shared.clone();
        e.core
            .on_close_deferred(name, options(order, timeout_ms), move |done| {
                let handle = Box::into_raw(Box::new(HookDoneHandle { done }));
                // SAFETY: a C callback with its own user_data; it now owns `handle`.
                let started = shared.gate.call(|| unsafe { cb(ud.ptr(), handle) });
                if started.is_none() {
                    // Freed: dropping the completion records the hook as failed.
                    // SAFETY: `handle` was not handed to C.
                    drop(unsafe { Box::from_raw(handle) });
                }
            })
            .map_err(hook_error)
    })
}

/// Completes a deferred hook and frees `done`: `result` 0 is success; any other value
/// is a failure described by `message` (UTF-8, at most 4096 bytes; NULL reports the
/// value). A completion after the hook timed out is ignored (and still frees `done`).
/// On an error status (NULL `done`, a bad `message`) `done` is not consumed.
///
/// Thread: any, once per `done`. Callbacks: this may start the next group of hooks and
/// reach Closing's end: milestone and cancellation callbacks, deferred hooks' start
/// functions (and, with a manual clock, blocking hooks) run on this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_hook_done(
    done: *mut HookDoneHandle,
    result: c_int,
    message: *const c_char,
) -> ShutdownStatus {
    status(|| {
        if done.is_null() {
            return Err(ShutdownStatus::NULL_PARAMETER);
        }
        let msg = if message.is_null() {
            None
        } else {
            // SAFETY: a C string (the C contract).
            Some(unsafe { c_str(message, MAX_TEXT)? }.to_string())
        };
        // SAFETY: a completion handed out by this library, consumed once.
        let handle = unsafe { Box::from_raw(done) };
        let r: HookResult = if result == 0 {
            Ok(())
        } else {
            Err(msg
                .unwrap_or_else(|| format!("hook returned {result}"))
                .into())
        };
        handle.done.finish(r);
        Ok(())
    })
}
