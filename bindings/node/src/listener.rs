//! Listener holds, as JavaScript takes them: when `attach()`'s listeners close is the
//! core's decision (its unlisten event, code 13); a hold delays it.

use napi_derive::napi;

use crate::NativeShutdown;

#[napi]
impl NativeShutdown {
    /// Takes a listener hold (the core keeps its unlisten until every hold is released,
    /// or the drain ends): a slot for `releaseListener`, or -1 once the core has said
    /// unlisten (nothing is held).
    #[napi(catch_unwind)]
    pub fn hold_listener(&self) -> i32 {
        match self.sd.hold_listener() {
            Some(h) => self.hot.holds.borrow_mut().store(h),
            None => -1,
        }
    }

    /// Releases the listener hold in `slot` (once; an unknown slot does nothing).
    /// Returns whether events are pending (the last hold's release may say unlisten).
    #[napi(catch_unwind)]
    pub fn release_listener(&self, slot: u32) -> bool {
        // Taken out first: dropping it queues the unlisten event.
        let hold = self.hot.holds.borrow_mut().take(slot);
        drop(hold);
        self.pending()
    }

    /// Whether the host should keep its listening sockets open (the core's
    /// `should_listen`).
    #[napi(getter, catch_unwind)]
    pub fn should_listen(&self) -> bool {
        self.sd.should_listen()
    }
}
