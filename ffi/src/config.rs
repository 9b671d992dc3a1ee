//! The configuration struct, its defaults (the core's) and its validation (the core's).

use std::ffi::c_char;
use std::time::Duration;

use shutdown_core::{Builder, CloseStrategy, Escalation, Shutdown};

use crate::status::ShutdownStatus;
use crate::util::{boundary, status, write_message};

/// How shutdown_should_close() advises keep-alive connections to close.
/// cbindgen:rename-all=prefix:SHUTDOWN_CLOSE_STRATEGY_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownCloseStrategy {
    /// Close every keep-alive connection after its current response, from the first
    /// moment of the drain.
    IMMEDIATE = 0,
    /// The probability of closing ramps from 0 to 1 across the announce window (as
    /// Envoy's drain manager does); 1 once admission closes.
    GRADUAL = 1,
}

/// How many signals a configuration can list.
pub const SHUTDOWN_MAX_SIGNALS: usize = 8;

/// An engine's configuration. Start from shutdown_config_default() and change fields;
/// shutdown_new() validates it (shutdown_config_validate() says what is wrong).
/// Durations are in milliseconds.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// The announce window (default 0): readiness fails, admission stays open.
    pub drain_delay_ms: u64,
    /// End the announce window after this many readiness probes answered "not ready"
    /// (shutdown_readiness_probed()); 0: off (default). Needs drain_delay_ms > 0.
    pub announce_probes: u32,
    /// How long admission stays open after the last of `announce_probes` (default
    /// 100): requests the balancer dispatched before it processed that answer are
    /// still admitted.
    pub announce_settle_ms: u64,
    /// How long in-flight work may take once admission closes (default 20000).
    pub drain_timeout_ms: u64,
    /// The budget of all cleanup hooks together (default 5000).
    pub close_timeout_ms: u64,
    /// The orchestrator's budget (default 30000); the phase budgets must fit in it.
    /// 0: no check.
    pub grace_period_ms: u64,
    /// The trigger number (counting the first) that skips the rest of the drain
    /// (default 2); 0: never.
    pub force_at: u32,
    /// The trigger number that ends everything at once (default 3); 0: never.
    pub terminate_at: u32,
    /// The exit code when anything was forced, aborted or failed (default 1, 1..=255).
    pub forced_exit_code: i32,
    /// A shutdown_close_strategy_t (default SHUTDOWN_CLOSE_STRATEGY_IMMEDIATE).
    pub close_strategy: u32,
    /// The signals shutdown_listen_signals() handles: the first `signals_len` entries
    /// (default SIGTERM and SIGINT).
    pub signals: [i32; SHUTDOWN_MAX_SIGNALS],
    /// How many entries of `signals` are used (at most SHUTDOWN_MAX_SIGNALS).
    pub signals_len: u32,
    /// Run on a virtual clock moved only by shutdown_advance() (tests, simulations):
    /// no driver thread; deadlines and hooks run on the thread that advances (default
    /// false).
    pub manual_clock: bool,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn nonzero(v: u32) -> Option<u32> {
    (v != 0).then_some(v)
}

/// The defaults, read from the core.
pub(crate) fn default_config() -> ShutdownConfig {
    let c = Shutdown::builder()
        .config()
        .expect("the core's defaults are valid");
    let mut signals = [0; SHUTDOWN_MAX_SIGNALS];
    let n = c.signals().len().min(SHUTDOWN_MAX_SIGNALS);
    signals[..n].copy_from_slice(&c.signals()[..n]);
    ShutdownConfig {
        drain_delay_ms: to_ms(c.drain_delay()),
        announce_probes: c.announce_probes().unwrap_or(0),
        announce_settle_ms: to_ms(c.announce_settle()),
        drain_timeout_ms: to_ms(c.drain_timeout()),
        close_timeout_ms: to_ms(c.close_timeout()),
        grace_period_ms: c.grace_period().map_or(0, to_ms),
        force_at: c.escalation().force_at.unwrap_or(0),
        terminate_at: c.escalation().terminate_at.unwrap_or(0),
        forced_exit_code: c.forced_exit_code(),
        close_strategy: match c.close_strategy() {
            CloseStrategy::Immediate => ShutdownCloseStrategy::IMMEDIATE as u32,
            CloseStrategy::Gradual => ShutdownCloseStrategy::GRADUAL as u32,
        },
        signals,
        signals_len: n as u32,
        manual_clock: false,
    }
}

/// The core builder for a C configuration, or the message of what is wrong with it.
pub(crate) fn builder(c: &ShutdownConfig) -> Result<Builder, String> {
    let strategy = match c.close_strategy {
        0 => CloseStrategy::Immediate,
        1 => CloseStrategy::Gradual,
        other => {
            return Err(format!(
                "invalid shutdown configuration: close_strategy: unknown value {other}"
            ))
        }
    };
    let n = c.signals_len as usize;
    if n > SHUTDOWN_MAX_SIGNALS {
        return Err(format!(
            "invalid shutdown configuration: signals: signals_len {n} is more than {SHUTDOWN_MAX_SIGNALS}"
        ));
    }
    let mut b = Shutdown::builder()
        .drain_delay(ms(c.drain_delay_ms))
        .drain_timeout(ms(c.drain_timeout_ms))
        .announce_settle(ms(c.announce_settle_ms))
        .close_timeout(ms(c.close_timeout_ms))
        .grace_period((c.grace_period_ms != 0).then(|| ms(c.grace_period_ms)))
        .escalation(Escalation {
            force_at: nonzero(c.force_at),
            terminate_at: nonzero(c.terminate_at),
        })
        .forced_exit_code(c.forced_exit_code)
        .close_strategy(strategy)
        .signals(&c.signals[..n]);
    if c.announce_probes != 0 {
        b = b.announce_probes(c.announce_probes);
    }
    if c.manual_clock {
        b = b.manual_clock();
    }
    // The core validates everything else.
    b.config().map_err(|e| e.to_string())?;
    Ok(b)
}

/// The defaults: no announce window, 20 s to drain, 5 s for cleanup hooks, a 30 s grace
/// period, escalation at the second and third trigger, forced exit code 1, immediate
/// keep-alive advice, SIGTERM and SIGINT, the system clock.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub extern "C" fn shutdown_config_default() -> ShutdownConfig {
    boundary(
        ShutdownConfig {
            drain_delay_ms: 0,
            announce_probes: 0,
            announce_settle_ms: 100,
            drain_timeout_ms: 20_000,
            close_timeout_ms: 5_000,
            grace_period_ms: 30_000,
            force_at: 2,
            terminate_at: 3,
            forced_exit_code: 1,
            close_strategy: 0,
            signals: [0; SHUTDOWN_MAX_SIGNALS],
            signals_len: 0,
            manual_clock: false,
        },
        default_config,
    )
}

/// Checks a configuration as shutdown_new() would. On SHUTDOWN_STATUS_INVALID_CONFIG,
/// writes the reason (naming the field, e.g. "invalid shutdown configuration:
/// grace_period: ...") into `message`, NUL-terminated and truncated to `message_len`
/// bytes, unless `message` is NULL or `message_len` is 0.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_validate(
    config: *const ShutdownConfig,
    message: *mut c_char,
    message_len: usize,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a valid config (the C contract).
        let c = unsafe { config.as_ref() }.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        match builder(c) {
            Ok(_) => Ok(()),
            Err(e) => {
                // SAFETY: a buffer of `message_len` bytes, or NULL (the C contract).
                unsafe { write_message(message, message_len, &e) };
                Err(ShutdownStatus::INVALID_CONFIG)
            }
        }
    })
}
