//! Platform presets: the signals, budgets and notifications that fit a platform's own
//! stop protocol, by the platform's name.
//!
//! Each platform sends one signal and kills the process a fixed time later unless told
//! otherwise; a preset sets the grace period to that time (so a budget that does not fit
//! is refused at start, naming `grace_period`) and divides it among the phases, leaving
//! the last second or so for the process to exit. The numbers and where they come from
//! are in [`PRESETS`] (and the README's table). A preset is a starting point: it is
//! applied where it is named ([`Builder::preset`], the `preset` option,
//! `SHUTDOWN_PRESET`, which the environment applies before its other variables), and
//! every setting after it wins, so a manifest that lengthens the platform's window
//! sets `SHUTDOWN_GRACE_PERIOD_MS` and `SHUTDOWN_DRAIN_TIMEOUT_MS` beside it.
//!
//! ```
//! use libshutdown::Builder;
//!
//! let config = Builder::default().preset("docker")?.config()?;
//! assert_eq!(config.grace_period().unwrap().as_secs(), 10);
//! // A later setting wins over the preset's, within the platform's window.
//! let b = Builder::default().preset("kubernetes")?.set_text("drain_delay_ms", "8000")?;
//! assert_eq!(b.config().unwrap_err().field(), "grace_period"); // 8 + 20 + 4 s > 30 s
//! let b = b.set_text("drain_timeout_ms", "15000")?;
//! assert_eq!(b.config()?.drain_delay().as_millis(), 8000);
//! assert_eq!(Builder::default().preset("heroku-2").unwrap_err().field(), "preset");
//! # Ok::<(), libshutdown::ConfigError>(())
//! ```

use crate::config::{Builder, ConfigError};

/// One platform's preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its name (`SHUTDOWN_PRESET=kubernetes`).
    pub name: &'static str,
    /// What the platform does at a stop, with the number the preset is built on.
    pub platform: &'static str,
    /// Where that number is documented.
    pub source: &'static str,
    /// The settings, as schema name and text (read as an environment variable's
    /// value is), applied in order.
    pub settings: &'static [(&'static str, &'static str)],
}

/// Every preset. The budgets sum to at most the grace period minus about a second
/// (the process's exit, the platform's own clock); what is not listed keeps the
/// builder's value.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "kubernetes",
        platform: "SIGTERM when the pod is deleted, SIGKILL terminationGracePeriodSeconds \
                   later (default 30 s); the endpoint is removed from Services and ingress \
                   controllers at the same time, asynchronously, so traffic keeps arriving \
                   for a few seconds: a 5 s announce window covers that lag without a preStop sleep",
        source: "https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination",
        settings: &[
            ("signals", "SIGTERM,SIGINT"),
            ("grace_period_ms", "30000"),
            ("drain_delay_ms", "5000"),
            ("drain_timeout_ms", "20000"),
            ("close_timeout_ms", "4000"),
        ],
    },
    Preset {
        name: "docker",
        platform: "`docker stop` sends SIGTERM (or the image's STOPSIGNAL), SIGKILL 10 s \
                   later (--timeout / stop_grace_period); no balancer to announce to",
        source: "https://docs.docker.com/reference/cli/docker/container/stop/",
        settings: &[
            ("signals", "SIGTERM,SIGINT"),
            ("grace_period_ms", "10000"),
            ("drain_delay_ms", "0"),
            ("drain_timeout_ms", "7000"),
            ("close_timeout_ms", "2000"),
        ],
    },
    Preset {
        name: "pm2",
        platform: "`pm2 reload`/`stop` sends SIGINT (or the message 'shutdown' with \
                   shutdown_with_message), SIGKILL kill_timeout later (default 1600 ms); \
                   in cluster mode the master stops handing the worker connections itself",
        source: "https://pm2.keymetrics.io/docs/usage/signals-clean-restart/",
        settings: &[
            ("signals", "SIGINT,SIGTERM"),
            ("grace_period_ms", "1600"),
            ("drain_delay_ms", "0"),
            ("drain_timeout_ms", "1000"),
            ("close_timeout_ms", "400"),
        ],
    },
    Preset {
        name: "systemd",
        platform: "`systemctl stop` sends KillSignal= (SIGTERM), SIGKILL TimeoutStopSec= \
                   later (DefaultTimeoutStopSec=90s), extended by EXTEND_TIMEOUT_USEC \
                   from a Type=notify service, which this preset sends",
        source: "https://www.freedesktop.org/software/systemd/man/latest/systemd-system.conf.html#DefaultTimeoutStartSec=",
        settings: &[
            ("signals", "SIGTERM,SIGINT"),
            ("grace_period_ms", "90000"),
            ("drain_delay_ms", "0"),
            ("drain_timeout_ms", "60000"),
            ("close_timeout_ms", "25000"),
            ("systemd_notify", "on"),
        ],
    },
    Preset {
        name: "cloud-run",
        platform: "Cloud Run stops routing to an instance, then sends SIGTERM and SIGKILL \
                   10 s later",
        source: "https://cloud.google.com/run/docs/container-contract#instance-shutdown",
        settings: &[
            ("signals", "SIGTERM,SIGINT"),
            ("grace_period_ms", "10000"),
            ("drain_delay_ms", "0"),
            ("drain_timeout_ms", "7000"),
            ("close_timeout_ms", "2000"),
        ],
    },
    Preset {
        name: "fly",
        platform: "Fly.io sends kill_signal (default SIGINT) and kills the machine \
                   kill_timeout later (default 5 s)",
        source: "https://fly.io/docs/reference/configuration/#runtime-options",
        settings: &[
            ("signals", "SIGINT,SIGTERM"),
            ("grace_period_ms", "5000"),
            ("drain_delay_ms", "0"),
            ("drain_timeout_ms", "3500"),
            ("close_timeout_ms", "1000"),
        ],
    },
    Preset {
        name: "heroku",
        platform: "the dyno manager sends SIGTERM to every process of the dyno, possibly \
                   more than once, and SIGKILL 30 s later: a repeated SIGTERM within the \
                   window is the same stop, never an escalation",
        source: "https://devcenter.heroku.com/articles/dyno-shutdown-behavior",
        settings: &[
            ("signals", "SIGTERM,SIGINT"),
            ("grace_period_ms", "30000"),
            ("drain_delay_ms", "0"),
            ("drain_timeout_ms", "24000"),
            ("close_timeout_ms", "5000"),
            ("same_signal_window_ms", "30000"),
        ],
    },
];

/// The names of [`PRESETS`], as the schema's `preset` field takes them.
pub(crate) const PRESET_NAMES: &[&str] = &[
    "kubernetes",
    "docker",
    "pm2",
    "systemd",
    "cloud-run",
    "fly",
    "heroku",
];

/// The preset of that name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

impl Builder {
    /// Applies a platform's preset (one of [`PRESETS`]) over what the builder holds;
    /// settings made after it win. An unknown name is refused naming the field
    /// `preset`.
    pub fn preset(self, name: &str) -> Result<Self, ConfigError> {
        let Some(p) = preset(name) else {
            return Err(ConfigError::new(
                "preset",
                format!(
                    "{name:?} is not a preset (known: {})",
                    PRESET_NAMES.join(", ")
                ),
            ));
        };
        p.settings
            .iter()
            .try_fold(self, |b, (field, text)| b.set_text(field, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_names_are_the_presets() {
        let names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
        assert_eq!(names, PRESET_NAMES);
    }

    #[test]
    fn every_preset_builds_and_fits_its_grace_period_with_a_second_to_exit() {
        for p in PRESETS {
            let c = Builder::default()
                .preset(p.name)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name))
                .config()
                .unwrap_or_else(|e| panic!("{}: {e}", p.name));
            let budget = c.drain_delay() + c.drain_timeout() + c.close_timeout();
            let grace = c.grace_period().expect("a preset sets the grace period");
            assert!(
                budget + Duration::from_millis(200) <= grace,
                "{}: {budget:?} leaves no time to exit in {grace:?}",
                p.name
            );
            assert!(p.source.starts_with("https://"), "{}", p.name);
        }
    }

    #[test]
    fn the_platform_signal_comes_first_and_is_handled() {
        let sigint = signal_hook::consts::SIGINT;
        let sigterm = signal_hook::consts::SIGTERM;
        for (name, first) in [("pm2", sigint), ("fly", sigint), ("kubernetes", sigterm)] {
            let c = Builder::default().preset(name).unwrap().config().unwrap();
            assert_eq!(c.signals()[0], first, "{name}");
        }
    }

    #[test]
    fn systemd_notifies_and_heroku_takes_repeated_sigterms_as_one_stop() {
        let c = Builder::default()
            .preset("systemd")
            .unwrap()
            .config()
            .unwrap();
        assert!(c.systemd_notify());
        let c = Builder::default()
            .preset("heroku")
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.escalation().same_signal_window, Duration::from_secs(30));
        assert!(!c.systemd_notify());
    }

    #[test]
    fn a_later_setting_wins_and_an_earlier_one_is_replaced() {
        let c = Builder::default()
            .drain_timeout(Duration::from_secs(3))
            .preset("docker")
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.drain_timeout(), Duration::from_secs(7));
        let c = Builder::default()
            .preset("docker")
            .unwrap()
            .drain_timeout(Duration::from_secs(3))
            .config()
            .unwrap();
        assert_eq!(c.drain_timeout(), Duration::from_secs(3));
    }

    #[test]
    fn an_unknown_preset_is_refused_naming_the_field_and_the_known_ones() {
        let e = Builder::default().preset("k8s").unwrap_err();
        assert_eq!(e.field(), "preset");
        assert!(e.reason().contains("kubernetes, docker"), "{}", e.reason());
    }
}
