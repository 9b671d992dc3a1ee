//! The callback gate: C callbacks run until the engine is freed, and shutdown_free()
//! waits for the ones running on other threads.

use std::cell::RefCell;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

// ----- the callback gate ------------------------------------------------------------

thread_local! {
    /// The gates this thread is inside of (by address; with the id of a bounded
    /// entry), innermost last.
    static INSIDE: RefCell<Vec<(usize, Option<u64>)>> = const { RefCell::new(Vec::new()) };
}

/// Lets C callbacks run until the engine is freed, and lets `shutdown_free` wait for
/// the ones running on other threads, so that no callback runs once it returns.
pub(crate) struct Gate {
    pub(crate) state: Mutex<GateState>,
    pub(crate) idle: Condvar,
}

pub(crate) struct GateState {
    pub(crate) closed: bool,
    /// Callbacks in progress that `close` waits for until they return.
    pub(crate) active: usize,
    /// Callbacks in progress that `close` waits for until their deadline at most
    /// (blocking hooks: one that overruns is abandoned by the core, and must not hang
    /// `shutdown_free` either), by id.
    pub(crate) bounded: Vec<(u64, Instant)>,
    pub(crate) next_id: u64,
}

pub(crate) struct Inside<'a> {
    pub(crate) gate: &'a Gate,
    pub(crate) bounded: Option<u64>,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        INSIDE.with(|v| {
            v.borrow_mut().pop();
        });
        let mut st = lock(&self.gate.state);
        match self.bounded {
            Some(id) => st.bounded.retain(|&(i, _)| i != id),
            None => st.active -= 1,
        }
        self.gate.idle.notify_all();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    pub(crate) fn new() -> Self {
        Gate {
            state: Mutex::new(GateState {
                closed: false,
                active: 0,
                bounded: Vec::new(),
                next_id: 0,
            }),
            idle: Condvar::new(),
        }
    }

    pub(crate) fn addr(&self) -> usize {
        self as *const Gate as usize
    }

    /// Runs `f` (a call into C) unless the engine was freed; `close` waits for it.
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
        self.enter(None, f)
    }

    /// Like [`Gate::call`], but `close` waits for `f` only until `deadline`.
    pub(crate) fn call_until<R>(&self, deadline: Instant, f: impl FnOnce() -> R) -> Option<R> {
        self.enter(Some(deadline), f)
    }

    pub(crate) fn enter<R>(&self, deadline: Option<Instant>, f: impl FnOnce() -> R) -> Option<R> {
        // The check and the count are one step under the lock: a `close` that has
        // begun either sees this callback or keeps it from starting.
        let bounded = {
            let mut st = lock(&self.state);
            if st.closed {
                return None;
            }
            match deadline {
                None => {
                    st.active += 1;
                    None
                }
                Some(d) => {
                    let id = st.next_id;
                    st.next_id += 1;
                    st.bounded.push((id, d));
                    Some(id)
                }
            }
        };
        INSIDE.with(|v| v.borrow_mut().push((self.addr(), bounded)));
        let _inside = Inside {
            gate: self,
            bounded,
        };
        Some(f())
    }

    /// Whether this thread is inside one of this gate's callbacks.
    pub(crate) fn inside(&self) -> usize {
        INSIDE.with(|v| v.borrow().iter().filter(|e| e.0 == self.addr()).count())
    }

    /// No callback starts after this; waits for those running on other threads (the
    /// bounded ones until their deadlines).
    pub(crate) fn close(&self) {
        let (own, own_bounded) = INSIDE.with(|v| {
            let v = v.borrow();
            let mine = v.iter().filter(|e| e.0 == self.addr());
            let own = mine.clone().filter(|e| e.1.is_none()).count();
            let own_bounded: Vec<u64> = mine.filter_map(|e| e.1).collect();
            (own, own_bounded)
        });
        let mut st = lock(&self.state);
        st.closed = true;
        loop {
            let now = Instant::now();
            let next = st
                .bounded
                .iter()
                .filter(|(id, d)| *d > now && !own_bounded.contains(id))
                .map(|&(_, d)| d)
                .min();
            st = match next {
                Some(d) => {
                    self.idle
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None if st.active > own => self.idle.wait(st).unwrap_or_else(|e| e.into_inner()),
                None => break,
            };
        }
    }
}
