//! Model checks of the driver protocol, by loom: the role word (claims, takeover,
//! release on drop), and the listen / check / park / notify handshake between a
//! driver and the thread that ends the shutdown. Run with `make loom`.
//!
//! The park side is the shape of every driver loop in `core/src/driver/`: listen
//! first, then check, then park. `Event` below is that handshake on loom's
//! primitives (event-listener itself is not loom-aware); the decision of *when* the
//! machine's step notifies the driver is the crate's own `step_wakes_driver`.
#![cfg(feature = "loom")]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use libshutdown::driver::role::{step_wakes_driver, Role, Took, Who};

/// listen() takes a ticket; wait(ticket) parks until a notify after that ticket.
struct Event {
    seq: Mutex<u64>,
    cv: Condvar,
}

impl Event {
    fn new() -> Self {
        Event {
            seq: Mutex::new(0),
            cv: Condvar::new(),
        }
    }
    fn listen(&self) -> u64 {
        *self.seq.lock().unwrap()
    }
    fn wait(&self, ticket: u64) {
        let mut seq = self.seq.lock().unwrap();
        while *seq == ticket {
            seq = self.cv.wait(seq).unwrap();
        }
    }
    fn notify(&self) {
        *self.seq.lock().unwrap() += 1;
        self.cv.notify_all();
    }
}

/// Done reached by another thread (a trigger with nothing in flight: no deadline
/// before the step, none after) while the driver is anywhere between its check and
/// its park. The driver always returns; with a rule that wakes only on a moved
/// deadline, loom finds the interleaving where it parks forever (a deadlock).
#[test]
fn done_reached_elsewhere_always_wakes_the_driver() {
    loom::model(|| {
        let wake = Arc::new(Event::new());
        let done = Arc::new(AtomicBool::new(false));
        let driver = {
            let (wake, done) = (wake.clone(), done.clone());
            thread::spawn(move || loop {
                let ticket = wake.listen();
                if done.load(Ordering::Acquire) {
                    return;
                }
                // tick: nothing to do, no deadline: park without a timeout
                wake.wait(ticket);
            })
        };
        // The other thread's machine step: no deadline before, none after, Done.
        done.store(true, Ordering::Release);
        if step_wakes_driver(None, None, true) {
            wake.notify();
        }
        driver.join().unwrap();
    });
}

/// A driver that ends (its future dropped) releases the role and notifies; a second
/// driver waiting for the role always gets it, and the stale ticket never matches.
#[test]
fn a_released_role_is_always_claimed_by_the_waiting_driver() {
    loom::model(|| {
        let role = Arc::new(Role::new());
        let changed = Arc::new(Event::new());
        let (first, took) = role.claim_host(Who::HostAsync).unwrap();
        assert_eq!(took, Took::Free);
        let waiter = {
            let (role, changed) = (role.clone(), changed.clone());
            thread::spawn(move || loop {
                let ticket = changed.listen();
                if let Some((t, _)) = role.claim_host(Who::HostBlocking) {
                    return t;
                }
                changed.wait(ticket);
            })
        };
        // The first driver's claim is dropped.
        assert!(role.release(first));
        changed.notify();
        let second = waiter.join().unwrap();
        assert!(role.holds(second));
        assert!(!role.holds(first));
    });
}

/// The engine's thread and a host driver race for the role, and the engine's thread
/// releases when it stops: the host always ends up with the role, and a taken-over
/// release never frees the host's claim.
#[test]
fn host_and_engine_claims_never_overlap() {
    loom::model(|| {
        let role = Arc::new(Role::new());
        let engine = {
            let role = role.clone();
            thread::spawn(move || {
                if let Some(t) = role.claim_engine() {
                    // Taken over or not, the engine's thread lets go when it stops.
                    role.release(t);
                }
            })
        };
        let host = role.claim_host(Who::HostBlocking);
        let (t, _) = host.expect("a host claim wins over the engine, or a free role");
        engine.join().unwrap();
        assert!(
            role.holds(t),
            "the engine's release never frees the host's claim"
        );
        assert_eq!(role.holder(), Some(Who::HostBlocking));
        assert!(role.claim_engine().is_none());
    });
}
