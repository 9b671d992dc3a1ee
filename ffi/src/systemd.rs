//! systemd's `Type=notify` protocol: the core sends the datagrams (see the core's
//! `systemd` module for what is sent when, and the extension rule); these two entry
//! points only translate.

use crate::engine::Engine;
use crate::status::ShutdownStatus;
use crate::util::{arg, out, put, status};

/// Speaks systemd's Type=notify protocol for this engine from now on: at the trigger
/// STOPPING=1, and on each milestone STATUS=<phase>, <n> in flight and
/// EXTEND_TIMEOUT_USEC=<the time left of the current phase's budget + 5 s> (also
/// when a cleanup hook starts or finishes), so a drain that is still within its budget
/// is not killed by the unit's TimeoutStopSec=. READY=1 is the host's to send with
/// shutdown_notify_ready() once it serves. Writes to `*out_enabled` whether systemd
/// listens (NOTIFY_SOCKET is set); without it nothing is registered or sent, and that
/// is not an error. The messages are registered once per engine: a second call, or
/// one on an engine built with shutdown_config_builder_set_systemd_notify() (the
/// "systemd" preset), adds nothing. Starts no thread: each datagram is sent, without waiting for systemd, on
/// the thread that caused the milestone. The engine's state stays allocated until
/// Done even after shutdown_free() (the notifications hold it), which under systemd
/// is the process's lifetime anyway.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_notify_systemd(
    engine: *const Engine,
    out_enabled: *mut bool,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_enabled)?;
        let enabled = e.core.notify_systemd();
        // SAFETY: checked for NULL.
        unsafe { put(o, enabled) };
        Ok(())
    })
}

/// Tells systemd the service is ready (READY=1 and STATUS=serving, <n> in flight):
/// call it once the listener is bound and accepting. Writes to `*out_sent` whether it
/// was sent: false without NOTIFY_SOCKET, and once the shutdown has started (a
/// stopping service is not ready). Returns SHUTDOWN_STATUS_IO_ERROR when NOTIFY_SOCKET
/// names a socket that cannot be reached.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_notify_ready(
    engine: *const Engine,
    out_sent: *mut bool,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_sent)?;
        let sent = e
            .core
            .notify_ready()
            .map_err(|_| ShutdownStatus::IO_ERROR)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, sent) };
        Ok(())
    })
}
