//! Signals, only when the host asks. The handler (registered through
//! signal-hook-registry) does one async-signal-safe thing: it sends the signal's
//! number over a socket pair, with `MSG_NOSIGNAL`, to a thread that turns each signal
//! into a trigger.
//!
//! Why not signal-hook's iterator: its handler wakes the thread with a `send()`
//! without `MSG_NOSIGNAL`, and stopping it closes the socket's read end while the
//! handler is still registered, so a signal in that instant killed the process with
//! SIGPIPE (seen under a SIGTERM storm during the C ABI's `shutdown_free`). Here
//! stopping unregisters the handlers first (signal-hook-registry waits for handlers
//! in flight), and only then closes the socket.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use signal_hook::SigId;

use crate::machine::Phase;
use crate::report::{signal_name, ForceCause, Reason};
use crate::Shutdown;

/// How long a signal arriving after Done leaves the host to exit by itself (it is
/// usually printing its report on the way out) before the listener exits for it.
pub const AFTER_DONE_GRACE: Duration = Duration::from_millis(250);

/// Done, yet the host is still here and a signal comes again: never swallowed (the
/// orchestrator or the operator wants the process gone), never a lie either. The
/// shutdown already ended, so the process exits with the report's own code, 0 after
/// a clean drain, and prints the report so it is not lost. Only logged when
/// termination is turned off.
fn after_done(sd: &Shutdown, sig: i32, report: &crate::Report, stopping: &Stopping) {
    if sd.config().escalation().terminate_at.is_none() {
        log::warn!(
            "shutdown: {} after Done ignored (termination is off)",
            signal_name(sig)
        );
        return;
    }
    if stopping.wait(AFTER_DONE_GRACE) {
        // The host is stopping the listener: it is on its way out by itself, which is
        // what the grace was for (its report and exit code win).
        return;
    }
    eprint!("{report}");
    eprintln!(
        "shutdown: {} after Done; exiting with the report's exit code {}",
        signal_name(sig),
        report.exit_code
    );
    std::process::exit(report.exit_code);
}

thread_local! {
    /// Set on the listener's own thread. A flag rather than `thread::current().id()`:
    /// on a thread Rust did not start (a C host's main thread), `current()` allocates
    /// a handle that is never freed (valgrind reports it).
    static ON_SIGNAL_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Raised by `stop`, so a listener thread waiting out [`AFTER_DONE_GRACE`] lets the
/// host's own exit win instead of holding `stop` (and the host) for the rest of it.
#[derive(Default)]
struct Stopping {
    raised: Mutex<bool>,
    cv: Condvar,
}

impl Stopping {
    fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits up to `d`; `true` when raised meanwhile.
    fn wait(&self, d: Duration) -> bool {
        let raised = self.raised.lock().unwrap_or_else(|e| e.into_inner());
        let (raised, _) = self
            .cv
            .wait_timeout_while(raised, d, |r| !*r)
            .unwrap_or_else(|e| e.into_inner());
        *raised
    }
}

/// The byte that tells the listener thread to end (signal numbers start at 1).
const STOP: u8 = 0;

/// The running signal listener. Dropping it leaves it running; [`stop`](Self::stop)
/// removes it.
pub struct SignalListener {
    ids: Vec<SigId>,
    stopping: Arc<Stopping>,
    /// The handlers' end of the socket pair; `None` once stopped.
    wake: Option<UnixStream>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for SignalListener {
    fn drop(&mut self) {
        // Dropped without `stop`: the listener keeps running for the life of the
        // process, so the handlers' socket must stay open.
        if let Some(wake) = self.wake.take() {
            std::mem::forget(wake);
        }
    }
}

impl std::fmt::Debug for SignalListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalListener")
            .field("handlers", &self.ids.len())
            .finish()
    }
}

impl SignalListener {
    /// Stops listening: the handlers are removed (a signal arriving from then on gets
    /// neither a trigger nor its default action, as signal-hook-registry documents),
    /// the thread ends and is joined. Safe against signals arriving meanwhile.
    pub fn stop(mut self) {
        // Handlers first: once `unregister` returns no handler runs with our socket,
        // so closing it below cannot turn a late signal into SIGPIPE.
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        self.stopping.raise();
        if let Some(wake) = self.wake.take() {
            // A blocking write: a storm may have filled the socket, and the thread
            // drains it (no handler writes any more).
            let _ = (&wake).write_all(&[STOP]);
            if let Some(t) = self.thread.take() {
                // Stopped from its own thread (a host's callback there freeing the
                // engine): it ends by itself after this call returns.
                if !ON_SIGNAL_THREAD.with(Cell::get) {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Shutdown {
    /// Installs handlers for the configured signals (default SIGTERM and SIGINT). Each
    /// signal is a trigger: the first starts the drain, a repeat escalates, and the
    /// terminating repeat (default: the third) exits the process at once with the
    /// forced exit code, after printing the report to stderr. A signal that arrives
    /// after Done (the host has not exited yet) leaves the host [`AFTER_DONE_GRACE`]
    /// to exit by itself (a host on its way out that calls [`SignalListener::stop`]
    /// ends that wait at once, and its own exit wins), then exits with the report's
    /// own exit code (0 after a clean drain), printing the report; with termination
    /// turned off it is only logged.
    ///
    /// Call it early, before the host starts its threads. Hosts that own their signals
    /// (Node, libuv) do not call it; they call [`trigger`](Self::trigger). Spawns one
    /// thread, `shutdown-signals`.
    pub fn listen_signals(&self) -> io::Result<SignalListener> {
        // The socket stays blocking: the handler asks for MSG_DONTWAIT itself (a full
        // socket drops the wake-up, the thread is busy anyway), and `stop` must not.
        let (mut read, wake) = UnixStream::pair()?;
        let fd = wake.as_raw_fd();
        let mut ids = Vec::new();
        for &sig in self.config().signals() {
            let Ok(byte) = u8::try_from(sig) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("signal {sig} out of range"),
                ));
            };
            // SAFETY: the action only calls send(2), which is async-signal-safe; `fd`
            // stays open until the action is unregistered (`stop`) or for the life of
            // the process (a listener dropped without `stop` is never closed).
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    libc::send(
                        fd,
                        &byte as *const u8 as *const libc::c_void,
                        1,
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    );
                })
            };
            match id {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in ids {
                        signal_hook::low_level::unregister(id);
                    }
                    return Err(e);
                }
            }
        }
        let sd = self.clone();
        let stopping = Arc::new(Stopping::default());
        let stopping2 = stopping.clone();
        let spawned = std::thread::Builder::new()
            .name("shutdown-signals".into())
            .spawn(move || {
                ON_SIGNAL_THREAD.with(|on| on.set(true));
                let mut byte = [0u8];
                while read.read_exact(&mut byte).is_ok() && byte[0] != STOP {
                    sd.on_signal(i32::from(byte[0]), &stopping2);
                }
            });
        match spawned {
            Ok(thread) => Ok(SignalListener {
                ids,
                stopping,
                wake: Some(wake),
                thread: Some(thread),
            }),
            Err(e) => {
                for id in ids {
                    signal_hook::low_level::unregister(id);
                }
                Err(e)
            }
        }
    }

    fn on_signal(&self, sig: i32, stopping: &Stopping) {
        let was_done = self.phase() == Phase::Done;
        self.trigger(Reason::signal(sig));
        let Some(report) = self.report() else { return };
        if report.forced == Some(ForceCause::Terminated) && !was_done {
            eprint!("{report}");
            std::process::exit(report.exit_code);
        }
        if was_done {
            after_done(self, sig, &report, stopping);
        }
    }
}
