//! The report never says "clean" when something was cut, forced or fatal, and repeated
//! triggers during Closing do not leave the host waiting on hooks. All on a virtual
//! clock: every instant is exact, nothing depends on the machine's speed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libshutdown::{
    signal_name, CloseStrategy, Escalation, ForceCause, HookOptions, HookOutcome, Milestone,
    Reason, Shutdown,
};

fn manual() -> libshutdown::Builder {
    Shutdown::builder()
        .manual_clock()
        .drain_timeout(Duration::from_secs(10))
        .close_timeout(Duration::from_secs(5))
}

#[test]
fn a_fatal_trigger_exits_non_zero() {
    let sd = manual().forced_exit_code(7).build().unwrap();
    sd.trigger(Reason::Fatal("uncaught exception".into()));
    let report = sd.report().expect("nothing in flight: Done at once");
    assert_eq!(report.reason, Reason::Fatal("uncaught exception".into()));
    assert_eq!(
        report.forced, None,
        "nothing was forced: the drain was clean"
    );
    assert_eq!(report.exit_code, 7, "{report}");
    assert!(report.to_string().contains("fatal"), "{report}");
}

#[test]
fn work_cut_outside_guards_is_counted_and_exits_non_zero() {
    let sd = manual().build().unwrap();
    let conn = sd.kind("connection").unwrap();
    let guard = sd.guard().unwrap();
    sd.trigger("deploy");
    // The host destroyed two connections whose requests were still arriving.
    assert!(sd.record_aborted(2, Some(conn)));
    assert!(sd.record_aborted(1, None));
    drop(guard);
    let report = sd.report().expect("drained: Done");
    assert_eq!(report.aborted, 3, "{report}");
    assert_eq!(report.aborted_by_kind.get("connection"), Some(&2));
    assert_ne!(report.exit_code, 0, "{report}");
    assert!(!sd.record_aborted(1, None), "the report is final once Done");
    assert_eq!(sd.report().unwrap().aborted, 3);
}

#[test]
fn cut_work_adds_to_guards_aborted_at_the_deadline() {
    let sd = manual().build().unwrap();
    let _held = sd.guard().unwrap();
    sd.trigger("deploy");
    assert!(sd.record_aborted(1, None));
    sd.advance(Duration::from_secs(10)).unwrap();
    let report = sd.report().unwrap();
    assert_eq!(report.forced, Some(ForceCause::DrainTimeout));
    assert_eq!(
        report.aborted, 2,
        "the guard and the cut connection: {report}"
    );
}

#[test]
fn a_repeated_trigger_during_closing_ends_the_remaining_hooks() {
    let sd = manual().build().unwrap();
    let second_called = Arc::new(AtomicBool::new(false));
    // A deferred hook that never completes (a flush that hangs).
    sd.on_close_deferred("hangs", HookOptions::new().order(0), |done| {
        std::mem::forget(done)
    })
    .unwrap();
    let called = second_called.clone();
    sd.on_close("after", HookOptions::new().order(1), move || {
        called.store(true, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    sd.trigger(Reason::signal(2));
    assert_eq!(sd.phase(), libshutdown::Phase::Closing);
    // Past the same-signal window: a second press, not the first delivered twice.
    sd.advance(Duration::from_millis(1500)).unwrap();
    sd.trigger(Reason::signal(2)); // the second Ctrl-C
    let report = sd
        .report()
        .expect("a repeated trigger in Closing reaches Done at once");
    assert_eq!(report.forced, Some(ForceCause::Escalation), "{report}");
    assert_eq!(report.hooks[0].outcome, HookOutcome::Cancelled, "{report}");
    assert_eq!(report.hooks[0].duration, Duration::from_millis(1500));
    assert_eq!(report.hooks[1].outcome, HookOutcome::Skipped, "{report}");
    assert!(!second_called.load(Ordering::SeqCst));
    assert_ne!(report.exit_code, 0);
    let done_at = report
        .timeline
        .iter()
        .find(|t| t.milestone == Milestone::Done)
        .unwrap()
        .at;
    assert_eq!(
        done_at,
        Duration::from_millis(1500),
        "no wait for the hook's timeout"
    );
}

#[test]
fn without_escalation_a_repeat_during_closing_changes_nothing() {
    let sd = manual()
        .escalation(Escalation {
            force_at: None,
            terminate_at: None,
            ..Default::default()
        })
        .build()
        .unwrap();
    sd.on_close_deferred("slow", HookOptions::new(), std::mem::forget)
        .unwrap();
    sd.trigger("deploy");
    sd.trigger("again");
    assert_eq!(sd.phase(), libshutdown::Phase::Closing);
    sd.advance(Duration::from_secs(5)).unwrap();
    let report = sd.report().unwrap();
    assert_eq!(report.hooks[0].outcome, HookOutcome::TimedOut);
    assert_eq!(report.forced, None);
}

#[test]
fn every_standard_linux_signal_has_its_name() {
    let expected = [
        (1, "SIGHUP"),
        (2, "SIGINT"),
        (3, "SIGQUIT"),
        (4, "SIGILL"),
        (5, "SIGTRAP"),
        (6, "SIGABRT"),
        (7, "SIGBUS"),
        (8, "SIGFPE"),
        (9, "SIGKILL"),
        (10, "SIGUSR1"),
        (11, "SIGSEGV"),
        (12, "SIGUSR2"),
        (13, "SIGPIPE"),
        (14, "SIGALRM"),
        (15, "SIGTERM"),
        (16, "SIGSTKFLT"),
        (17, "SIGCHLD"),
        (18, "SIGCONT"),
        (19, "SIGSTOP"),
        (20, "SIGTSTP"),
        (21, "SIGTTIN"),
        (22, "SIGTTOU"),
        (23, "SIGURG"),
        (24, "SIGXCPU"),
        (25, "SIGXFSZ"),
        (26, "SIGVTALRM"),
        (27, "SIGPROF"),
        (28, "SIGWINCH"),
        (29, "SIGIO"),
        (30, "SIGPWR"),
        (31, "SIGSYS"),
    ];
    if cfg!(target_os = "linux") {
        for (n, name) in expected {
            assert_eq!(signal_name(n), name, "signal {n}");
        }
    }
    assert_eq!(signal_name(15), "SIGTERM");
    assert_eq!(signal_name(0), "SIG0");
}

/// The gradual ramp follows the real announce window: when readiness probes end it
/// early, connections are advised to close at the shortened window's pace, not at
/// the pace of the configured `drain_delay`.
#[test]
fn gradual_advice_ramps_over_the_window_the_probes_shortened() {
    let sd = manual()
        .drain_delay(Duration::from_secs(10))
        .announce_probes(1)
        .announce_settle(Duration::from_millis(1000))
        .close_strategy(CloseStrategy::Gradual)
        .build()
        .unwrap();
    let share = |sd: &Shutdown| (0..2000).filter(|_| sd.should_close()).count();
    sd.trigger("deploy");
    sd.readiness_probed(); // at 0: the window now ends at 1 s instead of 10 s
    sd.advance(Duration::from_millis(500)).unwrap();
    let halfway = share(&sd);
    assert!(
        (800..1200).contains(&halfway),
        "halfway through the real window: {halfway} of 2000 close"
    );
    sd.advance(Duration::from_millis(500)).unwrap();
    assert!(!sd.is_accepting());
    assert_eq!(share(&sd), 2000);
}

#[test]
fn recorded_counts_saturate_instead_of_overflowing() {
    let sd = manual().build().unwrap();
    let _held = sd.guard().unwrap();
    sd.trigger("deploy");
    assert!(sd.record_aborted(u64::MAX, None));
    assert!(sd.record_aborted(u64::MAX, None));
    sd.advance(Duration::from_secs(10)).unwrap(); // the guard is cut too
    assert_eq!(sd.report().unwrap().aborted, u64::MAX);
}
