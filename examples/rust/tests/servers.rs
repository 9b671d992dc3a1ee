//! Each example server, as a real process on a real port, through one graceful
//! shutdown: a request in flight when SIGTERM arrives finishes with 200, an idle
//! keep-alive connection is closed by the server while the drain goes on, a request
//! reusing a keep-alive connection just after admission closed or arriving in pieces
//! across it is served (200, `Connection: close`), the request log has every line, the
//! JSON report is clean and the exit code is 0. A WebSocket (`GET /ws`) open at
//! SIGTERM is sent a Close frame 1001 and, once it answers, the exit is clean; one that
//! never answers is cut after the `websocket` grace and counted as aborted.
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
    /// The server's stderr lines after `listening on`.
    stderr: std::sync::mpsc::Receiver<String>,
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
    start_with(exe, name, &[])
}

fn start_with(exe: &str, name: &str, extra: &[&str]) -> Server {
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
        .args(extra)
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
    Server {
        child,
        addr,
        log,
        stderr: rx,
    }
}

impl Server {
    /// Sends SIGTERM and waits until the server says admission closed.
    fn sigterm_and_wait_closed(&self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains("admission closed") => return,
                Ok(_) => {}
                Err(_) => panic!("no `admission closed` line"),
            }
        }
    }

    /// Waits for the exit; returns the exit code and the JSON report.
    fn exit(&mut self, name: &str) -> (Option<i32>, String) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "{name}: did not exit");
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut json = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut json)
            .unwrap();
        (status.code(), json)
    }
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

    // The idle keep-alive connection is closed by the server (the engine dismissed it)
    // while the request in flight still holds the drain.
    let mut rest = Vec::new();
    let r = idle.read_to_end(&mut rest);
    assert!(
        matches!(r, Ok(0)),
        "{name}: idle connection: {r:?} {rest:?}"
    );
    let l = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !l.contains("completed slow"),
        "{name}: closed only after the drain\n{l}"
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
    assert!(!log.contains("probe"), "probes are not logged\n{log}");
}

/// (a) A client reuses a keep-alive connection just after SIGTERM: the request is
/// served (200, `Connection: close`), never reset or refused.
fn keep_alive_reuse(exe: &str, name: &str) {
    let mut server = start(exe, &format!("{name}-reuse"));
    let mut c = connect(server.addr).unwrap();
    send(&mut c, "/", "ka1");
    let a = read_answer(&mut c).unwrap();
    assert_eq!((a.status, a.close), (200, false), "{name}: {a:?}");
    server.sigterm_and_wait_closed();
    // Reused within a few milliseconds of admission closing.
    send(&mut c, "/", "ka2");
    let a = read_answer(&mut c);
    assert!(
        matches!(&a, Ok(a) if (a.status, a.close) == (200, true)),
        "{name}: the reused connection got {a:?}"
    );
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap_or(0), 0, "{name}: closed");
    let (code, json) = server.exit(name);
    assert_eq!(code, Some(0), "{name}: {json}");
    assert!(json.contains(r#""aborted":0,"#), "{name}: {json}");
}

/// (b) Half a request head before SIGTERM, the rest 300 ms after: served with 200.
fn half_head(exe: &str, name: &str) {
    let mut server = start(exe, &format!("{name}-half"));
    let mut c = connect(server.addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: te").unwrap();
    // Longer than the connection grace: were the connection taken for idle, it would
    // be closed at once.
    std::thread::sleep(Duration::from_millis(200));
    server.sigterm_and_wait_closed();
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(b"st\r\nX-Request-Id: half\r\n\r\n").unwrap();
    let a = read_answer(&mut c);
    assert!(
        matches!(&a, Ok(a) if (a.status, a.close) == (200, true)),
        "{name}: the half-sent request got {a:?}"
    );
    let (code, json) = server.exit(name);
    assert_eq!(code, Some(0), "{name}: {json}");
    assert!(json.contains(r#""aborted":0,"#), "{name}: {json}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("completed half 200\n"), "{name}: {log}");
}

/// (c) A keep-alive connection idle since long before SIGTERM is closed by the server
/// at once, and the server exits 0 long before the drain timeout (15 s).
fn idle_closed(exe: &str, name: &str) {
    let mut server = start(exe, &format!("{name}-idle"));
    let mut c = connect(server.addr).unwrap();
    send(&mut c, "/", "idle");
    let a = read_answer(&mut c).unwrap();
    assert_eq!((a.status, a.close), (200, false), "{name}: {a:?}");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    server.sigterm_and_wait_closed();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut rest = Vec::new();
    let r = c.read_to_end(&mut rest);
    assert!(
        matches!(r, Ok(0)),
        "{name}: the idle connection was not closed cleanly: {r:?} {rest:?}"
    );
    let closed = t0.elapsed();
    let (code, json) = server.exit(name);
    let exited = t0.elapsed();
    assert_eq!(code, Some(0), "{name}: {json}");
    assert!(json.contains(r#""aborted":0,"#), "{name}: {json}");
    assert!(
        closed < Duration::from_secs(2) && exited < Duration::from_secs(5),
        "{name}: closed after {closed:?}, exited after {exited:?}"
    );
}

/// A WebSocket client on `/ws`, its handshake done, its request named `id`.
fn ws_connect(addr: SocketAddr, id: &str) -> tungstenite::WebSocket<TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("x-request-id", id.parse().unwrap());
    let (ws, res) = tungstenite::client(req, connect(addr).unwrap()).unwrap();
    assert_eq!(res.status(), 101);
    ws
}

/// Sends a text message and reads its echo.
fn ws_echo(ws: &mut tungstenite::WebSocket<TcpStream>, text: &str) {
    ws.send(tungstenite::Message::text(text)).unwrap();
    match ws.read().unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), text),
        m => panic!("not the echo: {m:?}"),
    }
}

/// (d) A WebSocket open at SIGTERM: the server sends Close 1001 (Going Away), the
/// client answers it, the server exits 0 with nothing aborted.
fn websocket_going_away(exe: &str, name: &str) {
    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::Message;
    let mut server = start_with(
        exe,
        &format!("{name}-ws"),
        &["--websocket-grace-ms", "5000"],
    );
    let mut ws = ws_connect(server.addr, "ws1");
    ws_echo(&mut ws, "hello");
    server.sigterm_and_wait_closed();
    let frame = match ws.read() {
        Ok(Message::Close(frame)) => frame,
        Ok(m) => panic!("{name}: before the close: {m:?}"),
        Err(e) => panic!("{name}: no close frame: {e}"),
    };
    let frame = frame.expect("a close frame with a code");
    assert_eq!(frame.code, CloseCode::Away, "{name}: {frame:?}");
    // tungstenite queued the answering Close: send it; the server then closes the
    // connection (a read timeout would be a failure).
    let _ = ws.flush();
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
        Err(tungstenite::Error::Io(e))
            if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        r => panic!("{name}: after the close: {r:?}"),
    }
    let (code, json) = server.exit(name);
    assert_eq!(code, Some(0), "{name}: {json}");
    assert!(json.contains(r#""aborted":0,"#), "{name}: {json}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("accepted ws1\n") && log.contains("completed ws1 101\n"),
        "{name}: {log}"
    );
}

/// (e) A WebSocket client that never answers the close (it stops reading): the server
/// cuts it once the `websocket` grace (1 s) is over, exits 1, and the report counts it
/// as 1 aborted under `websocket`.
fn websocket_cut(exe: &str, name: &str) {
    let mut server = start_with(
        exe,
        &format!("{name}-wscut"),
        &["--websocket-grace-ms", "1000"],
    );
    let mut ws = ws_connect(server.addr, "ws2");
    ws_echo(&mut ws, "hello");
    let t0 = Instant::now();
    server.sigterm_and_wait_closed();
    // No more reads: the Close frame is never seen, never answered.
    let (code, json) = server.exit(name);
    let exited = t0.elapsed();
    assert_eq!(code, Some(1), "{name}: {json}");
    assert!(json.contains(r#""aborted":1,"#), "{name}: {json}");
    assert!(
        json.contains(r#""aborted_by_kind":{"websocket":1}"#),
        "{name}: {json}"
    );
    assert!(
        exited >= Duration::from_secs(1),
        "{name}: cut before its grace, after {exited:?}"
    );
    drop(ws);
}

macro_rules! flavours {
    ($($test:ident: $f:ident($exe:literal);)*) => {
        $(
            #[test]
            fn $test() {
                $f(env!(concat!("CARGO_BIN_EXE_", $exe)), $exe);
            }
        )*
    };
}

flavours! {
    smol_keep_alive_reuse: keep_alive_reuse("smol-server");
    async_std_keep_alive_reuse: keep_alive_reuse("async-std-server");
    tokio_keep_alive_reuse: keep_alive_reuse("tokio-server");
    threads_keep_alive_reuse: keep_alive_reuse("threads-server");
    smol_half_head: half_head("smol-server");
    async_std_half_head: half_head("async-std-server");
    tokio_half_head: half_head("tokio-server");
    threads_half_head: half_head("threads-server");
    smol_idle_closed: idle_closed("smol-server");
    async_std_idle_closed: idle_closed("async-std-server");
    tokio_idle_closed: idle_closed("tokio-server");
    smol_websocket_going_away: websocket_going_away("smol-server");
    async_std_websocket_going_away: websocket_going_away("async-std-server");
    tokio_websocket_going_away: websocket_going_away("tokio-server");
    smol_websocket_cut: websocket_cut("smol-server");
    async_std_websocket_cut: websocket_cut("async-std-server");
    tokio_websocket_cut: websocket_cut("tokio-server");
    threads_idle_closed: idle_closed("threads-server");
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
