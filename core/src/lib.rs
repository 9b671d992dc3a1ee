//! # shutdown
//!
//! A graceful-shutdown engine: when SIGTERM arrives, stop being ready, stop admitting
//! new work, let the work in flight finish (within a deadline), run cleanup hooks, and
//! exit with a code and a report that say what happened. No request is dropped on a
//! deploy; a forced stop never exits 0.
//!
//! The phases are monotonic: `Running -> Draining -> Closing -> Done`.
//!
//! | phase | ready | admits guards | what happens |
//! |---|---|---|---|
//! | Running | yes | yes | normal service |
//! | Draining (announce) | no | yes | `drain_delay`: the balancer notices; late requests are served |
//! | Draining (quiesce) | no | no | in-flight guards finish, up to `drain_timeout` |
//! | Closing | no | no | cleanup hooks, ordered, each with a timeout, within `close_timeout` |
//! | Done | no | no | the [`Report`] is final |
//!
//! The engine is executor-agnostic (no tokio): [`Shutdown::run`] is an ordinary future
//! that works under smol, async-std, tokio or `futures::executor`, and threaded hosts
//! block in [`Shutdown::wait`]. A drain that starts with no driver drives itself on a
//! thread of its own (`shutdown-driver`), so its deadlines fire even if the host never
//! awaits `run()`; a host driver takes that role over. Threads this crate spawns:
//! that driver thread (only while a drain has no host driver), one thread per
//! blocking cleanup hook (and per async hook when no `run()` polls it), and the
//! signal thread of [`Shutdown::listen_signals`].
//!
//! ## With smol
//!
//! ```
//! use std::time::Duration;
//! use futures_lite::future;
//! use libshutdown::{HookOptions, Shutdown};
//!
//! let sd = Shutdown::builder()
//!     .drain_timeout(Duration::from_secs(10))
//!     .close_timeout(Duration::from_secs(5))
//!     .build()?;
//! sd.on_close("db pool", HookOptions::new(), || Ok(()))?;
//! // sd.listen_signals()?;   // in a real server: SIGTERM and SIGINT trigger
//! let report = smol::block_on(async {
//!     let server = async {
//!         let guard = sd.guard().expect("admission is open"); // one per request
//!         sd.trigger("deploy"); // what SIGTERM does
//!         drop(guard); // the request finishes
//!         sd.quiescing().await; // stop accepting here
//!     };
//!     let (report, ()) = future::zip(sd.run(), server).await;
//!     report
//! });
//! assert_eq!(report.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## With async-std
//!
//! ```
//! # use libshutdown::Shutdown;
//! let sd = Shutdown::builder().build()?;
//! let driver = async_std::task::spawn({
//!     let sd = sd.clone();
//!     async move { sd.run().await }
//! });
//! async_std::task::block_on(async {
//!     let guard = sd.guard().unwrap();
//!     sd.trigger("deploy");
//!     drop(guard);
//!     assert_eq!(driver.await.exit_code, 0);
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## With tokio
//!
//! The crate does not depend on tokio; `run()` is polled by tokio like any future, and
//! async hooks are polled inside it, so they may use tokio's timers and I/O.
//!
//! ```
//! # use std::time::Duration;
//! # use libshutdown::{HookOptions, Shutdown};
//! let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! let sd = Shutdown::builder().build()?;
//! sd.on_close_async("flush", HookOptions::new(), || async {
//!     tokio::time::sleep(Duration::from_millis(1)).await;
//!     Ok(())
//! })?;
//! let report = rt.block_on(async {
//!     let driver = tokio::spawn({
//!         let sd = sd.clone();
//!         async move { sd.run().await }
//!     });
//!     tokio::task::yield_now().await;
//!     sd.trigger("deploy");
//!     driver.await.unwrap()
//! });
//! assert_eq!(report.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## With plain threads
//!
//! ```
//! # use libshutdown::Shutdown;
//! let sd = Shutdown::builder().build()?;
//! let worker = {
//!     let guard = sd.guard().unwrap(); // taken by the accepting thread
//!     std::thread::spawn(move || drop(guard)) // the request finishes on its thread
//! };
//! sd.trigger("deploy");
//! let report = sd.wait(); // the engine drives itself: no driver to start
//! worker.join().unwrap();
//! assert_eq!(report.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

#[cfg(feature = "loom")]
pub mod admission;
#[cfg(not(feature = "loom"))]
mod admission;
mod clock;
mod config;
mod connection;
mod delivery;
#[cfg(feature = "loom")]
pub mod driver;
#[cfg(not(feature = "loom"))]
mod driver;
mod event;
mod hooks;
mod kinds;
mod long_lived;
pub mod machine;
mod options;
mod preset;
mod progress;
pub mod raw;
mod report;
mod shutdown;
mod signals;
pub mod systemd;

pub use config::{
    Builder, CloseStrategy, Config, ConfigError, Escalation, DEFAULT_ANNOUNCE_SETTLE,
    DEFAULT_CONNECTION_GRACE, DEFAULT_SAME_SIGNAL_WINDOW, MAX_TIMEOUT,
};
pub use connection::{Connection, ConnectionId, ListenerHold, Request, CONNECTION_KIND};
pub use event::Event;
pub use hooks::{BoxError, HookDone, HookOptions, HookResult};
pub use kinds::{Kind, KindError, MAX_KINDS};
pub use long_lived::LongLived;
pub use machine::{HookError, Phase};
pub use options::{option_spec, OptionKind, OptionSpec, OptionValue, OPTIONS};
pub use preset::{preset, Preset, PRESETS};
pub use progress::Progress;
pub use report::{
    signal_name, ForceCause, HookOutcome, HookReport, InFlight, Milestone, Reason, Report,
    Transition,
};
pub use shutdown::{Guard, NotManualClock, Shutdown};
pub use signals::{SignalListener, AFTER_DONE_GRACE};
pub use systemd::SYSTEMD_EXTEND_MARGIN;
