//! Long-lived kinds and the event stream, on a virtual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{Event, HookOptions, LongLived, Milestone, Phase, Shutdown};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn events(sd: &Shutdown) -> Arc<Mutex<Vec<(Duration, Event)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    sd.on_event(move |at, e| s.lock().unwrap().push((at, e.clone())));
    seen
}

fn ws_engine(grace: u64) -> Shutdown {
    Shutdown::builder()
        .manual_clock()
        .drain_timeout(ms(10_000))
        .long_lived("websocket", LongLived::new(ms(grace)))
        .build()
        .unwrap()
}

#[test]
fn a_stream_ended_within_its_grace_is_a_clean_drain() {
    let sd = ws_engine(5000);
    let seen = events(&sd);
    let ws = sd.kind("websocket").unwrap();
    let socket = sd.guard_of(ws).unwrap();
    sd.advance(ms(10)).unwrap();
    assert!(!sd.is_ending(ws));
    sd.trigger("deploy");
    assert!(sd.is_ending(ws), "told at admission close");
    assert!(seen
        .lock()
        .unwrap()
        .contains(&(ms(10), Event::StreamsEnding(ws))));
    sd.advance(ms(30)).unwrap(); // the app sends its close frame, the client answers
    drop(socket);
    let r = sd.report().unwrap();
    assert_eq!(r.exit_code, 0, "{r}");
    assert!(!sd.is_cut(ws));
}

#[test]
fn a_stream_left_open_past_its_grace_is_cut_and_counted_once() {
    let sd = ws_engine(1000);
    let seen = events(&sd);
    let ws = sd.kind("websocket").unwrap();
    let a = sd.guard_of(ws).unwrap();
    let b = sd.guard_of(ws).unwrap();
    let other = sd.guard().unwrap();
    sd.trigger("deploy");
    drop(a); // one closes in time
    sd.advance(ms(1000)).unwrap();
    assert!(sd.is_cut(ws));
    assert!(seen
        .lock()
        .unwrap()
        .contains(&(ms(1000), Event::StreamsCut { kind: ws, count: 1 })));
    assert_eq!(sd.phase(), Phase::Draining, "the other work goes on");
    sd.advance(ms(9000)).unwrap(); // the drain deadline, `b` still held
    let r = sd.report().unwrap();
    assert_eq!(
        r.aborted, 2,
        "b once (at its cut), the other guard at the deadline: {r}"
    );
    assert_eq!(r.aborted_by_kind.get("websocket"), Some(&1));
    assert_ne!(r.exit_code, 0);
    drop((b, other));
}

#[test]
fn a_cut_stream_released_by_the_host_ends_the_drain() {
    let sd = ws_engine(200);
    let ws = sd.kind("websocket").unwrap();
    let s = sd.guard_of(ws).unwrap();
    sd.trigger("deploy");
    sd.advance(ms(200)).unwrap();
    drop(s); // the host destroyed it
    let r = sd.report().expect("done once the cut stream is gone");
    assert_eq!(r.aborted, 1);
    assert_eq!(r.timeline.last().unwrap().at, ms(200));
}

#[test]
fn a_kind_told_at_the_trigger_is_told_before_admission_closes() {
    let sd = Shutdown::builder()
        .manual_clock()
        .drain_delay(ms(500))
        .long_lived(
            "sse",
            LongLived::new(ms(300)).notify_at(Milestone::Draining),
        )
        .build()
        .unwrap();
    let sse = sd.kind("sse").unwrap();
    let s = sd.guard_of(sse).unwrap();
    sd.trigger("deploy");
    assert!(sd.is_ending(sse));
    assert!(sd.is_accepting());
    sd.advance(ms(300)).unwrap();
    assert!(sd.is_cut(sse), "its grace runs from the trigger");
    drop(s);
    sd.advance(ms(200)).unwrap();
    assert_eq!(sd.report().unwrap().aborted, 1);
}

#[test]
fn the_ending_future_resolves_when_the_kind_is_told() {
    let sd = ws_engine(1000);
    let ws = sd.kind("websocket").unwrap();
    let ending = sd.ending(ws);
    let waiter = std::thread::spawn(move || futures_lite::future::block_on(ending));
    std::thread::sleep(ms(5));
    sd.trigger("deploy");
    waiter.join().unwrap();
}

#[test]
fn the_event_stream_is_in_order_with_times() {
    let sd = Shutdown::builder()
        .manual_clock()
        .drain_timeout(ms(1000))
        .build()
        .unwrap();
    let seen = events(&sd);
    sd.on_close("db", HookOptions::new(), || Ok(())).unwrap();
    let g = sd.guard().unwrap();
    sd.trigger("deploy");
    sd.advance(ms(40)).unwrap();
    drop(g);
    let names: Vec<_> = seen.lock().unwrap().iter().map(|(_, e)| e.name()).collect();
    assert_eq!(
        names,
        [
            "draining",
            "quiescing",
            "unlisten",
            "closing",
            "hook_started",
            "hook_finished",
            "cancelled",
            "done"
        ]
    );
    let codes: Vec<_> = seen.lock().unwrap().iter().map(|(_, e)| e.code()).collect();
    assert_eq!(codes, [1, 2, 13, 3, 6, 7, 5, 4]);
    assert!(seen.lock().unwrap()[3..]
        .iter()
        .all(|(at, _)| *at == ms(40)));
}

#[test]
fn invalid_long_lived_policies_are_refused_naming_the_field() {
    let dup = Shutdown::builder()
        .long_lived("ws", LongLived::new(ms(1)))
        .long_lived("ws", LongLived::new(ms(2)))
        .build()
        .unwrap_err();
    assert_eq!(dup.field(), "long_lived");
    assert!(dup.reason().contains("twice"), "{dup}");
    let late = Shutdown::builder()
        .long_lived("ws", LongLived::new(ms(1)).notify_at(Milestone::Closing))
        .build()
        .unwrap_err();
    assert_eq!(late.field(), "long_lived");
    let empty = Shutdown::builder()
        .long_lived("", LongLived::new(ms(1)))
        .build()
        .unwrap_err();
    assert_eq!(empty.field(), "long_lived");
}
