//! Example servers for the `shutdown` engine, and the code they share.
//!
//! - [`cli`]: flags and environment variables;
//! - [`app`]: the request policy (readiness, guards, keep-alive advice, request log,
//!   cleanup hook, exit), independent of executor and HTTP stack;
//! - [`hyper_service`]: the hyper 1 connection server used under smol, async-std and tokio;
//! - [`smol_server`]: the smol accept loop (the `smol-server` binary and the demo).

pub mod app;
pub mod cli;
pub mod hyper_service;
pub mod smol_server;
