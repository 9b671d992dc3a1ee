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
//! The engine is executor-agnostic (no tokio): [`Shutdown::run`] works under smol,
//! async-std, tokio or `futures::executor`, and [`Shutdown::spawn_driver`] drives it
//! from a thread for blocking hosts.
//!
//! ```
//! use std::time::Duration;
//! use libshutdown::{HookOptions, Shutdown};
//!
//! # futures_lite::future::block_on(async {
//! let sd = Shutdown::builder()
//!     .drain_timeout(Duration::from_secs(10))
//!     .close_timeout(Duration::from_secs(5))
//!     .build()?;
//! sd.on_close("db pool", HookOptions::new(), || Ok(()))?;
//! // sd.listen_signals()?;   // in a real server
//!
//! // Per request:
//! if let Some(guard) = sd.guard() {
//!     // ... serve, then:
//!     drop(guard);
//! }
//!
//! sd.trigger("deploy"); // what SIGTERM does
//! let report = sd.run().await;
//! assert_eq!(report.exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]

#[cfg(feature = "loom")]
pub mod admission;
#[cfg(not(feature = "loom"))]
mod admission;
mod clock;
mod config;
#[cfg(feature = "loom")]
pub mod driver;
#[cfg(not(feature = "loom"))]
mod driver;
mod hooks;
mod kinds;
pub mod machine;
mod report;
mod shutdown;
mod signals;

pub use config::{
    Builder, CloseStrategy, Config, ConfigError, Escalation, DEFAULT_ANNOUNCE_SETTLE, MAX_TIMEOUT,
};
pub use hooks::{BoxError, HookDone, HookOptions, HookResult};
pub use kinds::{Kind, KindError, MAX_KINDS};
pub use machine::{HookError, Phase};
pub use report::{
    signal_name, ForceCause, HookOutcome, HookReport, InFlight, Milestone, Reason, Report,
    Transition,
};
pub use shutdown::{Guard, NotManualClock, Shutdown, StopDriver};
pub use signals::{SignalListener, AFTER_DONE_GRACE};
