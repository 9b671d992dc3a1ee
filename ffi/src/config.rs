//! The configuration builder: an opaque handle changed by setter functions.
//!
//! Why a builder and not a struct (not even a size-versioned one, the `struct_size`
//! first field of Win32 and a few C libraries): with a builder, the configuration's
//! layout is not part of the ABI. A new option is a new setter function, so adding one
//! changes no existing symbol and no existing type: a binary built against an older
//! header keeps working, unchanged, with a newer `libshutdown.so` of the same SONAME.
//! A public struct cannot grow that way (adding `announce_settle_ms` shifted every
//! later field under binaries built against the old header), and a size-versioned
//! struct only moves the problem: the library must keep every past layout forever,
//! callers must fill the size field right, and fields can still never be reordered,
//! retyped or removed. The builder also keeps the defaults in one place, the core's
//! `Builder` it starts from (the C layer copies none of them), and lets a setter
//! refuse a value at the call that passes it.
//!
//! What a setter checks is what C can get wrong about the value itself (NULL, an
//! unknown enum value, a signal list longer than [`SHUTDOWN_MAX_SIGNALS`]). What the
//! value means (zero or overlong timeouts, budgets that do not fit the grace period,
//! exit codes outside 1..=255, unhandleable signals) is the core's check, made when the
//! engine is built: fields depend on each other, so only the whole configuration can
//! be judged, and the core's `ConfigError` names the field.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use shutdown_core::{Builder, CloseStrategy, ConfigError, LongLived, OptionValue, Shutdown};

use crate::engine::ShutdownMilestone;
use crate::status::ShutdownStatus;
use crate::util::{arg, arg_mut, boundary, c_str, out, put, status, write_message, MAX_NAME};

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

/// The longest signal list shutdown_config_builder_set_signals() accepts: one entry
/// per signal number. A longer one is a length gone wrong, refused before it is read.
pub const SHUTDOWN_MAX_SIGNALS: usize = 64;

/// A buffer of this many bytes holds any field name shutdown_config_builder_validate()
/// writes.
pub const SHUTDOWN_CONFIG_FIELD_LEN: usize = 64;

/// An engine's configuration under construction. shutdown_config_builder_new() starts
/// it from the defaults; one setter per option changes it; shutdown_new() builds
/// engines from it (as many as wanted: it is copied, not consumed) and
/// shutdown_config_builder_free() frees it. The configuration's layout is private: new
/// options arrive as new setters, never as a change to an existing function.
pub struct ConfigBuilder {
    core: Builder,
    // Kept here because the core has no way to turn a manual clock off again.
    manual_clock: bool,
    /// The core's refusal of the environment (shutdown_config_builder_from_env()):
    /// the configuration is refused with it until the environment is read again.
    refused: Option<ConfigError>,
}

impl ConfigBuilder {
    /// The core builder this configuration describes (see [`validate`] for whether the
    /// core accepts it).
    fn to_core(&self) -> Builder {
        let b = self.core.clone();
        if self.manual_clock {
            b.manual_clock()
        } else {
            b
        }
    }

    pub(crate) fn manual_clock(&self) -> bool {
        self.manual_clock
    }

    /// Replaces the core builder by `f(core builder)`.
    fn update(&mut self, f: impl FnOnce(Builder) -> Builder) {
        self.core = f(std::mem::take(&mut self.core));
    }

    /// Sets one field of the core's options schema (the fields the core's builder
    /// takes only together with others: the escalation's).
    fn set_option(&mut self, name: &str, value: OptionValue) -> Result<(), ShutdownStatus> {
        let core = self.core.clone().set(name, value);
        self.core = core.map_err(|_| ShutdownStatus::INVALID_ARGUMENT)?;
        Ok(())
    }
}

/// A trigger number of C (0: never) as the schema's count.
fn trigger_number(v: u32) -> OptionValue {
    if v == 0 {
        OptionValue::Null
    } else {
        OptionValue::Number(f64::from(v))
    }
}

fn millis(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Runs a setter's body on the builder behind `builder`.
///
/// # Safety
/// `builder` is NULL or a live builder not used by another thread meanwhile.
unsafe fn set(
    builder: *mut ConfigBuilder,
    f: impl FnOnce(&mut ConfigBuilder) -> Result<(), ShutdownStatus>,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: the caller's contract, passed on.
        let b = unsafe { arg_mut(builder)? };
        f(b)
    })
}

/// Creates a configuration builder holding the defaults (no announce window, 20 s to
/// drain, 5 s for cleanup hooks, a 30 s grace period, escalation at the second and
/// third trigger, forced exit code 1, immediate keep-alive advice, SIGTERM and SIGINT,
/// the system clock) and writes it to `*out_builder`. Free it with
/// shutdown_config_builder_free().
///
/// A builder is not thread-safe: change it from one thread at a time; the functions
/// taking a const builder may run together.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_new(
    out_builder: *mut *mut ConfigBuilder,
) -> ShutdownStatus {
    status(|| {
        let o = out(out_builder)?;
        let b = Box::new(ConfigBuilder {
            core: Shutdown::builder(),
            manual_clock: false,
            refused: None,
        });
        // SAFETY: checked for NULL.
        unsafe { put(o, Box::into_raw(b)) };
        Ok(())
    })
}

/// Frees a builder. Engines built from it are not affected. NULL does nothing.
///
/// Thread: any, once. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_free(builder: *mut ConfigBuilder) {
    boundary((), || {
        if !builder.is_null() {
            // SAFETY: a builder from shutdown_config_builder_new(), freed once (the C
            // contract).
            drop(unsafe { Box::from_raw(builder) });
        }
    })
}

/// The announce window, in milliseconds (default 0): readiness fails, admission stays
/// open.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_drain_delay_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.drain_delay(millis(ms)));
            Ok(())
        })
    }
}

/// End the announce window after `probes` readiness probes answered "not ready"
/// (shutdown_readiness_probed()): the balancer's `fall` count. Off by default; it
/// needs a drain delay greater than zero as its upper bound, and at least 1.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_announce_probes(
    builder: *mut ConfigBuilder,
    probes: u32,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.announce_probes(probes));
            Ok(())
        })
    }
}

/// How long admission stays open after the last of the announce probes, in
/// milliseconds (default 100): requests the balancer dispatched before it processed
/// that answer are still admitted.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_announce_settle_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.announce_settle(millis(ms)));
            Ok(())
        })
    }
}

/// How long in-flight work may take once admission closes, in milliseconds (default
/// 20000; more than 0).
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_drain_timeout_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.drain_timeout(millis(ms)));
            Ok(())
        })
    }
}

/// The budget of all cleanup hooks together, in milliseconds (default 5000; more than
/// 0).
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_close_timeout_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.close_timeout(millis(ms)));
            Ok(())
        })
    }
}

/// The orchestrator's budget, in milliseconds (default 30000): the drain delay, drain
/// timeout and close timeout together must fit in it. 0: no check.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_grace_period_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.grace_period((ms != 0).then(|| millis(ms))));
            Ok(())
        })
    }
}

/// The trigger number (counting the first) that skips the rest of the drain (default
/// 2; at least 2); 0: never.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_force_at(
    builder: *mut ConfigBuilder,
    trigger: u32,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.set_option("force_at", trigger_number(trigger))
        })
    }
}

/// The trigger number that ends everything at once (default 3; after force_at); 0:
/// never.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_terminate_at(
    builder: *mut ConfigBuilder,
    trigger: u32,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.set_option("terminate_at", trigger_number(trigger))
        })
    }
}

/// How long after a counted signal trigger the same signal again is taken for a
/// duplicate delivery of it, in milliseconds (default 1000; 0: off): not counted, no
/// escalation. One Ctrl-C under `npm run` reaches the process twice a few milliseconds
/// apart (the terminal's, to the process group, and the package manager's relay); a
/// human's second Ctrl-C rarely comes within a second. Different signals and manual
/// triggers are never duplicates. At most 24 h (checked at build).
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_same_signal_window_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            // Past 2^53 ms the f64 rounds; anything past 24 h is refused at build anyway.
            b.set_option("same_signal_window_ms", OptionValue::Number(ms as f64))
        })
    }
}

/// The exit code when anything was forced, aborted or failed (default 1; 1 to 255).
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_forced_exit_code(
    builder: *mut ConfigBuilder,
    code: c_int,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.forced_exit_code(code));
            Ok(())
        })
    }
}

/// The keep-alive advice, a shutdown_close_strategy_t (default
/// SHUTDOWN_CLOSE_STRATEGY_IMMEDIATE). SHUTDOWN_STATUS_INVALID_ARGUMENT for an unknown
/// value.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_close_strategy(
    builder: *mut ConfigBuilder,
    strategy: u32,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            let s = match strategy {
                0 => CloseStrategy::Immediate,
                1 => CloseStrategy::Gradual,
                _ => return Err(ShutdownStatus::INVALID_ARGUMENT),
            };
            b.update(|c| c.close_strategy(s));
            Ok(())
        })
    }
}

/// How long a keep-alive connection (shutdown_connection_new()) must have been idle,
/// once admission has closed, before it is dismissed, in milliseconds (default 100; 0
/// dismisses idle connections at once). A client that got a keep-alive response just
/// before the close may already have sent its next request on that connection: within
/// the grace it arrives and is served, with `Connection: close`. Connections idle for
/// longer are dismissed at once; the drain timeout bounds it.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_connection_grace_ms(
    builder: *mut ConfigBuilder,
    ms: u64,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.connection_grace(millis(ms)));
            Ok(())
        })
    }
}

/// Gives a kind of long-lived work (`kind`: "websocket", "sse"; at most 256 bytes of
/// UTF-8) a drain policy: at `notify_at` (a shutdown_milestone_t:
/// SHUTDOWN_MILESTONE_DRAINING, or SHUTDOWN_MILESTONE_QUIESCING, which
/// SHUTDOWN_MILESTONE_NONE also means) the host is told to end that work (event 9,
/// shutdown_is_ending()), and `grace_ms` later what is left of it is cut (event 10,
/// shutdown_is_cut(); its guards still held count as aborted). Take its guards with
/// shutdown_guard_acquire_kind() or shutdown_request_upgrade(). Each call adds one kind.
/// The core checks the policy when the engine is built: shutdown_new() refuses a
/// milestone it does not allow (closing, done) with SHUTDOWN_STATUS_INVALID_CONFIG, and
/// shutdown_config_builder_validate() names the field `long_lived`.
/// SHUTDOWN_STATUS_INVALID_ARGUMENT for a `notify_at` that is no milestone.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_long_lived(
    builder: *mut ConfigBuilder,
    kind: *const c_char,
    grace_ms: u64,
    notify_at: u32,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            // SAFETY: NULL or a C string (the C contract).
            let kind = c_str(kind, MAX_NAME)?;
            let at = ShutdownMilestone::from_u32(notify_at)
                .ok_or(ShutdownStatus::INVALID_ARGUMENT)?
                .to_core();
            let mut policy = LongLived::new(millis(grace_ms));
            if let Some(m) = at {
                policy = policy.notify_at(m);
            }
            b.update(|c| c.long_lived(kind, policy));
            Ok(())
        })
    }
}

/// The signals shutdown_listen_signals() handles: the `len` entries of `signals`
/// (copied; default SIGTERM and SIGINT). `len` 0 handles none (`signals` may then be
/// NULL). SHUTDOWN_STATUS_INVALID_ARGUMENT when `len` exceeds SHUTDOWN_MAX_SIGNALS.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_signals(
    builder: *mut ConfigBuilder,
    signals: *const c_int,
    len: usize,
) -> ShutdownStatus {
    let apply = |b: &mut ConfigBuilder| {
        if len > SHUTDOWN_MAX_SIGNALS {
            return Err(ShutdownStatus::INVALID_ARGUMENT);
        }
        let list: &[c_int] = if len == 0 {
            &[]
        } else if signals.is_null() {
            return Err(ShutdownStatus::NULL_PARAMETER);
        } else {
            // SAFETY: `len` readable ints (the C contract), at most SHUTDOWN_MAX_SIGNALS
            // of them.
            unsafe { std::slice::from_raw_parts(signals, len) }
        };
        b.update(|c| c.signals(list));
        Ok(())
    };
    // SAFETY: the caller's contract, passed on.
    unsafe { set(builder, apply) }
}

/// Applies a platform's preset by name ("kubernetes", "docker", "pm2", "systemd",
/// "cloud-run", "fly", "heroku"): its signals, its kill window as the grace period, the
/// phase budgets that fit it, and for "systemd" its notifications (the core's
/// `PRESETS`; the README lists each one's numbers and their source). Setters called
/// after it change it; shutdown_config_builder_from_env() applies `SHUTDOWN_PRESET`
/// before its other variables. SHUTDOWN_STATUS_INVALID_ARGUMENT for a name that is no
/// preset (the builder is unchanged), SHUTDOWN_STATUS_NULL_PARAMETER for NULL.
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_preset(
    builder: *mut ConfigBuilder,
    name: *const c_char,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            // SAFETY: NULL or a C string (the C contract).
            let name = c_str(name, MAX_NAME)?;
            let core = b.core.clone().preset(name);
            b.core = core.map_err(|_| ShutdownStatus::INVALID_ARGUMENT)?;
            Ok(())
        })
    }
}

/// Sends systemd's `Type=notify` messages (STOPPING=1, EXTEND_TIMEOUT_USEC, STATUS=)
/// from the moment the engine is built, as shutdown_notify_systemd() does (default
/// false; the "systemd" preset turns it on). Nothing is sent without `NOTIFY_SOCKET`.
/// READY=1 stays the host's call (shutdown_notify_ready()).
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_systemd_notify(
    builder: *mut ConfigBuilder,
    on: bool,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.update(|c| c.systemd_notify(on));
            Ok(())
        })
    }
}

/// Run on a virtual clock moved only by shutdown_advance() (tests, simulations): no
/// driver thread; deadlines and hooks run on the thread that advances (default false).
///
/// Thread: one at a time per builder. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_set_manual_clock(
    builder: *mut ConfigBuilder,
    manual: bool,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe {
        set(builder, |b| {
            b.manual_clock = manual;
            Ok(())
        })
    }
}

/// Applies the `SHUTDOWN_*` environment variables that are set (the core's
/// `Builder::env`: one per option, `SHUTDOWN_DRAIN_TIMEOUT_MS`, `SHUTDOWN_GRACE_PERIOD_MS`
/// (`none`: no check), `SHUTDOWN_FORCE_AT`, `SHUTDOWN_CLOSE_STRATEGY` (`immediate` or
/// `gradual`), `SHUTDOWN_SIGNALS` (`SIGTERM,SIGUSR2`), ...; durations in
/// milliseconds, an empty variable counts as unset) over what the builder holds: call
/// it after the setters for the deployment's values to win. A unit file, a Kubernetes
/// manifest or a process manager then sets the budgets where its own numbers live.
///
/// An invalid value returns SHUTDOWN_STATUS_INVALID_CONFIG, changes no option, and
/// leaves the builder refused: shutdown_config_builder_validate() names the variable
/// (`field` "SHUTDOWN_CLOSE_TIMEOUT_MS") and says why, shutdown_new() refuses it, until
/// a call of this function finds the environment valid.
///
/// Thread: one at a time per builder, not while another thread changes the
/// environment (setenv). Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_from_env(
    builder: *mut ConfigBuilder,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { set(builder, |b| from_env(b, |name| std::env::var(name).ok())) }
}

fn from_env(
    b: &mut ConfigBuilder,
    get: impl Fn(&str) -> Option<String>,
) -> Result<(), ShutdownStatus> {
    match b.core.clone().env_from(get) {
        Ok(core) => {
            b.core = core;
            b.refused = None;
            Ok(())
        }
        Err(e) => {
            b.refused = Some(e);
            Err(ShutdownStatus::INVALID_CONFIG)
        }
    }
}

/// The core's verdict on a builder's configuration: the builder to build from.
pub(crate) fn validate(b: &ConfigBuilder) -> Result<Builder, ConfigError> {
    if let Some(e) = &b.refused {
        return Err(e.clone());
    }
    let core = b.to_core();
    core.config()?;
    Ok(core)
}

/// Checks the configuration as shutdown_new() would. On SHUTDOWN_STATUS_INVALID_CONFIG
/// it says what the core refused: the field's name, as the core names it
/// ("grace_period", "escalation", "drain_timeout", ...; the variable's name for one
/// shutdown_config_builder_from_env() refused), into `field`, and the whole
/// reason ("invalid shutdown configuration: grace_period: ...") into `message`.
/// Each buffer is optional (NULL, or a length of 0, writes nothing) and gets a
/// NUL-terminated string truncated to its length; SHUTDOWN_CONFIG_FIELD_LEN bytes hold
/// any field name. Nothing is written on success.
///
/// Thread: any (not while a setter changes the builder). Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_config_builder_validate(
    builder: *const ConfigBuilder,
    field: *mut c_char,
    field_len: usize,
    message: *mut c_char,
    message_len: usize,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live builder (the C contract).
        let b = unsafe { arg(builder)? };
        match validate(b) {
            Ok(_) => Ok(()),
            Err(e) => {
                // SAFETY: buffers of the given lengths, or NULL (the C contract).
                unsafe {
                    write_message(field, field_len, e.field());
                    write_message(message, message_len, &e.to_string());
                }
                Err(ShutdownStatus::INVALID_CONFIG)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn new() -> *mut ConfigBuilder {
        let mut b = std::ptr::null_mut();
        assert_eq!(
            unsafe { shutdown_config_builder_new(&mut b) },
            ShutdownStatus::OK
        );
        b
    }

    #[test]
    fn the_defaults_are_the_cores() {
        let b = new();
        let want = Shutdown::builder().config().unwrap();
        assert_eq!(validate(unsafe { &*b }).unwrap().config().unwrap(), want);
        unsafe { shutdown_config_builder_free(b) };
    }

    #[test]
    fn the_environment_is_applied_by_the_core_and_its_refusal_names_the_variable() {
        let b = new();
        unsafe {
            assert_eq!(
                shutdown_config_builder_set_force_at(b, 4),
                ShutdownStatus::OK
            );
            assert_eq!(
                shutdown_config_builder_set_drain_timeout_ms(b, 1000),
                ShutdownStatus::OK
            );
            let vars = |pairs: &'static [(&'static str, &'static str)]| {
                move |k: &str| {
                    pairs
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.to_string())
                }
            };
            let env = vars(&[
                ("SHUTDOWN_DRAIN_TIMEOUT_MS", "12000"),
                ("SHUTDOWN_TERMINATE_AT", "none"),
            ]);
            assert_eq!(from_env(&mut *b, env), Ok(()));
            let c = validate(&*b).unwrap().config().unwrap();
            assert_eq!(c.drain_timeout(), Duration::from_secs(12));
            assert_eq!(c.escalation().force_at, Some(4), "a setter's value stays");
            assert_eq!(c.escalation().terminate_at, None);
            let env = vars(&[("SHUTDOWN_CLOSE_TIMEOUT_MS", "5s")]);
            assert_eq!(from_env(&mut *b, env), Err(ShutdownStatus::INVALID_CONFIG));
            assert_eq!(
                validate(&*b).unwrap_err().field(),
                "SHUTDOWN_CLOSE_TIMEOUT_MS"
            );
            assert_eq!(from_env(&mut *b, vars(&[])), Ok(()));
            assert_eq!(
                validate(&*b).unwrap().config().unwrap().drain_timeout(),
                Duration::from_secs(12)
            );
            shutdown_config_builder_free(b);
        }
    }

    #[test]
    fn the_cores_error_names_the_field() {
        let b = new();
        unsafe {
            assert_eq!(
                shutdown_config_builder_set_drain_timeout_ms(b, 29_000),
                ShutdownStatus::OK
            );
            let mut field = [1 as c_char; SHUTDOWN_CONFIG_FIELD_LEN];
            let mut msg = [1 as c_char; 256];
            assert_eq!(
                shutdown_config_builder_validate(
                    b,
                    field.as_mut_ptr(),
                    field.len(),
                    msg.as_mut_ptr(),
                    msg.len()
                ),
                ShutdownStatus::INVALID_CONFIG
            );
            assert_eq!(CStr::from_ptr(field.as_ptr()), c"grace_period");
            assert!(CStr::from_ptr(msg.as_ptr())
                .to_str()
                .unwrap()
                .starts_with("invalid shutdown configuration: grace_period: "));
            shutdown_config_builder_free(b);
        }
    }
}
