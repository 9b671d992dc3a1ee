//! Signals through signal-hook, only when the host asks. The handler itself is
//! signal-hook's: it records the signal and wakes a thread through a pipe, nothing
//! else. That thread turns each signal into a trigger.

use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use signal_hook::iterator::{Handle as SignalsHandle, Signals};

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
fn after_done(sd: &Shutdown, sig: i32, report: &crate::Report) {
    if sd.config().escalation().terminate_at.is_none() {
        log::warn!(
            "shutdown: {} after Done ignored (termination is off)",
            signal_name(sig)
        );
        return;
    }
    std::thread::sleep(AFTER_DONE_GRACE);
    eprint!("{report}");
    eprintln!(
        "shutdown: {} after Done; exiting with the report's exit code {}",
        signal_name(sig),
        report.exit_code
    );
    std::process::exit(report.exit_code);
}

/// The running signal listener. Dropping it leaves it running; [`stop`](Self::stop)
/// removes it.
pub struct SignalListener {
    handle: SignalsHandle,
    thread: Option<JoinHandle<()>>,
    /// Dropped by `stop` once `close` returned; the thread waits for it (see `stop`).
    release: mpsc::Sender<()>,
}

impl SignalListener {
    /// Stops listening (the signals' previous dispositions are not restored:
    /// signal-hook keeps its handler installed, and it no longer triggers anything).
    pub fn stop(self) {
        let SignalListener {
            handle,
            thread,
            release,
        } = self;
        // `close` sets the closed flag, then writes a wake-up into the self-pipe. A
        // listener thread that is awake (it was handling a signal) can see the flag and
        // end in between; had it closed the pipe's read end, that write would fail with
        // EPIPE and raise SIGPIPE, whose default action (every C host keeps it) kills
        // the process: seen as exit 141 from shutdown_free() under valgrind. So the
        // thread keeps the read end open until `close` returned.
        handle.close();
        drop(handle);
        drop(release);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Shutdown {
    /// Installs handlers for the configured signals (default SIGTERM and SIGINT). Each
    /// signal is a trigger: the first starts the drain, a repeat escalates, and the
    /// terminating repeat (default: the third) exits the process at once with the
    /// forced exit code, after printing the report to stderr. A signal that arrives
    /// after Done (the host has not exited yet) leaves the host [`AFTER_DONE_GRACE`]
    /// to exit by itself, then exits with the report's own exit code (0 after a clean
    /// drain), printing the report; with termination turned off it is only logged.
    ///
    /// Call it early, before the host starts its threads. Hosts that own their signals
    /// (Node, libuv) do not call it; they call [`trigger`](Self::trigger).
    pub fn listen_signals(&self) -> io::Result<SignalListener> {
        let mut signals = Signals::new(self.config().signals())?;
        let handle = signals.handle();
        let sd = self.clone();
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("shutdown-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    let was_done = sd.phase() == Phase::Done;
                    sd.trigger(Reason::signal(sig));
                    let Some(report) = sd.report() else { continue };
                    if report.forced == Some(ForceCause::Terminated) {
                        eprint!("{report}");
                        std::process::exit(report.exit_code);
                    }
                    if was_done {
                        after_done(&sd, sig, &report);
                    }
                }
                // Closed: hold the read end until `stop` has written its wake-up.
                let _ = released.recv();
                drop(signals);
            })?;
        Ok(SignalListener {
            handle,
            thread: Some(thread),
            release,
        })
    }
}
