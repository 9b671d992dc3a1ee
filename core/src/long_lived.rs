//! Long-lived work by kind (WebSockets, event streams, HTTP/2 streams): when the app
//! is told to end it, how long it gets, and what is counted when that runs out.
//!
//! A kind registered with [`Builder::long_lived`](crate::Builder::long_lived) follows
//! its policy: at its milestone (admission closed, by default) the engine emits
//! [`Event::StreamsEnding`](crate::Event::StreamsEnding) for it, so the app ends those
//! streams cleanly (a WebSocket close frame 1001 "going away", an SSE `retry:` hint and
//! the end of the stream); `grace` later, the streams still open are cut:
//! [`Event::StreamsCut`](crate::Event::StreamsCut) says how many, the host destroys
//! them, and the report counts them as aborted under their kind. The drain's own
//! deadline still bounds everything.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::report::{InFlight, Milestone};

/// The drain policy of one long-lived kind: when the app is told to end its streams,
/// and how long they may stay open after that.
///
/// ```
/// use std::time::Duration;
/// use libshutdown::{LongLived, Milestone, Shutdown};
///
/// let sd = Shutdown::builder()
///     .long_lived("websocket", LongLived::new(Duration::from_secs(5)))
///     .long_lived(
///         "sse",
///         LongLived::new(Duration::from_secs(1)).notify_at(Milestone::Draining),
///     )
///     .build()?;
/// let ws = sd.kind("websocket")?; // interned by the builder
/// assert!(!sd.is_ending(ws));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LongLived {
    /// When the app is told to end these streams: [`Milestone::Draining`] (the trigger)
    /// or [`Milestone::Quiescing`] (admission closed, the default).
    pub notify_at: Milestone,
    /// How long after that they may stay open before they are cut.
    pub grace: Duration,
}

impl LongLived {
    /// Told at admission close; cut `grace` later.
    pub fn new(grace: Duration) -> Self {
        LongLived {
            notify_at: Milestone::Quiescing,
            grace,
        }
    }

    /// When the app is told (see [`notify_at`](Self::notify_at) the field).
    pub fn notify_at(mut self, m: Milestone) -> Self {
        self.notify_at = m;
        self
    }
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Waiting,
    Ending {
        deadline: Instant,
    },
    /// Cut, or the drain ended first.
    Over,
}

#[derive(Debug, Clone)]
struct Policy {
    name: String,
    policy: LongLived,
    stage: Stage,
    /// Guards of this kind counted as aborted at its cut.
    cut: u64,
}

/// The machine's side: which kinds are told, when they are cut, what was counted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Streams {
    policies: Vec<Policy>,
}

impl Streams {
    pub(crate) fn new(config: &[(String, LongLived)]) -> Self {
        Streams {
            policies: config
                .iter()
                .map(|(name, policy)| Policy {
                    name: name.clone(),
                    policy: *policy,
                    stage: Stage::Waiting,
                    cut: 0,
                })
                .collect(),
        }
    }

    /// A milestone was reached: the kinds told at it start their grace. Returns them.
    pub(crate) fn reached(&mut self, m: Milestone, now: Instant) -> Vec<String> {
        let mut told = Vec::new();
        for p in &mut self.policies {
            if matches!(p.stage, Stage::Waiting) && p.policy.notify_at == m {
                p.stage = Stage::Ending {
                    deadline: now + p.policy.grace,
                };
                told.push(p.name.clone());
            }
        }
        told
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.policies
            .iter()
            .filter_map(|p| match p.stage {
                Stage::Ending { deadline } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// The kinds whose grace ran out by `now`, with how many of their guards were still
    /// in flight (counted as aborted by the machine).
    pub(crate) fn due(
        &mut self,
        now: Instant,
        in_flight: &mut dyn FnMut() -> InFlight,
    ) -> Vec<(String, u64)> {
        let mut cut = Vec::new();
        for p in &mut self.policies {
            if let Stage::Ending { deadline } = p.stage {
                if deadline <= now {
                    let n = in_flight().by_kind.get(&p.name).copied().unwrap_or(0);
                    p.stage = Stage::Over;
                    p.cut = n;
                    cut.push((p.name.clone(), n));
                }
            }
        }
        cut
    }

    /// The drain is over: no kind is told or cut any more.
    pub(crate) fn end(&mut self) {
        for p in &mut self.policies {
            p.stage = Stage::Over;
        }
    }

    /// What is in flight at a cut of the whole drain, minus the streams already counted
    /// at their own cut (still held while the host destroys them).
    pub(crate) fn uncounted(&self, mut in_flight: InFlight) -> InFlight {
        for p in &self.policies {
            if p.cut == 0 {
                continue;
            }
            if let Some(n) = in_flight.by_kind.get_mut(&p.name) {
                let counted = (*n).min(p.cut);
                *n -= counted;
                in_flight.total = in_flight.total.saturating_sub(counted);
            }
        }
        in_flight.by_kind.retain(|_, n| *n > 0);
        in_flight
    }
}

/// Validates the long-lived kinds of a configuration.
pub(crate) fn validate(kinds: &[(String, LongLived)]) -> Result<(), crate::config::ConfigError> {
    use crate::config::{ConfigError, MAX_TIMEOUT};
    let err = |r: String| Err(ConfigError::new("long_lived", r));
    let mut seen = BTreeMap::new();
    for (name, p) in kinds {
        if name.is_empty() || name.len() > 64 {
            return err(format!("kind name {name:?} must be 1 to 64 bytes"));
        }
        if seen.insert(name.as_str(), ()).is_some() {
            return err(format!("kind {name:?} is given twice"));
        }
        if !matches!(p.notify_at, Milestone::Draining | Milestone::Quiescing) {
            return err(format!(
                "kind {name:?}: notify_at must be draining or quiescing, not {}",
                p.notify_at.as_str()
            ));
        }
        if p.grace > MAX_TIMEOUT {
            return err(format!(
                "kind {name:?}: grace {:?} is longer than the maximum of {MAX_TIMEOUT:?}",
                p.grace
            ));
        }
    }
    if kinds.len() > crate::kinds::MAX_KINDS {
        return err(format!("at most {} kinds", crate::kinds::MAX_KINDS));
    }
    Ok(())
}
