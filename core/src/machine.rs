//! The sans-IO shutdown state machine.
//!
//! Events go in with the time they happened (`now`); actions come out of
//! [`Machine::poll_action`], and [`Machine::poll_timeout`] says when the machine next
//! wants [`Machine::handle_timeout`]. It never reads a clock, sleeps, spawns or locks,
//! so every scenario runs on a virtual clock and replays exactly.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use libshutdown::machine::{Action, Machine, Phase};
//! use libshutdown::{InFlight, Milestone, Reason, Shutdown};
//!
//! let config = Shutdown::builder().drain_timeout(Duration::from_secs(1)).config().unwrap();
//! let mut m = Machine::new(&config);
//! let t0 = Instant::now();
//! m.trigger(t0, Reason::signal(15), || InFlight { total: 1, ..Default::default() });
//! assert_eq!(m.phase(), Phase::Draining);
//! assert_eq!(m.poll_action(), Some(Action::Milestone(Milestone::Draining)));
//! assert_eq!(m.poll_action(), Some(Action::Milestone(Milestone::Quiescing)));
//! assert_eq!(m.poll_action(), Some(Action::CloseAdmission));
//! // The last guard leaves 10 ms later: no hooks, so Closing and Done follow at once.
//! m.drained(t0 + Duration::from_millis(10));
//! assert_eq!(m.phase(), Phase::Done);
//! assert_eq!(m.report().unwrap().exit_code, 0);
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::long_lived::Streams;
use crate::report::{
    ForceCause, HookOutcome, HookReport, InFlight, Milestone, Reason, Report, Transition,
};

/// The coarse phase, as hosts see it. Monotonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[repr(u8)]
pub enum Phase {
    /// Normal service.
    Running = 0,
    /// Readiness fails; admission closes after the announce window; in-flight work finishes.
    Draining = 1,
    /// Cleanup hooks run.
    Closing = 2,
    /// The report is final.
    Done = 3,
}

impl Phase {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Closing => "closing",
            Phase::Done => "done",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Running,
            1 => Phase::Draining,
            2 => Phase::Closing,
            _ => Phase::Done,
        }
    }
}

/// Identifies a registered hook: its index in registration order.
pub type HookId = usize;

/// What the machine asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A milestone was reached: publish it (phase, readiness, listeners).
    Milestone(Milestone),
    /// Close admission; report [`Machine::drained`] when no guard is left.
    CloseAdmission,
    /// The drain was cut short: fire the cancellation signal, stop waiting for guards.
    Cancel,
    /// Call this hook, after saying so with [`Machine::hook_started`] (which arms its
    /// deadline, and says not to call it if it is no longer due); report
    /// [`Machine::hook_finished`] when it ends.
    StartHook(HookId),
    /// A repeated trigger asked to end the process now (the report is final).
    Terminate,
    /// The connection deadline passed ([`Machine::set_connection_deadline`]): dismiss
    /// the idle connections that are due.
    DismissIdle,
    /// Tell the app to end its long-lived work of this kind (its policy's milestone).
    StreamsEnding(String),
    /// The grace of this long-lived kind ran out: this many of its guards were still
    /// held, now counted as aborted; the host cuts them.
    StreamsCut(String, u64),
    /// Report progress (every `progress_interval` while draining or closing).
    Progress,
    /// Hook `id` is being called now (after [`Machine::hook_started`] said it is due).
    HookCalled(HookId),
    /// Hook `id` reached its outcome ([`Machine::hook_outcome`]).
    HookEnded(HookId),
}

#[derive(Debug, Clone)]
enum HookState {
    Pending,
    /// Its group started: the driver was asked to call it ([`Action::StartHook`]); its
    /// own deadline is armed only once it is called ([`Machine::hook_started`]).
    Starting,
    Running {
        started: Instant,
        deadline: Instant,
    },
    Finished {
        outcome: HookOutcome,
        duration: Duration,
    },
}

#[derive(Debug, Clone)]
struct HookSlot {
    name: String,
    order: i32,
    timeout: Duration,
    state: HookState,
}

/// Why a hook could not be registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// The Closing phase has started; hooks registered now would never run.
    TooLate,
    /// The timeout is zero or longer than `close_timeout`.
    BadTimeout(Duration),
    /// The name is empty or longer than 256 bytes.
    BadName,
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookError::TooLate => f.write_str("cleanup hooks have already started"),
            HookError::BadTimeout(d) => {
                write!(
                    f,
                    "hook timeout {d:?} must be greater than zero and at most close_timeout"
                )
            }
            HookError::BadName => f.write_str("hook name must be 1 to 256 bytes"),
        }
    }
}

impl std::error::Error for HookError {}

/// The state machine. See the [module documentation](self).
#[derive(Debug)]
pub struct Machine {
    drain_delay: Duration,
    announce_probes: Option<u32>,
    announce_settle: Duration,
    drain_timeout: Duration,
    close_timeout: Duration,
    force_at: Option<u32>,
    terminate_at: Option<u32>,
    same_signal_window: Duration,
    forced_exit_code: i32,

    phase: Phase,
    quiescing: bool,
    triggered_at: Option<Instant>,
    reason: Option<Reason>,
    triggers: u32,
    duplicate_triggers: u32,
    /// The previous counted signal trigger: its signal's name and when it came.
    last_signal: Option<(String, Instant)>,
    probes: u32,
    announce_deadline: Option<Instant>,
    drain_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    connection_deadline: Option<Instant>,
    progress_interval: Option<Duration>,
    progress_deadline: Option<Instant>,
    streams: Streams,
    hooks: Vec<HookSlot>,
    forced: Option<ForceCause>,
    in_flight_at_trigger: u64,
    aborted: InFlight,
    timeline: Vec<Transition>,
    actions: VecDeque<Action>,
    report: Option<Report>,
}

impl Machine {
    /// A machine in the Running phase.
    pub fn new(config: &Config) -> Self {
        Machine {
            drain_delay: config.drain_delay,
            announce_probes: config.announce_probes,
            announce_settle: config.announce_settle,
            drain_timeout: config.drain_timeout,
            close_timeout: config.close_timeout,
            force_at: config.escalation.force_at,
            terminate_at: config.escalation.terminate_at,
            same_signal_window: config.escalation.same_signal_window,
            forced_exit_code: config.forced_exit_code,
            phase: Phase::Running,
            quiescing: false,
            triggered_at: None,
            reason: None,
            triggers: 0,
            duplicate_triggers: 0,
            last_signal: None,
            probes: 0,
            announce_deadline: None,
            drain_deadline: None,
            close_deadline: None,
            connection_deadline: None,
            progress_interval: config.progress_interval,
            progress_deadline: None,
            streams: Streams::new(&config.long_lived),
            hooks: Vec::new(),
            forced: None,
            in_flight_at_trigger: 0,
            aborted: InFlight::default(),
            timeline: Vec::new(),
            actions: VecDeque::new(),
            report: None,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether admission has been closed (the quiesce stage or later).
    pub fn is_quiescing(&self) -> bool {
        self.quiescing
    }

    /// When the first trigger arrived.
    pub fn triggered_at(&self) -> Option<Instant> {
        self.triggered_at
    }

    /// The announce window, while it is open: its start and its latest end.
    pub fn announce_window(&self) -> Option<(Instant, Instant)> {
        Some((self.triggered_at?, self.announce_deadline?))
    }

    /// The final report, once Done.
    pub fn report(&self) -> Option<&Report> {
        self.report.as_ref()
    }

    /// Registers a cleanup hook. Hooks with the same `order` run concurrently; groups
    /// run in ascending order.
    pub fn add_hook(
        &mut self,
        name: &str,
        order: i32,
        timeout: Duration,
    ) -> Result<HookId, HookError> {
        if self.phase >= Phase::Closing {
            return Err(HookError::TooLate);
        }
        if name.is_empty() || name.len() > 256 {
            return Err(HookError::BadName);
        }
        if timeout.is_zero() || timeout > self.close_timeout {
            return Err(HookError::BadTimeout(timeout));
        }
        self.hooks.push(HookSlot {
            name: name.to_string(),
            order,
            timeout,
            state: HookState::Pending,
        });
        Ok(self.hooks.len() - 1)
    }

    /// A trigger (signal, manual, fatal). The first starts the drain; repeats escalate
    /// as configured. A signal that is the same signal as the previous counted signal
    /// trigger and comes less than `same_signal_window` after it is that trigger
    /// delivered twice (a Ctrl-C under `npm run`): counted as a duplicate only.
    /// `in_flight` is asked only when the count is needed.
    pub fn trigger(&mut self, now: Instant, reason: Reason, in_flight: impl FnOnce() -> InFlight) {
        if self.phase == Phase::Done {
            log::debug!("shutdown: trigger ({reason}) ignored, already done");
            return;
        }
        if let Reason::Signal(name) = &reason {
            if let Some((last, at)) = &self.last_signal {
                let since = now.saturating_duration_since(*at);
                if last == name && since < self.same_signal_window {
                    self.duplicate_triggers += 1;
                    log::info!(
                        "shutdown: {reason} {since:?} after the same signal: a duplicate \
                         delivery of that trigger (same_signal_window {:?}), not counted",
                        self.same_signal_window
                    );
                    return;
                }
            }
            self.last_signal = Some((name.clone(), now));
        }
        self.triggers += 1;
        if self.phase == Phase::Running {
            log::info!("shutdown: triggered by {reason}");
            self.reason = Some(reason);
            self.triggered_at = Some(now);
            self.in_flight_at_trigger = in_flight().total;
            self.enter_draining(now);
            return;
        }
        let n = self.triggers;
        if self.terminate_at.is_some_and(|t| n >= t) {
            log::warn!("shutdown: trigger #{n} ({reason}): terminating now");
            self.terminate(now, in_flight);
        } else if self.force_at.is_some_and(|f| n >= f) && self.phase == Phase::Draining {
            log::warn!("shutdown: trigger #{n} ({reason}): skipping the rest of the drain");
            self.cut_drain(now, ForceCause::Escalation, in_flight());
        } else if self.force_at.is_some_and(|f| n >= f) && self.phase == Phase::Closing {
            // The operator asked again while hooks run: waiting out a hanging hook's
            // timeout is what they are trying to skip.
            log::warn!("shutdown: trigger #{n} ({reason}): cancelling the remaining hooks");
            self.cut_hooks(now, ForceCause::Escalation);
        } else {
            log::info!(
                "shutdown: trigger #{n} ({reason}) while {}",
                self.phase.as_str()
            );
        }
    }

    /// A readiness probe was answered "not ready". The announce window ends
    /// `announce_settle` after the configured number of probes.
    pub fn readiness_probed(&mut self, now: Instant) {
        if self.phase != Phase::Draining || self.quiescing {
            return;
        }
        self.probes += 1;
        if self.announce_probes != Some(self.probes) {
            return;
        }
        log::info!("shutdown: {} readiness probes saw not-ready", self.probes);
        if self.announce_settle.is_zero() {
            self.enter_quiescing(now);
        } else if let Some(end) = &mut self.announce_deadline {
            *end = (*end).min(now + self.announce_settle);
        }
    }

    /// Work the host cut outside any guard (a connection destroyed while its request
    /// was still arriving): counted as aborted, so the exit code is not 0. Returns
    /// `false` once Done, when the report is final.
    pub fn record_aborted(&mut self, count: u64, kind: Option<&str>) -> bool {
        if self.phase == Phase::Done {
            return false;
        }
        self.count_aborted(count, kind);
        true
    }

    fn count_aborted(&mut self, count: u64, kind: Option<&str>) {
        // Saturating: a host's count is not trusted to stay in range (the C fuzzer
        // passed u64::MAX twice).
        self.aborted.total = self.aborted.total.saturating_add(count);
        if let Some(k) = kind.filter(|_| count > 0) {
            let n = self.aborted.by_kind.entry(k.to_string()).or_default();
            *n = n.saturating_add(count);
        }
    }

    /// The milestones reached so far, with their time since the first trigger.
    pub fn timeline(&self) -> &[Transition] {
        &self.timeline
    }

    /// Work counted as aborted so far.
    pub fn aborted(&self) -> u64 {
        self.aborted.total
    }

    /// The deadline of what the machine waits for now: the announce window, the drain,
    /// or the hooks' budget.
    pub fn phase_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Draining => self.announce_deadline.or(self.drain_deadline),
            Phase::Closing => self.close_deadline,
            _ => None,
        }
    }

    /// The name of a hook.
    pub fn hook_name(&self, id: HookId) -> Option<&str> {
        self.hooks.get(id).map(|h| h.name.as_str())
    }

    /// The name and outcome of a hook that has ended.
    pub fn hook_outcome(&self, id: HookId) -> Option<(&str, &HookOutcome)> {
        match &self.hooks.get(id)?.state {
            HookState::Finished { outcome, .. } => Some((&self.hooks[id].name, outcome)),
            _ => None,
        }
    }

    /// When the next idle connection falls due for dismissal (the host's connection
    /// table keeps the connections; the machine keeps the time). Only during the quiesce
    /// stage; `replace` sets it as given, otherwise the earlier deadline wins.
    pub fn set_connection_deadline(&mut self, at: Option<Instant>, replace: bool) {
        if self.phase != Phase::Draining || !self.quiescing {
            return;
        }
        self.connection_deadline = match (replace, self.connection_deadline, at) {
            (true, _, at) => at,
            (false, Some(a), Some(b)) => Some(a.min(b)),
            (false, a, b) => a.or(b),
        };
    }

    /// The last guard left while admission was closed.
    pub fn drained(&mut self, now: Instant) {
        if self.phase == Phase::Draining && self.quiescing {
            log::info!("shutdown: drained");
            self.enter_closing(now);
        }
    }

    /// The host is about to call hook `id` (after [`Action::StartHook`]): its own
    /// deadline starts now. `false` when it must not be called any more (the close
    /// budget ran out, or the shutdown ended, before the host got to it): it stays
    /// reported as skipped.
    pub fn hook_started(&mut self, now: Instant, id: HookId) -> bool {
        let close_deadline = self.close_deadline.unwrap_or(now);
        let Some(slot) = self.hooks.get_mut(id) else {
            return false;
        };
        if !matches!(slot.state, HookState::Starting) || self.phase != Phase::Closing {
            return false;
        }
        slot.state = HookState::Running {
            started: now,
            deadline: (now + slot.timeout).min(close_deadline),
        };
        self.actions.push_back(Action::HookCalled(id));
        true
    }

    /// A hook ended. Late completions of hooks already timed out are ignored.
    pub fn hook_finished(&mut self, now: Instant, id: HookId, outcome: HookOutcome) {
        let Some(slot) = self.hooks.get_mut(id) else {
            return;
        };
        let HookState::Running { started, .. } = slot.state else {
            log::debug!("shutdown: late result of hook {:?} ignored", slot.name);
            return;
        };
        match &outcome {
            HookOutcome::Ok => log::info!("shutdown: hook {:?} ok", slot.name),
            other => log::warn!("shutdown: hook {:?} {:?}", slot.name, other),
        }
        slot.state = HookState::Finished {
            outcome,
            duration: now.saturating_duration_since(started),
        };
        self.actions.push_back(Action::HookEnded(id));
        self.advance_hooks(now);
    }

    /// When the machine next needs [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let hook_deadline = self
            .hooks
            .iter()
            .filter_map(|h| match h.state {
                HookState::Running { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min();
        [
            self.announce_deadline,
            self.drain_deadline,
            self.close_deadline,
            self.connection_deadline,
            self.progress_deadline,
            self.streams.poll_timeout(),
            hook_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Applies every deadline that has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant, in_flight: impl FnOnce() -> InFlight) {
        // Asked at most once, for the stream cuts and the drain cut of this instant.
        let mut source = Some(in_flight);
        let mut cached: Option<InFlight> = None;
        let mut snap = || {
            cached
                .get_or_insert_with(|| source.take().map(|f| f()).unwrap_or_default())
                .clone()
        };
        if self.announce_deadline.is_some_and(|d| now >= d) {
            self.enter_quiescing(now);
        }
        if self.connection_deadline.is_some_and(|d| now >= d) {
            self.connection_deadline = None;
            self.actions.push_back(Action::DismissIdle);
        }
        if let (Some(d), Some(every)) = (self.progress_deadline, self.progress_interval) {
            if now >= d {
                self.progress_deadline = Some(d + every);
                self.actions.push_back(Action::Progress);
            }
        }
        if self.phase == Phase::Draining {
            for (name, n) in self.streams.due(now, &mut snap) {
                log::warn!("shutdown: long-lived {name:?}: grace over, {n} cut");
                self.count_aborted(n, Some(&name));
                self.actions.push_back(Action::StreamsCut(name, n));
            }
        }
        if self.drain_deadline.is_some_and(|d| now >= d) {
            log::warn!("shutdown: drain deadline passed");
            self.cut_drain(now, ForceCause::DrainTimeout, snap());
            return;
        }
        if self.phase != Phase::Closing {
            return;
        }
        let budget_gone = self.close_deadline.is_some_and(|d| now >= d);
        for (id, slot) in self.hooks.iter_mut().enumerate() {
            if let HookState::Running { started, deadline } = slot.state {
                if budget_gone || now >= deadline {
                    log::warn!("shutdown: hook {:?} timed out", slot.name);
                    slot.state = HookState::Finished {
                        outcome: HookOutcome::TimedOut,
                        duration: now.saturating_duration_since(started),
                    };
                    self.actions.push_back(Action::HookEnded(id));
                }
            }
        }
        if budget_gone {
            self.skip_pending_hooks();
            self.finish(now);
        } else {
            self.advance_hooks(now);
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn reach(&mut self, now: Instant, m: Milestone) {
        let at = now.saturating_duration_since(self.triggered_at.unwrap_or(now));
        self.timeline.push(Transition { milestone: m, at });
        self.actions.push_back(Action::Milestone(m));
        for name in self.streams.reached(m, now) {
            self.actions.push_back(Action::StreamsEnding(name));
        }
    }

    fn enter_draining(&mut self, now: Instant) {
        self.phase = Phase::Draining;
        self.progress_deadline = self.progress_interval.map(|every| now + every);
        self.reach(now, Milestone::Draining);
        if self.drain_delay.is_zero() {
            self.enter_quiescing(now);
        } else {
            self.announce_deadline = Some(now + self.drain_delay);
        }
    }

    fn enter_quiescing(&mut self, now: Instant) {
        if self.quiescing {
            return;
        }
        self.quiescing = true;
        self.announce_deadline = None;
        self.reach(now, Milestone::Quiescing);
        self.actions.push_back(Action::CloseAdmission);
        self.drain_deadline = Some(now + self.drain_timeout);
    }

    fn cut_drain(&mut self, now: Instant, cause: ForceCause, in_flight: InFlight) {
        self.abort_drain(now, cause, in_flight);
        self.enter_closing(now);
    }

    /// Records a drain cut short. A forced jump still passes through every milestone it
    /// skips.
    fn abort_drain(&mut self, now: Instant, cause: ForceCause, in_flight: InFlight) {
        self.enter_quiescing(now);
        self.forced.get_or_insert(cause);
        // Streams counted at their own cut are not counted twice.
        let in_flight = self.streams.uncounted(in_flight);
        // Added, not replaced: work the host already reported cut stays counted.
        self.aborted.total = self.aborted.total.saturating_add(in_flight.total);
        for (k, n) in in_flight.by_kind {
            let total = self.aborted.by_kind.entry(k).or_default();
            *total = total.saturating_add(n);
        }
        self.actions.push_back(Action::Cancel);
    }

    fn enter_closing(&mut self, now: Instant) {
        self.begin_closing(now);
        self.close_deadline = Some(now + self.close_timeout);
        self.advance_hooks(now);
    }

    fn begin_closing(&mut self, now: Instant) {
        self.phase = Phase::Closing;
        self.drain_deadline = None;
        self.connection_deadline = None;
        self.streams.end();
        self.reach(now, Milestone::Closing);
    }

    /// Starts the next order group once the current one has ended; finishes when none
    /// is left.
    fn advance_hooks(&mut self, now: Instant) {
        if self.phase != Phase::Closing {
            return;
        }
        if self
            .hooks
            .iter()
            .any(|h| matches!(h.state, HookState::Starting | HookState::Running { .. }))
        {
            return;
        }
        let next = self
            .hooks
            .iter()
            .filter(|h| matches!(h.state, HookState::Pending))
            .map(|h| h.order)
            .min();
        let Some(order) = next else {
            self.finish(now);
            return;
        };
        for (id, slot) in self.hooks.iter_mut().enumerate() {
            if slot.order == order && matches!(slot.state, HookState::Pending) {
                slot.state = HookState::Starting;
                log::info!("shutdown: running hook {:?}", slot.name);
                self.actions.push_back(Action::StartHook(id));
            }
        }
    }

    /// Hooks never called (pending, or due but not yet called) end as skipped.
    fn skip_pending_hooks(&mut self) {
        for (id, slot) in self.hooks.iter_mut().enumerate() {
            if matches!(slot.state, HookState::Pending | HookState::Starting) {
                slot.state = HookState::Finished {
                    outcome: HookOutcome::Skipped,
                    duration: Duration::ZERO,
                };
                self.actions.push_back(Action::HookEnded(id));
            }
        }
    }

    /// Ends Closing now: running hooks are abandoned as cancelled, pending ones skipped.
    fn cut_hooks(&mut self, now: Instant, cause: ForceCause) {
        self.forced.get_or_insert(cause);
        self.end_running_hooks(now, HookOutcome::Cancelled);
        self.skip_pending_hooks();
        self.finish(now);
    }

    fn end_running_hooks(&mut self, now: Instant, outcome: HookOutcome) {
        for (id, slot) in self.hooks.iter_mut().enumerate() {
            if let HookState::Running { started, .. } = slot.state {
                slot.state = HookState::Finished {
                    outcome: outcome.clone(),
                    duration: now.saturating_duration_since(started),
                };
                self.actions.push_back(Action::HookEnded(id));
            }
        }
    }

    fn terminate(&mut self, now: Instant, in_flight: impl FnOnce() -> InFlight) {
        if self.phase == Phase::Draining {
            // Like `cut_drain`, but no hook starts: there is no time left for them.
            self.abort_drain(now, ForceCause::Terminated, in_flight());
            self.begin_closing(now);
        }
        self.forced = Some(ForceCause::Terminated);
        self.end_running_hooks(now, HookOutcome::TimedOut);
        self.skip_pending_hooks();
        self.finish(now);
        self.actions.push_back(Action::Terminate);
    }

    fn finish(&mut self, now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.close_deadline = None;
        self.progress_deadline = None;
        self.reach(now, Milestone::Done);
        let hooks: Vec<HookReport> = self
            .hooks
            .iter()
            .map(|h| {
                let (outcome, duration) = match &h.state {
                    HookState::Finished { outcome, duration } => (outcome.clone(), *duration),
                    // Unreachable by construction; reported rather than trusted.
                    _ => (HookOutcome::Skipped, Duration::ZERO),
                };
                HookReport {
                    name: h.name.clone(),
                    order: h.order,
                    outcome,
                    duration,
                }
            })
            .collect();
        // A fatal trigger is a crash handled gracefully: the drain may be clean, the
        // process still failed, and supervisors must see that.
        let fatal = matches!(self.reason, Some(Reason::Fatal(_)));
        let clean = self.forced.is_none()
            && !fatal
            && self.aborted.total == 0
            && hooks.iter().all(|h| h.outcome.is_ok());
        let report = Report {
            reason: self
                .reason
                .clone()
                .unwrap_or_else(|| Reason::Manual(String::new())),
            triggers: self.triggers,
            duplicate_triggers: self.duplicate_triggers,
            timeline: self.timeline.clone(),
            in_flight_at_trigger: self.in_flight_at_trigger,
            aborted: self.aborted.total,
            aborted_by_kind: std::mem::take(&mut self.aborted.by_kind),
            hooks,
            forced: self.forced,
            exit_code: if clean { 0 } else { self.forced_exit_code },
        };
        log::info!(
            "shutdown: done in {:?}, exit code {}",
            report.total(),
            report.exit_code
        );
        self.report = Some(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Escalation;
    use crate::Shutdown;

    fn machine(window: Option<Duration>) -> Machine {
        let mut e = Escalation::default();
        if let Some(w) = window {
            e.same_signal_window = w;
        }
        let config = Shutdown::builder()
            .drain_timeout(Duration::from_secs(10))
            .close_timeout(Duration::from_secs(1))
            .escalation(e)
            .config()
            .unwrap();
        Machine::new(&config)
    }

    fn one() -> InFlight {
        InFlight {
            total: 1,
            ..Default::default()
        }
    }

    fn sig(name: &str) -> Reason {
        Reason::Signal(name.to_string())
    }

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_same_signal_within_the_window_is_one_trigger() {
        let mut m = machine(None);
        let t0 = Instant::now();
        m.trigger(t0, sig("SIGINT"), one);
        m.trigger(t0 + ms(2), sig("SIGINT"), one);
        assert_eq!(m.phase(), Phase::Draining, "no escalation");
        m.drained(t0 + ms(300));
        let r = m.report().unwrap();
        assert_eq!((r.triggers, r.duplicate_triggers), (1, 1));
        assert_eq!((r.forced, r.aborted, r.exit_code), (None, 0, 0));
    }

    #[test]
    fn repeats_after_the_window_different_signals_and_manual_triggers_escalate() {
        let t0 = Instant::now();
        // The same signal, 1.5 s later.
        let mut m = machine(None);
        m.trigger(t0, sig("SIGINT"), one);
        m.trigger(t0 + ms(1500), sig("SIGINT"), one);
        assert_eq!(m.phase(), Phase::Done);
        let r = m.report().unwrap();
        assert_eq!((r.triggers, r.duplicate_triggers), (2, 0));
        assert_eq!(r.forced, Some(ForceCause::Escalation));
        // Exactly the window later: no longer within it.
        let mut m = machine(None);
        m.trigger(t0, sig("SIGINT"), one);
        m.trigger(t0 + ms(1000), sig("SIGINT"), one);
        assert_eq!(m.report().unwrap().triggers, 2);
        // SIGTERM then SIGINT, 2 ms apart.
        let mut m = machine(None);
        m.trigger(t0, sig("SIGTERM"), one);
        m.trigger(t0 + ms(2), sig("SIGINT"), one);
        assert_eq!(m.report().unwrap().forced, Some(ForceCause::Escalation));
        // Manual triggers, the same one twice at once.
        let mut m = machine(None);
        m.trigger(t0, "deploy".into(), one);
        m.trigger(t0, "deploy".into(), one);
        assert_eq!(m.report().unwrap().forced, Some(ForceCause::Escalation));
        // A signal right after a manual trigger: nothing to be a duplicate of.
        let mut m = machine(None);
        m.trigger(t0, "deploy".into(), one);
        m.trigger(t0 + ms(2), sig("SIGINT"), one);
        assert_eq!(m.report().unwrap().forced, Some(ForceCause::Escalation));
        // Window zero: off.
        let mut m = machine(Some(Duration::ZERO));
        m.trigger(t0, sig("SIGINT"), one);
        m.trigger(t0, sig("SIGINT"), one);
        let r = m.report().unwrap();
        assert_eq!((r.triggers, r.duplicate_triggers), (2, 0));
        assert_eq!(r.forced, Some(ForceCause::Escalation));
    }

    #[test]
    fn the_window_runs_from_the_counted_trigger() {
        let t0 = Instant::now();
        let mut m = machine(None);
        m.trigger(t0, sig("SIGINT"), one);
        m.trigger(t0 + ms(900), sig("SIGINT"), one); // a duplicate: does not move the window
        assert_eq!(m.phase(), Phase::Draining);
        m.trigger(t0 + ms(1100), sig("SIGINT"), one); // a second press: forces
        assert_eq!(m.phase(), Phase::Done, "no hooks: Closing ends at once");
        let r = m.report().unwrap();
        assert_eq!((r.triggers, r.duplicate_triggers), (2, 1));
        assert_eq!(r.forced, Some(ForceCause::Escalation));
    }

    #[test]
    fn each_press_of_a_relayed_ctrl_c_counts_once() {
        // force_at 2, terminate_at 3, each press delivered twice 2 ms apart; a hook
        // keeps Closing open after the force.
        let t0 = Instant::now();
        let mut m = machine(None);
        let hook = m.add_hook("db", 0, ms(500)).unwrap();
        for at in [0, 2, 1500, 1502] {
            m.trigger(t0 + ms(at), sig("SIGINT"), one);
        }
        assert_eq!(m.phase(), Phase::Closing, "forced once, not terminated");
        while let Some(a) = m.poll_action() {
            if a == Action::StartHook(hook) {
                assert!(m.hook_started(t0 + ms(1502), hook));
            }
        }
        m.trigger(t0 + ms(1600), sig("SIGINT"), one); // 100 ms after the counted press
        assert_eq!(m.phase(), Phase::Closing);
        m.trigger(t0 + ms(2600), sig("SIGINT"), one);
        let r = m.report().unwrap();
        assert_eq!((r.triggers, r.duplicate_triggers), (3, 3));
        assert_eq!(r.forced, Some(ForceCause::Terminated));
        assert!(std::iter::from_fn(|| m.poll_action()).any(|a| a == Action::Terminate));
    }
}
