//! Model checks of the admission word: every interleaving of the atomic protocol, by
//! loom. Run with `make loom` (`cargo test -p libshutdown --features loom --test loom`).
#![cfg(feature = "loom")]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use libshutdown::admission::{Close, DrainSink, Handle};

/// Counts drain notifications and frees. (The word may briefly count a refused
/// acquire that is about to undo itself, so `in_flight` is not asserted in `drained`.)
struct Probe {
    drained: Arc<AtomicUsize>,
    freed: Arc<AtomicUsize>,
}

impl DrainSink for Probe {
    fn drained(handle: &Handle<Self>) {
        handle.get().drained.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.freed.fetch_add(1, Ordering::SeqCst);
    }
}

fn probe() -> (Handle<Probe>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let drained = Arc::new(AtomicUsize::new(0));
    let freed = Arc::new(AtomicUsize::new(0));
    let h = Handle::new(Probe {
        drained: drained.clone(),
        freed: freed.clone(),
    });
    (h, drained, freed)
}

/// A request racing the close: the drain ends exactly once (at close, or by the
/// release), and a guard admitted is always waited for.
#[test]
fn close_races_acquire_and_release() {
    loom::model(|| {
        let (h, drained, freed) = probe();
        let h2 = h.clone();
        let worker = thread::spawn(move || {
            if let Some(g) = h2.try_acquire() {
                drop(g);
                true
            } else {
                false
            }
        });
        let close = h.close();
        let admitted = worker.join().unwrap();
        let ended_at_close = close == Close::Drained;
        assert_eq!(
            drained.load(Ordering::SeqCst) + ended_at_close as usize,
            1,
            "the drain ends exactly once (admitted: {admitted}, close: {close:?})"
        );
        assert_eq!(h.in_flight(), 0);
        assert!(h.try_acquire().is_none(), "no guard after close");
        drop(h);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    });
}

/// Two guards leaving at once while closed: one notification, never two, never none.
#[test]
fn concurrent_last_releases_notify_once() {
    loom::model(|| {
        let (h, drained, _) = probe();
        let a = h.try_acquire().unwrap();
        let b = h.try_acquire().unwrap();
        assert_eq!(h.close(), Close::Waiting(2));
        let t = thread::spawn(move || drop(a));
        drop(b);
        t.join().unwrap();
        assert_eq!(drained.load(Ordering::SeqCst), 1);
    });
}

/// A refused acquire's undo racing the last release: still exactly one notification.
#[test]
fn refused_acquire_undo_races_last_release() {
    loom::model(|| {
        let (h, drained, _) = probe();
        let g = h.try_acquire().unwrap();
        h.close();
        let h2 = h.clone();
        let t = thread::spawn(move || assert!(h2.try_acquire().is_none()));
        drop(g);
        t.join().unwrap();
        assert_eq!(drained.load(Ordering::SeqCst), 1);
    });
}

/// The deadline (end_drain) racing the last release, while the last handle is dropped:
/// exactly one of them ends the drain, and the block is freed exactly once, after both.
#[test]
fn deadline_races_last_release_and_handle_drop() {
    loom::model(|| {
        let (h, drained, freed) = probe();
        let g = h.try_acquire().unwrap();
        h.close();
        let t = thread::spawn(move || drop(g));
        let ended_by_deadline = h.end_drain();
        drop(h);
        t.join().unwrap();
        assert_eq!(
            drained.load(Ordering::SeqCst) + ended_by_deadline as usize,
            1
        );
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    });
}

/// A child guard taken while the drain waits keeps the drain open.
#[test]
fn child_guard_keeps_the_drain_open() {
    loom::model(|| {
        let (h, drained, _) = probe();
        let parent = h.try_acquire().unwrap();
        h.close();
        let child = parent.child();
        let t = thread::spawn(move || drop(parent));
        drop(child);
        t.join().unwrap();
        assert_eq!(drained.load(Ordering::SeqCst), 1);
    });
}

/// A late connection's reserve joining the work in flight (`try_join`) while the last
/// guard leaves a closed engine: either the join wins and the drain ends once, at its
/// release, or it loses and gets nothing after the drain ended; never a guard held
/// after the drain was declared over, never two notifications.
#[test]
fn join_races_last_release() {
    loom::model(|| {
        let (h, drained, freed) = probe();
        let g = h.try_acquire().unwrap();
        assert_eq!(h.close(), Close::Waiting(1));
        let h2 = h.clone();
        let joiner = thread::spawn(move || {
            let joined = h2.try_join();
            let drained_while_held =
                joined.is_some() && h2.get().drained.load(Ordering::SeqCst) != 0;
            drop(joined);
            drained_while_held
        });
        drop(g);
        assert!(
            !joiner.join().unwrap(),
            "the drain ended under a joined guard"
        );
        assert_eq!(drained.load(Ordering::SeqCst), 1);
        assert!(h.try_join().is_none(), "nothing to join once drained");
        drop(h);
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    });
}
