//! Connections: the quiesce-boundary rule, decided in the core for every host.
//!
//! A host registers each accepted connection ([`Shutdown::connection`]) and takes its
//! requests' guards from it ([`Connection::request`]); the core then decides, from
//! what it knows of each connection (idle, a request arriving, busy, long-lived):
//!
//! - a request on a connection accepted before admission closed is served (with
//!   `Connection: close`), even after the close: the drain waits for it;
//! - an idle keep-alive connection is *dismissed* (the host closes it) once admission
//!   has closed and it has been idle for [`connection_grace`]: a client that reused
//!   it just before (its request on the wire) is served, never reset;
//! - the drain is over once every connection has closed, holds work, or became
//!   long-lived, and every guard is released;
//! - when the drain ends (clean or cut short) every connection left is dismissed, and
//!   a connection on which a request was arriving ([`Connection::reading`]) is
//!   counted in the report as aborted work of kind `connection`.
//!
//! The word *dismiss* means only this: the core asks the host to close a connection.
//!
//! [`connection_grace`]: crate::Builder::connection_grace
//!
//! ```
//! use std::time::Duration;
//! use libshutdown::Shutdown;
//!
//! let sd = Shutdown::builder().manual_clock().build()?;
//! let conn = sd.connection(); // at accept
//! let mut req = conn.request().expect("admitted"); // a request arrived on it
//! sd.trigger("deploy"); // admission closes (no announce window)
//! assert!(!req.keep_alive(), "answer with Connection: close");
//! assert!(!req.finish(), "and close the connection after the response");
//! drop(conn); // closed by the host
//! assert_eq!(sd.report().unwrap().exit_code, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod listener;
mod table;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use listener::ListenerHold;
use table::{ConnShared, CLOSING, DISMISSED, LONG_LIVED, READING};
pub(crate) use table::{Outcome, Table};

use crate::kinds::Kind;
use crate::shutdown::{Guard, Shutdown};

/// The kind under which the report counts connections cut while a request was
/// arriving on them.
pub const CONNECTION_KIND: &str = "connection";

/// Identifies a connection of one engine, for hosts that keep their connections in a
/// map (see [`Shutdown::on_dismissed`]). Never reused by that engine.
pub type ConnectionId = u64;

/// An accepted connection, registered with the engine. Dropping it tells the engine
/// the connection is closed.
#[must_use = "dropping a Connection tells the engine it is closed"]
pub struct Connection {
    sd: Shutdown,
    shared: Arc<ConnShared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("active", &self.shared.active.load(Ordering::Relaxed))
            .field("dismissed", &self.is_dismissed())
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(sd: Shutdown, shared: Arc<ConnShared>) -> Self {
        Connection { sd, shared }
    }

    /// This connection's id.
    pub fn id(&self) -> ConnectionId {
        self.shared.id
    }

    /// A request has begun to arrive (its first bytes were read, its headers are not
    /// complete). Optional for hosts that only see complete requests: it makes the
    /// drain wait for that request, and counts it as cut if the drain ends first.
    pub fn reading(&self) {
        self.shared.flags.fetch_or(READING, Ordering::AcqRel);
    }

    /// A request arrived (its head is complete): its guard, or `None` when it must be
    /// refused (answer `503` with `Connection: close`). While Running and during the
    /// announce window it is admitted as [`Shutdown::guard`] is; once admission has
    /// closed, a request on a connection the boundary still holds is admitted too.
    pub fn request(&self) -> Option<Request> {
        self.request_with(None)
    }

    /// Like [`request`](Self::request), the guard labelled with a kind for the report.
    pub fn request_of(&self, kind: Kind) -> Option<Request> {
        self.request_with(Some(kind))
    }

    fn request_with(&self, kind: Option<Kind>) -> Option<Request> {
        let admitted = match kind {
            Some(k) => self.sd.guard_of(k),
            None => self.sd.guard(),
        };
        let guard = admitted.or_else(|| self.sd.boundary_guard(kind))?;
        self.shared.active.fetch_add(1, Ordering::AcqRel);
        self.shared.flags.fetch_and(!READING, Ordering::AcqRel);
        Some(Request {
            guard: Some(guard),
            conn: self.shared.clone(),
            sd: self.sd.clone(),
            keep_alive: None,
        })
    }

    /// Whether the engine asked the host to close this connection (it is idle and the
    /// drain no longer needs it, or the drain is over). A host that finds a request
    /// arriving on it calls [`reading`](Self::reading) instead and serves that request.
    pub fn is_dismissed(&self) -> bool {
        self.shared.has(DISMISSED)
    }

    /// Resolves once the engine dismisses this connection (see
    /// [`is_dismissed`](Self::is_dismissed)); a connection task selects on it.
    pub fn dismissed(&self) -> impl Future<Output = ()> + Send + 'static {
        crate::driver::condition::until(
            self.shared.clone(),
            |shared: &Arc<ConnShared>| &shared.dismissed,
            |shared: &Arc<ConnShared>| shared.has(DISMISSED),
        )
    }

    /// Blocks until the engine dismisses this connection (the twin of
    /// [`dismissed`](Self::dismissed)), for a thread per connection.
    pub fn wait_dismissed(&self) {
        crate::driver::condition::block_until(
            &self.shared.dismissed,
            || self.shared.has(DISMISSED),
            None,
        );
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let out = self.sd.inner().connections.close(&self.shared);
        self.sd.apply_table(out);
    }
}

/// One request on a [`Connection`], holding its guard. Finish it when its response
/// has been sent ([`finish`](Self::finish)); dropping it does the same.
#[must_use = "dropping a Request ends it: the drain stops waiting for it"]
pub struct Request {
    guard: Option<Guard>,
    conn: Arc<ConnShared>,
    sd: Shutdown,
    keep_alive: Option<bool>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("connection", &self.conn.id)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

impl Request {
    /// Whether the response may keep the connection open: `false` means answer with
    /// `Connection: close` (HTTP/2: GOAWAY). Decided once, at the first call (ask when
    /// writing the response head): what the response said is what
    /// [`finish`](Self::finish) does.
    pub fn keep_alive(&mut self) -> bool {
        *self
            .keep_alive
            .get_or_insert_with(|| !(self.sd.should_close() || self.conn.has(DISMISSED | CLOSING)))
    }

    /// A guard for work this request starts that may outlive its response (a job it
    /// queues): a child of the request's guard, so it is admitted even when the request
    /// itself came after admission closed (on a connection of the quiesce boundary),
    /// and labelled like the request. The drain waits for it.
    ///
    /// ```
    /// use libshutdown::Shutdown;
    ///
    /// let sd = Shutdown::builder().manual_clock().build()?;
    /// let conn = sd.connection();
    /// sd.trigger("deploy"); // admission closes; the connection's request is still served
    /// assert!(sd.guard().is_none(), "no new work");
    /// let req = conn.request().expect("a request of the boundary");
    /// let job = req.child(); // the job it queues
    /// assert!(!req.finish(), "answered with Connection: close");
    /// drop(conn);
    /// assert!(sd.report().is_none(), "the drain waits for the job");
    /// drop(job);
    /// assert_eq!(sd.report().unwrap().exit_code, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn child(&self) -> Guard {
        self.guard
            .as_ref()
            .expect("a live request holds its guard")
            .child()
    }

    /// The response was sent. Returns whether the connection stays open: `false`
    /// means the host closes it now (its response said `Connection: close`).
    pub fn finish(mut self) -> bool {
        self.end()
    }

    /// The connection leaves HTTP (a WebSocket upgrade, a CONNECT tunnel): it becomes
    /// long-lived and no longer holds the drain's boundary. The returned guard (labelled
    /// `kind` when given) is the long-lived work; the drain waits for it.
    pub fn upgrade(mut self, kind: Option<Kind>) -> Guard {
        let guard = self.guard.take().expect("a live request holds its guard");
        let long = guard.child_of(kind);
        drop(guard);
        let out = self.sd.inner().connections.long_lived(&self.conn);
        self.conn.active.fetch_sub(1, Ordering::AcqRel);
        self.keep_alive = Some(false);
        self.sd.apply_table(out);
        long
    }

    fn end(&mut self) -> bool {
        let Some(guard) = self.guard.take() else {
            return false;
        };
        let keep = self.keep_alive();
        if !keep {
            self.conn.flags.fetch_or(CLOSING, Ordering::AcqRel);
        }
        let last = self.conn.active.fetch_sub(1, Ordering::AcqRel) == 1;
        if keep && last && !self.conn.has(LONG_LIVED) {
            let now = self.sd.inner().clock.now();
            let out = self.sd.inner().connections.became_idle(&self.conn, now);
            self.sd.apply_table(out);
        }
        // Released last: the connection is idle (or closing) before the drain can end.
        drop(guard);
        keep
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.end();
    }
}
