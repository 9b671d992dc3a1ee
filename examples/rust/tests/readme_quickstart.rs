//! The README's Rust quickstart, built from the README's own text, as a real process:
//! a request in flight when SIGTERM arrives finishes with 200, two readiness probes
//! end the announce window, and the process exits 0 with a clean report.
//!
//! Every wait is bounded and the process is killed by pid if one runs out; no
//! assertion depends on how fast the machine is.

#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(LIMIT)).unwrap();
    // One write: the request may still arrive in pieces, the server must cope.
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("a whole response");
    out
}

#[test]
fn the_readme_quickstart_drains_a_request_in_flight_on_sigterm() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let child = Command::new(env!("CARGO_BIN_EXE_readme-quickstart"))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the quickstart");
    let mut child = Killed(child);
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < LIMIT, "the quickstart never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200"));

    let in_flight = std::thread::spawn(move || get(addr, "/work"));
    std::thread::sleep(Duration::from_millis(50)); // the request is being served
    let pid = child.0.id() as libc::pid_t;
    // SAFETY: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    // The balancer's probes: two "not ready" answers end the announce window.
    let mut probes = 0;
    while probes < 2 {
        let r = get(addr, "/readyz");
        if r.starts_with("HTTP/1.1 503") {
            probes += 1;
        }
        assert!(started.elapsed() < LIMIT, "readiness never turned 503");
    }
    let served = in_flight.join().unwrap();
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    assert!(served.ends_with("done"), "{served}");

    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the quickstart did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("shutdown report: clean"), "{stderr}");
    assert!(stderr.contains("db pool"), "{stderr}");
}
