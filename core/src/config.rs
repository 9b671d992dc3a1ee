//! Configuration and its validation: a configuration that cannot work is refused by
//! [`Builder::build`](crate::Builder::build), never discovered during a deploy.

use std::fmt;
use std::time::Duration;

/// Longest timeout accepted for any phase: past a day it is a unit mistake, not a plan.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The default [`Builder::announce_settle`].
pub const DEFAULT_ANNOUNCE_SETTLE: Duration = Duration::from_millis(100);

/// The default [`Builder::connection_grace`].
pub const DEFAULT_CONNECTION_GRACE: Duration = Duration::from_millis(100);
/// The default [`Escalation::same_signal_window`]: 1 s. A relay such as npm's or
/// pnpm's delivers its copy of a Ctrl-C within milliseconds; a human's deliberate
/// second Ctrl-C rarely comes within a second. Configurable.
pub const DEFAULT_SAME_SIGNAL_WINDOW: Duration = Duration::from_secs(1);

/// How [`Shutdown::should_close`](crate::Shutdown::should_close) advises keep-alive
/// connections to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum CloseStrategy {
    /// Close every keep-alive connection after its current response, from the first
    /// moment of the drain (the announce window included).
    #[default]
    Immediate,
    /// The probability of closing ramps linearly from 0 to 1 across the announce
    /// window, as Envoy's drain manager does, so a large pool does not reconnect in one
    /// burst. It is 1 once admission closes; with no announce window it is `Immediate`.
    Gradual,
}

/// What repeated triggers (a second or third SIGTERM) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Escalation {
    /// The trigger number (counting the first) that skips what is left of the drain and
    /// goes straight to a forced Closing. `None`: never.
    pub force_at: Option<u32>,
    /// The trigger number that ends everything at once: the report is finalized as
    /// terminated, and when the triggers come from [`listen_signals`] the process exits
    /// with the forced exit code. `None`: never.
    ///
    /// [`listen_signals`]: crate::Shutdown::listen_signals
    pub terminate_at: Option<u32>,
    /// A signal trigger that is the same signal as the previous counted signal trigger
    /// and comes less than this long after it is the same trigger delivered twice, not
    /// a request to escalate: it is not counted and does not escalate (the report's
    /// `duplicate_triggers` counts it). One Ctrl-C under `npm run` or `pnpm run`
    /// reaches the server twice, a few milliseconds apart: from the terminal (to the
    /// whole process group) and from the package manager's relay. Default
    /// [`DEFAULT_SAME_SIGNAL_WINDOW`] (1 s: a relay takes milliseconds, a human's
    /// second Ctrl-C rarely comes within a second); [`Duration::ZERO`] turns it off.
    /// Different signals (SIGTERM then SIGINT) and manual or fatal triggers are never
    /// taken for duplicates.
    pub same_signal_window: Duration,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            force_at: Some(2),
            terminate_at: Some(3),
            same_signal_window: DEFAULT_SAME_SIGNAL_WINDOW,
        }
    }
}

/// A validated configuration. Build one with [`Shutdown::builder`](crate::Shutdown::builder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub(crate) drain_delay: Duration,
    pub(crate) announce_probes: Option<u32>,
    pub(crate) announce_settle: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) grace_period: Option<Duration>,
    pub(crate) escalation: Escalation,
    pub(crate) forced_exit_code: i32,
    pub(crate) close_strategy: CloseStrategy,
    pub(crate) signals: Vec<i32>,
    pub(crate) connection_grace: Duration,
    pub(crate) long_lived: Vec<(String, crate::LongLived)>,
    pub(crate) progress_interval: Option<Duration>,
    pub(crate) systemd_notify: bool,
}

impl Config {
    /// The announce window: readiness fails, admission stays open.
    pub fn drain_delay(&self) -> Duration {
        self.drain_delay
    }
    /// Readiness probes answered "not ready" after which the announce window ends early.
    pub fn announce_probes(&self) -> Option<u32> {
        self.announce_probes
    }
    /// How long admission stays open after the last of `announce_probes`.
    pub fn announce_settle(&self) -> Duration {
        self.announce_settle
    }
    /// How long in-flight work may take once admission closes.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }
    /// The budget of all cleanup hooks together.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }
    /// The orchestrator's budget, if one was given.
    pub fn grace_period(&self) -> Option<Duration> {
        self.grace_period
    }
    /// What repeated triggers do.
    pub fn escalation(&self) -> Escalation {
        self.escalation
    }
    /// The exit code when anything was forced, aborted or failed.
    pub fn forced_exit_code(&self) -> i32 {
        self.forced_exit_code
    }
    /// The keep-alive advice strategy.
    pub fn close_strategy(&self) -> CloseStrategy {
        self.close_strategy
    }
    /// The signals [`listen_signals`](crate::Shutdown::listen_signals) installs handlers for.
    pub fn signals(&self) -> &[i32] {
        &self.signals
    }
    /// How long a keep-alive connection must have been idle, once admission closed,
    /// before it is dismissed.
    pub fn connection_grace(&self) -> Duration {
        self.connection_grace
    }
    /// How often a drain reports its progress, if at all.
    pub fn progress_interval(&self) -> Option<Duration> {
        self.progress_interval
    }
    /// The long-lived kinds and their policies, in registration order.
    pub fn long_lived(&self) -> &[(String, crate::LongLived)] {
        &self.long_lived
    }
    /// Whether the engine sends systemd's notifications from the moment it is built.
    pub fn systemd_notify(&self) -> bool {
        self.systemd_notify
    }
}

/// Why a configuration was refused: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    option: Option<&'static str>,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        // The schema entry the field stands for: itself (Builder::set), its variable
        // (Builder::env), or the builder's field without the schema's `_ms`.
        let option = crate::options::OPTIONS
            .iter()
            .find(|s| {
                s.name == field || s.env == field || s.name.strip_suffix("_ms") == Some(field)
            })
            .map(|s| s.name);
        ConfigError {
            field,
            option,
            reason: reason.into(),
        }
    }
    /// The same error, blamed on the schema field `name` (a whole-configuration field
    /// such as `escalation` that several schema fields feed).
    pub(crate) fn of_option(mut self, name: &'static str) -> Self {
        self.option = Some(name);
        self
    }
    /// The offending field, as named by the builder method (`drain_timeout`,
    /// `grace_period`, `escalation`), by the schema for a value [`Builder::set`] refused
    /// (`drain_timeout_ms`), or the variable's name for one [`Builder::env`] refused.
    pub fn field(&self) -> &'static str {
        self.field
    }
    /// The schema name ([`OPTIONS`](crate::OPTIONS)) of the option to blame, so that
    /// another language names its own option without reading [`reason`](Self::reason):
    /// `drain_timeout_ms` for a `drain_timeout` refused, `force_at` or `terminate_at`
    /// for an `escalation` refused, the variable's option for a `SHUTDOWN_*` one.
    /// `None` when no one option is (`options`, an unknown name; `long_lived`).
    pub fn option(&self) -> Option<&'static str> {
        self.option
    }
    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid shutdown configuration: {}: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// Builds a [`Shutdown`](crate::Shutdown); see [`Shutdown::builder`](crate::Shutdown::builder).
///
/// Defaults fit Kubernetes' default 30 s termination grace period: no announce
/// window, 20 s to drain, 5 s for cleanup hooks, grace period 30 s, escalation on the
/// second and third trigger, forced exit code 1, `Immediate` advice, SIGTERM and SIGINT.
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) config: Config,
    pub(crate) manual_clock: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config {
                drain_delay: Duration::ZERO,
                announce_probes: None,
                announce_settle: DEFAULT_ANNOUNCE_SETTLE,
                drain_timeout: Duration::from_secs(20),
                close_timeout: Duration::from_secs(5),
                grace_period: Some(Duration::from_secs(30)),
                escalation: Escalation::default(),
                forced_exit_code: 1,
                close_strategy: CloseStrategy::Immediate,
                signals: vec![signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT],
                connection_grace: DEFAULT_CONNECTION_GRACE,
                long_lived: Vec::new(),
                progress_interval: Some(Duration::from_secs(1)),
                systemd_notify: false,
            },
            manual_clock: false,
        }
    }
}

impl Builder {
    /// The announce window (default 0): readiness fails at once so the load balancer
    /// stops routing, but requests that still arrive are served. Like a Kubernetes
    /// preStop sleep, without the sleep's cost when [`announce_probes`](Self::announce_probes)
    /// is set.
    pub fn drain_delay(mut self, d: Duration) -> Self {
        self.config.drain_delay = d;
        self
    }

    /// End the announce window as soon as this many readiness probes were answered
    /// "not ready" (reported with [`Shutdown::readiness_probed`](crate::Shutdown::readiness_probed)):
    /// the balancer's `fall` count. `drain_delay` stays the upper bound and must be set.
    pub fn announce_probes(mut self, n: u32) -> Self {
        self.config.announce_probes = Some(n);
        self
    }

    /// How long admission stays open after the last of [`announce_probes`](Self::announce_probes)
    /// (default 100 ms). The server answers the `fall`-th failing probe a moment
    /// before the balancer has processed it: requests the balancer dispatches in that
    /// moment, or that are already on the wire, must still be admitted. Measured behind
    /// HAProxy (`fall 2`), closing at the probe itself refused 1 to 3 requests in about
    /// half of the rolling restarts; the balancer's reaction is sub-millisecond on a LAN.
    pub fn announce_settle(mut self, d: Duration) -> Self {
        self.config.announce_settle = d;
        self
    }

    /// How long in-flight work may take once admission closes (default 20 s).
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.config.drain_timeout = d;
        self
    }

    /// The budget of the Closing phase, all hooks together (default 5 s).
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.config.close_timeout = d;
        self
    }

    /// The orchestrator's budget (default 30 s, Kubernetes' default): the phase
    /// budgets must fit in it. `None` turns the check off.
    pub fn grace_period(mut self, d: Option<Duration>) -> Self {
        self.config.grace_period = d;
        self
    }

    /// What a second and third trigger do. Replaces all three fields of the
    /// escalation, a preset's `same_signal_window` among them; to change one field
    /// over a preset, set it by name (`set_text("force_at", "3")`).
    pub fn escalation(mut self, e: Escalation) -> Self {
        self.config.escalation = e;
        self
    }

    /// The exit code when anything was forced, aborted or failed (default 1, 1..=255).
    pub fn forced_exit_code(mut self, code: i32) -> Self {
        self.config.forced_exit_code = code;
        self
    }

    /// The keep-alive advice strategy (default `Immediate`).
    pub fn close_strategy(mut self, s: CloseStrategy) -> Self {
        self.config.close_strategy = s;
        self
    }

    /// The signals [`listen_signals`](crate::Shutdown::listen_signals) handles
    /// (default SIGTERM and SIGINT).
    pub fn signals(mut self, signals: &[i32]) -> Self {
        self.config.signals = signals.to_vec();
        self
    }

    /// How long a keep-alive connection must have been idle, once admission has closed,
    /// before it is dismissed (default 100 ms; see [`Connection`](crate::Connection)).
    /// A client that got a keep-alive response just before the close may already have
    /// sent its next request on that connection: closing the connection under it resets
    /// the request. Within the grace the request arrives and is served, with
    /// `Connection: close`. Connections idle for longer are dismissed at once, so the
    /// grace costs a drain nothing when no connection was just active. The drain's own
    /// deadline bounds it.
    pub fn connection_grace(mut self, d: Duration) -> Self {
        self.config.connection_grace = d;
        self
    }

    /// Gives a kind of long-lived work (`"websocket"`, `"sse"`) a drain policy: when the
    /// app is told to end it and how long it may take (see [`LongLived`](crate::LongLived)).
    /// The kind is interned by [`build`](Self::build); take its guards with
    /// [`Shutdown::guard_of`](crate::Shutdown::guard_of) or
    /// [`Request::upgrade`](crate::Request::upgrade).
    pub fn long_lived(mut self, kind: &str, policy: crate::LongLived) -> Self {
        self.config.long_lived.push((kind.to_string(), policy));
        self
    }

    /// How often a drain in progress reports it (default 1 s; `None`: never): a log line
    /// and [`Event::Progress`](crate::Event::Progress), see
    /// [`Progress`](crate::Progress). At least 10 ms.
    pub fn progress_interval(mut self, every: Option<Duration>) -> Self {
        self.config.progress_interval = every;
        self
    }

    /// Sends systemd's `Type=notify` messages (`STOPPING=1`, `EXTEND_TIMEOUT_USEC`,
    /// `STATUS=`) from the moment the engine is built, as
    /// [`Shutdown::notify_systemd`](crate::Shutdown::notify_systemd) does (default
    /// off; the `systemd` preset turns it on). Nothing is sent without
    /// `NOTIFY_SOCKET`. `READY=1` stays the host's call
    /// ([`Shutdown::notify_ready`](crate::Shutdown::notify_ready)): only the host knows
    /// when its listener serves.
    pub fn systemd_notify(mut self, on: bool) -> Self {
        self.config.systemd_notify = on;
        self
    }

    /// Run on a virtual clock moved only by [`Shutdown::advance`](crate::Shutdown::advance):
    /// for simulations and tests. Hooks then run inline, and no driver is needed.
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Checks the configuration.
    pub(crate) fn validate(&self) -> Result<Config, ConfigError> {
        let c = &self.config;
        check_timeout("drain_delay", c.drain_delay, true)?;
        check_timeout("announce_settle", c.announce_settle, true)?;
        check_timeout("drain_timeout", c.drain_timeout, false)?;
        check_timeout("close_timeout", c.close_timeout, false)?;
        check_timeout("connection_grace", c.connection_grace, true)?;
        crate::long_lived::validate(&c.long_lived)?;
        if let Some(every) = c.progress_interval {
            check_timeout("progress_interval", every, false)?;
            if every < Duration::from_millis(10) {
                return Err(ConfigError::new(
                    "progress_interval",
                    format!("{every:?} is shorter than 10 ms"),
                ));
            }
        }
        if let Some(n) = c.announce_probes {
            if n == 0 {
                return Err(ConfigError::new("announce_probes", "must be at least 1"));
            }
            if c.drain_delay.is_zero() {
                return Err(ConfigError::new(
                    "announce_probes",
                    "needs a drain_delay greater than zero as its upper bound",
                ));
            }
        }
        let budget = c
            .drain_delay
            .checked_add(c.drain_timeout)
            .and_then(|d| d.checked_add(c.close_timeout))
            .ok_or_else(|| ConfigError::new("grace_period", "phase budgets overflow"))?;
        if let Some(grace) = c.grace_period {
            check_timeout("grace_period", grace, false)?;
            if budget > grace {
                return Err(ConfigError::new(
                    "grace_period",
                    format!(
                        "drain_delay + drain_timeout + close_timeout = {budget:?} does not fit in the grace period of {grace:?}"
                    ),
                ));
            }
        }
        let e = c.escalation;
        check_timeout("same_signal_window", e.same_signal_window, true)?;
        if let Some(f) = e.force_at {
            if f < 2 {
                return Err(ConfigError::new(
                    "escalation",
                    "force_at counts the first trigger: it must be 2 or more",
                )
                .of_option("force_at"));
            }
        }
        if let Some(t) = e.terminate_at {
            if t < 2 || e.force_at.is_some_and(|f| t <= f) {
                return Err(ConfigError::new(
                    "escalation",
                    "terminate_at must be 2 or more, and after force_at",
                )
                .of_option("terminate_at"));
            }
        }
        if !(1..=255).contains(&c.forced_exit_code) {
            return Err(ConfigError::new(
                "forced_exit_code",
                format!("{} is not an exit code from 1 to 255", c.forced_exit_code),
            ));
        }
        for &s in &c.signals {
            if signal_hook::consts::FORBIDDEN.contains(&s) || !(1..=64).contains(&s) {
                return Err(ConfigError::new(
                    "signals",
                    format!("signal {s} cannot be handled"),
                ));
            }
        }
        Ok(c.clone())
    }
}

fn check_timeout(field: &'static str, d: Duration, zero_ok: bool) -> Result<(), ConfigError> {
    if d.is_zero() && !zero_ok {
        return Err(ConfigError::new(field, "must be greater than zero"));
    }
    if d > MAX_TIMEOUT {
        return Err(ConfigError::new(
            field,
            format!("{d:?} is longer than the maximum of {MAX_TIMEOUT:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: Builder) -> ConfigError {
        b.validate().unwrap_err()
    }

    #[test]
    fn defaults_are_valid() {
        Builder::default().validate().unwrap();
    }

    #[test]
    fn refuses_with_field_and_reason() {
        let e = err(Builder::default().drain_timeout(Duration::ZERO));
        assert_eq!(e.field(), "drain_timeout");
        assert!(e.to_string().contains("greater than zero"), "{e}");
        assert_eq!(
            err(Builder::default().close_timeout(Duration::ZERO)).field(),
            "close_timeout"
        );
        let e = err(Builder::default().drain_timeout(Duration::from_secs(90_000)));
        assert!(e.reason().contains("maximum"), "{e}");
        let e = err(Builder::default().drain_timeout(Duration::from_secs(29)));
        assert_eq!(e.field(), "grace_period");
        assert!(e.reason().contains("does not fit"), "{e}");
        assert_eq!(
            err(Builder::default().announce_probes(2)).field(),
            "announce_probes"
        );
        assert_eq!(
            err(Builder::default()
                .drain_delay(Duration::from_secs(1))
                .announce_probes(0))
            .field(),
            "announce_probes"
        );
        assert_eq!(
            err(Builder::default().forced_exit_code(0)).field(),
            "forced_exit_code"
        );
        assert_eq!(
            err(Builder::default().forced_exit_code(256)).field(),
            "forced_exit_code"
        );
        assert_eq!(err(Builder::default().signals(&[9])).field(), "signals");
        let e = Escalation {
            force_at: Some(1),
            terminate_at: None,
            ..Escalation::default()
        };
        assert_eq!(err(Builder::default().escalation(e)).field(), "escalation");
        let e = Escalation {
            force_at: Some(3),
            terminate_at: Some(3),
            ..Escalation::default()
        };
        assert_eq!(err(Builder::default().escalation(e)).field(), "escalation");
    }

    #[test]
    fn errors_name_the_schema_option_to_blame() {
        let option = |b: Builder| err(b).option();
        assert_eq!(
            option(Builder::default().drain_timeout(Duration::ZERO)),
            Some("drain_timeout_ms")
        );
        assert_eq!(
            option(Builder::default().drain_timeout(Duration::from_secs(29))),
            Some("grace_period_ms")
        );
        assert_eq!(
            option(Builder::default().forced_exit_code(0)),
            Some("forced_exit_code")
        );
        assert_eq!(
            option(Builder::default().announce_probes(2)),
            Some("announce_probes")
        );
        let esc = |force_at, terminate_at| {
            Builder::default().escalation(Escalation {
                force_at,
                terminate_at,
                ..Escalation::default()
            })
        };
        assert_eq!(option(esc(Some(1), None)), Some("force_at"));
        assert_eq!(option(esc(Some(3), Some(3))), Some("terminate_at"));
        assert_eq!(option(esc(None, Some(1))), Some("terminate_at"));
    }

    #[test]
    fn same_signal_window_is_checked() {
        assert_eq!(
            Builder::default()
                .validate()
                .unwrap()
                .escalation()
                .same_signal_window,
            Duration::from_secs(1)
        );
        let window = |d| {
            Builder::default().escalation(Escalation {
                same_signal_window: d,
                ..Escalation::default()
            })
        };
        window(Duration::ZERO).validate().unwrap();
        window(MAX_TIMEOUT).validate().unwrap();
        let e = err(window(MAX_TIMEOUT + Duration::from_millis(1)));
        assert_eq!(e.field(), "same_signal_window");
        assert!(e.reason().contains("maximum"), "{e}");
    }

    #[test]
    fn overflowing_budgets_are_refused() {
        let b = Builder::default()
            .grace_period(None)
            .drain_delay(MAX_TIMEOUT)
            .drain_timeout(MAX_TIMEOUT)
            .close_timeout(MAX_TIMEOUT);
        b.validate().unwrap();
        let b = Builder::default().grace_period(Some(Duration::MAX));
        assert_eq!(err(b).field(), "grace_period");
    }
}
