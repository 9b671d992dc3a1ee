//! Real signals, delivered by the kernel to a real process.
//!
//! Signal handlers are process-wide, so each scenario runs in a child process: the
//! test re-executes its own binary with `SHUTDOWN_SIGNALS_CHILD=<scenario>`, and
//! `main` hands that process to the child's code instead of to the test harness.
//! The child calls `listen_signals()`, takes a guard, and says `READY` on stdout; the
//! parent sends signals with `kill(2)` at the moments the child announces, and checks
//! the child's exit status and the report it prints.
//!
//! Why a `main` of our own (`harness = false` in core/Cargo.toml, the tests run by
//! libtest-mimic, which speaks libtest's command line to `cargo test` and `cargo
//! nextest`): with libtest the child had to be a `#[test]` that passed vacuously in
//! every ordinary run; and a child in a binary target of its own would have to be
//! found in target/ by name, where it may be missing (`cargo test --test signals`
//! builds no other target) or stale. Re-executing this very binary cannot be either.
//!
//! Every wait is bounded (the child is killed by pid when one runs out), and no
//! assertion depends on how fast the machine is.

#[cfg(unix)]
fn main() {
    if let Ok(scenario) = std::env::var(unix::CHILD_ENV) {
        unix::child_main(&scenario);
    }
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), unix::tests()).exit();
}

// Unix signals only: nothing to run elsewhere.
#[cfg(not(unix))]
fn main() {
    libtest_mimic::run(&libtest_mimic::Arguments::from_args(), Vec::new()).exit();
}

#[cfg(unix)]
mod unix {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use libshutdown::{ForceCause, HookOptions, Reason, Shutdown};
    use libtest_mimic::Trial;

    pub(crate) const CHILD_ENV: &str = "SHUTDOWN_SIGNALS_CHILD";
    /// The forced exit code the child is configured with (not the default 1, so the test
    /// tells it apart from a panic's 101 or a plain failure).
    const FORCED: i32 = 3;
    /// The longest any single step may take before the test gives up.
    const STEP: Duration = Duration::from_secs(30);

    /// The parent's tests.
    pub(crate) fn tests() -> Vec<Trial> {
        fn trial(name: &'static str, f: fn()) -> Trial {
            // libtest-mimic reports a panic as a failure with its message.
            Trial::test(name, move || {
                f();
                Ok(())
            })
        }
        vec![
            trial(
                "sigterm_drains_the_request_in_flight_and_exits_0",
                sigterm_drains_the_request_in_flight_and_exits_0,
            ),
            trial(
                "sigint_drains_the_request_in_flight_and_exits_0",
                sigint_drains_the_request_in_flight_and_exits_0,
            ),
            trial(
                "second_sigterm_forces_the_drain_with_the_forced_exit_code",
                second_sigterm_forces_the_drain_with_the_forced_exit_code,
            ),
            trial(
                "third_signal_terminates_at_once_with_the_forced_exit_code",
                third_signal_terminates_at_once_with_the_forced_exit_code,
            ),
        ]
    }

    // ----- the child ----------------------------------------------------------------------

    /// One line for the parent.
    fn say(line: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for l in line.lines() {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
    }

    /// Scenarios: `release` (release the guard once draining), `hold` (keep it), and
    /// `hang` (keep it, and a cleanup hook that never returns).
    pub(crate) fn child_main(scenario: &str) -> ! {
        // Never outlive a parent that lost track of us.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(120));
            eprintln!("child watchdog: giving up");
            std::process::exit(101);
        });
        let sd = Shutdown::builder()
            .drain_timeout(Duration::from_secs(60))
            .close_timeout(Duration::from_secs(60))
            .grace_period(None)
            .forced_exit_code(FORCED)
            .build()
            .unwrap();
        if scenario == "hang" {
            sd.on_close("hangs", HookOptions::new(), || {
                say("HOOK STARTED");
                std::thread::sleep(Duration::from_secs(600));
                Ok(())
            })
            .unwrap();
        } else {
            sd.on_close("cleanup", HookOptions::new(), || {
                say("HOOK RAN");
                Ok(())
            })
            .unwrap();
        }
        // Before any other thread of ours: the handlers are installed here.
        let _signals = sd.listen_signals().unwrap();
        let driver = sd.spawn_driver();
        let guard = sd.guard().expect("admission is open");
        say("READY");

        sd.wait_draining();
        say("DRAINING");
        let held = if scenario == "release" {
            // The request in flight finishes after the signal (said first: the hooks may
            // start the moment the guard drops).
            say("RELEASING GUARD");
            drop(guard);
            None
        } else {
            Some(guard)
        };
        let report = sd.wait();
        say(&format!("REASON {:?}", report.reason));
        say(&format!("FORCED {:?}", report.forced));
        say(&format!("ABORTED {}", report.aborted));
        say(&format!(
            "IN_FLIGHT_AT_TRIGGER {}",
            report.in_flight_at_trigger
        ));
        say(&format!("EXIT {}", report.exit_code));
        say(&report.to_string());
        say("END");
        if scenario == "hang" {
            // The terminating signal's handler ends the process; do not race it.
            loop {
                std::thread::park();
            }
        }
        drop(held);
        let _ = driver.join();
        std::process::exit(report.exit_code);
    }

    // ----- the parent ---------------------------------------------------------------------

    struct Spawned {
        child: Child,
        lines: Receiver<String>,
        seen: Vec<String>,
        stderr: Option<JoinHandle<String>>,
    }

    impl Spawned {
        fn start(scenario: &str) -> Spawned {
            let exe = std::env::current_exe().unwrap();
            let mut child = Command::new(exe)
                .env(CHILD_ENV, scenario)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("re-execute the test binary");
            let stdout = child.stdout.take().unwrap();
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let mut stderr = child.stderr.take().unwrap();
            let stderr = std::thread::spawn(move || {
                let mut s = String::new();
                let _ = stderr.read_to_string(&mut s);
                s
            });
            Spawned {
                child,
                lines,
                seen: Vec::new(),
                stderr: Some(stderr),
            }
        }

        /// Kills the child and fails the test, with everything it said.
        fn fail(&mut self, why: &str) -> ! {
            let _ = self.child.kill();
            let _ = self.child.wait();
            while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(1)) {
                self.seen.push(l);
            }
            let stderr = self
                .stderr
                .take()
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default();
            panic!(
                "{why}\n--- child stdout ---\n{}\n--- child stderr ---\n{stderr}",
                self.seen.join("\n")
            );
        }

        /// Waits for a stdout line equal to `want` (at most [`STEP`]).
        fn expect(&mut self, want: &str) {
            let deadline = Instant::now() + STEP;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => {
                        let hit = line == want;
                        self.seen.push(line);
                        if hit {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => self.fail(&format!("no `{want}` in time")),
                    Err(RecvTimeoutError::Disconnected) => {
                        self.fail(&format!("the child closed stdout before `{want}`"))
                    }
                }
            }
        }

        fn signal(&mut self, sig: libc::c_int) {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: kill(2) on the pid of our own child, which we have not reaped.
            if unsafe { libc::kill(pid, sig) } != 0 {
                let e = std::io::Error::last_os_error();
                self.fail(&format!("kill({pid}, {sig}): {e}"));
            }
        }

        /// Waits for the child to exit (at most [`STEP`]); its status, stdout and stderr.
        fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
            let deadline = Instant::now() + STEP;
            let status = loop {
                match self.child.try_wait() {
                    Ok(Some(status)) => break status,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Ok(None) => self.fail("the child did not exit in time"),
                    Err(e) => self.fail(&format!("wait: {e}")),
                }
            };
            // The pipe closes with the process: drain what is left.
            while let Ok(l) = self.lines.recv_timeout(STEP) {
                self.seen.push(l);
            }
            let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
            (status, std::mem::take(&mut self.seen), stderr)
        }
    }

    impl Drop for Spawned {
        fn drop(&mut self) {
            // A failed assertion must not leave a child behind.
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    fn has(lines: &[String], want: &str) -> bool {
        lines.iter().any(|l| l == want)
    }

    fn context(lines: &[String], stderr: &str) -> String {
        format!("stdout:\n{}\nstderr:\n{stderr}", lines.join("\n"))
    }

    /// One signal with a request in flight: the request finishes, the hook runs, exit 0.
    fn clean_drain(sig: libc::c_int, name: &str) {
        let mut c = Spawned::start("release");
        c.expect("READY");
        c.signal(sig);
        c.expect("DRAINING");
        let (status, out, err) = c.finish();
        let ctx = context(&out, &err);
        assert_eq!(status.code(), Some(0), "{ctx}");
        assert!(
            has(&out, &format!("REASON {:?}", Reason::Signal(name.into()))),
            "{ctx}"
        );
        assert!(has(&out, "FORCED None"), "{ctx}");
        assert!(has(&out, "IN_FLIGHT_AT_TRIGGER 1"), "{ctx}");
        assert!(has(&out, "ABORTED 0"), "{ctx}");
        assert!(has(&out, "EXIT 0"), "{ctx}");
        // The guard was released before the hooks ran, and the hook ran before the report.
        let pos = |l: &str| out.iter().position(|x| x == l).unwrap_or(usize::MAX);
        assert!(pos("RELEASING GUARD") < pos("HOOK RAN"), "{ctx}");
        assert!(pos("HOOK RAN") < pos("END"), "{ctx}");
        assert!(
            out.iter()
                .any(|l| l.starts_with("shutdown report: clean, exit code 0")),
            "{ctx}"
        );
    }

    fn sigterm_drains_the_request_in_flight_and_exits_0() {
        clean_drain(libc::SIGTERM, "SIGTERM");
    }

    fn sigint_drains_the_request_in_flight_and_exits_0() {
        clean_drain(libc::SIGINT, "SIGINT");
    }

    /// A second press, not one delivered twice: the same signal again only escalates
    /// once the default same-signal window since the first has passed.
    fn past_the_same_signal_window() {
        std::thread::sleep(libshutdown::DEFAULT_SAME_SIGNAL_WINDOW + Duration::from_millis(100));
    }

    fn second_sigterm_forces_the_drain_with_the_forced_exit_code() {
        let mut c = Spawned::start("hold");
        c.expect("READY");
        c.signal(libc::SIGTERM);
        // The first signal was taken (a second one sent earlier could merge with it).
        c.expect("DRAINING");
        past_the_same_signal_window();
        c.signal(libc::SIGTERM);
        let (status, out, err) = c.finish();
        let ctx = context(&out, &err);
        assert_eq!(status.code(), Some(FORCED), "{ctx}");
        assert!(has(&out, "REASON Signal(\"SIGTERM\")"), "{ctx}");
        assert!(
            has(&out, &format!("FORCED {:?}", Some(ForceCause::Escalation))),
            "{ctx}"
        );
        assert!(has(&out, "ABORTED 1"), "{ctx}");
        assert!(has(&out, &format!("EXIT {FORCED}")), "{ctx}");
        assert!(
            has(&out, "HOOK RAN"),
            "cleanup still runs when forced\n{ctx}"
        );
        assert!(
        out.iter().any(|l| l.starts_with(&format!(
            "shutdown report: forced: repeated trigger, exit code {FORCED} (reason: signal SIGTERM, 2 triggers)"
        ))),
        "{ctx}"
    );
    }

    fn third_signal_terminates_at_once_with_the_forced_exit_code() {
        let mut c = Spawned::start("hang");
        c.expect("READY");
        c.signal(libc::SIGTERM);
        c.expect("DRAINING");
        // The second skips the drain; the cleanup hook starts and hangs.
        past_the_same_signal_window();
        c.signal(libc::SIGTERM);
        c.expect("HOOK STARTED");
        // The third ends the process now, hook or no hook; SIGINT counts like SIGTERM.
        c.signal(libc::SIGINT);
        let (status, out, err) = c.finish();
        let ctx = context(&out, &err);
        assert_eq!(status.code(), Some(FORCED), "{ctx}");
        // The signal listener printed the report to stderr before exiting.
        assert!(
        err.contains(&format!(
            "shutdown report: terminated: repeated trigger, exit code {FORCED} (reason: signal SIGTERM, 3 triggers)"
        )),
        "{ctx}"
    );
        assert!(err.contains("hangs"), "the report names the hook\n{ctx}");
    }
}
