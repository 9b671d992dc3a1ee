//! Signals through signal-hook, only when the host asks. The handler itself is
//! signal-hook's: it records the signal and wakes a thread through a pipe, nothing
//! else. That thread turns each signal into a trigger.

use std::io;
use std::thread::JoinHandle;

use signal_hook::iterator::{Handle as SignalsHandle, Signals};

use crate::machine::Phase;
use crate::report::{signal_name, ForceCause, Reason};
use crate::Shutdown;

/// The running signal listener. Dropping it leaves it running; [`stop`](Self::stop)
/// removes it.
pub struct SignalListener {
    handle: SignalsHandle,
    thread: Option<JoinHandle<()>>,
}

impl SignalListener {
    /// Stops listening (the signals' previous dispositions are not restored:
    /// signal-hook keeps its handler installed, and it no longer triggers anything).
    pub fn stop(mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shutdown {
    /// Installs handlers for the configured signals (default SIGTERM and SIGINT). Each
    /// signal is a trigger: the first starts the drain, a repeat escalates, and the
    /// terminating repeat (default: the third) exits the process at once with the
    /// forced exit code, after printing the report to stderr. A signal that arrives
    /// after Done (the host has not exited) also exits at once with the forced code,
    /// unless termination is turned off.
    ///
    /// Call it early, before the host starts its threads. Hosts that own their signals
    /// (Node, libuv) do not call it; they call [`trigger`](Self::trigger).
    pub fn listen_signals(&self) -> io::Result<SignalListener> {
        let mut signals = Signals::new(self.config().signals())?;
        let handle = signals.handle();
        let sd = self.clone();
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
                    // Done, yet the host is still here and the operator signals again:
                    // never swallow it. Exit now, non-zero, unless termination is off.
                    if was_done && sd.config().escalation().terminate_at.is_some() {
                        eprintln!("shutdown: {} after Done, exiting", signal_name(sig));
                        std::process::exit(sd.config().forced_exit_code());
                    }
                }
            })?;
        Ok(SignalListener {
            handle,
            thread: Some(thread),
        })
    }
}
