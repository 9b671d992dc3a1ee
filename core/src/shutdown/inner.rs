//! The shared block every clone and guard points at (`Inner`, with the machine's
//! `State` behind its lock), and `Builder::build`, which makes it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use event_listener::Event as Notifier;

use crate::admission::{self, DrainSink};
use crate::clock::Clock;
use crate::config::{Builder, Config, ConfigError};
use crate::connection::Table;
use crate::delivery::{Deliveries, EventCallback};
use crate::driver::role::Role;
use crate::hooks::{BoxFuture, HookBody};
use crate::kinds::Kinds;
use crate::machine::{HookId, Machine, Phase};

use super::Shutdown;

pub(crate) struct State {
    pub(crate) machine: Machine,
    pub(super) hooks: Vec<Option<HookBody>>,
    /// The event stream's callbacks.
    pub(super) callbacks: Vec<EventCallback>,
    /// Async hooks waiting for the async driver to poll them.
    pub(crate) async_hooks: Vec<(HookId, BoxFuture)>,
}

// Aligned so a guard's block address leaves 7 low bits free for its kind: that lets
// `raw::guard_into_raw` hand a guard to C as one tagged pointer, with no allocation.
#[repr(align(128))]
pub(crate) struct Inner {
    pub(super) config: Config,
    pub(crate) clock: Clock,
    pub(super) status: AtomicU8,
    pub(super) kinds: Kinds,
    /// Connections and the quiesce boundary (see `connection`).
    pub(crate) connections: Table,
    pub(super) state: Mutex<State>,
    /// Notified on every status change (phase, admission, cancellation).
    pub(crate) changed: Notifier,
    /// Wakes the driver: new deadline, drained, queued async hook.
    pub(crate) wake: Notifier,
    pub(crate) drained_pending: AtomicBool,
    /// Milestone callbacks and hook calls, in the machine's order.
    pub(super) deliveries: Deliveries,
    /// Which one driver ticks (see `driver::role`).
    pub(crate) role: Role,
    /// The engine's own driving is over for good (`retire_engine_driver`).
    pub(crate) retired: AtomicBool,
    /// Whether systemd's notifications are registered (once per engine, however often
    /// they are asked for).
    pub(crate) systemd: AtomicBool,
    /// The latest engine-started driver thread, joined by `retire_engine_driver`.
    pub(crate) engine_thread: Mutex<Option<JoinHandle<()>>>,
    /// Long-lived kinds told to end (bit per kind), and those cut.
    pub(super) ending: AtomicU64,
    pub(super) cut: AtomicU64,
    pub(super) announce_start: AtomicU64,
    pub(super) announce_end: AtomicU64,
    pub(super) advice_seq: AtomicU64,
}

impl DrainSink for Inner {
    fn drained(handle: &admission::Handle<Self>) {
        let inner = handle.get();
        if inner.clock.is_manual() {
            // No driver on a virtual clock: the drain ends on this thread, at this instant.
            let sd = Shutdown {
                handle: handle.clone(),
            };
            sd.with_machine(|m, now, _| m.drained(now));
        } else {
            inner.drained_pending.store(true, Ordering::Release);
            // Every listener: an engine thread that just lost the role may be one.
            inner.wake.notify(usize::MAX);
        }
    }
}

impl Builder {
    /// The validated configuration, without building.
    pub fn config(&self) -> Result<Config, ConfigError> {
        self.validate()
    }

    /// Validates the configuration and builds the engine (in the Running phase).
    pub fn build(self) -> Result<Shutdown, ConfigError> {
        let config = self.validate()?;
        let machine = Machine::new(&config);
        let inner = Inner {
            clock: Clock::new(self.manual_clock),
            status: AtomicU8::new(Phase::Running as u8),
            kinds: Kinds::new(),
            connections: Table::new(config.connection_grace),
            state: Mutex::new(State {
                machine,
                hooks: Vec::new(),
                callbacks: Vec::new(),
                async_hooks: Vec::new(),
            }),
            changed: Notifier::new(),
            wake: Notifier::new(),
            drained_pending: AtomicBool::new(false),
            deliveries: Deliveries::default(),
            role: Role::new(),
            retired: AtomicBool::new(false),
            systemd: AtomicBool::new(false),
            engine_thread: Mutex::new(None),
            ending: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            announce_start: AtomicU64::new(0),
            announce_end: AtomicU64::new(0),
            advice_seq: AtomicU64::new(0),
            config,
        };
        for (name, _) in &inner.config.long_lived {
            // Validated: a name and room for every kind.
            let _ = inner.kinds.intern(name);
        }
        let sd = Shutdown {
            handle: admission::Handle::new(inner),
        };
        if sd.config().systemd_notify() {
            sd.notify_systemd();
        }
        Ok(sd)
    }
}
