//! Listener holds: when the host stops listening.
//!
//! The host closes its listening sockets when the engine says *unlisten*
//! ([`Event::Unlisten`](crate::Event::Unlisten), [`Shutdown::unlisten`]): when
//! admission closes, or later while a [`ListenerHold`] is taken, and at the latest
//! when the drain ends. A client connecting after admission closed is served while
//! work is in flight (the quiesce boundary), so a hold is for long-lived work whose
//! clients hear that it must end only on a new connection: a long-polling transport
//! (Socket.io's, for one) delivers its close on the client's next poll, which a closed
//! listener would refuse.

use crate::shutdown::Shutdown;

/// Keeps the host's listening sockets open after admission closes, until dropped (see
/// [`Shutdown::hold_listener`]). The drain's end releases what every hold waited for.
#[must_use = "dropping a ListenerHold releases it at once"]
pub struct ListenerHold {
    sd: Shutdown,
}

impl ListenerHold {
    pub(crate) fn new(sd: Shutdown) -> Self {
        ListenerHold { sd }
    }
}

impl std::fmt::Debug for ListenerHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerHold")
            .field("listening", &self.sd.should_listen())
            .finish()
    }
}

impl Drop for ListenerHold {
    fn drop(&mut self) {
        let out = self.sd.inner().connections.release_listener();
        self.sd.apply_table(out);
    }
}
