//! Every future of the engine has a blocking twin for thread-per-connection hosts:
//! a thread parked in the twin wakes when what the future waits for happens, from
//! another thread. Each wait is bounded by a channel timeout (a hang bound, never an
//! assertion about speed).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use libshutdown::{LongLived, Phase, Shutdown};

const BOUND: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `wait` on a thread, then `cause` here; the thread must come back.
fn wakes(wait: impl FnOnce() + Send + 'static, cause: impl FnOnce()) {
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        wait();
        tx.send(()).unwrap();
    });
    // The waiter is (very likely) parked by now; if not, it finds the condition met.
    thread::sleep(ms(20));
    cause();
    rx.recv_timeout(BOUND)
        .expect("the blocking wait did not wake");
    waiter.join().unwrap();
}

fn engine() -> Shutdown {
    Shutdown::builder()
        .manual_clock()
        .drain_timeout(ms(10_000))
        .close_timeout(ms(1000))
        .long_lived("websocket", LongLived::new(ms(500)))
        .build()
        .unwrap()
}

#[test]
fn wait_closing_wakes_when_the_hooks_start() {
    let sd = engine();
    let guard = sd.guard().unwrap();
    sd.trigger("deploy");
    let s = sd.clone();
    wakes(move || s.wait_closing(), || drop(guard));
    assert!(matches!(sd.phase(), Phase::Closing | Phase::Done));
}

#[test]
fn wait_ending_wakes_when_the_kind_is_told_to_end() {
    let sd = engine();
    let ws = sd.kind("websocket").unwrap();
    let _socket = sd.guard_of(ws).unwrap();
    let s = sd.clone();
    wakes(
        move || s.wait_ending(ws),
        || {
            sd.trigger("deploy");
        },
    );
    assert!(sd.is_ending(ws));
}

#[test]
fn wait_ending_returns_for_a_kind_without_a_policy_once_the_drain_is_over() {
    let sd = engine();
    let other = sd.kind("job").unwrap();
    let s = sd.clone();
    wakes(
        move || s.wait_ending(other),
        || {
            sd.trigger("deploy");
        },
    );
    assert_eq!(sd.phase(), Phase::Done);
}

#[test]
fn wait_dismissed_wakes_when_an_idle_connection_is_dismissed() {
    let sd = Shutdown::builder()
        .manual_clock()
        .connection_grace(Duration::ZERO)
        .build()
        .unwrap();
    let conn = sd.connection();
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        conn.wait_dismissed();
        tx.send(conn.is_dismissed()).unwrap();
        // Dropped here: the connection closes, as a host would close it.
    });
    thread::sleep(ms(20));
    sd.trigger("deploy");
    assert!(rx.recv_timeout(BOUND).expect("wait_dismissed did not wake"));
    waiter.join().unwrap();
    assert_eq!(
        sd.wait_timeout(BOUND)
            .expect("Done once the connection closed")
            .exit_code,
        0
    );
}
