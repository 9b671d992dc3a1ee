//! The progress snapshot and the periodic progress events, on a virtual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{Event, HookOptions, Phase, Progress, Shutdown};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_drain_reports_its_progress_every_interval_until_done() {
    let sd = Shutdown::builder()
        .manual_clock()
        .drain_timeout(ms(10_000))
        .build()
        .unwrap();
    let seen: Arc<Mutex<Vec<(Duration, Progress)>>> = Default::default();
    let s = seen.clone();
    sd.on_event(move |at, e| {
        if let Event::Progress(p) = e {
            s.lock().unwrap().push((at, p.clone()));
        }
    });
    let http = sd.kind("http").unwrap();
    let a = sd.guard_of(http).unwrap();
    let b = sd.guard().unwrap();
    sd.advance(ms(500)).unwrap();
    assert!(
        sd.progress().time_left.is_none(),
        "Running: nothing to wait for"
    );
    sd.trigger("deploy");
    sd.advance(ms(1500)).unwrap();
    drop(a);
    sd.advance(ms(1000)).unwrap();
    drop(b);
    sd.advance(ms(5000)).unwrap();
    let seen = seen.lock().unwrap();
    let at: Vec<_> = seen.iter().map(|(at, _)| *at).collect();
    assert_eq!(
        at,
        [ms(1500), ms(2500)],
        "every second of the drain, none after Done"
    );
    let first = &seen[0].1;
    assert_eq!(first.phase, Phase::Draining);
    assert_eq!(first.in_flight, 2);
    assert_eq!(first.in_flight_by_kind.get("http"), Some(&1));
    assert_eq!(first.time_left, Some(ms(9000)));
    assert_eq!(
        first.to_string(),
        "draining (admission closed): 2 in flight (http 1), 0 connections, 9.0 s left"
    );
    assert_eq!(seen[1].1.in_flight, 1);
    assert_eq!(sd.progress().phase, Phase::Done);
    assert_eq!(sd.progress().timeline.len(), 4);
}

#[test]
fn hooks_running_are_reported_with_the_budget_left() {
    let sd = Shutdown::builder()
        .manual_clock()
        .close_timeout(ms(3000))
        .build()
        .unwrap();
    let seen: Arc<Mutex<Vec<Progress>>> = Default::default();
    let s = seen.clone();
    sd.on_event(move |_, e| {
        if let Event::Progress(p) = e {
            s.lock().unwrap().push(p.clone());
        }
    });
    let pending: Arc<Mutex<Option<libshutdown::HookDone>>> = Default::default();
    let keep = pending.clone();
    sd.on_close_deferred("flush", HookOptions::new(), move |done| {
        *keep.lock().unwrap() = Some(done);
    })
    .unwrap();
    sd.trigger("deploy");
    sd.advance(ms(1200)).unwrap();
    let p = seen.lock().unwrap()[0].clone();
    assert_eq!(p.phase, Phase::Closing);
    assert_eq!(p.time_left, Some(ms(2000)));
    pending.lock().unwrap().take().unwrap().finish(Ok(()));
    assert_eq!(sd.report().unwrap().exit_code, 0);
}

#[test]
fn progress_can_be_turned_off_and_a_too_short_interval_is_refused() {
    let sd = Shutdown::builder()
        .manual_clock()
        .progress_interval(None)
        .build()
        .unwrap();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    sd.on_event(move |_, e| {
        if matches!(e, Event::Progress(_)) {
            *c.lock().unwrap() += 1;
        }
    });
    let g = sd.guard().unwrap();
    sd.trigger("deploy");
    sd.advance(ms(5000)).unwrap();
    drop(g);
    assert_eq!(*count.lock().unwrap(), 0);
    let e = Shutdown::builder()
        .progress_interval(Some(ms(1)))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "progress_interval");
}
