//! The event queue: the core's event stream (`Shutdown::on_event`) and the starts of
//! JavaScript hooks, queued with the core's codes and times for `takeEvents`, and the
//! weak wake-up of JavaScript when the core's driver thread queued them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use libshutdown::{Event, HookDone, Kind, Shutdown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;

/// The queue read by [`NativeShutdown::take_events`] holds quadruples `(code, a, b,
/// at_ms)`: `code` is the core's [`Event::code`] (1 to 13), or [`EV_HOOK_START`], the
/// addon's own; `at_ms` the core's time of the event since the engine was built.
pub(crate) const EV_HOOK_START: f64 = 0.0;

/// The wake-up callback: a weak threadsafe function called with the instance id.
pub(crate) type Wake = ThreadsafeFunction<u32, (), u32, Status, false, true>;

/// What the core has produced for JavaScript since it last looked.
pub(crate) struct Queue {
    pub(crate) events: Vec<f64>,
    /// The strings events refer to (kind and hook names), by index, each once.
    pub(crate) names: Vec<String>,
    /// A wake-up is on its way to JavaScript.
    pub(crate) woken: bool,
}

pub(crate) struct Shared {
    pub(crate) id: u32,
    pub(crate) queue: Mutex<Queue>,
    /// Mirrors `!queue.events.is_empty()`, read without the lock.
    pub(crate) pending: AtomicBool,
    /// The JavaScript thread: events caused there are read synchronously, no wake-up.
    pub(crate) js_thread: ThreadId,
    pub(crate) wake: Wake,
    /// Completions of the hooks that have started, by hook id.
    pub(crate) hooks: Mutex<Vec<Option<HookDone>>>,
    /// The engine, for its clock. The engine holds this struct (in its milestone
    /// callback and hooks), so this is a cycle: `NativeShutdown`'s `Drop` breaks it.
    pub(crate) engine: Mutex<Option<Shutdown>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// A JavaScript hook is due: queued now, on the engine's clock.
    pub(crate) fn push_hook_start(&self, id: u32) {
        let at = lock(&self.engine)
            .as_ref()
            .map_or(Duration::ZERO, Shutdown::elapsed);
        self.push(at, |q| q.extend([EV_HOOK_START, f64::from(id), 0.0]));
    }

    /// Queues one event of the core's stream, at the core's time of it.
    pub(crate) fn push_event(&self, at: Duration, e: &Event) {
        let code = f64::from(e.code());
        match e {
            Event::Dismissed(ids) => self.push(at, |q| {
                for &id in ids {
                    q.extend([code, id as f64, 0.0]);
                }
            }),
            Event::StreamsEnding(k) => {
                let name = self.kind_name(*k);
                self.push(at, |q| {
                    let i = q.name(name);
                    q.extend([code, i, 0.0]);
                })
            }
            Event::StreamsCut { kind, count } => {
                let name = self.kind_name(*kind);
                self.push(at, |q| {
                    let i = q.name(name);
                    q.extend([code, i, *count as f64]);
                })
            }
            Event::HookStarted { name } | Event::HookFinished { name, .. } => self.push(at, |q| {
                let i = q.name(name.clone());
                q.extend([code, i, 0.0]);
            }),
            _ => self.push(at, |q| q.extend([code, 0.0, 0.0])),
        }
    }

    fn kind_name(&self, k: Kind) -> String {
        lock(&self.engine)
            .as_ref()
            .map_or_else(String::new, |sd| sd.kind_name(k))
    }

    /// Queues what `fill` adds (each entry's code and two values), at `at`.
    fn push(&self, at: Duration, fill: impl FnOnce(&mut Fill<'_>)) {
        let at = at.as_secs_f64() * 1e3;
        let wake = {
            let mut q = lock(&self.queue);
            let q = &mut *q;
            fill(&mut Fill {
                events: &mut q.events,
                names: &mut q.names,
                at,
            });
            self.pending.store(true, Ordering::Release);
            let off_thread = std::thread::current().id() != self.js_thread;
            let wake = off_thread && !q.woken;
            if wake {
                q.woken = true;
            }
            wake
        };
        if wake {
            // Fails only while the environment is shutting down: nothing to tell then.
            let _ = self
                .wake
                .call(self.id, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// Adds entries to the queue, each with the instant `at`.
struct Fill<'a> {
    events: &'a mut Vec<f64>,
    names: &'a mut Vec<String>,
    at: f64,
}

impl Fill<'_> {
    fn extend(&mut self, entry: [f64; 3]) {
        self.events.extend(entry);
        self.events.push(self.at);
    }

    /// The index of `name` in the queue's strings (added once).
    fn name(&mut self, name: String) -> f64 {
        let i = match self.names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                self.names.push(name);
                self.names.len() - 1
            }
        };
        i as f64
    }
}
