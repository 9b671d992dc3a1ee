//! A threaded server that never starts a driver: `listen_signals()`, a request guard
//! that never finishes, `wait()` on the main thread. One real SIGTERM (what
//! Kubernetes, docker and systemd send before their SIGKILL) must end it at the drain
//! deadline with the forced exit code and its report. Before the engine drove itself,
//! it sat there until a second signal.
//!
//! The server is this test binary re-executed (`--exact forgotten_driver_child
//! --ignored`): an ordinary run lists the child as ignored.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libshutdown::Shutdown;

const FORCED: i32 = 3;
const BOUND: Duration = Duration::from_secs(30);

#[test]
fn one_sigterm_ends_a_server_that_never_started_a_driver() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "forgotten_driver_child",
            "--ignored",
            "--nocapture",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-execute the test binary");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let started = Instant::now();
    while !line.contains("READY") {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 || started.elapsed() > BOUND {
            let _ = child.kill();
            panic!("the child never said READY");
        }
    }
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("one SIGTERM did not end the server (no driver drove the deadline)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut report = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    assert_eq!(status.code(), Some(FORCED), "{report}");
    assert!(report.contains("forced: drain deadline passed"), "{report}");
    assert!(report.contains("1 trigger)"), "after one signal: {report}");
    assert!(report.contains("aborted: 1"), "{report}");
}

#[test]
#[ignore = "the child process of one_sigterm_ends_a_server_that_never_started_a_driver"]
fn forgotten_driver_child() {
    let sd = Shutdown::builder()
        .drain_timeout(Duration::from_millis(500))
        .forced_exit_code(FORCED)
        .build()
        .unwrap();
    let _listener = sd.listen_signals().unwrap();
    let request = sd.guard().unwrap(); // a request that never finishes
    println!("READY");
    let report = sd.wait(); // no spawn_driver(), no run()
    drop(request);
    eprint!("{report}");
    std::process::exit(report.exit_code);
}
