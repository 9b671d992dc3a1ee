//! What a drain is doing now: a snapshot for metrics and the periodic progress line.
//!
//! While the engine drains or runs its hooks it reports its progress every
//! [`progress_interval`](crate::Builder::progress_interval) (default 1 s): a log line
//! through `log` (target `libshutdown`), and [`Event::Progress`](crate::Event::Progress)
//! for hosts that show it their own way (a logger in Node, a callback in C).
//! [`Shutdown::progress`](crate::Shutdown::progress) takes the same snapshot at any time,
//! for a metrics endpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::machine::Phase;
use crate::report::Transition;

/// A snapshot of the engine; see the [module documentation](crate::Shutdown::progress).
///
/// ```
/// use libshutdown::{Phase, Shutdown};
///
/// let sd = Shutdown::builder().manual_clock().build()?;
/// let http = sd.kind("http")?;
/// let g = sd.guard_of(http).unwrap();
/// sd.trigger("deploy");
/// let p = sd.progress();
/// assert_eq!(p.phase, Phase::Draining);
/// assert!(!p.accepting);
/// assert_eq!(p.in_flight_by_kind.get("http"), Some(&1));
/// assert!(p.to_string().starts_with("draining (admission closed): 1 in flight (http 1)"));
/// drop(g);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Whether admission is still open (Running, or the announce window).
    pub accepting: bool,
    /// Guards in flight.
    pub in_flight: u64,
    /// Labelled guards in flight, by kind.
    pub in_flight_by_kind: BTreeMap<String, u64>,
    /// Connections open.
    pub connections: usize,
    /// Work counted as aborted so far.
    pub aborted: u64,
    /// Until the deadline of what the engine waits for now (the announce window, the
    /// drain, the hooks' budget); `None` while Running or Done.
    pub time_left: Option<Duration>,
    /// The milestones reached so far, with their time since the first trigger.
    pub timeline: Vec<Transition>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phase.as_str())?;
        if self.phase == Phase::Draining {
            f.write_str(if self.accepting {
                " (announce window)"
            } else {
                " (admission closed)"
            })?;
        }
        write!(f, ": {} in flight", self.in_flight)?;
        if !self.in_flight_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .in_flight_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        write!(f, ", {} connections", self.connections)?;
        if self.aborted > 0 {
            write!(f, ", {} aborted", self.aborted)?;
        }
        if let Some(left) = self.time_left {
            write!(f, ", {:.1} s left", left.as_secs_f64())?;
        }
        Ok(())
    }
}
