//! Who turns time into events. The machine never sleeps; a driver waits for the next
//! deadline (or a wake-up) and calls it back:
//!
//! - [`Shutdown::run`](crate::Shutdown::run): async, on `async-io` timers and
//!   `event-listener` wake-ups, under any executor;
//! - [`Shutdown::run_blocking`](crate::Shutdown::run_blocking) and
//!   [`Shutdown::spawn_driver`](crate::Shutdown::spawn_driver): one thread, for threaded
//!   hosts and the C and Node layers.
//!
//! Exactly one driver runs: a second `run` only waits for Done. An engine on a
//! virtual clock needs none.

mod async_driver;
mod blocking;
mod waits;
