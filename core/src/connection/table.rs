//! The connection table: which connections are open, which of them still hold the
//! drain, when an idle one is dismissed, and the boundary reserve.
//!
//! The rule it keeps (the *quiesce boundary*): once admission closes, the drain is
//! over only when every connection accepted before has closed, holds work (a request
//! guard) or has become long-lived. A connection that was idle for at least
//! `connection_grace` is dismissed at once; one that became idle more recently is
//! dismissed when its idleness reaches the grace, so a client that reused it in that
//! moment (its request already on the wire) is served, not reset. While the
//! boundary is held, the table holds one guard of its own (the reserve) so the drain
//! cannot end under such a request, and that request's guard is a child of it.
//!
//! It also decides when the host stops listening (*unlisten*): when admission closes,
//! unless a listener hold keeps the listening sockets open for long-lived work whose
//! clients reach it only over new connections (a long-polling transport hears that it
//! must end on its next poll); then when the last hold is released, and at the latest
//! when the drain ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use event_listener::Event;

use crate::admission::RawGuard;
use crate::shutdown::Inner;

pub(crate) const READING: u8 = 1;
pub(crate) const LONG_LIVED: u8 = 1 << 1;
pub(crate) const DISMISSED: u8 = 1 << 2;
/// Its last response said `Connection: close`: the host closes it after that response.
pub(crate) const CLOSING: u8 = 1 << 3;

const NO_SLOT: usize = usize::MAX;

/// One connection's state, shared by its [`Connection`](super::Connection) and the table.
pub(crate) struct ConnShared {
    pub(crate) id: u64,
    pub(crate) flags: AtomicU8,
    /// Requests in flight on it.
    pub(crate) active: AtomicU32,
    /// Bumped each time it becomes idle: a queued dismissal of an older idleness is stale.
    pub(crate) idle_epoch: AtomicU64,
    /// When it last became idle (accepted, or its last response finished).
    pub(crate) idle_since: Mutex<Instant>,
    /// Its index in the table, `NO_SLOT` once removed (written under the table lock).
    slot: AtomicUsize,
    pub(crate) dismissed: Event,
}

impl ConnShared {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags.load(Ordering::Acquire) & flag != 0
    }

    fn is_idle(&self) -> bool {
        self.active.load(Ordering::Acquire) == 0
            && !self.has(LONG_LIVED | CLOSING | READING | DISMISSED)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    /// Admission is open: nothing is dismissed.
    Open,
    /// Admission closed, the drain goes on: idle connections are dismissed.
    Held,
    /// Closing or later: every connection is dismissed.
    Over,
}

struct TableState {
    conns: Vec<Arc<ConnShared>>,
    /// Open connections that are not long-lived: the boundary waits for them.
    holding: usize,
    boundary: Boundary,
    reserve: Option<RawGuard<Inner>>,
    /// Connections to dismiss once idle long enough: (due, epoch, connection), due
    /// times non-decreasing.
    due: VecDeque<(Instant, u64, Arc<ConnShared>)>,
    /// Listener holds taken and not released.
    listener_holds: usize,
    /// The admission word is closed (`admission_closed`): the last hold's release
    /// says unlisten.
    admission_closed: bool,
    /// The host has been told to stop listening (once).
    unlistened: bool,
}

/// See the module documentation.
pub(crate) struct Table {
    state: Mutex<TableState>,
    next_id: AtomicU64,
    pub(crate) grace: Duration,
}

/// What a table step leaves for the engine to do outside the table's lock.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Connections just dismissed, for the hosts' callbacks.
    pub(crate) dismissed: Vec<u64>,
    /// The reserve, released: drop it outside every lock (it may end the drain).
    pub(crate) released: Option<RawGuard<Inner>>,
    /// The next dismissal falls due then (arm the machine's connection deadline).
    pub(crate) next_due: Option<Instant>,
    /// The host should stop listening now (said once per engine).
    pub(crate) unlisten: bool,
}

impl Table {
    pub(crate) fn new(grace: Duration) -> Self {
        Table {
            state: Mutex::new(TableState {
                conns: Vec::new(),
                holding: 0,
                boundary: Boundary::Open,
                reserve: None,
                due: VecDeque::new(),
                listener_holds: 0,
                admission_closed: false,
                unlistened: false,
            }),
            next_id: AtomicU64::new(1),
            grace,
        }
    }

    fn lock(&self) -> MutexGuard<'_, TableState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an accepted connection. `join`: a guard joining the work in flight,
    /// for the reserve of a boundary whose earlier connections have all closed.
    pub(crate) fn open(
        &self,
        now: Instant,
        join: impl FnOnce() -> Option<RawGuard<Inner>>,
    ) -> (Arc<ConnShared>, Outcome) {
        let shared = Arc::new(ConnShared {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            flags: AtomicU8::new(0),
            active: AtomicU32::new(0),
            idle_epoch: AtomicU64::new(0),
            idle_since: Mutex::new(now),
            slot: AtomicUsize::new(NO_SLOT),
            dismissed: Event::new(),
        });
        let mut st = self.lock();
        shared.slot.store(st.conns.len(), Ordering::Relaxed);
        st.conns.push(shared.clone());
        st.holding += 1;
        let mut out = Outcome::default();
        match st.boundary {
            Boundary::Open => {}
            // Accepted from the backlog after the close: its client connected before.
            // The reserve again if the earlier connections all closed (and released
            // it) while other work kept the drain going: this one holds the boundary
            // now, and a request on it is served. With nothing in flight the drain has
            // ended, and the next step dismisses it.
            Boundary::Held => {
                if st.reserve.is_none() {
                    st.reserve = join();
                }
                let due = now + self.grace;
                st.due.push_back((due, 0, shared.clone()));
                out.next_due = Some(due);
            }
            // Dismissed before the host knows its id: it sees that on the connection
            // itself, not through the callbacks.
            Boundary::Over => {
                shared.flags.fetch_or(DISMISSED, Ordering::AcqRel);
            }
        }
        (shared, out)
    }

    /// The connection was closed by the host.
    pub(crate) fn close(&self, conn: &ConnShared) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        let slot = conn.slot.swap(NO_SLOT, Ordering::Relaxed);
        if slot == NO_SLOT {
            return out;
        }
        st.conns.swap_remove(slot);
        if let Some(moved) = st.conns.get(slot) {
            moved.slot.store(slot, Ordering::Relaxed);
        }
        if !conn.has(LONG_LIVED) {
            st.holding -= 1;
        }
        release_if_free(&mut st, &mut out);
        out
    }

    /// The connection became long-lived (upgraded): it no longer holds the boundary.
    pub(crate) fn long_lived(&self, conn: &ConnShared) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        let prev = conn.flags.fetch_or(LONG_LIVED, Ordering::AcqRel);
        if prev & LONG_LIVED == 0 && conn.slot.load(Ordering::Relaxed) != NO_SLOT {
            st.holding -= 1;
            release_if_free(&mut st, &mut out);
        }
        out
    }

    /// The connection's last response finished and it stays open (keep-alive).
    pub(crate) fn became_idle(&self, conn: &Arc<ConnShared>, now: Instant) -> Outcome {
        let epoch = conn.idle_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        *conn.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = now;
        let mut out = Outcome::default();
        let mut st = self.lock();
        match st.boundary {
            Boundary::Open => {}
            Boundary::Held => {
                let due = now + self.grace;
                st.due.push_back((due, epoch, conn.clone()));
                out.next_due = st.due.front().map(|d| d.0);
            }
            Boundary::Over => dismiss(conn, &mut out),
        }
        out
    }

    /// A guard for a request on a connection while the boundary is held: a child of
    /// the reserve. `None` when the boundary is not held (any more).
    pub(crate) fn boundary_guard(&self) -> Option<RawGuard<Inner>> {
        self.lock().reserve.as_ref().map(RawGuard::child)
    }

    /// Admission closes now (call with `take_reserve` = a guard acquired while it was
    /// still open, before closing it): the boundary is held while connections are open.
    pub(crate) fn begin_boundary(
        &self,
        now: Instant,
        take_reserve: impl FnOnce() -> Option<RawGuard<Inner>>,
    ) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        if st.boundary != Boundary::Open {
            return out;
        }
        st.boundary = Boundary::Held;
        if st.holding > 0 {
            st.reserve = take_reserve();
        }
        let mut recent = Vec::new();
        for conn in &st.conns {
            if !conn.is_idle() {
                continue;
            }
            let since = *conn.idle_since.lock().unwrap_or_else(|e| e.into_inner());
            let due = since + self.grace;
            if due <= now {
                dismiss(conn, &mut out);
            } else {
                recent.push((due, conn.idle_epoch.load(Ordering::Acquire), conn.clone()));
            }
        }
        recent.sort_by_key(|r| r.0);
        st.due.extend(recent);
        out.next_due = st.due.front().map(|d| d.0);
        out
    }

    /// Admission has closed (after `begin_boundary`, once the admission word is
    /// closed: a host never sees unlisten while guards are still admitted): the host
    /// stops listening now unless a listener hold keeps it.
    pub(crate) fn admission_closed(&self) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        st.admission_closed = true;
        if st.listener_holds == 0 {
            unlisten(&mut st, &mut out);
        }
        out
    }

    /// Dismisses the connections whose idleness reached the grace by `now`.
    pub(crate) fn dismiss_due(&self, now: Instant) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        while st.due.front().is_some_and(|d| d.0 <= now) {
            let (_, epoch, conn) = st.due.pop_front().expect("checked above");
            if conn.idle_epoch.load(Ordering::Acquire) == epoch && conn.is_idle() {
                dismiss(&conn, &mut out);
            }
        }
        out.next_due = st.due.front().map(|d| d.0);
        out
    }

    /// Closing began: the boundary is over, every connection left is dismissed and the
    /// reserve released (the drain has ended, so it notifies nothing).
    pub(crate) fn end_boundary(&self) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        if st.boundary == Boundary::Over {
            return out;
        }
        st.boundary = Boundary::Over;
        st.due.clear();
        out.released = st.reserve.take();
        // The drain is over: whatever a hold still waited for is cut.
        unlisten(&mut st, &mut out);
        // Every connection left, including those dismissed earlier that the host kept
        // because a request was arriving on them: the drain is over, cut them all.
        for conn in &st.conns {
            conn.flags.fetch_or(DISMISSED, Ordering::AcqRel);
            conn.dismissed.notify(usize::MAX);
            out.dismissed.push(conn.id);
        }
        out
    }

    /// Takes a listener hold; `false` once the host has been told to stop listening
    /// (nothing is held then).
    pub(crate) fn hold_listener(&self) -> bool {
        let mut st = self.lock();
        if st.unlistened {
            return false;
        }
        st.listener_holds += 1;
        true
    }

    /// Releases a listener hold taken by `hold_listener`: the last one, once admission
    /// has closed, tells the host to stop listening.
    pub(crate) fn release_listener(&self) -> Outcome {
        let mut st = self.lock();
        let mut out = Outcome::default();
        st.listener_holds -= 1;
        if st.listener_holds == 0 && st.admission_closed {
            unlisten(&mut st, &mut out);
        }
        out
    }

    /// Whether the host should keep its listening sockets open.
    pub(crate) fn listening(&self) -> bool {
        !self.lock().unlistened
    }

    /// Whether the reserve is held (it is one guard that is not work).
    pub(crate) fn reserve_held(&self) -> bool {
        self.lock().reserve.is_some()
    }

    /// Connections on which a request is arriving and holding no guard: cut work if
    /// the drain ends now.
    pub(crate) fn reading(&self) -> u64 {
        let st = self.lock();
        st.conns
            .iter()
            .filter(|c| {
                c.has(READING) && !c.has(LONG_LIVED) && c.active.load(Ordering::Acquire) == 0
            })
            .count() as u64
    }

    /// Open connections (for `Shutdown::connections`).
    pub(crate) fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

fn release_if_free(st: &mut TableState, out: &mut Outcome) {
    if st.boundary == Boundary::Held && st.holding == 0 {
        out.released = st.reserve.take();
    }
}

fn unlisten(st: &mut TableState, out: &mut Outcome) {
    if !st.unlistened {
        st.unlistened = true;
        out.unlisten = true;
    }
}

fn dismiss(conn: &Arc<ConnShared>, out: &mut Outcome) {
    let prev = conn.flags.fetch_or(DISMISSED, Ordering::AcqRel);
    if prev & DISMISSED == 0 {
        conn.dismissed.notify(usize::MAX);
        out.dismissed.push(conn.id);
    }
}
