//! Connections and their requests: the quiesce-boundary rule of the core, for C hosts.
//!
//! A host registers each accepted connection (shutdown_connection_new()), takes each
//! request's guard from it (shutdown_connection_request()), asks the request whether
//! its response may keep the connection open (shutdown_request_keep_alive()) and
//! finishes it (shutdown_request_finish()). The core decides which idle connections
//! the host must close and says so through shutdown_on_dismissed(); this module only
//! translates handles and ownership.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use shutdown_core::{Connection, Kind, Request, Shutdown};

use crate::engine::Engine;
use crate::guard::{put_guard, GuardHandle};
use crate::kinds::KindIds;
use crate::status::ShutdownStatus;
use crate::util::{arg, arg_mut, boundary, c_str, out, put, status, UserData, MAX_NAME};

/// An accepted connection, registered with its engine by shutdown_connection_new().
/// Freed by shutdown_connection_free() when the host closes it; it may outlive its
/// engine's shutdown_free().
pub struct ConnectionHandle {
    conn: Connection,
    core: Shutdown,
    kinds: Arc<KindIds>,
}

/// One request on a connection, holding its guard: the drain waits for it. Handed
/// out by shutdown_connection_request(), freed by shutdown_request_finish() or
/// shutdown_request_upgrade().
pub struct RequestHandle {
    req: Request,
    core: Shutdown,
    kinds: Arc<KindIds>,
}

/// Called with the ids (shutdown_connection_id()) of connections the engine asks the
/// host to close, `len` of them (never 0), and the `user_data` given at registration.
/// `ids` is valid only during the call.
pub type ShutdownDismissedFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, ids: *const u64, len: usize)>;

/// Registers a connection the host just accepted and writes its handle to
/// `*out_conn`. Once the drain is over the connection comes back already dismissed
/// (shutdown_connection_is_dismissed(); the dismissal callbacks are not called for
/// it): close it. Free it with shutdown_connection_free() when the host closes the
/// connection.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_new(
    engine: *const Engine,
    out_conn: *mut *mut ConnectionHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_conn)?;
        let handle = Box::new(ConnectionHandle {
            conn: e.core.connection(),
            core: e.core.clone(),
            kinds: e.kinds.clone(),
        });
        // SAFETY: checked for NULL.
        unsafe { put(o, Box::into_raw(handle)) };
        Ok(())
    })
}

/// The host closed the connection: frees its handle. Requests still held on it stay
/// valid and must still be finished. NULL does nothing.
///
/// Thread: any, once per connection. Callbacks: closing the last connection the drain
/// waits for may end the drain: with a manual clock its milestone and cancellation
/// callbacks, the hooks it starts and the dismissal callbacks run on this thread;
/// otherwise only the dismissal callbacks may (the driver thread takes over).
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_free(conn: *mut ConnectionHandle) {
    boundary((), || {
        if !conn.is_null() {
            // SAFETY: a handle from shutdown_connection_new(), freed once (the C
            // contract).
            drop(unsafe { Box::from_raw(conn) });
        }
    })
}

/// Writes the connection's id to `*out_id`: the id shutdown_on_dismissed() reports it
/// by. Never reused by the engine, never 0.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_id(
    conn: *const ConnectionHandle,
    out_id: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let c = unsafe { arg(conn)? };
        let o = out(out_id)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, c.conn.id()) };
        Ok(())
    })
}

/// A request has begun to arrive on the connection (its first bytes were read, its
/// head is not complete). The drain waits for it; if the drain ends first, the report
/// counts it as aborted work of kind "connection". A host that only sees complete
/// requests may skip it. shutdown_connection_request() clears it.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_reading(
    conn: *const ConnectionHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let c = unsafe { arg(conn)? };
        c.conn.reading();
        Ok(())
    })
}

/// Writes to `*out_dismissed` whether the engine asked the host to close this
/// connection (it is idle and the drain no longer needs it, or the drain is over). A
/// host that finds a request arriving on a dismissed connection calls
/// shutdown_connection_reading() and serves that request instead.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_is_dismissed(
    conn: *const ConnectionHandle,
    out_dismissed: *mut bool,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let c = unsafe { arg(conn)? };
        let o = out(out_dismissed)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, c.conn.is_dismissed()) };
        Ok(())
    })
}

/// Hands out a request's handle, or refuses it.
fn hand_out(
    c: &ConnectionHandle,
    req: Option<Request>,
    o: *mut *mut RequestHandle,
) -> Result<(), ShutdownStatus> {
    let req = req.ok_or(ShutdownStatus::ADMISSION_CLOSED)?;
    let handle = Box::new(RequestHandle {
        req,
        core: c.core.clone(),
        kinds: c.kinds.clone(),
    });
    // SAFETY: `o` was checked for NULL by the caller.
    unsafe { put(o, Box::into_raw(handle)) };
    Ok(())
}

/// A request's head arrived on the connection: writes its handle (holding its guard)
/// to `*out_request`, or returns SHUTDOWN_STATUS_ADMISSION_CLOSED when it must be
/// refused (answer 503 with `Connection: close`). While admission is open it is
/// admitted as shutdown_guard_acquire() is; once admission has closed, a request on a
/// connection the drain still waits for is admitted too (and served with
/// `Connection: close`). Finish it with shutdown_request_finish().
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_request(
    conn: *const ConnectionHandle,
    out_request: *mut *mut RequestHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let c = unsafe { arg(conn)? };
        let o = out(out_request)?;
        hand_out(c, c.conn.request(), o)
    })
}

/// Like shutdown_connection_request(), the request's guard labelled with a kind id
/// from shutdown_kind() of the connection's engine (SHUTDOWN_STATUS_INVALID_ARGUMENT
/// for an unknown id).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_request_of(
    conn: *const ConnectionHandle,
    kind: u32,
    out_request: *mut *mut RequestHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let c = unsafe { arg(conn)? };
        let o = out(out_request)?;
        let kind = c.kinds.get(kind).ok_or(ShutdownStatus::INVALID_ARGUMENT)?;
        hand_out(c, c.conn.request_of(kind), o)
    })
}

/// Like shutdown_connection_request(), labelled with a kind by name (1 to 64 bytes of
/// UTF-8; shutdown_kind() then shutdown_connection_request_of(); prefer those on a
/// hot path).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_connection_request_kind(
    conn: *const ConnectionHandle,
    kind_name: *const c_char,
    out_request: *mut *mut RequestHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let c = unsafe { arg(conn)? };
        let name = unsafe { c_str(kind_name, MAX_NAME)? };
        let o = out(out_request)?;
        let kind = c.kinds.by_name(&c.core, name)?;
        hand_out(c, c.conn.request_of(kind), o)
    })
}

/// Writes to `*out_keep_alive` whether the response may keep the connection open:
/// false means answer with `Connection: close` (HTTP/2: GOAWAY). Decided at the first
/// call (ask when writing the response head); later calls give the same answer, and
/// shutdown_request_finish() does what it said.
///
/// Thread: any, one at a time per request. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_request_keep_alive(
    request: *mut RequestHandle,
    out_keep_alive: *mut bool,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle not used by another thread meanwhile (the C
        // contract).
        let r = unsafe { arg_mut(request)? };
        let o = out(out_keep_alive)?;
        let keep = r.req.keep_alive();
        // SAFETY: checked for NULL.
        unsafe { put(o, keep) };
        Ok(())
    })
}

/// The response was sent: finishes the request (its guard is released) and frees its
/// handle. Writes to `*out_keep_open` (unless NULL) whether the connection stays open:
/// false means close it now (its response said `Connection: close`), then call
/// shutdown_connection_free(). SHUTDOWN_STATUS_NULL_PARAMETER for a NULL `request`.
///
/// Thread: any, once per request. Callbacks: as shutdown_guard_release(); the
/// dismissal callbacks may run on this thread too.
#[no_mangle]
pub unsafe extern "C" fn shutdown_request_finish(
    request: *mut RequestHandle,
    out_keep_open: *mut bool,
) -> ShutdownStatus {
    status(|| {
        if request.is_null() {
            return Err(ShutdownStatus::NULL_PARAMETER);
        }
        // SAFETY: a handle from this library, finished once (the C contract).
        let r = unsafe { Box::from_raw(request) };
        let keep = r.req.finish();
        if !out_keep_open.is_null() {
            // SAFETY: checked for NULL; writable (the C contract).
            unsafe { put(out_keep_open, keep) };
        }
        Ok(())
    })
}

/// Writes to `*out_guard` a guard for work the request starts that may outlive its
/// response (a job it queues): a child of the request's guard, admitted even when the
/// request itself came after admission closed (a request of the quiesce boundary), and
/// labelled like the request. Release it with shutdown_guard_release(); the drain waits
/// for it. Take it before shutdown_request_finish().
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_request_child(
    request: *const RequestHandle,
    out_guard: *mut *mut GuardHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let r = unsafe { arg(request)? };
        let o = out(out_guard)?;
        let guard = r.req.child();
        put_guard(o, guard);
        Ok(())
    })
}

/// The connection leaves HTTP (a WebSocket upgrade, a CONNECT tunnel): finishes the
/// request, frees its handle and writes to `*out_guard` a guard (release it with
/// shutdown_guard_release()) for the long-lived work that follows, labelled with
/// `kind_name` (1 to 64 bytes of UTF-8), or unlabelled when `kind_name` is NULL. The
/// connection no longer holds the drain; the guard does. On an error the request is
/// left as it was (still the caller's).
///
/// Thread: any, once per request. Callbacks: as shutdown_request_finish().
#[no_mangle]
pub unsafe extern "C" fn shutdown_request_upgrade(
    request: *mut RequestHandle,
    kind_name: *const c_char,
    out_guard: *mut *mut GuardHandle,
) -> ShutdownStatus {
    status(|| {
        if request.is_null() {
            return Err(ShutdownStatus::NULL_PARAMETER);
        }
        let o = out(out_guard)?;
        let kind: Option<Kind> = if kind_name.is_null() {
            None
        } else {
            // SAFETY: a live handle (checked for NULL) / a C string (the C contract).
            let r = unsafe { &*request };
            let name = unsafe { c_str(kind_name, MAX_NAME)? };
            Some(r.kinds.by_name(&r.core, name)?)
        };
        // SAFETY: a handle from this library, consumed once (the C contract).
        let r = unsafe { Box::from_raw(request) };
        let guard = r.req.upgrade(kind);
        put_guard(o, guard);
        Ok(())
    })
}

/// Calls `callback(user_data, ids, len)` with the ids of the connections the engine
/// dismisses from now on (asks the host to close), in batches, in order with the
/// milestones: close each that is idle; on one where a request is arriving, call
/// shutdown_connection_reading() and serve it. It must not block and must not call
/// shutdown_wait() or shutdown_free(); it may call the other functions. Like the
/// milestone callbacks, it never runs once shutdown_free() has returned (it waits for
/// one running on another thread).
///
/// Thread: any. Callbacks: `callback` runs on the thread that caused the dismissal:
/// the driver thread (a connection's grace passed, a deadline), the thread calling
/// shutdown_trigger(), shutdown_readiness_probed(), shutdown_advance(),
/// shutdown_connection_free(), shutdown_request_finish(), shutdown_request_upgrade(),
/// shutdown_guard_release() or shutdown_hook_done().
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_dismissed(
    engine: *const Engine,
    callback: ShutdownDismissedFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        // Through the engine's one subscription to the core's events (fanout.rs), in
        // order with the other notifications and behind the same callback gate.
        crate::gate::lock(&e.shared.dismissed_callbacks).push((cb, UserData(user_data)));
        Ok(())
    })
}
