//! Who turns time into events. The machine never sleeps; a driver waits for the next
//! deadline (or a wake-up) and calls it back:
//!
//! - [`Shutdown::run`](crate::Shutdown::run): async, on `async-io` timers and
//!   `event-listener` wake-ups, under any executor;
//! - [`Shutdown::run_blocking`](crate::Shutdown::run_blocking) and
//!   [`Shutdown::spawn_driver`](crate::Shutdown::spawn_driver): one thread, for threaded
//!   hosts and the C and Node layers.
//!
//! Exactly one driver ticks at a time: it holds the driver role ([`role`]). A second
//! host driver waits, and drives if the first ends early. A drain that starts with no
//! driver, or whose driver ends before Done, gets the engine's own thread
//! ([`claim`]), which a host driver takes over. An engine on a virtual clock needs
//! none.

mod async_driver;
mod blocking;
pub(crate) mod claim;
pub(crate) mod condition;
#[cfg(feature = "loom")]
pub mod role;
#[cfg(not(feature = "loom"))]
pub(crate) mod role;
mod waits;
