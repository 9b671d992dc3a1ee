//! The per-request path of the addon: admitting and releasing guards, opening and
//! closing connections, taking and finishing their requests. One `Rc` shared by the
//! engine object and the plain functions bound to it (`acquireFn`, `connOpenFn`, ...),
//! so each call is a slab or map operation and one core call, with no allocation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use libshutdown::{Connection, Kind, ListenerHold, Request, Shutdown};

use crate::events::Shared;
use crate::slots::{Slab, Slots};

/// What the per-request path needs: the engine, the slab, the queue's pending flag.
/// Shared by [`NativeShutdown`] and the closures of
/// [`NativeShutdown::acquire_fn`] / [`NativeShutdown::release_fn`].
pub(crate) struct Hot {
    pub(crate) sd: Shutdown,
    pub(crate) slab: RefCell<Slab>,
    pub(crate) shared: Arc<Shared>,
    /// The connections JavaScript registered, by the core's id.
    pub(crate) conns: RefCell<HashMap<u64, Connection>>,
    /// Their requests in flight, by slot.
    pub(crate) reqs: RefCell<Slots<Request>>,
    /// Listener holds JavaScript took (`holdListener`), by slot.
    pub(crate) holds: RefCell<Slots<ListenerHold>>,
}

impl Hot {
    #[inline]
    pub(crate) fn acquire(&self) -> i32 {
        match self.sd.guard() {
            Some(g) => self.slab.borrow_mut().store(g),
            None => -1,
        }
    }

    #[inline]
    pub(crate) fn release(&self, slot: u32) -> bool {
        // Take it out first: dropping a guard can run milestone callbacks.
        let g = self.slab.borrow_mut().take(slot);
        drop(g);
        self.pending()
    }

    #[inline]
    pub(crate) fn pending(&self) -> bool {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Registers an accepted connection: its id, negated when it came back dismissed
    /// (accepted once the drain is over: the core tells no callback of it).
    #[inline]
    pub(crate) fn open(&self) -> f64 {
        let conn = self.sd.connection();
        let id = conn.id();
        let dismissed = conn.is_dismissed();
        self.conns.borrow_mut().insert(id, conn);
        if dismissed {
            -(id as f64)
        } else {
            id as f64
        }
    }

    /// The connection was closed; returns whether events are pending.
    #[inline]
    pub(crate) fn close(&self, id: f64) -> bool {
        // Taken out first: dropping it can end the drain (callbacks queue events).
        let conn = self.conns.borrow_mut().remove(&(id as u64));
        drop(conn);
        self.pending()
    }

    /// A request arrived on connection `id`: a request slot, or -1 refused (also for
    /// an unknown connection).
    #[inline]
    pub(crate) fn request(&self, id: f64, kind: Option<Kind>) -> i32 {
        let req = {
            let conns = self.conns.borrow();
            let Some(conn) = conns.get(&(id as u64)) else {
                return -1;
            };
            match kind {
                Some(k) => conn.request_of(k),
                None => conn.request(),
            }
        };
        match req {
            Some(r) => self.reqs.borrow_mut().store(r),
            None => -1,
        }
    }

    /// Whether the response of the request in `slot` keeps its connection open
    /// (decided at the first call). `false` for a free slot.
    #[inline]
    pub(crate) fn keep_alive(&self, slot: u32) -> bool {
        self.reqs
            .borrow_mut()
            .get_mut(slot)
            .is_some_and(Request::keep_alive)
    }

    /// The response of the request in `slot` was sent: bit 0 the connection stays
    /// open, bit 1 events are pending.
    #[inline]
    pub(crate) fn finish(&self, slot: u32) -> u32 {
        let req = self.reqs.borrow_mut().take(slot);
        let keep = req.is_some_and(Request::finish);
        u32::from(keep) | (u32::from(self.pending()) << 1)
    }
}
