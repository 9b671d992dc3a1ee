//! Each example server, as a real process on a real port, through one graceful
//! shutdown: a request in flight when SIGTERM arrives finishes with 200, a request on a
//! surviving keep-alive connection after admission closed gets 503 and
//! `Connection: close`, the request log has every line, the JSON report is clean and
//! the exit code is 0.
//!
//! Every wait is bounded and the server is killed by pid if one runs out; no assertion
//! depends on how fast the machine is.

#![cfg(unix)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn start(exe: &str, name: &str) -> Server {
    let log = std::env::temp_dir().join(format!(
        "libshutdown-examples-{name}-{}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let mut child = Command::new(exe)
        .args([
            "--port",
            "0",
            "--json-report",
            "--drain-timeout-ms",
            "15000",
        ])
        .arg("--log-requests")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    // The first stderr line names the port; the rest is kept for failures.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        match rx.recv_timeout(LIMIT) {
            Ok(line) => {
                if let Some(a) = line.split("listening on ").nth(1) {
                    break a.trim().parse().expect("an address");
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("{name}: no `listening on` line");
            }
        }
    };
    Server { child, addr, log }
}

/// One parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    close: bool,
    body: String,
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, LIMIT)?;
    s.set_read_timeout(Some(LIMIT))?;
    Ok(s)
}

fn send(s: &mut TcpStream, target: &str, id: &str) {
    let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\nX-Request-Id: {id}\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
}

/// Reads one response (head and `Content-Length` body).
fn read_answer(s: &mut TcpStream) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut res = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head) = res.parse(&buf).unwrap() else {
            continue;
        };
        let header = |name: &str| {
            res.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        };
        let len: usize = header("content-length").unwrap().parse().unwrap();
        if buf.len() < head + len {
            continue;
        }
        return Ok(Answer {
            status: res.code.unwrap(),
            close: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
            body: String::from_utf8_lossy(&buf[head..head + len]).into_owned(),
        });
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn graceful_shutdown(exe: &str, name: &str) {
    let mut server = start(exe, name);
    let addr = server.addr;

    // A keep-alive connection that survives into the drain.
    let mut idle = connect(addr).unwrap();
    send(&mut idle, "/", "first");
    let a = read_answer(&mut idle).unwrap();
    assert_eq!((a.status, a.close), (200, false), "{name}: {a:?}");
    let mut ready = connect(addr).unwrap();
    send(&mut ready, "/readyz", "probe");
    let a = read_answer(&mut ready).unwrap();
    assert_eq!(a.status, 200, "{name}: {a:?}");

    // A request in flight (long enough that it cannot finish before the signal is
    // handled, yet the assertions below do not depend on it).
    let mut slow = connect(addr).unwrap();
    send(&mut slow, "/slow?ms=1000", "slow");
    let log = server.log.clone();
    wait_for("the slow request", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("accepted slow\n"))
    });

    let pid = server.child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    // Admission closes, then the listener goes: new connections are refused.
    wait_for("the listener to close", || match connect(addr) {
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false,
    });

    // The surviving keep-alive connection: 503, Connection: close, then closed.
    send(&mut idle, "/", "late");
    let a = read_answer(&mut idle).unwrap();
    assert_eq!((a.status, a.close), (503, true), "{name}: {a:?}");
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap_or(0),
        0,
        "{name}: closed"
    );

    // The request in flight completes.
    let a = read_answer(&mut slow).unwrap();
    assert_eq!(a.status, 200, "{name}: {a:?}");
    assert_eq!(a.body, "slept 1000 ms\n", "{name}");

    // Exit 0 with a clean JSON report on stdout.
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "{name}: did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut json = String::new();
    server
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{name}: {json}");
    assert!(
        json.contains(r#""reason":{"kind":"signal","detail":"SIGTERM"}"#),
        "{name}: {json}"
    );
    assert!(json.contains(r#""aborted":0,"#), "{name}: {json}");
    assert!(
        json.contains(r#""name":"request log","order":0,"outcome":{"status":"ok"}"#),
        "{name}: {json}"
    );
    assert!(
        json.trim_end().ends_with(r#""exit_code":0}"#),
        "{name}: {json}"
    );

    let log = std::fs::read_to_string(&server.log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let pos = |l: &str| {
        lines
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("{name}: no `{l}` in\n{log}"))
    };
    assert!(pos("accepted first") < pos("completed first 200"), "{log}");
    assert!(pos("accepted slow") < pos("completed slow 200"), "{log}");
    pos("refused late 503");
    assert!(!log.contains("probe"), "probes are not logged\n{log}");
}

#[test]
fn smol_server() {
    graceful_shutdown(env!("CARGO_BIN_EXE_smol-server"), "smol-server");
}

#[test]
fn async_std_server() {
    graceful_shutdown(env!("CARGO_BIN_EXE_async-std-server"), "async-std-server");
}

#[test]
fn tokio_server() {
    graceful_shutdown(env!("CARGO_BIN_EXE_tokio-server"), "tokio-server");
}

#[test]
fn threads_server() {
    graceful_shutdown(env!("CARGO_BIN_EXE_threads-server"), "threads-server");
}

#[test]
fn demo_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("demo: all 5 in-flight requests completed with 200; exit code 0"),
        "{stdout}"
    );
}
