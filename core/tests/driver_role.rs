//! Who drives, and that a shutdown always gets driven: Done reached elsewhere wakes a
//! parked driver, a dropped `run()` hands its role back, a stopped driver lets another
//! drive, and a drain with no driver at all drives itself. Each wait is bounded: a hang
//! fails the test by name instead of hanging the run. No assertion depends on how fast
//! the machine is (the bounds are 30 s for steps that take milliseconds).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_lite::future;
use libshutdown::{ForceCause, HookOptions, HookOutcome, Phase, Report, Shutdown};

const BOUND: Duration = Duration::from_secs(30);

/// Runs `f` on a thread of its own and fails the test if it does not return in time.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(BOUND) {
        Ok(v) => v,
        Err(_) => panic!("{what}: still waiting after {BOUND:?} (a hang)"),
    }
}

fn deadline_engine(drain_timeout_ms: u64) -> Shutdown {
    Shutdown::builder()
        .drain_timeout(Duration::from_millis(drain_timeout_ms))
        .close_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn assert_cut_at_deadline(report: &Report) {
    assert_eq!(report.forced, Some(ForceCause::DrainTimeout), "{report}");
    assert_eq!(report.aborted, 1, "{report}");
    assert_ne!(report.exit_code, 0);
}

/// Engine-hang item 1: the trigger reaches Done in one step (nothing in flight, no
/// hook, no deadline before or after), while the blocking driver is parked with no
/// deadline. Before the fix only `changed` was notified and the driver slept forever.
#[test]
fn done_reached_by_the_trigger_wakes_a_parked_blocking_driver() {
    for _ in 0..20 {
        let sd = Shutdown::builder().build().unwrap();
        let driver = sd.spawn_driver();
        // Give the driver time to park (the bug needs it parked; the fix does not).
        std::thread::sleep(Duration::from_millis(10));
        sd.trigger("deploy");
        let report = within("driver.join() after Done", move || driver.join().unwrap());
        assert_eq!(report.exit_code, 0, "{report}");
    }
}

#[test]
fn done_reached_by_the_trigger_wakes_a_parked_async_driver() {
    for _ in 0..20 {
        let sd = Shutdown::builder().build().unwrap();
        let (tx, rx) = mpsc::channel();
        let runner = {
            let sd = sd.clone();
            std::thread::spawn(move || {
                let _ = tx.send(future::block_on(sd.run()));
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        sd.trigger("deploy");
        let report = rx.recv_timeout(BOUND).expect("run() returns once Done");
        assert_eq!(report.exit_code, 0);
        runner.join().unwrap();
    }
}

/// Engine-hang item 2: `future::or(server, sd.run())`, the server side wins at
/// quiescing and drops `run()`. A later `run()` must drive the drain deadline.
#[test]
fn a_dropped_run_hands_the_role_back_and_a_later_run_drives() {
    let sd = deadline_engine(300);
    let _never_ends = sd.guard().unwrap();
    let report = within("the second run()", move || {
        future::block_on(async {
            let server = {
                let sd = sd.clone();
                async move {
                    // SIGTERM arrives while run() is already driving.
                    sd.trigger("deploy");
                    sd.quiescing().await;
                    None
                }
            };
            let first = async { Some(sd.run().await) };
            // `or` polls `first` first: run() holds the role before the trigger.
            let won = future::or(first, server).await;
            assert!(won.is_none(), "the server loop ends first, at quiescing");
            assert_eq!(sd.phase(), Phase::Draining);
            sd.run().await
        })
    });
    assert_cut_at_deadline(&report);
}

/// A dropped `run()` also hands back the async hooks it was polling: the next driver
/// (here the engine's own thread) finishes them.
#[test]
fn a_dropped_run_hands_back_its_async_hooks() {
    let sd = Shutdown::builder()
        .drain_timeout(Duration::from_secs(5))
        .close_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let release = Arc::new(event_listener::Event::new());
    let released = Arc::new(AtomicBool::new(false));
    let polled = Arc::new(AtomicUsize::new(0));
    {
        let (release, released, polled) = (release.clone(), released.clone(), polled.clone());
        sd.on_close_async("waits", HookOptions::new(), move || async move {
            polled.fetch_add(1, Ordering::SeqCst);
            loop {
                let l = release.listen();
                if released.load(Ordering::SeqCst) {
                    return Ok(());
                }
                l.await;
            }
        })
        .unwrap();
    }
    let report = {
        let sd = sd.clone();
        within("the hook handed back", move || {
            future::block_on(async {
                let first = async { Some(sd.run().await) };
                let until_polled = async {
                    while polled.load(Ordering::SeqCst) == 0 {
                        async_io::Timer::after(Duration::from_millis(1)).await;
                    }
                    None
                };
                sd.trigger("deploy");
                assert!(future::or(until_polled, first).await.is_none());
            });
            // run() is gone, its hook unfinished; nobody calls run() again.
            released.store(true, Ordering::SeqCst);
            release.notify(usize::MAX);
            sd.wait()
        })
    };
    assert_eq!(report.hooks[0].outcome, HookOutcome::Ok, "{report}");
    assert_eq!(report.exit_code, 0);
}

/// Engine-hang item 2, the blocking twin: a stopped stoppable driver releases the role.
#[test]
fn a_stopped_driver_lets_a_later_driver_drive() {
    let sd = deadline_engine(300);
    let (thread, stop) = libshutdown::raw::spawn_stoppable_driver(&sd).unwrap();
    stop();
    assert!(thread.join().unwrap().is_none());
    let _never_ends = sd.guard().unwrap();
    sd.trigger("deploy");
    let driver = sd.spawn_driver();
    let report = within("spawn_driver after a stopped driver", move || {
        driver.join().unwrap()
    });
    assert_cut_at_deadline(&report);
}

/// The drives-itself issue: a threaded host that never starts a driver and blocks in
/// `wait()` still gets its drain deadline.
#[test]
fn a_drain_with_no_driver_drives_itself() {
    let sd = deadline_engine(300);
    let _never_ends = sd.guard().unwrap();
    sd.trigger("deploy");
    let report = within("wait() with no driver", move || sd.wait());
    assert_cut_at_deadline(&report);
}

/// The engine's own thread drives the announce window, then a host driver takes over
/// mid-drain: the deadline fires once, the report is whole.
#[test]
fn a_host_driver_takes_over_from_the_engine_thread() {
    let sd = Shutdown::builder()
        .drain_delay(Duration::from_millis(50))
        .drain_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let _never_ends = sd.guard().unwrap();
    let milestones = Arc::new(AtomicUsize::new(0));
    let m = milestones.clone();
    sd.on_milestone(move |_| {
        m.fetch_add(1, Ordering::SeqCst);
    });
    sd.trigger("deploy");
    let report = {
        let sd = sd.clone();
        within(
            "run() after the engine drove the announce window",
            move || {
                sd.wait_quiescing();
                future::block_on(sd.run())
            },
        )
    };
    assert_cut_at_deadline(&report);
    assert_eq!(milestones.load(Ordering::SeqCst), 4, "each milestone once");
}

/// The README's quickstart order, pasted into `main`: the host awaits `quiescing()`
/// before it ever reaches `run()`. With an announce window, nothing drove the window's
/// end until `run()`; the engine now drives it itself.
fn readme_order(
    block_on: fn(std::pin::Pin<Box<dyn std::future::Future<Output = Report> + Send>>) -> Report,
) {
    let sd = Shutdown::builder()
        .drain_delay(Duration::from_millis(100))
        .drain_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    sd.on_close("db pool", HookOptions::new(), || Ok(()))
        .unwrap();
    let guard = sd.guard().unwrap();
    let signal = {
        let sd = sd.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            sd.trigger(libshutdown::Reason::signal(15)); // what SIGTERM does
        })
    };
    let report = within("the README's order", move || {
        block_on(Box::pin(async move {
            sd.quiescing().await; // the server stops accepting here
            drop(guard); // the request in flight finishes
            sd.run().await
        }))
    });
    signal.join().unwrap();
    assert_eq!(report.exit_code, 0, "{report}");
}

#[test]
fn the_readme_order_runs_under_smol() {
    readme_order(smol::block_on);
}

#[test]
fn the_readme_order_runs_under_async_std() {
    readme_order(async_std::task::block_on);
}

#[test]
fn the_readme_order_runs_under_tokio() {
    readme_order(|f| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    });
}
