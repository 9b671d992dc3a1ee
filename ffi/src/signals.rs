//! The signal listener.

use crate::engine::*;
use crate::gate::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, status};

/// Installs handlers for the configured signals (default SIGTERM and SIGINT). Each
/// signal is a trigger: the first starts the drain, a repeat escalates as configured,
/// and the terminating repeat (default: the third) prints the report to stderr and
/// exits the process with the forced exit code. Call it early, before the host starts
/// its threads. Calling it again does nothing. Hosts that own their signals call
/// shutdown_trigger() instead.
///
/// Thread: any. Callbacks: the triggers run on the library's "shutdown-signals" thread,
/// which therefore runs the milestone and cancellation callbacks they cause.
#[no_mangle]
pub unsafe extern "C" fn shutdown_listen_signals(engine: *const Engine) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let mut slot = lock(&e.signals);
        if slot.is_none() {
            *slot = Some(
                e.core
                    .listen_signals()
                    .map_err(|_| ShutdownStatus::IO_ERROR)?,
            );
        }
        Ok(())
    })
}
