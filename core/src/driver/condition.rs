//! Waiting on a condition that an [`Event`] announces: listen, re-check, then sleep, so
//! a change between the first check and the listen cannot be missed. The one protocol
//! behind every future and blocking wait of the engine.

use std::time::Instant;

use event_listener::{Event, Listener};

/// Resolves once `holds(&owner)` is true; `event(&owner)` is notified whenever it may
/// have become so. `owner` is what the future keeps alive (an engine, a connection).
pub(crate) async fn until<T, E, C>(owner: T, event: E, holds: C)
where
    E: Fn(&T) -> &Event,
    C: Fn(&T) -> bool,
{
    loop {
        if holds(&owner) {
            return;
        }
        let listener = event(&owner).listen();
        if holds(&owner) {
            return;
        }
        listener.await;
    }
}

/// Blocks until `holds()` is true or `deadline` passes; whether it holds.
pub(crate) fn block_until(
    event: &Event,
    holds: impl Fn() -> bool,
    deadline: Option<Instant>,
) -> bool {
    loop {
        if holds() {
            return true;
        }
        let listener = event.listen();
        if holds() {
            return true;
        }
        match deadline {
            Some(d) => {
                if listener.wait_deadline(d).is_none() {
                    return holds();
                }
            }
            None => listener.wait(),
        }
    }
}
