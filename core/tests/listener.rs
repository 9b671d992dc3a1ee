//! When the host stops listening (`unlisten`), with and without listener holds, on a
//! virtual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{Event, Phase, Shutdown};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn engine(drain_delay: u64) -> Shutdown {
    Shutdown::builder()
        .manual_clock()
        .drain_delay(ms(drain_delay))
        .drain_timeout(ms(1000))
        .build()
        .unwrap()
}

/// The names of every event from now on, with their time in ms.
fn events(sd: &Shutdown) -> Arc<Mutex<Vec<(&'static str, u128)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    sd.on_event(move |at, e| s.lock().unwrap().push((e.name(), at.as_millis())));
    seen
}

fn unlistens(seen: &Mutex<Vec<(&'static str, u128)>>) -> Vec<u128> {
    let seen = seen.lock().unwrap();
    seen.iter()
        .filter(|(n, _)| *n == "unlisten")
        .map(|(_, at)| *at)
        .collect()
}

#[test]
fn with_no_hold_the_host_stops_listening_when_admission_closes() {
    let sd = engine(200);
    let seen = events(&sd);
    let job = sd.guard().unwrap();
    sd.advance(ms(10)).unwrap();
    sd.trigger("deploy");
    assert!(sd.should_listen(), "the announce window: still admitting");
    sd.advance(ms(199)).unwrap();
    assert!(sd.should_listen());
    sd.advance(ms(1)).unwrap();
    assert!(!sd.should_listen(), "admission closed");
    assert_eq!(unlistens(&seen), vec![210]);
    let names: Vec<_> = seen.lock().unwrap().iter().map(|e| e.0).collect();
    let q = names.iter().position(|n| *n == "quiescing").unwrap();
    let u = names.iter().position(|n| *n == "unlisten").unwrap();
    assert!(q < u, "after the quiescing milestone: {names:?}");
    drop(job);
    assert_eq!(sd.phase(), Phase::Done);
    assert_eq!(unlistens(&seen).len(), 1, "once");
    assert_eq!(Event::Unlisten.code(), 13);
}

#[test]
fn a_hold_keeps_the_listener_open_until_it_is_dropped() {
    let sd = engine(0);
    let seen = events(&sd);
    let job = sd.guard().unwrap();
    let a = sd.hold_listener().expect("listening");
    let b = sd.hold_listener().expect("listening");
    sd.trigger("deploy");
    assert!(!sd.is_accepting());
    assert!(sd.should_listen(), "two holds");
    sd.advance(ms(50)).unwrap();
    drop(a);
    assert!(sd.should_listen(), "one hold left");
    sd.advance(ms(50)).unwrap();
    drop(b);
    assert!(!sd.should_listen());
    assert_eq!(unlistens(&seen), vec![100]);
    assert!(
        sd.hold_listener().is_none(),
        "nothing to hold once unlistened"
    );
    drop(job);
    let r = sd.report().unwrap();
    assert_eq!(r.exit_code, 0, "{r}");
    assert_eq!(unlistens(&seen).len(), 1);
}

#[test]
fn a_hold_dropped_before_admission_closes_changes_nothing() {
    let sd = engine(100);
    let seen = events(&sd);
    let job = sd.guard().unwrap();
    drop(sd.hold_listener().unwrap());
    sd.trigger("deploy");
    let hold = sd.hold_listener().expect("admission still open");
    drop(hold);
    assert!(
        sd.should_listen(),
        "dropped while admitting: nothing to say yet"
    );
    assert!(unlistens(&seen).is_empty());
    sd.advance(ms(100)).unwrap();
    assert!(!sd.should_listen());
    assert_eq!(unlistens(&seen), vec![100]);
    drop(job);
}

#[test]
fn the_drain_s_end_stops_listening_whatever_is_held() {
    let sd = engine(0);
    let seen = events(&sd);
    let _job = sd.guard().unwrap(); // never released: the deadline ends the drain
    let hold = sd.hold_listener().unwrap();
    sd.trigger("deploy");
    assert!(sd.should_listen());
    sd.advance(ms(1000)).unwrap();
    assert!(sd.phase() >= Phase::Closing);
    assert!(!sd.should_listen(), "the drain is over");
    assert_eq!(unlistens(&seen), vec![1000]);
    drop(hold);
    assert_eq!(unlistens(&seen).len(), 1, "said once");
}

#[test]
fn the_future_and_its_blocking_twin_wake_when_the_last_hold_goes() {
    let sd = Shutdown::builder()
        .drain_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let job = sd.guard().unwrap();
    let hold = sd.hold_listener().unwrap();
    sd.trigger("deploy");
    let s = sd.clone();
    let blocking = std::thread::spawn(move || s.wait_unlisten());
    let s = sd.clone();
    let asynchronous = std::thread::spawn(move || futures_lite::future::block_on(s.unlisten()));
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !blocking.is_finished() && !asynchronous.is_finished(),
        "held"
    );
    drop(hold);
    blocking.join().unwrap();
    asynchronous.join().unwrap();
    drop(job);
    assert_eq!(sd.wait().exit_code, 0);
}

#[test]
fn holds_released_on_threads_across_the_trigger_say_unlisten_exactly_once() {
    for round in 0..50 {
        let sd = Shutdown::builder()
            .drain_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let seen = events(&sd);
        let job = sd.guard().unwrap();
        let start = Arc::new(std::sync::Barrier::new(5));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (sd, start) = (sd.clone(), start.clone());
                std::thread::spawn(move || {
                    let hold = sd.hold_listener();
                    start.wait();
                    if (i + round) % 2 == 0 {
                        std::thread::yield_now();
                    }
                    drop(hold);
                    // A hold asked for at any moment: taken only while still listening.
                    if let Some(h) = sd.hold_listener() {
                        drop(h);
                    }
                })
            })
            .collect();
        start.wait();
        sd.trigger("deploy");
        for t in threads {
            t.join().unwrap();
        }
        assert!(!sd.should_listen(), "round {round}");
        assert_eq!(unlistens(&seen).len(), 1, "round {round}");
        drop(job);
        assert_eq!(sd.wait().exit_code, 0);
        assert_eq!(unlistens(&seen).len(), 1, "round {round}: still once");
    }
}
