//! HTTP/1.1 server on plain threads: `std::net`, one thread per connection, requests
//! parsed by `httparse`, the blocking driver (`spawn_driver`) and `wait()`. The request
//! policy is the module the async servers share; each connection is registered with
//! the engine, which decides when an idle one is closed (see [`Conn::fill`]).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use httparse::Status;
use libshutdown::Connection;
use libshutdown_examples::app::{App, Begin, Reply, Work, REQUEST_ID};
use libshutdown_examples::cli::Options;

/// Largest request head.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body.
const MAX_BODY: usize = 1 << 20;
/// How often a blocked read wakes up to see whether the engine dismissed the
/// connection (it is closed that long after, at most).
const READ_TICK: Duration = Duration::from_millis(20);
/// A request that makes no progress for this long is dropped.
const STALL: Duration = Duration::from_secs(30);

fn main() {
    let options = Options::from_env_or_exit();
    // Signal handlers first, before any other thread exists.
    let app = App::start(&options);
    let listener = match TcpListener::bind(options.addr()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {}: {e}", options.addr());
            std::process::exit(2);
        }
    };
    let local = listener.local_addr().expect("bound");
    eprintln!("threads-server listening on {local}");
    let driver = app.sd.spawn_driver();

    // `accept` blocks; when the core says to stop listening (admission closed), wake it
    // with a connection of our own.
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let (sd, stopping) = (app.sd.clone(), stopping.clone());
        std::thread::Builder::new()
            .name("accept-stopper".into())
            .spawn(move || {
                sd.wait_unlisten();
                stopping.store(true, Ordering::Release);
                let _ = TcpStream::connect_timeout(&local, Duration::from_secs(1));
            })
            .expect("spawn");
    }
    for stream in listener.incoming() {
        if stopping.load(Ordering::Acquire) {
            break;
        }
        match stream {
            Ok(stream) => {
                let app = app.clone();
                let spawned = std::thread::Builder::new()
                    .name("connection".into())
                    .spawn(move || connection(app, stream));
                if let Err(e) = spawned {
                    eprintln!("could not start a connection thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    drop(listener);
    eprintln!("admission closed: listener dropped");

    let report = app.sd.wait();
    let _ = driver.join();
    app.finish(report)
}

/// A request head, owned.
struct Head {
    method: String,
    target: String,
    request_id: Option<String>,
    body: BodyFraming,
    expect_continue: bool,
    keep_alive: bool,
}

enum BodyFraming {
    None,
    Length(usize),
    Chunked,
}

/// One connection: requests one after another until either side closes.
fn connection(app: Arc<App>, mut stream: TcpStream) {
    let _token = app.connection();
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(READ_TICK));
    let mut conn = Conn {
        app: &app,
        conn: app.sd.connection(),
        stream: &mut stream,
        buf: Vec::with_capacity(4096),
    };
    match conn.serve() {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ) => {}
        Err(e) => eprintln!("connection: {e}"),
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    // The engine learns that the connection is closed when `conn.conn` drops, after this.
}

struct Conn<'a> {
    app: &'a Arc<App>,
    /// The connection, registered with the engine (dropped: closed).
    conn: Connection,
    stream: &'a mut TcpStream,
    buf: Vec<u8>,
}

impl Conn<'_> {
    fn serve(&mut self) -> io::Result<()> {
        loop {
            let Some(head) = self.read_head()? else {
                return Ok(());
            };
            let begin = self.app.begin(
                &self.conn,
                &head.method,
                &head.target,
                head.request_id.as_deref(),
            );
            let admitted = matches!(begin, Begin::Admitted(_));
            // Read (or, for a refusal, skip) the body so the next request starts in sync.
            if head.expect_continue && admitted {
                self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            let body = if admitted || !head.expect_continue {
                self.read_body(&head.body)?
            } else {
                None // the client waits for 100 Continue and never sends it: close
            };
            let reply = match begin {
                Begin::Reply(mut reply) => {
                    reply.close |= body.is_none();
                    reply
                }
                Begin::Admitted(a) => match (a.work, body) {
                    (_, None) => {
                        let mut reply = a.reply(413, "body refused");
                        reply.close = true;
                        reply
                    }
                    (Work::Root, _) => a.reply(200, "ok"),
                    (Work::Slow(d), _) => {
                        std::thread::sleep(d);
                        a.reply(200, format!("slept {} ms", d.as_millis()))
                    }
                    (Work::Accept, Some(body)) => {
                        a.reply(202, format!("accepted {} bytes", body.len()))
                    }
                    // The WebSocket echo is the hyper servers' (`hyper_service`).
                    (Work::WebSocket, _) => a.reply(501, "no websocket on this server"),
                },
            };
            let close = reply.close || !head.keep_alive;
            write_reply(self.stream, &reply, head.method == "HEAD", close)?;
            // The response is written: now the request finishes (its guard goes).
            drop(reply);
            if close {
                return Ok(());
            }
        }
    }

    /// Reads more bytes. `Ok(false)`: the client closed, or the connection is idle
    /// (`idle`: no byte of a request read yet) and the engine dismissed it.
    ///
    /// The first bytes of a request mark the connection
    /// [`reading`](Connection::reading): from then on the engine does not dismiss it
    /// (the request is served, with `Connection: close` once admission closed), and
    /// counts it as cut if the drain ends before its head is complete.
    fn fill(&mut self, idle: bool, since: Instant) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    if idle {
                        self.conn.reading();
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if idle && self.conn.is_dismissed() {
                        return Ok(false);
                    }
                    if !idle && since.elapsed() > STALL {
                        return Err(io::Error::new(ErrorKind::TimedOut, "request stalled"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn read_head(&mut self) -> io::Result<Option<Head>> {
        let since = Instant::now();
        if !self.buf.is_empty() {
            // A pipelined request, read with the one before.
            self.conn.reading();
        }
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&self.buf) {
                Ok(Status::Complete(len)) => {
                    let head = head_of(&req).map_err(|m| self.refuse(m))?;
                    self.buf.drain(..len);
                    return Ok(Some(head));
                }
                Ok(Status::Partial) if self.buf.len() > MAX_HEAD => {
                    return Err(self.refuse("request head too large"));
                }
                Ok(Status::Partial) => {}
                Err(e) => return Err(self.refuse(&e.to_string())),
            }
            if !self.fill(self.buf.is_empty(), since)? {
                return Ok(None);
            }
        }
    }

    /// Answers 400 and closes.
    fn refuse(&mut self, why: &str) -> io::Error {
        let msg = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}\n",
            why.len() + 1
        );
        let _ = self.stream.write_all(msg.as_bytes());
        io::Error::new(ErrorKind::InvalidData, why.to_string())
    }

    /// Reads a whole body; `None` when it is too large.
    fn read_body(&mut self, framing: &BodyFraming) -> io::Result<Option<Vec<u8>>> {
        let since = Instant::now();
        match *framing {
            BodyFraming::None => Ok(Some(Vec::new())),
            BodyFraming::Length(n) if n > MAX_BODY => Ok(None),
            BodyFraming::Length(n) => {
                while self.buf.len() < n {
                    if !self.fill(false, since)? {
                        return Err(ErrorKind::UnexpectedEof.into());
                    }
                }
                Ok(Some(self.buf.drain(..n).collect()))
            }
            BodyFraming::Chunked => {
                let mut body = Vec::new();
                loop {
                    let size = match httparse::parse_chunk_size(&self.buf) {
                        Ok(Status::Complete((used, size))) => {
                            self.buf.drain(..used);
                            size as usize
                        }
                        Ok(Status::Partial) => {
                            if !self.fill(false, since)? {
                                return Err(ErrorKind::UnexpectedEof.into());
                            }
                            continue;
                        }
                        Err(_) => return Err(self.refuse("bad chunk size")),
                    };
                    if size == 0 {
                        // Trailers, if any, then an empty line.
                        loop {
                            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                                self.buf.drain(..end + 2);
                                if end == 0 {
                                    return Ok(Some(body));
                                }
                            } else if !self.fill(false, since)? {
                                return Err(ErrorKind::UnexpectedEof.into());
                            }
                        }
                    }
                    if body.len() + size > MAX_BODY {
                        return Ok(None);
                    }
                    while self.buf.len() < size + 2 {
                        if !self.fill(false, since)? {
                            return Err(ErrorKind::UnexpectedEof.into());
                        }
                    }
                    body.extend_from_slice(&self.buf[..size]);
                    self.buf.drain(..size + 2);
                }
            }
        }
    }
}

fn head_of(req: &httparse::Request<'_, '_>) -> Result<Head, &'static str> {
    let version = req.version.unwrap_or(1);
    let mut head = Head {
        method: req.method.unwrap_or("GET").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        request_id: None,
        body: BodyFraming::None,
        expect_continue: false,
        keep_alive: version >= 1,
    };
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        let name = h.name;
        if name.eq_ignore_ascii_case(REQUEST_ID) {
            head.request_id = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse().map_err(|_| "bad content-length")?;
            if matches!(head.body, BodyFraming::Length(m) if m != n) {
                return Err("conflicting content-length");
            }
            if !matches!(head.body, BodyFraming::Chunked) {
                head.body = BodyFraming::Length(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.to_ascii_lowercase().ends_with("chunked") {
                return Err("unsupported transfer-encoding");
            }
            head.body = BodyFraming::Chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && version == 0 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") && value.eq_ignore_ascii_case("100-continue")
        {
            head.expect_continue = true;
        }
    }
    Ok(head)
}

fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        reply.status,
        reply.reason(),
        reply.body.len()
    );
    if !reply.request_id.is_empty() {
        out.push_str(&format!("X-Request-Id: {}\r\n", reply.request_id));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&reply.body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}
