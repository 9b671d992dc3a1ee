//! The C ABI of libshutdown.
//!
//! This crate only translates types and ownership between C and the core engine
//! (`shutdown`): every behaviour (phases, deadlines, escalation, hooks, the report)
//! is the core's. It is built into `libshutdown.so` / `libshutdown.a` with cargo-c,
//! and cbindgen generates `include/shutdown.h` from it.
//!
//! Conventions (rustls-ffi's):
//!
//! - opaque handles (`shutdown_t`, `shutdown_config_builder_t`, `shutdown_guard_t`,
//!   `shutdown_report_t`, `shutdown_hook_done_t`, `shutdown_connection_t`,
//!   `shutdown_request_t`): what a `_new`/`_acquire`/`_request` call hands out, the
//!   matching `_free`/`_release`/`_done`/`_finish` call takes back; the
//!   `_free`/`_release` of NULL does nothing;
//! - no public struct is an input: the configuration is a builder with setters (see
//!   `config.rs` for why), so the ABI only ever grows by new functions;
//! - every fallible call returns a [`ShutdownStatus`]; out-parameters are written only
//!   on success;
//! - every pointer is checked for NULL; strings are NUL-terminated UTF-8 with a
//!   documented maximum length, and refused with a status otherwise;
//! - every entry point runs inside `catch_unwind`: a panic becomes
//!   `SHUTDOWN_STATUS_PANIC`, never an abort or an unwind into C.
//!
//! # Safety
//!
//! Every exported function is `unsafe` for Rust callers: the pointers it receives must
//! be NULL or valid for the access the function documents (handles must come from
//! this library and not be freed yet; out-parameters must point to writable memory).
//! That is the C contract; NULL is always checked.

#![allow(clippy::missing_safety_doc)]

mod clock;
mod config;
mod connection;
mod engine;
mod event;
mod fanout;
mod gate;
mod guard;
mod hooks;
mod kinds;
mod listener;
mod notify;
mod queries;
mod report;
mod signals;
mod status;
mod systemd;
mod triggers;
mod util;

pub use clock::*;
pub use config::*;
pub use connection::*;
pub use engine::*;
pub use event::*;
pub use fanout::*;
pub use guard::*;
pub use hooks::*;
pub use kinds::*;
pub use listener::*;
pub use notify::*;
pub use queries::*;
pub use report::*;
pub use signals::*;
pub use status::*;
pub use systemd::*;
pub use triggers::*;
