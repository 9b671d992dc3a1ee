//! Cleanup hooks: blocking C functions, and deferred ones completed later through a
//! `shutdown_hook_done_t`.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::time::{Duration, Instant};

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
/// started; shutdown_free() waits for it while it runs, up to its timeout.
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
        // shutdown_free() waits for this hook while it runs, but no longer than the
        // core lets it run (its own timeout or close_timeout, perhaps less): a hook
        // that hangs is abandoned, and must not hang the host in shutdown_free().
        let limit = match timeout_ms {
            0 => e.core.config().close_timeout(),
            ms => Duration::from_millis(ms),
        };
        e.core
            .on_close(name, options(order, timeout_ms), move || {
                let deadline = Instant::now() + limit;
                // The gate decides and counts in one step: a shutdown_free() that has
                // begun either waits for this call into C or keeps it from starting.
                shared
                    .gate
                    .call_until(deadline, || {
                        #[cfg(test)]
                        let _seam = seam::reached(ud);
                        run_blocking(cb, ud)
                    })
                    .unwrap_or_else(|| Err("the engine was freed before this hook started".into()))
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

/// A point in a blocking hook's wrapper, after the engine decided to start the hook
/// and just before the call into C, where a test can hold the hook thread: the race
/// between that decision and shutdown_free() becomes a fixed sequence.
#[cfg(test)]
mod seam {
    use std::sync::{Condvar, Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    use crate::util::UserData;

    #[derive(Default)]
    struct Hold {
        user_data: usize,
        arrived: bool,
        released: bool,
        left: bool,
    }

    // Keyed by user_data: tests run in parallel threads of one process (cargo test).
    static HOLDS: Mutex<Vec<Hold>> = Mutex::new(Vec::new());
    static CHANGED: Condvar = Condvar::new();

    fn holds() -> MutexGuard<'static, Vec<Hold>> {
        HOLDS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn find(v: &mut [Hold], ud: usize) -> Option<&mut Hold> {
        v.iter_mut().find(|h| h.user_data == ud)
    }

    /// Hook threads with this user_data stop at the seam until [`release`].
    pub(crate) fn hold(ud: *mut std::ffi::c_void) {
        holds().push(Hold {
            user_data: ud as usize,
            ..Hold::default()
        });
    }

    pub(crate) fn release(ud: *mut std::ffi::c_void) {
        if let Some(h) = find(&mut holds(), ud as usize) {
            h.released = true;
        }
        CHANGED.notify_all();
    }

    /// Waits (at most `limit`) until `pred` holds for this user_data's hold.
    fn wait_for(ud: *mut std::ffi::c_void, limit: Duration, pred: fn(&Hold) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut v = holds();
        loop {
            if find(&mut v, ud as usize).is_some_and(|h| pred(h)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            v = CHANGED
                .wait_timeout(v, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Whether a hook thread reached the seam in time.
    pub(crate) fn arrived(ud: *mut std::ffi::c_void, limit: Duration) -> bool {
        wait_for(ud, limit, |h| h.arrived)
    }

    /// Whether the hook's wrapper returned in time (after calling C or not).
    pub(crate) fn left(ud: *mut std::ffi::c_void, limit: Duration) -> bool {
        wait_for(ud, limit, |h| h.left)
    }

    /// Marks the end of the wrapper when dropped.
    pub(crate) struct Passed(usize);

    impl Drop for Passed {
        fn drop(&mut self) {
            if let Some(h) = find(&mut holds(), self.0) {
                h.left = true;
            }
            CHANGED.notify_all();
        }
    }

    pub(crate) fn reached(ud: UserData) -> Passed {
        let key = ud.ptr() as usize;
        let mut v = holds();
        if let Some(h) = find(&mut v, key) {
            h.arrived = true;
            CHANGED.notify_all();
            while !find(&mut v, key).is_some_and(|h| h.released) {
                v = CHANGED.wait(v).unwrap_or_else(|e| e.into_inner());
            }
        }
        Passed(key)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_int, c_void};
    use std::ptr;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::{seam, shutdown_on_close};
    use crate::{
        shutdown_config_builder_free, shutdown_config_builder_new,
        shutdown_config_builder_set_close_timeout_ms, shutdown_config_builder_set_grace_period_ms,
        shutdown_free, shutdown_new, shutdown_trigger,
    };
    use crate::{Engine, ShutdownStatus};

    /// What the C side of a hook would own; leaked, so that a late call is observed
    /// instead of being a use-after-free in the test itself.
    #[derive(Default)]
    struct Probe {
        freed: AtomicBool,
        calls: AtomicUsize,
        calls_after_free: AtomicUsize,
    }

    unsafe extern "C" fn probe_hook(ud: *mut c_void, _msg: *mut c_char, _len: usize) -> c_int {
        // SAFETY: the leaked Probe registered with this hook.
        let p = unsafe { &*(ud as *const Probe) };
        p.calls.fetch_add(1, Ordering::SeqCst);
        if p.freed.load(Ordering::SeqCst) {
            p.calls_after_free.fetch_add(1, Ordering::SeqCst);
        }
        0
    }

    /// A system-clock engine with one blocking hook held at the seam, triggered: the
    /// hook thread is past the engine's decision to start the hook, not yet in C.
    fn engine_with_held_hook(timeout_ms: u64) -> (*mut Engine, &'static Probe, *mut c_void) {
        let probe: &'static Probe = Box::leak(Box::default());
        let ud = probe as *const Probe as *mut c_void;
        seam::hold(ud);
        let mut engine = ptr::null_mut();
        unsafe {
            let mut cfg = ptr::null_mut();
            assert_eq!(shutdown_config_builder_new(&mut cfg), ShutdownStatus::OK);
            // A hook with no timeout of its own may take all of close_timeout: make that
            // longer than any stall of a busy machine (and drop the grace period check).
            assert_eq!(
                shutdown_config_builder_set_close_timeout_ms(cfg, 60_000),
                ShutdownStatus::OK
            );
            assert_eq!(
                shutdown_config_builder_set_grace_period_ms(cfg, 0),
                ShutdownStatus::OK
            );
            assert_eq!(shutdown_new(cfg, &mut engine), ShutdownStatus::OK);
            shutdown_config_builder_free(cfg);
            let name = c"held".as_ptr();
            let st = shutdown_on_close(engine, name, 0, timeout_ms, Some(probe_hook), ud);
            assert_eq!(st, ShutdownStatus::OK);
            // No guard in flight: the drain ends at once and the hook thread starts.
            assert_eq!(
                shutdown_trigger(engine, 0, c"test".as_ptr()),
                ShutdownStatus::OK
            );
        }
        assert!(
            seam::arrived(ud, Duration::from_secs(10)),
            "the hook thread never reached the seam"
        );
        (engine, probe, ud)
    }

    /// Frees on another thread; the receiver gets the moment shutdown_free() returned.
    fn free_elsewhere(engine: *mut Engine, probe: &'static Probe) -> mpsc::Receiver<Instant> {
        let engine = engine as usize;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: a live engine, freed once, by this thread only.
            unsafe { shutdown_free(engine as *mut Engine) };
            probe.freed.store(true, Ordering::SeqCst);
            let _ = tx.send(Instant::now());
        });
        rx
    }

    /// The header's promise: a hook never runs once shutdown_free() has started.
    #[test]
    fn a_blocking_hook_never_calls_c_after_shutdown_free_returned() {
        let (engine, probe, ud) = engine_with_held_hook(0);
        let freed = free_elsewhere(engine, probe);
        // A free that returns now, with the hook thread about to call C, is the bug.
        let returned_early = freed.recv_timeout(Duration::from_millis(500)).is_ok();
        seam::release(ud);
        assert!(
            seam::left(ud, Duration::from_secs(10)),
            "the hook never finished"
        );
        if !returned_early {
            assert!(
                freed.recv_timeout(Duration::from_secs(10)).is_ok(),
                "shutdown_free() did not return once the hook had"
            );
        }
        assert_eq!(
            probe.calls_after_free.load(Ordering::SeqCst),
            0,
            "the C hook ran after shutdown_free() returned (calls: {})",
            probe.calls.load(Ordering::SeqCst)
        );
    }

    /// shutdown_free() waits for a hook that runs, but no longer than the hook's own
    /// timeout: the core abandons a hook that overruns, and so does shutdown_free(),
    /// or a hung hook would hang the host.
    #[test]
    fn shutdown_free_waits_for_a_hung_hook_no_longer_than_its_timeout() {
        let (engine, probe, ud) = engine_with_held_hook(300);
        let freed = free_elsewhere(engine, probe);
        let returned = freed.recv_timeout(Duration::from_secs(30));
        seam::release(ud);
        assert!(
            returned.is_ok(),
            "shutdown_free() still waits for a hung hook past its 300 ms timeout"
        );
        assert!(
            seam::left(ud, Duration::from_secs(10)),
            "the hook never finished"
        );
    }
}
