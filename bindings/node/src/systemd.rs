//! systemd's `Type=notify` protocol: the core's `notify_systemd` and `notify_ready`,
//! translated (what is sent when is the core's `systemd` module's).

use napi::Status;
use napi_derive::napi;

use crate::NativeShutdown;

#[napi]
impl NativeShutdown {
    /// Whether systemd listens (`NOTIFY_SOCKET`); from now on the milestones send
    /// STOPPING=1, STATUS and EXTEND_TIMEOUT_USEC.
    #[napi(catch_unwind)]
    pub fn notify_systemd(&self) -> bool {
        self.sd.notify_systemd()
    }

    /// READY=1: whether it was sent (not without `NOTIFY_SOCKET`, nor once stopping).
    #[napi(catch_unwind)]
    pub fn notify_ready(&self) -> napi::Result<bool> {
        self.sd
            .notify_ready()
            .map_err(|e| napi::Error::new(Status::GenericFailure, format!("systemd: {e}")))
    }
}
