//! systemd's `Type=notify` protocol: the engine tells the service manager when the
//! service is ready, when it stops, how long the stop may still take, and where it is.
//!
//! The datagrams are sent with the [`sd-notify`](https://crates.io/crates/sd-notify)
//! crate (it depends on nothing but `libc`). Without `NOTIFY_SOCKET` in the environment
//! (not started by systemd, or not `Type=notify`) nothing is registered and nothing is
//! sent: that is not an error.
//!
//! # What is sent, and when
//!
//! | when | datagram |
//! |---|---|
//! | [`Shutdown::notify_ready`] (the host's listener is up) | `READY=1`, `STATUS=serving, <n> in flight` |
//! | Draining (the trigger) | `STOPPING=1`, `STATUS=draining, <n> in flight`, `EXTEND_TIMEOUT_USEC=<drain_delay + drain_timeout + margin>` |
//! | Quiescing (admission closed) | `STATUS=quiescing, <n> in flight`, `EXTEND_TIMEOUT_USEC=<drain_timeout + margin>` |
//! | Closing (cleanup hooks) | `STATUS=closing, <n> in flight`, `EXTEND_TIMEOUT_USEC=<close_timeout + margin>` |
//! | a hook starts or finishes | `EXTEND_TIMEOUT_USEC=<what is left of close_timeout + margin>` |
//! | Done | `STATUS=done, <n> in flight`, `EXTEND_TIMEOUT_USEC=<margin>` |
//!
//! `<n>` is [`Shutdown::in_flight`] at that moment. The Done message is sent from the
//! thread that reached Done, possibly just after [`Shutdown::wait`] returned: a host
//! that exits at once may exit before it, which costs nothing (systemd sees the exit). The margin is
//! [`SYSTEMD_EXTEND_MARGIN`] (5 s): the time from the end of a phase to the next message,
//! and from Done to the process's exit.
//!
//! # The extension rule
//!
//! `EXTEND_TIMEOUT_USEC=n` tells systemd that the next message comes within `n` µs; it
//! only ever lengthens the stop beyond `TimeoutStopSec=`, never shortens it. Each
//! message extends by **the time left of the current phase's own budget, plus the
//! margin**. Every phase is bounded by the engine itself (the announce window by
//! `drain_delay`, the quiesce stage by `drain_timeout`, the hooks by `close_timeout`),
//! and the end of each phase is a milestone that sends the next extension: so a drain
//! that is still moving is never SIGKILLed by `TimeoutStopSec`, and a stuck one is not
//! extended past its budget, since the engine forces the phase to end at its deadline
//! and the extension runs out a margin later. That is why no periodic message is
//! needed, and none is sent: this module starts **no thread and no timer**. The
//! longest extension one message carries is `u32::MAX` µs (about 71 minutes; the
//! protocol crate's limit); a longer budget is clamped to it.
//!
//! The whole stop is therefore bounded by `drain_delay + drain_timeout +
//! close_timeout` plus a margin per phase; a unit's `TimeoutStopSec=` at or above
//! `drain_delay + drain_timeout + close_timeout + margin` makes the extensions a
//! safety net rather than a need (see `examples/systemd/README.md`).
//!
//! # Which thread sends
//!
//! The milestone messages are sent from the engine's event stream
//! ([`Shutdown::on_event`]), on the thread that caused the event (the trigger's, the
//! last guard's, the driver's), which must not block. Sending is one `sendto(2)` of a
//! few dozen bytes on a Unix datagram socket: the kernel copies it into the receiver's
//! queue and returns, it does not wait for systemd to read it (it could wait only if
//! systemd's queue were full, that is if systemd stopped reading its notifications
//! altogether). An error (no such socket) is logged with the `log` crate and the
//! shutdown goes on: the notifications are advice to the service manager, never a
//! reason to fail a drain.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::event::Event;
use crate::report::Milestone;
use crate::shutdown::Shutdown;

/// The margin added to every `EXTEND_TIMEOUT_USEC` (see the [module docs](self)): the
/// time from a phase's deadline to the next message, and from Done to the exit.
pub const SYSTEMD_EXTEND_MARGIN: Duration = Duration::from_secs(5);

/// The environment variable systemd sets for a `Type=notify` service.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

fn enabled() -> bool {
    std::env::var_os(NOTIFY_SOCKET).is_some_and(|s| !s.is_empty())
}

#[cfg(unix)]
fn send(lines: &[Line]) -> io::Result<()> {
    use sd_notify::NotifyState;
    let states: Vec<NotifyState<'_>> = lines
        .iter()
        .map(|l| match l {
            Line::Ready => NotifyState::Ready,
            Line::Stopping => NotifyState::Stopping,
            Line::Status(s) => NotifyState::Status(s),
            Line::Extend(d) => NotifyState::ExtendTimeoutUsec(usec(*d)),
        })
        .collect();
    sd_notify::notify(&states)
}

#[cfg(not(unix))]
fn send(_lines: &[Line]) -> io::Result<()> {
    Ok(())
}

/// One line of a notification datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Ready,
    Stopping,
    Status(String),
    Extend(Duration),
}

/// Microseconds for `EXTEND_TIMEOUT_USEC`, clamped to the protocol crate's `u32`.
fn usec(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn status(phase: &str, in_flight: u64) -> Line {
    Line::Status(format!("{phase}, {in_flight} in flight"))
}

/// What the event stream's callback keeps between events.
struct Notifier {
    /// The engine, for the in-flight count; let go at Done (see `notify_systemd`).
    engine: Option<Shutdown>,
    drain_delay: Duration,
    drain_timeout: Duration,
    close_timeout: Duration,
    /// When Closing was reached (engine time), for what is left of `close_timeout`.
    closing_at: Option<Duration>,
}

impl Notifier {
    /// The lines to send for `event` at engine time `at`, if any.
    fn lines(&mut self, at: Duration, event: &Event) -> Vec<Line> {
        let in_flight = self.engine.as_ref().map_or(0, |sd| sd.in_flight());
        let margin = SYSTEMD_EXTEND_MARGIN;
        match event {
            Event::Milestone(Milestone::Draining) => vec![
                Line::Stopping,
                status("draining", in_flight),
                Line::Extend(self.drain_delay + self.drain_timeout + margin),
            ],
            Event::Milestone(Milestone::Quiescing) => vec![
                status("quiescing", in_flight),
                Line::Extend(self.drain_timeout + margin),
            ],
            Event::Milestone(Milestone::Closing) => {
                self.closing_at = Some(at);
                vec![
                    status("closing", in_flight),
                    Line::Extend(self.close_timeout + margin),
                ]
            }
            Event::HookStarted { .. } | Event::HookFinished { .. } => {
                let spent = self
                    .closing_at
                    .map_or(Duration::ZERO, |c| at.saturating_sub(c));
                vec![Line::Extend(
                    self.close_timeout.saturating_sub(spent) + margin,
                )]
            }
            Event::Milestone(Milestone::Done) => {
                // The last message: the callback stays registered but holds the engine
                // no longer, which breaks the cycle engine -> callback -> engine.
                self.engine = None;
                vec![status("done", in_flight), Line::Extend(margin)]
            }
            _ => Vec::new(),
        }
    }
}

impl Shutdown {
    /// Speaks systemd's `Type=notify` protocol for this engine from now on: on each
    /// milestone it sends `STOPPING=1` (at the trigger), `STATUS=<phase>, <n> in
    /// flight` and `EXTEND_TIMEOUT_USEC` (the rule is in the [`systemd`](crate::systemd)
    /// module docs: the time left of the current phase's budget plus
    /// [`SYSTEMD_EXTEND_MARGIN`]). `READY=1` is the host's to send, with
    /// [`notify_ready`](Self::notify_ready), once its listener is up.
    ///
    /// Returns whether systemd is listening (`NOTIFY_SOCKET` is set). Without it
    /// nothing is registered and nothing will be sent: not an error. The messages are
    /// registered once per engine: a second call, or one on an engine built with
    /// [`Builder::systemd_notify`](crate::Builder::systemd_notify) (the `systemd`
    /// preset), adds nothing. It starts no thread: the
    /// messages are sent from the event stream, on the thread that caused each event
    /// (one non-blocking-in-practice datagram each; see the module docs).
    ///
    /// The registered callback holds a clone of the engine (for the in-flight count)
    /// until Done; an engine that is never triggered therefore lives as long as the
    /// process, which under systemd is what it does anyway.
    ///
    /// ```
    /// let sd = libshutdown::Shutdown::builder().build()?;
    /// let systemd = sd.notify_systemd(); // false unless started by systemd
    /// // ... bind the listener, then:
    /// sd.notify_ready()?;
    /// # let _ = systemd;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn notify_systemd(&self) -> bool {
        if !enabled() {
            return false;
        }
        if self.inner().systemd.swap(true, Ordering::AcqRel) {
            return true;
        }
        let config = self.config();
        let notifier = Mutex::new(Notifier {
            engine: Some(self.clone()),
            drain_delay: config.drain_delay(),
            drain_timeout: config.drain_timeout(),
            close_timeout: config.close_timeout(),
            closing_at: None,
        });
        let notifier = Arc::new(notifier);
        self.on_event(move |at, event| {
            let lines = notifier
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .lines(at, event);
            if !lines.is_empty() {
                if let Err(e) = send(&lines) {
                    log::warn!("systemd notification ({}) not sent: {e}", event.name());
                }
            }
        });
        true
    }

    /// Tells systemd the service is ready (`READY=1`, with `STATUS=serving, <n> in
    /// flight`): call it once the listener is bound and accepting, so systemd starts
    /// the units ordered after this one then, not before. Returns `Ok(true)` when sent;
    /// `Ok(false)` without `NOTIFY_SOCKET`, or once the shutdown has started (a
    /// stopping service is not ready); an error when the socket is unreachable.
    ///
    /// Independent of [`notify_systemd`](Self::notify_systemd) (which sends the
    /// shutdown's messages), though the two go together.
    pub fn notify_ready(&self) -> io::Result<bool> {
        if !enabled() || !self.is_ready() {
            return Ok(false);
        }
        send(&[Line::Ready, status("serving", self.in_flight())])?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifier() -> Notifier {
        Notifier {
            engine: None,
            drain_delay: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            closing_at: None,
        }
    }

    #[test]
    fn each_phase_extends_by_its_own_budget_plus_the_margin() {
        let m = SYSTEMD_EXTEND_MARGIN;
        let mut n = notifier();
        let s = Duration::from_secs;
        assert_eq!(
            n.lines(s(0), &Event::Milestone(Milestone::Draining)),
            vec![
                Line::Stopping,
                status("draining", 0),
                Line::Extend(s(22) + m)
            ]
        );
        assert_eq!(
            n.lines(s(2), &Event::Milestone(Milestone::Quiescing)),
            vec![status("quiescing", 0), Line::Extend(s(20) + m)]
        );
        assert_eq!(
            n.lines(s(10), &Event::Milestone(Milestone::Closing)),
            vec![status("closing", 0), Line::Extend(s(5) + m)]
        );
        let hook = Event::HookStarted { name: "db".into() };
        assert_eq!(n.lines(s(13), &hook), vec![Line::Extend(s(2) + m)]);
        assert_eq!(n.lines(s(30), &hook), vec![Line::Extend(m)]);
        assert_eq!(
            n.lines(s(14), &Event::Milestone(Milestone::Done)),
            vec![status("done", 0), Line::Extend(m)]
        );
        assert!(n.lines(s(14), &Event::Cancelled).is_empty());
    }

    #[test]
    fn extensions_are_clamped_to_the_protocol() {
        assert_eq!(usec(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(usec(Duration::from_secs(24 * 3600)), u32::MAX);
    }
}
