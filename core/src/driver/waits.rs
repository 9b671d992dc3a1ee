//! Waiting for milestones: futures for async code, blocking twins for threads.

use std::future::Future;
use std::time::{Duration, Instant};

use super::condition::{block_until, until};
use crate::kinds::Kind;
use crate::report::Report;
use crate::shutdown::{
    reached_cancelled, reached_closing, reached_done, reached_draining, reached_quiescing,
};
use crate::Shutdown;

impl Shutdown {
    /// Resolves once `pred` holds for the status word.
    fn until(&self, pred: fn(u8) -> bool) -> impl Future<Output = ()> + Send + 'static {
        until(
            self.clone(),
            |sd: &Shutdown| &sd.inner().changed,
            move |sd: &Shutdown| sd.status_reached(pred),
        )
    }

    fn block_until(&self, pred: fn(u8) -> bool, deadline: Option<Instant>) -> bool {
        block_until(
            &self.inner().changed,
            || self.status_reached(pred),
            deadline,
        )
    }

    /// Resolves when the drain starts (readiness turns false).
    pub fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        self.until(reached_draining)
    }

    /// Resolves when admission closes: stop accepting connections now.
    pub fn quiescing(&self) -> impl Future<Output = ()> + Send + 'static {
        self.until(reached_quiescing)
    }

    /// Resolves when the host should stop listening (close its listening sockets): when
    /// admission closes, unless a [`ListenerHold`](crate::ListenerHold) keeps them open
    /// longer (see [`hold_listener`](Self::hold_listener)), and at the latest when the
    /// drain ends. An accept loop ends on this rather than on
    /// [`quiescing`](Self::quiescing), so one rule decides it in every host.
    ///
    /// ```no_run
    /// # async fn accept_loop(sd: libshutdown::Shutdown, listener: smol::net::TcpListener) {
    /// use futures_lite::future;
    /// let accept = async {
    ///     while let Ok((stream, _)) = listener.accept().await {
    ///         let conn = sd.connection(); // and serve `stream` on a task
    /// #       drop((stream, conn));
    ///     }
    /// };
    /// future::or(accept, sd.unlisten()).await;
    /// drop(listener);
    /// # }
    /// ```
    pub fn unlisten(&self) -> impl Future<Output = ()> + Send + 'static {
        until(
            self.clone(),
            |sd: &Shutdown| &sd.inner().changed,
            |sd: &Shutdown| !sd.should_listen(),
        )
    }

    /// Resolves when cleanup hooks start.
    pub fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        self.until(reached_closing)
    }

    /// Resolves when the shutdown is Done. Someone must drive it ([`run`](Self::run),
    /// [`spawn_driver`](Self::spawn_driver)) unless the clock is virtual.
    pub fn done(&self) -> impl Future<Output = Report> + Send + 'static {
        let sd = self.clone();
        let reached = self.until(reached_done);
        async move {
            reached.await;
            sd.report().expect("Done always has a report")
        }
    }

    /// The cancellation signal: resolves when work should stop early, that is when the
    /// drain is cut short (its deadline passed, or a repeated trigger forced it), or at
    /// the latest when the shutdown is Done.
    ///
    /// ```no_run
    /// # async fn job(sd: libshutdown::Shutdown) {
    /// use futures_lite::future;
    /// let work = async { /* a long export */ };
    /// future::or(work, sd.cancelled()).await;
    /// # }
    /// ```
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.until(reached_cancelled)
    }

    /// Blocks until Done and returns the report.
    pub fn wait(&self) -> Report {
        self.block_until(reached_done, None);
        self.report().expect("Done always has a report")
    }

    /// Blocks until Done or until `timeout` passes.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Report> {
        let deadline = Instant::now().checked_add(timeout);
        if self.block_until(reached_done, deadline) {
            self.report()
        } else {
            None
        }
    }

    /// Blocks until the drain starts.
    pub fn wait_draining(&self) {
        self.block_until(reached_draining, None);
    }

    /// Blocks until admission closes.
    pub fn wait_quiescing(&self) {
        self.block_until(reached_quiescing, None);
    }

    /// Blocks until the host should stop listening (the twin of
    /// [`unlisten`](Self::unlisten)).
    pub fn wait_unlisten(&self) {
        block_until(&self.inner().changed, || !self.should_listen(), None);
    }

    /// Blocks until the cancellation signal fires.
    pub fn wait_cancelled(&self) {
        self.block_until(reached_cancelled, None);
    }

    /// Blocks until cleanup hooks start (the twin of [`closing`](Self::closing)).
    pub fn wait_closing(&self) {
        self.block_until(reached_closing, None);
    }

    /// Blocks until the app is told to end its long-lived work of `kind`, or the drain
    /// is over (the twin of [`ending`](Self::ending)); a stream's thread waits on it.
    pub fn wait_ending(&self, kind: Kind) {
        block_until(&self.inner().changed, || self.ending_reached(kind), None);
    }
}
