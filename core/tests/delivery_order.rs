//! Milestone callbacks and hook starts are delivered in the machine's order, once,
//! whatever thread or callback causes the next step; a hook's deadline starts when it
//! is called; a hook never called is reported skipped; nothing is called after Done.
//! (The C fuzzer's findings 1-3, pinned in the core.)

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libshutdown::{Escalation, HookOptions, HookOutcome, Milestone, Phase, Shutdown};

use Milestone::*;

const ALL: [Milestone; 4] = [Draining, Quiescing, Closing, Done];

fn manual(drain_ms: u64, close_ms: u64) -> Shutdown {
    Shutdown::builder()
        .manual_clock()
        .drain_timeout(Duration::from_millis(drain_ms))
        .close_timeout(Duration::from_millis(close_ms))
        .escalation(Escalation {
            force_at: None,
            terminate_at: None,
            ..Default::default()
        })
        .build()
        .unwrap()
}

/// Records milestones; on the first one runs `inside` (from inside the callback).
fn record(
    sd: &Shutdown,
    inside: impl Fn(&Shutdown) + Send + Sync + 'static,
) -> Arc<Mutex<Vec<Milestone>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, weak) = (seen.clone(), sd.clone());
    sd.on_milestone(move |m| {
        s.lock().unwrap().push(m);
        if m == Draining {
            inside(&weak);
        }
    });
    seen
}

#[test]
fn advancing_the_clock_inside_a_callback_delivers_in_order() {
    let sd = manual(1, 2);
    let seen = record(&sd, |sd| sd.advance(Duration::from_secs(1)).unwrap());
    let _guard = sd.guard().unwrap();
    sd.trigger("deploy");
    assert_eq!(*seen.lock().unwrap(), ALL);
}

#[test]
fn releasing_the_last_guard_inside_a_callback_delivers_in_order() {
    let sd = manual(1000, 2000);
    let guard = Arc::new(Mutex::new(Some(sd.guard().unwrap())));
    let g = guard.clone();
    let seen = record(&sd, move |_| drop(g.lock().unwrap().take()));
    sd.trigger("deploy");
    assert_eq!(*seen.lock().unwrap(), ALL);
    assert_eq!(sd.phase(), Phase::Done);
}

/// A callback moves the clock past the close budget before the hook was called: the
/// hook is reported skipped (never started), and it is never called, even late.
#[test]
fn a_hook_never_called_is_skipped_and_never_called_after_done() {
    let sd = manual(1000, 51);
    let called = Arc::new(AtomicBool::new(false));
    let c = called.clone();
    sd.on_close("flush", HookOptions::new(), move || {
        c.store(true, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    let seen = record(&sd, |sd| sd.advance(Duration::from_millis(100)).unwrap());
    sd.trigger("deploy");
    assert_eq!(*seen.lock().unwrap(), ALL);
    let report = sd.report().unwrap();
    assert_eq!(report.hooks[0].outcome, HookOutcome::Skipped, "{report}");
    assert_eq!(report.hooks[0].duration, Duration::ZERO);
    assert!(!called.load(Ordering::SeqCst), "a skipped hook was called");
}

/// A hook's own timeout counts from when it is called: time a callback spent before
/// the call is not charged to it.
#[test]
fn a_hooks_deadline_starts_when_it_is_called() {
    let sd = manual(1000, 5000);
    let done_slot: Arc<OnceLock<libshutdown::HookDone>> = Arc::new(OnceLock::new());
    let d = done_slot.clone();
    sd.on_close_deferred(
        "slow",
        HookOptions::new().timeout(Duration::from_millis(300)),
        move |done| {
            let _ = d.set(done);
        },
    )
    .unwrap();
    // Closing is reached at 0; the callback moves the clock 200 ms before the hook
    // is called.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, w) = (seen.clone(), sd.clone());
    sd.on_milestone(move |m| {
        s.lock().unwrap().push(m);
        if m == Closing {
            w.advance(Duration::from_millis(200)).unwrap();
        }
    });
    sd.trigger("deploy");
    assert!(done_slot.get().is_some(), "called at 200 ms");
    sd.advance(Duration::from_millis(250)).unwrap(); // 450 ms: 250 ms after its call
    assert_eq!(sd.phase(), Phase::Closing, "its 300 ms run from its call");
    sd.advance(Duration::from_millis(50)).unwrap();
    let report = sd.report().unwrap();
    assert_eq!(report.hooks[0].outcome, HookOutcome::TimedOut);
    assert_eq!(report.hooks[0].duration, Duration::from_millis(300));
    assert_eq!(*seen.lock().unwrap(), ALL);
}

/// Real clock, two threads: the driver reaches Closing while the host's terminating
/// trigger reaches Done. Every callback sequence is the machine's order.
#[test]
fn milestones_are_ordered_across_threads() {
    for _ in 0..300 {
        let sd = Shutdown::builder()
            .drain_timeout(Duration::from_secs(10))
            .close_timeout(Duration::from_secs(5))
            .escalation(Escalation {
                force_at: None,
                terminate_at: Some(2),
                ..Default::default()
            })
            .build()
            .unwrap();
        sd.on_close_deferred("holds closing", HookOptions::new(), std::mem::forget)
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let slow = Arc::new(AtomicU32::new(0));
        let sl = slow.clone();
        sd.on_milestone(move |m| {
            if m == Closing {
                // Widen the window in which Done can overtake Closing.
                for _ in 0..sl.fetch_add(1, Ordering::Relaxed) % 2000 {
                    std::hint::spin_loop();
                }
            }
            s.lock().unwrap().push(m);
        });
        let guard = sd.guard().unwrap();
        sd.trigger("deploy");
        let releaser = std::thread::spawn(move || drop(guard));
        while sd.phase() != Phase::Closing {
            std::thread::yield_now();
        }
        sd.trigger("again"); // terminates
        releaser.join().unwrap();
        let report = sd.wait();
        assert_eq!(report.forced, Some(libshutdown::ForceCause::Terminated));
        // Callbacks may still be delivering on the other thread for a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().len() < 4 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(*seen.lock().unwrap(), ALL);
    }
}

/// A queued hook (a host that calls it from its event loop later, as Node does) counts
/// as called only at `HookDone::begin`: time before that is not charged to it, and one
/// whose `begin` comes after the close budget is skipped and must not be called.
#[test]
fn a_queued_hook_starts_when_the_host_begins_it() {
    let sd = manual(1000, 500);
    let slot: Arc<Mutex<Option<libshutdown::HookDone>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let opts = HookOptions::new()
        .timeout(Duration::from_millis(300))
        .queued();
    sd.on_close_deferred("js", opts, move |done| *s.lock().unwrap() = Some(done))
        .unwrap();
    sd.trigger("deploy");
    sd.advance(Duration::from_millis(100)).unwrap(); // the host's queue is slow
    let done = slot
        .lock()
        .unwrap()
        .take()
        .expect("the deferred callback ran");
    assert!(done.begin(), "due: 400 ms of the budget are left");
    sd.advance(Duration::from_millis(250)).unwrap();
    assert_eq!(sd.phase(), Phase::Closing, "its 300 ms count from begin()");
    done.finish(Ok(()));
    let report = sd.report().unwrap();
    assert_eq!(report.hooks[0].outcome, HookOutcome::Ok);
    assert_eq!(report.hooks[0].duration, Duration::from_millis(250));

    let sd = manual(1000, 50);
    let s = slot.clone();
    let opts = HookOptions::new().queued();
    sd.on_close_deferred("late", opts, move |done| *s.lock().unwrap() = Some(done))
        .unwrap();
    sd.trigger("deploy");
    sd.advance(Duration::from_millis(60)).unwrap(); // past the close budget
    let done = slot.lock().unwrap().take().unwrap();
    assert!(!done.begin(), "no longer due");
    let report = sd.report().unwrap();
    assert_eq!(report.hooks[0].outcome, HookOutcome::Skipped, "{report}");
}
