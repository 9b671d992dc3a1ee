//! The quiesce-boundary rule of `Connection`, on a virtual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{Phase, Shutdown, CONNECTION_KIND};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn engine() -> Shutdown {
    Shutdown::builder()
        .manual_clock()
        .drain_timeout(ms(1000))
        .build()
        .unwrap()
}

fn recorder(sd: &Shutdown) -> Arc<Mutex<Vec<u64>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    sd.on_dismissed(move |ids| s.lock().unwrap().extend_from_slice(ids));
    seen
}

fn done_at(sd: &Shutdown) -> Duration {
    let r = sd.report().expect("done");
    r.timeline.last().unwrap().at
}

#[test]
fn a_client_reusing_a_keep_alive_connection_at_the_close_is_served() {
    // The http-terminator race: a keep-alive response just before the trigger, the
    // client reuses the socket at once, its request arrives after admission closed.
    let sd = engine();
    let conn = sd.connection();
    let mut req = conn.request().unwrap();
    assert!(req.keep_alive(), "while Running");
    assert!(req.finish(), "stays open");
    sd.advance(ms(1)).unwrap();
    sd.trigger("deploy"); // no announce window: admission closes now
    assert!(!sd.is_accepting());
    assert!(!conn.is_dismissed(), "idle for 1 ms only: within the grace");
    assert_eq!(sd.phase(), Phase::Draining, "the boundary holds the drain");
    assert_eq!(sd.in_flight(), 0, "the reserve is not work");
    sd.advance(ms(2)).unwrap();
    let mut req = conn
        .request()
        .expect("a request on a connection of the boundary");
    assert!(!req.keep_alive(), "answered with Connection: close");
    assert!(!req.finish(), "closed after its response");
    drop(conn);
    let r = sd.report().expect("the last connection closed: done");
    assert_eq!(r.exit_code, 0, "{r}");
    assert_eq!(r.aborted, 0);
}

#[test]
fn idle_connections_are_dismissed_at_once_or_when_their_grace_ends() {
    let sd = engine();
    let seen = recorder(&sd);
    let old = sd.connection();
    sd.advance(ms(500)).unwrap();
    let recent = sd.connection();
    let mut r = recent.request().unwrap();
    assert!(r.keep_alive());
    sd.advance(ms(10)).unwrap();
    assert!(r.finish());
    sd.advance(ms(10)).unwrap(); // recent: idle for 10 ms at the trigger
    sd.trigger("deploy");
    assert!(old.is_dismissed(), "idle for 520 ms: dismissed at once");
    assert_eq!(*seen.lock().unwrap(), vec![old.id()]);
    assert!(!recent.is_dismissed());
    drop(old);
    sd.advance(ms(89)).unwrap();
    assert!(!recent.is_dismissed(), "idle for 99 ms");
    sd.advance(ms(1)).unwrap();
    assert!(recent.is_dismissed(), "idle for 100 ms: the grace");
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(sd.phase(), Phase::Draining, "until the host closes it");
    drop(recent);
    assert_eq!(done_at(&sd), ms(90));
    assert_eq!(sd.report().unwrap().exit_code, 0);
}

#[test]
fn with_no_connection_the_drain_is_not_held() {
    let sd = engine();
    sd.trigger("deploy");
    assert_eq!(sd.phase(), Phase::Done);
    let late = sd.connection();
    assert!(late.is_dismissed(), "accepted once the drain is over");
    assert!(late.request().is_none());
}

#[test]
fn a_request_arriving_at_the_close_is_served() {
    // Half its headers before the trigger, the rest after.
    let sd = engine();
    let conn = sd.connection();
    sd.advance(ms(300)).unwrap();
    conn.reading();
    sd.trigger("deploy");
    assert!(!conn.is_dismissed(), "a request is arriving on it");
    sd.advance(ms(400)).unwrap();
    assert!(!conn.is_dismissed(), "still arriving, past the grace");
    let req = conn.request().expect("served");
    sd.advance(ms(50)).unwrap();
    assert!(!req.finish());
    drop(conn);
    let r = sd.report().unwrap();
    assert_eq!(r.exit_code, 0, "{r}");
}

#[test]
fn a_request_still_arriving_at_the_deadline_is_cut_and_counted() {
    let sd = engine();
    let seen = recorder(&sd);
    let conn = sd.connection();
    conn.reading();
    let idle = sd.connection();
    sd.advance(ms(200)).unwrap();
    sd.trigger("deploy");
    assert_eq!(*seen.lock().unwrap(), vec![idle.id()]);
    drop(idle);
    sd.advance(ms(1000)).unwrap();
    let r = sd.report().expect("the deadline cut the drain");
    assert_eq!(r.aborted, 1, "{r}");
    assert_eq!(r.aborted_by_kind.get(CONNECTION_KIND), Some(&1));
    assert_ne!(r.exit_code, 0);
    assert!(
        conn.is_dismissed(),
        "everything left is dismissed at the end"
    );
    assert!(seen.lock().unwrap().contains(&conn.id()));
}

#[test]
fn a_dismissed_connection_kept_for_an_arriving_request_is_dismissed_again_at_the_end() {
    let sd = engine();
    let seen = recorder(&sd);
    let conn = sd.connection();
    sd.advance(ms(500)).unwrap();
    sd.trigger("deploy");
    assert_eq!(*seen.lock().unwrap(), vec![conn.id()]);
    conn.reading(); // the host found bytes on it: it keeps it and waits for the head
    sd.advance(ms(1000)).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![conn.id(), conn.id()],
        "the drain is over: cut it"
    );
    let r = sd.report().unwrap();
    assert_eq!(r.aborted_by_kind.get(CONNECTION_KIND), Some(&1), "{r}");
}

#[test]
fn a_response_that_announced_keep_alive_before_the_close_keeps_its_connection() {
    let sd = engine();
    let conn = sd.connection();
    let mut req = conn.request().unwrap();
    assert!(req.keep_alive(), "headers written while Running");
    sd.trigger("deploy");
    sd.advance(ms(30)).unwrap();
    assert!(req.finish(), "the client was told keep-alive: it may reuse");
    assert_eq!(sd.phase(), Phase::Draining);
    sd.advance(ms(99)).unwrap();
    assert!(!conn.is_dismissed());
    sd.advance(ms(1)).unwrap();
    assert!(conn.is_dismissed(), "100 ms after its response");
    drop(conn);
    assert_eq!(done_at(&sd), ms(130));
}

#[test]
fn a_connection_accepted_from_the_backlog_after_the_close_is_served() {
    let sd = engine();
    let busy = sd.connection();
    let req = busy.request().unwrap();
    sd.trigger("deploy");
    sd.advance(ms(1)).unwrap();
    let late = sd.connection(); // its client connected before the listener closed
    assert!(!late.is_dismissed());
    let r2 = late.request().expect("served");
    drop(req);
    drop(busy);
    assert!(!r2.finish());
    drop(late);
    assert_eq!(sd.report().unwrap().exit_code, 0);
}

#[test]
fn an_upgraded_connection_holds_its_long_lived_guard_not_the_boundary() {
    let sd = engine();
    let ws = sd.kind("websocket").unwrap();
    let conn = sd.connection();
    let long = conn.request().unwrap().upgrade(Some(ws));
    sd.trigger("deploy");
    assert_eq!(sd.in_flight(), 1, "the websocket");
    assert_eq!(sd.phase(), Phase::Draining);
    drop(long); // the app closed it (close frame sent)
    assert_eq!(
        sd.phase(),
        Phase::Done,
        "the upgraded connection does not hold the drain"
    );
    drop(conn);
    assert_eq!(sd.report().unwrap().exit_code, 0);
}

#[test]
fn during_the_announce_window_requests_are_admitted_and_advised_to_close() {
    let sd = Shutdown::builder()
        .manual_clock()
        .drain_delay(ms(200))
        .build()
        .unwrap();
    let conn = sd.connection();
    sd.trigger("deploy");
    let mut req = conn.request().expect("admission is open");
    assert!(!req.keep_alive(), "immediate advice");
    assert!(!req.finish());
    drop(conn);
    sd.advance(ms(200)).unwrap();
    assert_eq!(sd.phase(), Phase::Done);
    assert_eq!(done_at(&sd), ms(200));
}

#[test]
fn concurrent_connections_across_the_trigger_never_hang_or_lose_a_served_request() {
    for round in 0..20 {
        let sd = Shutdown::builder()
            .drain_timeout(Duration::from_secs(10))
            .connection_grace(ms(5))
            .build()
            .unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let sd = sd.clone();
                std::thread::spawn(move || {
                    let mut served = 0u32;
                    'conns: for _ in 0..200 {
                        let conn = sd.connection();
                        for _ in 0..5 {
                            if conn.is_dismissed() {
                                continue 'conns;
                            }
                            let Some(mut req) = conn.request() else {
                                continue 'conns;
                            };
                            let keep = req.keep_alive();
                            served += 1;
                            if !req.finish() {
                                assert!(!keep);
                                continue 'conns;
                            }
                        }
                    }
                    served
                })
            })
            .collect();
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        sd.trigger("deploy");
        let served: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        let report = sd.wait();
        assert_eq!(
            report.exit_code, 0,
            "round {round}, {served} served: {report}"
        );
        assert_eq!(sd.connections(), 0);
    }
}

#[test]
fn a_connection_from_the_backlog_after_the_last_one_closed_is_served_while_work_remains() {
    // PM2's cluster master (or a listener's backlog) hands over a connection after
    // admission closed and after every earlier connection had closed, while other work
    // (a job) still holds the drain: the request it carries is served, with
    // `Connection: close`, not refused.
    let sd = engine();
    let job = sd.guard().unwrap();
    let first = sd.connection();
    sd.trigger("deploy");
    drop(first); // the boundary's last connection: its reserve is released
    assert_eq!(sd.phase(), Phase::Draining, "the job holds the drain");
    let late = sd.connection();
    late.reading();
    let mut req = late
        .request()
        .expect("a request on a connection the listener accepted before it closed");
    assert!(!req.keep_alive(), "answered with Connection: close");
    drop(job);
    assert_eq!(
        sd.phase(),
        Phase::Draining,
        "the late request holds the drain"
    );
    assert!(!req.finish());
    drop(late);
    let r = sd.report().expect("done once the late connection closed");
    assert_eq!(r.exit_code, 0, "{r}");
    assert_eq!(r.aborted, 0, "{r}");
}

#[test]
fn a_connection_after_the_drain_ended_is_still_dismissed() {
    let sd = engine();
    sd.trigger("deploy");
    assert_eq!(sd.phase(), Phase::Done, "nothing in flight");
    let late = sd.connection();
    assert!(late.is_dismissed());
    assert!(late.request().is_none());
}
