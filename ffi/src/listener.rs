//! Listener holds: when a C host stops listening, as the core decides it.
//!
//! A host closes its listening sockets when shutdown_should_listen() turns false (the
//! event stream's code 13, unlisten; the milestone fd is readable then too). A
//! listener hold (shutdown_listener_hold()) keeps them open after admission closes, for
//! long-lived work whose clients hear that they must end only on a new connection.

use shutdown_core::ListenerHold;

use crate::engine::Engine;
use crate::status::ShutdownStatus;
use crate::util::{arg, boundary, out, put, status};

/// A listener hold (shutdown_listener_hold()): the host keeps listening after admission
/// closes until it is released by shutdown_listener_release(). It may outlive its
/// engine's shutdown_free().
pub struct ListenerHoldHandle {
    _hold: ListenerHold,
}

/// Takes a listener hold and writes it to `*out_hold`: the host's listening sockets
/// stay open after admission closes until every hold is released, or the drain ends
/// (whatever is held). For long-lived work whose clients are told to end only on a new
/// connection (a long-polling transport answers the client's next poll). Returns
/// SHUTDOWN_STATUS_TOO_LATE once the host has been told to stop listening (nothing is
/// held then).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_listener_hold(
    engine: *const Engine,
    out_hold: *mut *mut ListenerHoldHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_hold)?;
        let hold = e.core.hold_listener().ok_or(ShutdownStatus::TOO_LATE)?;
        let handle = Box::into_raw(Box::new(ListenerHoldHandle { _hold: hold }));
        // SAFETY: checked for NULL.
        unsafe { put(o, handle) };
        Ok(())
    })
}

/// Releases a listener hold and frees it: the last one, once admission has closed,
/// tells the host to stop listening. NULL does nothing.
///
/// Thread: any, once per hold. Callbacks: the event callbacks of the unlisten event
/// (code 13) may run on this thread.
#[no_mangle]
pub unsafe extern "C" fn shutdown_listener_release(hold: *mut ListenerHoldHandle) {
    boundary((), || {
        if !hold.is_null() {
            // SAFETY: a handle from shutdown_listener_hold(), released once (the C
            // contract).
            drop(unsafe { Box::from_raw(hold) });
        }
    })
}

/// Whether the host should keep its listening sockets open: true until admission
/// closes with no listener hold taken, the last hold is released after that, or the
/// drain ends. When it turns false, close them (after accepting what the backlog
/// holds: those clients connected before). NULL gives false.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_should_listen(engine: *const Engine) -> bool {
    boundary(false, || {
        // SAFETY: NULL or a live handle (the C contract).
        unsafe { engine.as_ref() }.is_some_and(|e| e.core.should_listen())
    })
}
