//! What happened during a shutdown: the reason, the timeline, aborted work, every
//! hook's outcome and the exit code.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Why the shutdown started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", content = "detail", rename_all = "snake_case")
)]
pub enum Reason {
    /// A signal, by name (`"SIGTERM"`).
    Signal(String),
    /// The host asked (`"deploy"`, `"admin endpoint"`).
    Manual(String),
    /// A fatal error in the host.
    Fatal(String),
}

impl Reason {
    /// The reason for signal number `sig`.
    pub fn signal(sig: i32) -> Self {
        Reason::Signal(signal_name(sig))
    }
}

impl From<&str> for Reason {
    fn from(s: &str) -> Self {
        Reason::Manual(s.to_string())
    }
}

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason::Manual(s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Signal(s) => write!(f, "signal {s}"),
            Reason::Manual(s) => write!(f, "manual ({s})"),
            Reason::Fatal(s) => write!(f, "fatal error ({s})"),
        }
    }
}

/// The name of a signal number (`15` -> `"SIGTERM"`); `SIG<n>` for numbers without one.
pub fn signal_name(sig: i32) -> String {
    if let Some(name) = signal_hook::low_level::signal_name(sig) {
        return name.to_string();
    }
    // The two standard Linux signals signal-hook's table leaves out (numbers from the
    // kernel's asm-generic/signal.h, shared by x86 and arm).
    #[cfg(all(
        target_os = "linux",
        any(
            target_arch = "x86",
            target_arch = "x86_64",
            target_arch = "arm",
            target_arch = "aarch64"
        )
    ))]
    match sig {
        16 => return "SIGSTKFLT".to_string(),
        30 => return "SIGPWR".to_string(),
        _ => {}
    }
    format!("SIG{sig}")
}

/// A point on the shutdown timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Milestone {
    /// The drain started: readiness fails (the announce stage).
    Draining,
    /// Admission closed: new work is refused (the quiesce stage).
    Quiescing,
    /// Cleanup hooks started.
    Closing,
    /// The report is final.
    Done,
}

impl Milestone {
    /// The milestone's stable code, the same in every language: 1 draining,
    /// 2 quiescing, 3 closing, 4 done (see [`Event::code`](crate::Event::code)).
    pub fn code(self) -> u32 {
        match self {
            Milestone::Draining => 1,
            Milestone::Quiescing => 2,
            Milestone::Closing => 3,
            Milestone::Done => 4,
        }
    }

    /// The lowercase name used in traces and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Draining => "draining",
            Milestone::Quiescing => "quiescing",
            Milestone::Closing => "closing",
            Milestone::Done => "done",
        }
    }
}

/// One entry of the timeline: a milestone and when it was reached, since the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Transition {
    /// What was reached.
    pub milestone: Milestone,
    /// Time since the first trigger.
    #[cfg_attr(feature = "serde", serde(rename = "at_ms", serialize_with = "ser_ms"))]
    pub at: Duration,
}

/// Why the shutdown was not clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ForceCause {
    /// `drain_timeout` passed with work in flight.
    DrainTimeout,
    /// A repeated trigger skipped the rest of the drain.
    Escalation,
    /// A repeated trigger ended everything at once.
    Terminated,
}

/// How one cleanup hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "status", content = "message", rename_all = "snake_case")
)]
pub enum HookOutcome {
    /// Succeeded.
    Ok,
    /// Returned an error.
    Failed(String),
    /// Panicked (or threw, in another language).
    Panicked(String),
    /// Did not finish within its timeout; it was abandoned.
    TimedOut,
    /// Still running when a repeated trigger ended the Closing phase; it was abandoned.
    Cancelled,
    /// Never started: the close budget ran out, or the process was terminated.
    Skipped,
}

impl HookOutcome {
    /// Whether the hook succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, HookOutcome::Ok)
    }
    /// The lowercase name used in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            HookOutcome::Ok => "ok",
            HookOutcome::Failed(_) => "failed",
            HookOutcome::Panicked(_) => "panicked",
            HookOutcome::TimedOut => "timed_out",
            HookOutcome::Cancelled => "cancelled",
            HookOutcome::Skipped => "skipped",
        }
    }
}

/// One cleanup hook's result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HookReport {
    /// The name given at registration.
    pub name: String,
    /// Its order group.
    pub order: i32,
    /// How it ended.
    pub outcome: HookOutcome,
    /// How long it ran (zero when skipped).
    #[cfg_attr(
        feature = "serde",
        serde(rename = "duration_ms", serialize_with = "ser_ms")
    )]
    pub duration: Duration,
}

/// The final account of a shutdown. [`Display`](fmt::Display) prints it for humans;
/// with the `serde` feature it serializes to JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// What started it.
    pub reason: Reason,
    /// How many triggers arrived (repeats escalate), duplicates not counted.
    pub triggers: u32,
    /// Signal triggers taken for a duplicate delivery of the previous one (the same
    /// signal within [`Escalation::same_signal_window`](crate::Escalation::same_signal_window)):
    /// neither counted in `triggers` nor escalating.
    pub duplicate_triggers: u32,
    /// The milestones reached, in order, with times since the first trigger.
    pub timeline: Vec<Transition>,
    /// Guards in flight when the drain started.
    pub in_flight_at_trigger: u64,
    /// Guards still in flight when the drain was cut short (deadline or escalation),
    /// plus work the host reported cut ([`Shutdown::record_aborted`](crate::Shutdown::record_aborted)).
    pub aborted: u64,
    /// `aborted`, by guard kind, for labelled guards.
    pub aborted_by_kind: BTreeMap<String, u64>,
    /// Each hook, in registration order.
    pub hooks: Vec<HookReport>,
    /// What cut the shutdown short, if anything. A shutdown can be unclean without
    /// being forced: a fatal `reason`, work cut by the host (`aborted`), a failed hook.
    pub forced: Option<ForceCause>,
    /// 0 when clean: nothing forced, nothing aborted, every hook ok, and a reason that
    /// is not fatal. The configured forced exit code otherwise.
    pub exit_code: i32,
}

impl Report {
    /// Clean: everything drained and every hook succeeded.
    pub fn is_clean(&self) -> bool {
        self.exit_code == 0
    }

    /// When a milestone was reached, since the first trigger.
    pub fn reached(&self, m: Milestone) -> Option<Duration> {
        self.timeline
            .iter()
            .find(|t| t.milestone == m)
            .map(|t| t.at)
    }

    /// Time from the first trigger to Done.
    pub fn total(&self) -> Duration {
        self.reached(Milestone::Done).unwrap_or_default()
    }

    /// The report as a JSON object: what the C and Node layers hand out.
    #[cfg(feature = "serde")]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}

#[cfg(feature = "serde")]
fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    // Whole microseconds, so the same duration prints the same in every language.
    s.serialize_f64(d.as_micros() as f64 / 1000.0)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.forced {
            None if self.exit_code == 0 => "clean".to_string(),
            None => {
                let mut why = Vec::new();
                if matches!(self.reason, Reason::Fatal(_)) {
                    why.push("fatal trigger");
                }
                if self.aborted > 0 {
                    why.push("work was cut");
                }
                if self.hooks.iter().any(|h| !h.outcome.is_ok()) {
                    why.push("hooks failed");
                }
                if why.is_empty() {
                    why.push("not clean");
                }
                why.join(", ")
            }
            Some(ForceCause::DrainTimeout) => "forced: drain deadline passed".to_string(),
            Some(ForceCause::Escalation) => "forced: repeated trigger".to_string(),
            Some(ForceCause::Terminated) => "terminated: repeated trigger".to_string(),
        };
        // The first line's shape is parsed by tools (tests/storm): duplicates go below.
        writeln!(
            f,
            "shutdown report: {verdict}, exit code {} (reason: {}, {} trigger{})",
            self.exit_code,
            self.reason,
            self.triggers,
            if self.triggers == 1 { "" } else { "s" }
        )?;
        if self.duplicate_triggers > 0 {
            writeln!(
                f,
                "  duplicate signal deliveries not counted: {}",
                self.duplicate_triggers
            )?;
        }
        for (i, t) in self.timeline.iter().enumerate() {
            let at = t.at.as_secs_f64() * 1e3;
            write!(f, "  {:>10}  at {at:>9.1} ms", t.milestone.as_str())?;
            match self.timeline.get(i + 1) {
                Some(next) => {
                    let lasted = (next.at - t.at).as_secs_f64() * 1e3;
                    writeln!(f, "  (lasted {lasted:.1} ms)")?
                }
                None => writeln!(f)?,
            }
        }
        writeln!(
            f,
            "  in flight at trigger: {}, aborted: {}",
            self.in_flight_at_trigger, self.aborted
        )?;
        for (k, v) in &self.aborted_by_kind {
            writeln!(f, "    aborted {k}: {v}")?;
        }
        for h in &self.hooks {
            write!(
                f,
                "  hook {:<20} order {:>3}  {:<9} {:>8.1} ms",
                h.name,
                h.order,
                h.outcome.as_str(),
                h.duration.as_secs_f64() * 1e3
            )?;
            match &h.outcome {
                HookOutcome::Failed(m) | HookOutcome::Panicked(m) => writeln!(f, "  ({m})")?,
                _ => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// Work in flight at one moment, as the machine is told it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlight {
    /// All guards.
    pub total: u64,
    /// Labelled guards by kind (kinds with zero left out).
    pub by_kind: BTreeMap<String, u64>,
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let r = Report {
            reason: Reason::Manual("say \"hi\"".into()),
            triggers: 1,
            duplicate_triggers: 2,
            timeline: vec![Transition {
                milestone: Milestone::Done,
                at: Duration::from_micros(1500),
            }],
            in_flight_at_trigger: 2,
            aborted: 1,
            aborted_by_kind: [("http".to_string(), 1)].into_iter().collect(),
            hooks: vec![HookReport {
                name: "db".into(),
                order: 0,
                outcome: HookOutcome::Failed("boom".into()),
                duration: Duration::from_millis(3),
            }],
            forced: Some(ForceCause::DrainTimeout),
            exit_code: 1,
        };
        let j = r.to_json();
        assert!(
            j.contains(r#""reason":{"kind":"manual","detail":"say \"hi\""}"#),
            "{j}"
        );
        assert!(
            j.contains(r#""triggers":1,"duplicate_triggers":2,"timeline""#),
            "{j}"
        );
        assert!(
            j.contains(r#""timeline":[{"milestone":"done","at_ms":1.5}]"#),
            "{j}"
        );
        assert!(j.contains(r#""aborted_by_kind":{"http":1}"#), "{j}");
        assert!(
            j.contains(r#""outcome":{"status":"failed","message":"boom"},"duration_ms":3.0"#),
            "{j}"
        );
        assert!(
            j.ends_with(r#""forced":"drain_timeout","exit_code":1}"#),
            "{j}"
        );
        let shown = r.to_string();
        assert!(
            shown.contains("forced: drain deadline passed, exit code 1"),
            "{shown}"
        );
        assert!(
            shown.contains("(reason: manual (say \"hi\"), 1 trigger)\n  duplicate signal deliveries not counted: 2\n"),
            "{shown}"
        );
    }
}
