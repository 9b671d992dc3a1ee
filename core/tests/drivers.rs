//! The drivers on real time: the async driver under each executor (the core has no
//! tokio dependency; tokio is only a dev-dependency here), the blocking driver, and
//! the waits. No assertion depends on how fast the machine is: only outcomes and
//! orderings are checked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{
    ForceCause, HookOptions, HookOutcome, Milestone, Phase, Reason, Report, Shutdown,
};

fn engine() -> Shutdown {
    Shutdown::builder()
        .drain_timeout(Duration::from_secs(10))
        .close_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A request in flight, released by another task after the trigger; an async hook
/// sleeping on an async-io timer. Works the same under every executor.
async fn clean_drain_scenario(sd: Shutdown) -> Report {
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    sd.on_close_async(
        "async-timer",
        HookOptions::new().order(0),
        move || async move {
            async_io::Timer::after(Duration::from_millis(5)).await;
            o.lock().unwrap().push("async-timer");
            Ok(())
        },
    )
    .unwrap();
    let o = order.clone();
    sd.on_close("blocking", HookOptions::new().order(1), move || {
        o.lock().unwrap().push("blocking");
        Ok(())
    })
    .unwrap();
    let guard = sd.guard().unwrap();
    let draining = sd.draining();
    let releaser = {
        let sd = sd.clone();
        async move {
            draining.await;
            assert!(!sd.is_ready());
            assert!(sd.guard().is_none());
            async_io::Timer::after(Duration::from_millis(20)).await;
            drop(guard);
        }
    };
    sd.trigger(Reason::Signal("SIGTERM".into()));
    let (report, ()) = futures_lite::future::zip(sd.run(), releaser).await;
    assert_eq!(*order.lock().unwrap(), ["async-timer", "blocking"]);
    report
}

fn assert_clean(report: &Report) {
    assert_eq!(report.exit_code, 0, "{report}");
    assert_eq!(report.in_flight_at_trigger, 1);
    assert_eq!(report.aborted, 0);
    assert_eq!(report.hooks.len(), 2);
    assert!(
        report.hooks.iter().all(|h| h.outcome == HookOutcome::Ok),
        "{report}"
    );
    let order: Vec<_> = report.timeline.iter().map(|t| t.milestone).collect();
    assert_eq!(
        order,
        [
            Milestone::Draining,
            Milestone::Quiescing,
            Milestone::Closing,
            Milestone::Done
        ]
    );
}

#[test]
fn async_driver_under_futures_executor() {
    let report = futures::executor::block_on(clean_drain_scenario(engine()));
    assert_clean(&report);
}

#[test]
fn async_driver_under_smol() {
    let report = smol::block_on(clean_drain_scenario(engine()));
    assert_clean(&report);
}

#[test]
fn async_driver_under_async_std() {
    let report = async_std::task::block_on(clean_drain_scenario(engine()));
    assert_clean(&report);
}

#[test]
fn async_driver_under_tokio_multi_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let report = rt.block_on(clean_drain_scenario(engine()));
    assert_clean(&report);
}

/// Async hooks are polled inside `run()`'s task, so they see the executor's context:
/// a tokio timer works in a hook only because of that.
#[test]
fn async_hooks_run_in_the_callers_executor_context() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let sd = engine();
    sd.on_close_async("tokio-sleep", HookOptions::new(), || async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    })
    .unwrap();
    sd.trigger("test");
    let report = rt.block_on(sd.run());
    assert_eq!(report.hooks[0].outcome, HookOutcome::Ok, "{report}");
}

#[test]
fn blocking_driver_and_waits() {
    let sd = engine();
    let driver = sd.spawn_driver();
    assert!(
        sd.wait_timeout(Duration::from_millis(20)).is_none(),
        "not triggered yet"
    );
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    sd.on_close("count", HookOptions::new(), move || {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    let guard = sd.guard().unwrap();
    let worker = {
        let sd = sd.clone();
        std::thread::spawn(move || {
            sd.wait_quiescing();
            assert!(!sd.is_accepting());
            drop(guard);
        })
    };
    sd.trigger("test");
    let report = sd.wait();
    worker.join().unwrap();
    assert_eq!(report.exit_code, 0, "{report}");
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(driver.join().unwrap(), report);
    // A second driver after the fact only returns the report.
    assert_eq!(sd.run_blocking(), report);
}

#[test]
fn drain_deadline_fires_cancellation_and_counts_aborted_work() {
    let sd = Shutdown::builder()
        .drain_timeout(Duration::from_millis(30))
        .close_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let job = sd.kind("job").unwrap();
    let stuck = sd.guard_of(job).unwrap();
    let cancelled = sd.cancelled();
    let work = {
        let sd = sd.clone();
        async move {
            cancelled.await;
            assert!(sd.is_cancelled());
            // Work that stops at the cancellation signal releases its guard late.
            drop(stuck);
        }
    };
    sd.trigger("test");
    let (report, ()) = smol::block_on(futures_lite::future::zip(sd.run(), work));
    assert_eq!(report.forced, Some(ForceCause::DrainTimeout), "{report}");
    assert_eq!(report.aborted, 1);
    assert_eq!(report.aborted_by_kind.get("job"), Some(&1));
    assert_eq!(report.exit_code, 1);
    assert_eq!(sd.in_flight(), 0);
}

#[test]
fn failing_panicking_and_hanging_hooks_never_stop_the_others() {
    let sd = Shutdown::builder()
        .drain_timeout(Duration::from_secs(1))
        .close_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let short = HookOptions::new().timeout(Duration::from_millis(50));
    sd.on_close("hangs", short, || {
        std::thread::sleep(Duration::from_secs(3));
        Ok(())
    })
    .unwrap();
    sd.on_close("fails", HookOptions::new(), || Err("disk full".into()))
        .unwrap();
    sd.on_close("panics", HookOptions::new(), || panic!("bug"))
        .unwrap();
    sd.on_close_async("async panics", HookOptions::new(), || async {
        panic!("async bug")
    })
    .unwrap();
    sd.on_close("runs after", HookOptions::new().order(1), || Ok(()))
        .unwrap();
    sd.trigger("test");
    let report = sd.run_blocking();
    let outcome = |name: &str| {
        report
            .hooks
            .iter()
            .find(|h| h.name == name)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(outcome("hangs"), HookOutcome::TimedOut);
    assert_eq!(outcome("fails"), HookOutcome::Failed("disk full".into()));
    assert_eq!(outcome("panics"), HookOutcome::Panicked("bug".into()));
    assert_eq!(
        outcome("async panics"),
        HookOutcome::Panicked("async bug".into())
    );
    assert_eq!(outcome("runs after"), HookOutcome::Ok);
    assert_eq!(report.exit_code, 1);
    assert_eq!(report.forced, None);
}

#[test]
fn escalation_in_real_time() {
    // The same signal twice at once: the same-signal window off, or the second would
    // be taken for a duplicate delivery of the first.
    let sd = Shutdown::builder()
        .drain_timeout(Duration::from_secs(10))
        .close_timeout(Duration::from_secs(5))
        .escalation(libshutdown::Escalation {
            same_signal_window: Duration::ZERO,
            ..Default::default()
        })
        .build()
        .unwrap();
    let _stuck = sd.guard().unwrap();
    let driver = sd.spawn_driver();
    sd.trigger(Reason::signal(15));
    sd.wait_quiescing();
    assert_eq!(sd.phase(), Phase::Draining);
    sd.trigger(Reason::signal(15));
    let report = sd.wait();
    assert_eq!(report.forced, Some(ForceCause::Escalation));
    assert_eq!(report.triggers, 2);
    assert_eq!(report.reason, Reason::Signal("SIGTERM".into()));
    assert_eq!(report.exit_code, 1);
    driver.join().unwrap();
}

#[test]
fn milestone_callbacks_see_every_milestone_in_order() {
    let sd = engine();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let probe = sd.clone();
    sd.on_milestone(move |m| s.lock().unwrap().push((m, probe.phase())));
    sd.trigger("test");
    sd.run_blocking();
    let seen = seen.lock().unwrap().clone();
    let milestones: Vec<_> = seen.iter().map(|(m, _)| *m).collect();
    assert_eq!(
        milestones,
        [
            Milestone::Draining,
            Milestone::Quiescing,
            Milestone::Closing,
            Milestone::Done
        ]
    );
    // Published before the callbacks run.
    assert_eq!(seen.last().unwrap().1, Phase::Done);
}

#[test]
fn hooks_cannot_be_added_once_closing() {
    let sd = engine();
    sd.trigger("test");
    sd.run_blocking();
    let err = sd
        .on_close("late", HookOptions::new(), || Ok(()))
        .unwrap_err();
    assert_eq!(err, libshutdown::HookError::TooLate);
    let err = engine()
        .on_close(
            "long",
            HookOptions::new().timeout(Duration::from_secs(60)),
            || Ok(()),
        )
        .unwrap_err();
    assert!(matches!(err, libshutdown::HookError::BadTimeout(_)));
}

#[test]
fn guards_are_send_sync_and_small() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<libshutdown::Guard>();
    assert_send_sync::<Shutdown>();
    assert!(std::mem::size_of::<libshutdown::Guard>() <= 16);
    assert_eq!(
        std::mem::size_of::<Shutdown>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn gradual_advice_ramps_across_the_announce_window() {
    let sd = Shutdown::builder()
        .manual_clock()
        .drain_delay(Duration::from_secs(10))
        .drain_timeout(Duration::from_secs(10))
        .close_strategy(libshutdown::CloseStrategy::Gradual)
        .build()
        .unwrap();
    let share = |sd: &Shutdown| (0..2000).filter(|_| sd.should_close()).count();
    assert_eq!(share(&sd), 0);
    sd.trigger("test");
    let at_start = share(&sd);
    sd.advance(Duration::from_secs(5)).unwrap();
    let halfway = share(&sd);
    sd.advance(Duration::from_millis(4_900)).unwrap();
    let near_end = share(&sd);
    sd.advance(Duration::from_millis(100)).unwrap();
    assert!(!sd.is_accepting());
    assert_eq!(share(&sd), 2000);
    assert_eq!(at_start, 0);
    assert!((800..1200).contains(&halfway), "halfway: {halfway} of 2000");
    assert!(near_end > 1900, "near the end: {near_end} of 2000");
}

#[test]
fn racing_triggers_start_one_drain() {
    let sd = Shutdown::builder()
        .escalation(libshutdown::Escalation {
            force_at: None,
            terminate_at: None,
            ..Default::default()
        })
        .build()
        .unwrap();
    let drains = Arc::new(AtomicUsize::new(0));
    let d = drains.clone();
    sd.on_milestone(move |m| {
        if m == Milestone::Draining {
            d.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Held so the drain lasts while the others arrive (triggers after Done are ignored).
    let guard = sd.guard().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let sd = sd.clone();
            std::thread::spawn(move || sd.trigger(format!("racer {i}")))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(guard);
    let report = sd.run_blocking();
    assert_eq!(drains.load(Ordering::SeqCst), 1);
    assert_eq!(report.triggers, 8);
    assert_eq!(report.exit_code, 0, "{report}");
}

/// Many threads take and release guards while the drain starts: every guard admitted
/// is waited for, none is admitted once admission is seen closed, and the drain ends.
#[test]
fn guard_storm_during_the_trigger() {
    let sd = engine();
    let driver = sd.spawn_driver();
    let started = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let sd = sd.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                let mut admitted = 0u64;
                for _ in 0..200_000 {
                    let closed_before = !sd.is_accepting();
                    match sd.guard() {
                        Some(g) => {
                            assert!(!closed_before, "admitted after admission closed");
                            admitted += 1;
                            if admitted == 1 {
                                started.fetch_add(1, Ordering::SeqCst);
                            }
                            drop(g);
                        }
                        None => return admitted,
                    }
                }
                admitted
            })
        })
        .collect();
    // Trigger while every worker is in its loop, however slow the machine is.
    while started.load(Ordering::SeqCst) < 4 {
        std::thread::yield_now();
    }
    sd.trigger("storm");
    let report = sd.wait();
    let admitted: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(admitted >= 4);
    assert_eq!(sd.in_flight(), 0);
    assert_eq!(report.exit_code, 0, "{report}");
    driver.join().unwrap();
}

#[test]
fn raw_guards_round_trip_with_their_kind() {
    let sd = Shutdown::builder().manual_clock().build().unwrap();
    let kinds: Vec<_> = (0..libshutdown::MAX_KINDS)
        .map(|i| sd.kind(&format!("k{i}")).unwrap())
        .collect();
    let raws: Vec<_> = kinds
        .iter()
        .map(|&k| libshutdown::raw::guard_into_raw(sd.guard_of(k).unwrap()))
        .chain(std::iter::once(libshutdown::raw::guard_into_raw(
            sd.guard().unwrap(),
        )))
        .collect();
    assert_eq!(sd.in_flight(), libshutdown::MAX_KINDS as u64 + 1);
    sd.trigger("test");
    let guards: Vec<_> = raws
        .into_iter()
        .map(|r| unsafe { libshutdown::raw::guard_from_raw(r) })
        .collect();
    for (g, k) in guards.iter().zip(&kinds) {
        assert_eq!(g.kind(), Some(*k));
    }
    assert_eq!(guards.last().unwrap().kind(), None);
    sd.advance(Duration::from_secs(20)).unwrap();
    let report = sd.report().unwrap();
    assert_eq!(report.aborted, libshutdown::MAX_KINDS as u64 + 1);
    assert_eq!(report.aborted_by_kind.len(), libshutdown::MAX_KINDS);
    assert!(report.aborted_by_kind.values().all(|&n| n == 1));
    drop(guards);
    assert_eq!(sd.in_flight(), 0);
}
