//! The engine's one event stream: everything a host may need to act on or show, in
//! the machine's order, each with its time. The C and Node layers fan these out
//! unchanged, with the same codes ([`Event::code`]).

use std::time::Duration;

use crate::connection::ConnectionId;
use crate::kinds::Kind;
use crate::report::{HookOutcome, Milestone};

/// One event of the engine (see [`Shutdown::on_event`](crate::Shutdown::on_event)).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use libshutdown::{Event, Milestone, Shutdown};
///
/// let sd = Shutdown::builder().manual_clock().build()?;
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// sd.on_event(move |_at, e| s.lock().unwrap().push(e.code()));
/// sd.trigger("deploy");
/// let codes = seen.lock().unwrap().clone();
/// assert_eq!(codes.first(), Some(&Event::Milestone(Milestone::Draining).code()));
/// assert_eq!(codes.last(), Some(&Event::Milestone(Milestone::Done).code()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A milestone was reached.
    Milestone(Milestone),
    /// The cancellation signal fired (the drain was cut short, or Done).
    Cancelled,
    /// A cleanup hook was called.
    HookStarted {
        /// The hook's name.
        name: String,
    },
    /// A cleanup hook reached its outcome (including `skipped`).
    HookFinished {
        /// The hook's name.
        name: String,
        /// What happened.
        outcome: HookOutcome,
    },
    /// These connections are dismissed: close them (see [`Connection`](crate::Connection)).
    Dismissed(Vec<ConnectionId>),
    /// End the long-lived work of this kind now, cleanly (see [`LongLived`](crate::LongLived)).
    StreamsEnding(Kind),
    /// The grace of this long-lived kind ran out: cut what is left of it; `count` of
    /// its guards were still held and are counted as aborted.
    StreamsCut {
        /// The kind.
        kind: Kind,
        /// Guards of it still held at the cut.
        count: u64,
    },
    /// A repeated trigger ended everything: the report is final, the process should
    /// exit now.
    Terminate,
    /// The drain's progress (every [`progress_interval`](crate::Builder::progress_interval)).
    Progress(crate::Progress),
    /// Stop listening: close the listening sockets (admission has closed and no
    /// [`ListenerHold`](crate::ListenerHold) keeps them open, or the drain is over).
    /// Once per engine, after the quiescing milestone.
    Unlisten,
}

impl Event {
    /// The event's stable code, the same in every language: milestones 1 to 4
    /// (draining, quiescing, closing, done), then 5 cancelled, 6 hook started, 7 hook
    /// finished, 8 dismissed, 9 streams ending, 10 streams cut, 11 terminate, 12 progress,
    /// 13 unlisten.
    pub fn code(&self) -> u32 {
        match self {
            Event::Milestone(m) => m.code(),
            Event::Cancelled => 5,
            Event::HookStarted { .. } => 6,
            Event::HookFinished { .. } => 7,
            Event::Dismissed(_) => 8,
            Event::StreamsEnding(_) => 9,
            Event::StreamsCut { .. } => 10,
            Event::Terminate => 11,
            Event::Progress(_) => 12,
            Event::Unlisten => 13,
        }
    }

    /// The event's name in snake case (`"draining"`, `"hook_finished"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Milestone(m) => m.as_str(),
            Event::Cancelled => "cancelled",
            Event::HookStarted { .. } => "hook_started",
            Event::HookFinished { .. } => "hook_finished",
            Event::Dismissed(_) => "dismissed",
            Event::StreamsEnding(_) => "streams_ending",
            Event::StreamsCut { .. } => "streams_cut",
            Event::Terminate => "terminate",
            Event::Progress(_) => "progress",
            Event::Unlisten => "unlisten",
        }
    }
}

/// A callback of the event stream: the engine's time since it was built, and the event.
pub(crate) type EventCallback = std::sync::Arc<dyn Fn(Duration, &Event) + Send + Sync>;
