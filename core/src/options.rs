//! The options schema: every configuration field by one name, validated by the core
//! for every language and for the environment.
//!
//! Other languages hand their options over as name/value pairs ([`Builder::set`]);
//! deployment files set them through `SHUTDOWN_*` environment variables
//! ([`Builder::env`]). Durations are milliseconds at this boundary. A value of the
//! wrong type or out of range is refused with the field's name (or the variable's), at
//! once or when the engine is built; nothing falls back silently.
//!
//! ```
//! use libshutdown::{Builder, OptionValue};
//!
//! let b = Builder::default()
//!     .set("drain_timeout_ms", OptionValue::Number(15_000.0))?
//!     .set("close_strategy", OptionValue::Text("gradual".into()))?;
//! assert_eq!(b.config()?.drain_timeout().as_millis(), 15_000);
//! let e = Builder::default().set("close_strategy", OptionValue::Text("slow".into())).unwrap_err();
//! assert_eq!(e.field(), "close_strategy");
//! # Ok::<(), libshutdown::ConfigError>(())
//! ```

use std::time::Duration;

use crate::config::{Builder, CloseStrategy, ConfigError};

/// A value as another language or the environment hands it over, before the core has
/// judged it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OptionValue {
    /// `null` / `None`: "none" for the optional fields.
    Null,
    /// A number (JavaScript's only number type).
    Number(f64),
    /// A string.
    Text(String),
    /// A list (signals).
    List(Vec<OptionValue>),
    /// A switch (`systemd_notify`).
    Bool(bool),
}

/// What values a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionKind {
    /// Milliseconds, 0 allowed where the builder allows it.
    Millis,
    /// Milliseconds, or null for none.
    OptionalMillis,
    /// A count, 1 or more.
    Count,
    /// A count, or null for never.
    OptionalCount,
    /// An integer.
    Integer,
    /// One of the listed words.
    Word(&'static [&'static str]),
    /// On or off; from the environment `on`/`off`, `true`/`false`, `1`/`0`,
    /// `yes`/`no`.
    Switch,
    /// A list of signal names (`"SIGTERM"`) or numbers.
    Signals,
    /// Long-lived kinds: a list of `[kind, grace_ms, notify_at]` (notify_at
    /// `"draining"`, `"quiescing"` or null for the default), in order; from the
    /// environment `kind:grace_ms[:notify_at]` items separated by commas.
    LongLived,
}

impl OptionKind {
    /// Whether `value` is of the type this kind takes: a number for the durations and
    /// counts (or null for the optional ones), a string for a word, a boolean for a
    /// switch, a list of names or numbers for the signals, a list for the long-lived
    /// kinds. Whether it is in range is [`Builder::set`]'s judgement; a value refused
    /// that is not of the type is a type error to the languages that tell them apart.
    pub fn accepts(&self, value: &OptionValue) -> bool {
        matches!(
            (self, value),
            (
                OptionKind::Millis | OptionKind::Count | OptionKind::Integer,
                OptionValue::Number(_)
            ) | (
                OptionKind::OptionalMillis | OptionKind::OptionalCount,
                OptionValue::Number(_) | OptionValue::Null
            ) | (OptionKind::Word(_), OptionValue::Text(_))
                | (OptionKind::Switch, OptionValue::Bool(_))
                | (OptionKind::LongLived, OptionValue::List(_))
        ) || matches!((self, value), (OptionKind::Signals, OptionValue::List(items))
            if items.iter().all(|i| matches!(i, OptionValue::Number(_) | OptionValue::Text(_))))
    }
}

/// One field of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// Its name (snake case, durations ending in `_ms`).
    pub name: &'static str,
    /// The environment variable that sets it.
    pub env: &'static str,
    /// What it takes.
    pub kind: OptionKind,
}

/// Every field, in the order the documentation lists them. `preset` comes first:
/// the environment applies its variables in this order, so a preset is the base the
/// other variables change.
pub const OPTIONS: &[OptionSpec] = &[
    spec(
        "preset",
        "SHUTDOWN_PRESET",
        OptionKind::Word(crate::preset::PRESET_NAMES),
    ),
    spec(
        "drain_delay_ms",
        "SHUTDOWN_DRAIN_DELAY_MS",
        OptionKind::Millis,
    ),
    spec(
        "announce_probes",
        "SHUTDOWN_ANNOUNCE_PROBES",
        OptionKind::Count,
    ),
    spec(
        "announce_settle_ms",
        "SHUTDOWN_ANNOUNCE_SETTLE_MS",
        OptionKind::Millis,
    ),
    spec(
        "drain_timeout_ms",
        "SHUTDOWN_DRAIN_TIMEOUT_MS",
        OptionKind::Millis,
    ),
    spec(
        "close_timeout_ms",
        "SHUTDOWN_CLOSE_TIMEOUT_MS",
        OptionKind::Millis,
    ),
    spec(
        "grace_period_ms",
        "SHUTDOWN_GRACE_PERIOD_MS",
        OptionKind::OptionalMillis,
    ),
    spec("force_at", "SHUTDOWN_FORCE_AT", OptionKind::OptionalCount),
    spec(
        "terminate_at",
        "SHUTDOWN_TERMINATE_AT",
        OptionKind::OptionalCount,
    ),
    spec(
        "forced_exit_code",
        "SHUTDOWN_FORCED_EXIT_CODE",
        OptionKind::Integer,
    ),
    spec(
        "close_strategy",
        "SHUTDOWN_CLOSE_STRATEGY",
        OptionKind::Word(&["immediate", "gradual"]),
    ),
    spec("signals", "SHUTDOWN_SIGNALS", OptionKind::Signals),
    spec(
        "connection_grace_ms",
        "SHUTDOWN_CONNECTION_GRACE_MS",
        OptionKind::Millis,
    ),
    spec(
        "same_signal_window_ms",
        "SHUTDOWN_SAME_SIGNAL_WINDOW_MS",
        OptionKind::Millis,
    ),
    spec("long_lived", "SHUTDOWN_LONG_LIVED", OptionKind::LongLived),
    spec(
        "progress_interval_ms",
        "SHUTDOWN_PROGRESS_INTERVAL_MS",
        OptionKind::OptionalMillis,
    ),
    spec(
        "systemd_notify",
        "SHUTDOWN_SYSTEMD_NOTIFY",
        OptionKind::Switch,
    ),
];

const fn spec(name: &'static str, env: &'static str, kind: OptionKind) -> OptionSpec {
    OptionSpec { name, env, kind }
}

/// The schema entry of a field.
pub fn option_spec(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|s| s.name == name)
}

impl Builder {
    /// Sets one field by its schema name (see [`OPTIONS`]). A value of the wrong type,
    /// or one no configuration can hold (a negative duration, a fraction of a count), is
    /// refused here naming the field; the rest is judged with the whole configuration
    /// by [`build`](Self::build).
    pub fn set(self, name: &str, value: OptionValue) -> Result<Self, ConfigError> {
        let spec = option_spec(name).ok_or_else(|| {
            ConfigError::new(
                "options",
                format!(
                    "{name:?} is not an option (known: {})",
                    OPTIONS
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        self.apply(spec, spec.name, value)
    }

    /// Sets one field from text, read as the field's type the way the environment's
    /// values are (for command-line flags): `"1500"`, `"none"`, `"SIGTERM,SIGINT"`.
    pub fn set_text(self, name: &str, text: &str) -> Result<Self, ConfigError> {
        match option_spec(name) {
            Some(spec) => self.apply(spec, spec.name, parse_text(spec, text.trim())),
            None => self.set(name, OptionValue::Null),
        }
    }

    /// Applies the `SHUTDOWN_*` environment variables that are set (see [`OPTIONS`]
    /// for their names), over what the builder holds: a manifest, unit file or
    /// ecosystem file sets the budgets where the platform's own numbers live. An
    /// invalid value is refused naming the variable; an empty one counts as unset.
    pub fn env(self) -> Result<Self, ConfigError> {
        self.env_from(|name| std::env::var(name).ok())
    }

    /// [`env`](Self::env) with the variables read through `get` (tests, or a host
    /// that keeps its environment elsewhere).
    pub fn env_from(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for spec in OPTIONS {
            let Some(text) = get(spec.env).filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            self = self.apply(spec, spec.env, parse_text(spec, text.trim()))?;
        }
        Ok(self)
    }

    fn apply(
        self,
        spec: &OptionSpec,
        field: &'static str,
        value: OptionValue,
    ) -> Result<Self, ConfigError> {
        let bad = |what: &str| {
            Err(ConfigError::new(
                field,
                format!("must be {what}, not {}", show(&value)),
            ))
        };
        Ok(match (spec.kind, &value) {
            (OptionKind::Millis, OptionValue::Number(n)) => match millis(*n) {
                Some(d) => self.set_duration(spec.name, Some(d)),
                None => return bad("a number of milliseconds from 0"),
            },
            (OptionKind::OptionalMillis, OptionValue::Null) => self.set_duration(spec.name, None),
            (OptionKind::OptionalMillis, OptionValue::Number(n)) => match millis(*n) {
                Some(d) => self.set_duration(spec.name, Some(d)),
                None => return bad("a number of milliseconds from 0, or null"),
            },
            (OptionKind::Count, OptionValue::Number(n)) => match count(*n) {
                Some(c) => self.set_count(spec.name, Some(c)),
                None => return bad("a whole number from 0"),
            },
            (OptionKind::OptionalCount, OptionValue::Null) => self.set_count(spec.name, None),
            (OptionKind::OptionalCount, OptionValue::Number(n)) => match count(*n) {
                Some(c) => self.set_count(spec.name, Some(c)),
                None => return bad("a whole number from 0, or null"),
            },
            (OptionKind::Integer, OptionValue::Number(n))
                if n.fract() == 0.0 && n.abs() <= i32::MAX as f64 =>
            {
                self.forced_exit_code(*n as i32)
            }
            (OptionKind::Integer, _) => return bad("a whole number"),
            (OptionKind::Word(words), OptionValue::Text(t)) if words.contains(&t.as_str()) => {
                match spec.name {
                    "preset" => self.preset(t)?,
                    _ if t == "gradual" => self.close_strategy(CloseStrategy::Gradual),
                    _ => self.close_strategy(CloseStrategy::Immediate),
                }
            }
            (OptionKind::Word(words), _) => return bad(&format!("one of {}", words.join(", "))),
            (OptionKind::Switch, OptionValue::Bool(on)) => self.systemd_notify(*on),
            (OptionKind::Switch, _) => return bad("true or false (on or off)"),
            (OptionKind::Signals, OptionValue::List(items)) => {
                let mut nums = Vec::with_capacity(items.len());
                for item in items {
                    match signal_number(item) {
                        Some(n) => nums.push(n),
                        None => return bad("a list of signal names or numbers"),
                    }
                }
                self.signals(&nums)
            }
            (OptionKind::Signals, _) => return bad("a list of signal names or numbers"),
            (OptionKind::LongLived, OptionValue::List(items)) => {
                let mut b = self;
                b.config.long_lived.clear();
                for item in items {
                    match long_lived_item(item) {
                        Some((kind, policy)) => b = b.long_lived(&kind, policy),
                        None => {
                            return bad(
                                "a list of [kind, grace_ms, notify_at] (notify_at: draining, quiescing or null)",
                            )
                        }
                    }
                }
                b
            }
            (OptionKind::LongLived, _) => return bad(
                "a list of [kind, grace_ms, notify_at] (notify_at: draining, quiescing or null)",
            ),
            (OptionKind::Millis, _) => return bad("a number of milliseconds"),
            (OptionKind::OptionalMillis, _) => return bad("a number of milliseconds, or null"),
            (OptionKind::Count, _) => return bad("a whole number"),
            (OptionKind::OptionalCount, _) => return bad("a whole number, or null"),
        })
    }

    fn set_duration(mut self, name: &str, d: Option<Duration>) -> Self {
        let c = &mut self.config;
        match name {
            "drain_delay_ms" => c.drain_delay = d.unwrap_or_default(),
            "announce_settle_ms" => c.announce_settle = d.unwrap_or_default(),
            "drain_timeout_ms" => c.drain_timeout = d.unwrap_or_default(),
            "close_timeout_ms" => c.close_timeout = d.unwrap_or_default(),
            "grace_period_ms" => c.grace_period = d,
            "progress_interval_ms" => c.progress_interval = d,
            "connection_grace_ms" => c.connection_grace = d.unwrap_or_default(),
            "same_signal_window_ms" => c.escalation.same_signal_window = d.unwrap_or_default(),
            _ => unreachable!("{name} is not a duration of the schema"),
        }
        self
    }

    fn set_count(mut self, name: &str, n: Option<u32>) -> Self {
        let c = &mut self.config;
        match name {
            "announce_probes" => c.announce_probes = n,
            "force_at" => c.escalation.force_at = n,
            "terminate_at" => c.escalation.terminate_at = n,
            _ => unreachable!("{name} is not a count of the schema"),
        }
        self
    }
}

/// Milliseconds to a duration: finite and not negative; past the longest timeout it
/// saturates there and the build refuses it with its reason.
fn millis(n: f64) -> Option<Duration> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let cap = (crate::config::MAX_TIMEOUT.as_millis() as f64) * 2.0;
    Some(Duration::from_secs_f64(n.min(cap) / 1000.0))
}

fn count(n: f64) -> Option<u32> {
    (n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64).then_some(n as u32)
}

fn signal_number(v: &OptionValue) -> Option<i32> {
    match v {
        OptionValue::Number(n) if n.fract() == 0.0 && (1.0..=64.0).contains(n) => Some(*n as i32),
        OptionValue::Text(t) => {
            let t = t.trim();
            let name = if t.starts_with("SIG") {
                t.to_string()
            } else {
                format!("SIG{t}")
            };
            (1..=64).find(|&n| crate::report::signal_name(n) == name.to_ascii_uppercase())
        }
        _ => None,
    }
}

/// One long-lived kind of the schema's list: `[kind, grace_ms, notify_at]`. A
/// milestone the core refuses for a policy (closing, done) is passed on so the build
/// refuses it naming `long_lived`.
fn long_lived_item(v: &OptionValue) -> Option<(String, crate::LongLived)> {
    use crate::report::Milestone;
    let OptionValue::List(parts) = v else {
        return None;
    };
    let (kind, grace, at) = match parts.as_slice() {
        [OptionValue::Text(k), OptionValue::Number(g)] => (k, *g, None),
        [OptionValue::Text(k), OptionValue::Number(g), OptionValue::Null] => (k, *g, None),
        [OptionValue::Text(k), OptionValue::Number(g), OptionValue::Text(a)] => {
            (k, *g, Some(a.as_str()))
        }
        _ => return None,
    };
    let mut policy = crate::LongLived::new(millis(grace)?);
    policy = match at {
        None | Some("quiescing") => policy,
        Some("draining") => policy.notify_at(Milestone::Draining),
        Some("closing") => policy.notify_at(Milestone::Closing),
        Some("done") => policy.notify_at(Milestone::Done),
        Some(_) => return None,
    };
    Some((kind.clone(), policy))
}

/// An environment variable's text, read as the field's type.
fn parse_text(spec: &OptionSpec, text: &str) -> OptionValue {
    match spec.kind {
        OptionKind::OptionalMillis | OptionKind::OptionalCount
            if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("null") =>
        {
            OptionValue::Null
        }
        OptionKind::Word(_) => OptionValue::Text(text.to_ascii_lowercase()),
        OptionKind::Switch => match text.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => OptionValue::Bool(true),
            "off" | "false" | "0" | "no" => OptionValue::Bool(false),
            _ => OptionValue::Text(text.to_string()),
        },
        OptionKind::LongLived => OptionValue::List(
            text.split(',')
                .map(|item| {
                    let mut parts = item.trim().split(':');
                    let kind = OptionValue::Text(parts.next().unwrap_or("").to_string());
                    let grace = match parts.next().map(|g| g.trim().parse::<f64>()) {
                        Some(Ok(n)) => OptionValue::Number(n),
                        other => OptionValue::Text(format!("{other:?}")),
                    };
                    let mut v = vec![kind, grace];
                    v.extend(parts.map(|a| OptionValue::Text(a.trim().to_string())));
                    OptionValue::List(v)
                })
                .collect(),
        ),
        OptionKind::Signals => OptionValue::List(
            text.split(',')
                .map(|s| match s.trim().parse::<f64>() {
                    Ok(n) => OptionValue::Number(n),
                    Err(_) => OptionValue::Text(s.trim().to_string()),
                })
                .collect(),
        ),
        _ => match text.parse::<f64>() {
            Ok(n) => OptionValue::Number(n),
            Err(_) => OptionValue::Text(text.to_string()),
        },
    }
}

fn show(v: &OptionValue) -> String {
    match v {
        OptionValue::Null => "null".into(),
        OptionValue::Number(n) => n.to_string(),
        OptionValue::Text(t) => format!("{t:?}"),
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::List(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn every_field_of_the_schema_can_be_set() {
        let b = Builder::default()
            .set("preset", OptionValue::Text("heroku".into()))
            .and_then(|b| b.set("drain_delay_ms", OptionValue::Number(500.0)))
            .and_then(|b| b.set("announce_probes", OptionValue::Number(2.0)))
            .and_then(|b| b.set("announce_settle_ms", OptionValue::Number(50.0)))
            .and_then(|b| b.set("drain_timeout_ms", OptionValue::Number(1500.5)))
            .and_then(|b| b.set("close_timeout_ms", OptionValue::Number(700.0)))
            .and_then(|b| b.set("grace_period_ms", OptionValue::Null))
            .and_then(|b| b.set("force_at", OptionValue::Null))
            .and_then(|b| b.set("terminate_at", OptionValue::Number(4.0)))
            .and_then(|b| b.set("forced_exit_code", OptionValue::Number(9.0)))
            .and_then(|b| b.set("close_strategy", OptionValue::Text("gradual".into())))
            .and_then(|b| {
                b.set(
                    "signals",
                    OptionValue::List(vec![
                        OptionValue::Text("SIGUSR2".into()),
                        OptionValue::Number(15.0),
                    ]),
                )
            })
            .and_then(|b| b.set("connection_grace_ms", OptionValue::Number(0.0)))
            .and_then(|b| b.set("same_signal_window_ms", OptionValue::Number(250.0)))
            .and_then(|b| b.set("progress_interval_ms", OptionValue::Null))
            .and_then(|b| b.set("systemd_notify", OptionValue::Bool(true)))
            .and_then(|b| {
                b.set(
                    "long_lived",
                    OptionValue::List(vec![
                        OptionValue::List(vec![
                            OptionValue::Text("websocket".into()),
                            OptionValue::Number(5000.0),
                        ]),
                        OptionValue::List(vec![
                            OptionValue::Text("sse".into()),
                            OptionValue::Number(250.0),
                            OptionValue::Text("draining".into()),
                        ]),
                    ]),
                )
            })
            .unwrap();
        let c = b.config().unwrap();
        assert_eq!(c.drain_delay(), Duration::from_millis(500));
        assert_eq!(c.announce_probes(), Some(2));
        assert_eq!(c.drain_timeout(), Duration::from_micros(1_500_500));
        assert_eq!(c.grace_period(), None);
        assert_eq!(c.escalation().force_at, None);
        assert_eq!(c.escalation().terminate_at, Some(4));
        assert_eq!(c.forced_exit_code(), 9);
        assert_eq!(c.close_strategy(), CloseStrategy::Gradual);
        assert_eq!(c.signals(), &[12, 15]);
        assert_eq!(c.connection_grace(), Duration::ZERO);
        assert_eq!(c.progress_interval(), None);
        assert!(c.systemd_notify());
        // The preset's own, not set again after it.
        assert_eq!(c.close_timeout(), Duration::from_millis(700));
        assert_eq!(
            c.escalation().same_signal_window,
            Duration::from_millis(250)
        );
        assert_eq!(
            c.long_lived(),
            &[
                (
                    "websocket".to_string(),
                    crate::LongLived::new(Duration::from_secs(5))
                ),
                (
                    "sse".to_string(),
                    crate::LongLived::new(Duration::from_millis(250))
                        .notify_at(crate::Milestone::Draining)
                ),
            ]
        );
        assert_eq!(
            OPTIONS.len(),
            17,
            "a new field needs its schema entry and a test"
        );
    }

    #[test]
    fn wrong_values_are_refused_naming_the_field() {
        let cases = [
            ("drain_timeout_ms", OptionValue::Number(-1.0)),
            ("drain_timeout_ms", OptionValue::Text("10s".into())),
            ("drain_timeout_ms", OptionValue::Number(f64::NAN)),
            ("grace_period_ms", OptionValue::Text("none".into())),
            ("announce_probes", OptionValue::Number(1.5)),
            ("force_at", OptionValue::Number(-2.0)),
            ("forced_exit_code", OptionValue::Number(1.5)),
            ("close_strategy", OptionValue::Text("slow".into())),
            ("close_strategy", OptionValue::Number(1.0)),
            ("signals", OptionValue::Text("SIGTERM".into())),
            (
                "signals",
                OptionValue::List(vec![OptionValue::Text("SIGNOPE".into())]),
            ),
        ];
        for (name, v) in cases {
            let e = Builder::default().set(name, v.clone()).unwrap_err();
            assert_eq!(e.field(), name, "{v:?}: {e}");
        }
        let e = Builder::default()
            .set("drainTimeout", OptionValue::Number(1.0))
            .unwrap_err();
        assert_eq!(e.field(), "options");
        assert!(e.reason().contains("drain_timeout_ms"), "{e}");
        // In range for the schema, refused by the whole configuration: at build.
        let b = Builder::default()
            .set("drain_timeout_ms", OptionValue::Number(0.0))
            .unwrap();
        assert_eq!(b.build().unwrap_err().field(), "drain_timeout");
    }

    #[test]
    fn environment_variables_set_fields_and_errors_name_the_variable() {
        let b = Builder::default()
            .env_from(env(&[
                ("SHUTDOWN_DRAIN_TIMEOUT_MS", " 12000 "),
                ("SHUTDOWN_GRACE_PERIOD_MS", "none"),
                ("SHUTDOWN_SIGNALS", "SIGTERM, INT"),
                ("SHUTDOWN_CLOSE_STRATEGY", "Gradual"),
                ("SHUTDOWN_FORCE_AT", ""),
            ]))
            .unwrap();
        let c = b.config().unwrap();
        assert_eq!(c.drain_timeout(), Duration::from_secs(12));
        assert_eq!(c.grace_period(), None);
        assert_eq!(c.signals(), &[15, 2]);
        assert_eq!(c.close_strategy(), CloseStrategy::Gradual);
        assert_eq!(c.escalation().force_at, Some(2), "empty counts as unset");
        let b = Builder::default()
            .env_from(env(&[(
                "SHUTDOWN_LONG_LIVED",
                "websocket:5000, sse:250:draining",
            )]))
            .unwrap();
        assert_eq!(b.config().unwrap().long_lived().len(), 2);
        let e = Builder::default()
            .env_from(env(&[("SHUTDOWN_LONG_LIVED", "websocket:soon")]))
            .unwrap_err();
        assert_eq!(e.field(), "SHUTDOWN_LONG_LIVED");
        let e = Builder::default()
            .set(
                "long_lived",
                OptionValue::List(vec![OptionValue::List(vec![
                    OptionValue::Text("ws".into()),
                    OptionValue::Number(1.0),
                    OptionValue::Text("closing".into()),
                ])]),
            )
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(
            e.field(),
            "long_lived",
            "refused at build, naming the field"
        );
        let e = Builder::default()
            .env_from(env(&[("SHUTDOWN_CLOSE_TIMEOUT_MS", "5s")]))
            .unwrap_err();
        assert_eq!(e.field(), "SHUTDOWN_CLOSE_TIMEOUT_MS");
        assert_eq!(e.option(), Some("close_timeout_ms"));
        assert!(e.reason().contains("\"5s\""), "{e}");
    }

    #[test]
    fn the_environment_applies_its_preset_first_and_its_other_variables_over_it() {
        let c = Builder::default()
            .env_from(env(&[
                ("SHUTDOWN_DRAIN_TIMEOUT_MS", "12000"),
                ("SHUTDOWN_PRESET", "kubernetes"),
                ("SHUTDOWN_GRACE_PERIOD_MS", "60000"),
                ("SHUTDOWN_SYSTEMD_NOTIFY", "yes"),
            ]))
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.drain_timeout(), Duration::from_secs(12));
        assert_eq!(c.grace_period(), Some(Duration::from_secs(60)));
        assert_eq!(c.drain_delay(), Duration::from_secs(5), "the preset's");
        assert!(c.systemd_notify());
        let e = Builder::default()
            .env_from(env(&[("SHUTDOWN_PRESET", "k8s")]))
            .unwrap_err();
        assert_eq!(e.field(), "SHUTDOWN_PRESET");
        assert!(e.reason().contains("one of kubernetes, docker, pm2"), "{e}");
        let e = Builder::default()
            .env_from(env(&[("SHUTDOWN_SYSTEMD_NOTIFY", "maybe")]))
            .unwrap_err();
        assert_eq!(e.field(), "SHUTDOWN_SYSTEMD_NOTIFY");
        // A preset's budgets that do not fit a shorter window are refused at start.
        let e = Builder::default()
            .env_from(env(&[
                ("SHUTDOWN_PRESET", "kubernetes"),
                ("SHUTDOWN_GRACE_PERIOD_MS", "20000"),
            ]))
            .unwrap()
            .config()
            .unwrap_err();
        assert_eq!(e.field(), "grace_period");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_told_from_one_out_of_range() {
        let values = [
            OptionValue::Null,
            OptionValue::Number(-1.0),
            OptionValue::Text("x".into()),
            OptionValue::List(vec![OptionValue::Text("SIGNOPE".into())]),
            OptionValue::Bool(true),
        ];
        for spec in OPTIONS {
            let mut accepted = 0;
            for v in &values {
                let accepts = spec.kind.accepts(v);
                match Builder::default().set(spec.name, v.clone()) {
                    Err(e) => {
                        assert_eq!(e.field(), spec.name);
                        assert_eq!(e.option(), Some(spec.name));
                    }
                    Ok(_) => assert!(accepts, "{}: {v:?} is set, so of its type", spec.name),
                }
                accepted += usize::from(accepts);
            }
            assert!(accepted >= 1, "{}: some value is of its type", spec.name);
        }
        assert!(OptionKind::OptionalMillis.accepts(&OptionValue::Null));
        assert!(!OptionKind::Millis.accepts(&OptionValue::Null));
        assert!(OptionKind::Integer.accepts(&OptionValue::Number(1.5)));
        assert!(!OptionKind::Word(&["a"]).accepts(&OptionValue::Number(1.0)));
        assert!(!OptionKind::Signals.accepts(&OptionValue::Text("SIGTERM".into())));
        let e = Builder::default()
            .set("drainTimeout", OptionValue::Number(1.0))
            .unwrap_err();
        assert_eq!(e.option(), None);
    }
}
