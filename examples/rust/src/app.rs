//! The request policy every example server shares, whatever its executor or HTTP
//! stack: readiness, admission (one guard per request), keep-alive advice, the request
//! log, the cleanup hook, and what happens when the shutdown is Done.
//!
//! A server registers each accepted connection with the engine
//! ([`Shutdown::connection`]), turns each request on it into [`App::begin`], does the
//! work a [`Begin::Admitted`] asks for (sleeping, reading the body) in its own way, and
//! writes the [`Reply`]. The reply carries the connection's [`Request`] (its guard):
//! drop the reply only after the response is written, so the drain waits for the
//! bytes, not just for the handler. Whether a request is admitted after admission
//! closed, and whether its response keeps the connection open, is the core's
//! decision (the quiesce-boundary rule): the servers only translate it.
//!
//! A WebSocket (`GET /ws`) turns its request into long-lived work of kind
//! `websocket` ([`Admitted::upgrade`]): the drain waits for it, the core says when to
//! end it ([`Shutdown::ending`]) and when its grace is over ([`App::cut`]).

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use futures_lite::future;
use libshutdown::{
    Connection, Event as ShutdownEvent, Guard, HookOptions, Kind, Report, Request, Shutdown,
    SignalListener,
};

use crate::cli::{Options, WEBSOCKET};

/// The request header whose value names a request in the log (and is echoed back).
pub const REQUEST_ID: &str = "x-request-id";

/// Longest `/slow?ms=N` accepted.
pub const MAX_SLOW: Duration = Duration::from_secs(600);

/// One line per accepted, completed and refused request, written whole with one
/// `write` on an append-only file so lines never interleave and survive a hard exit.
pub struct RequestLog {
    file: Mutex<File>,
}

impl RequestLog {
    /// Opens (creates, appends to) the log file.
    pub fn open(path: &std::path::Path) -> io::Result<RequestLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RequestLog {
            file: Mutex::new(file),
        })
    }

    fn line(&self, line: &str) {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            eprintln!("request log: {e}");
        }
    }

    fn sync(&self) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sync_all()
    }
}

/// Shared state of one example server.
pub struct App {
    /// The engine.
    pub sd: Shutdown,
    /// The guard label of HTTP requests (`"http"`), so the report counts them by kind.
    pub http: Kind,
    /// The long-lived kind of WebSocket connections (`"websocket"`, configured with
    /// the `--websocket-grace-ms` policy).
    pub websocket: Kind,
    /// Notified on every [`Event::StreamsCut`](ShutdownEvent::StreamsCut).
    streams_cut: Arc<Event>,
    log: Option<Arc<RequestLog>>,
    next_id: AtomicU64,
    connections: AtomicUsize,
    connection_closed: Event,
    options: Options,
    signals: Mutex<Option<SignalListener>>,
}

/// What [`App::begin`] decided.
pub enum Begin {
    /// Answer at once (readiness probe, refusal, unknown path).
    Reply(Reply),
    /// Admitted: do the work, then [`Admitted::reply`].
    Admitted(Admitted),
}

/// The work of an admitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `GET /`: answer at once.
    Root,
    /// `GET /slow?ms=N`: sleep, then answer.
    Slow(Duration),
    /// `POST /work`: read the body, then answer 202.
    Accept,
    /// `GET /ws`: a WebSocket echo server ([`Admitted::upgrade`]); the threads server
    /// answers 501.
    WebSocket,
}

/// An admitted request, holding its guard.
pub struct Admitted {
    /// What to do before answering.
    pub work: Work,
    ticket: Ticket,
}

impl Admitted {
    /// The request's id (its `X-Request-Id`, or one made up).
    pub fn id(&self) -> &str {
        &self.ticket.id
    }

    /// The answer, once the work is done: its `close` is the core's keep-alive
    /// decision for this request, asked now, as the response head is built.
    pub fn reply(mut self, status: u16, body: impl Into<String>) -> Reply {
        self.ticket.status = status;
        let close = !self
            .ticket
            .request
            .as_mut()
            .is_some_and(Request::keep_alive);
        let id = self.ticket.id.clone();
        Reply::new(status, body, close, id, Some(self.ticket))
    }

    /// The request becomes long-lived work of `kind` (a WebSocket, at its `101`): the
    /// connection leaves HTTP ([`Request::upgrade`]). The returned [`Stream`] holds
    /// its guard; it logs `completed ID 101` when dropped, as the socket ends.
    pub fn upgrade(mut self, kind: Kind) -> Stream {
        self.ticket.status = 101;
        let request = self
            .ticket
            .request
            .take()
            .expect("an admitted request holds its request");
        Stream {
            guard: request.upgrade(Some(kind)),
            ticket: self.ticket,
        }
    }
}

/// Long-lived work that began as a request (see [`Admitted::upgrade`]). Drop it when
/// the stream has ended: the drain stops waiting for it.
pub struct Stream {
    // Dropped in this order: the log line, then the guard.
    ticket: Ticket,
    guard: Guard,
}

impl Stream {
    /// The id of the request that opened it.
    pub fn id(&self) -> &str {
        &self.ticket.id
    }

    /// Its guard (its kind is the one given to [`Admitted::upgrade`]).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }
}

/// Holds a request's [`Request`] (its guard); logs `completed ID STATUS` when dropped,
/// after the response was written, then finishes the request.
pub struct Ticket {
    app: Arc<App>,
    id: String,
    status: u16,
    /// `None` once upgraded (the guard moved to a [`Stream`]).
    request: Option<Request>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.app
            .log(&format!("completed {} {}\n", self.id, self.status));
    }
}

/// A response to write.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// A short text body.
    pub body: String,
    /// Send `Connection: close` and end the connection after this response.
    pub close: bool,
    /// Echoed as `X-Request-Id`.
    pub request_id: String,
    /// The request of an admitted request: drop it once the response is written.
    pub ticket: Option<Ticket>,
    /// The core's request of a readiness probe (not work, not logged): drop it once
    /// the response is written, too.
    pub probe: Option<Request>,
}

impl Reply {
    fn new(
        status: u16,
        body: impl Into<String>,
        close: bool,
        request_id: String,
        ticket: Option<Ticket>,
    ) -> Reply {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Reply {
            status,
            body,
            close,
            request_id,
            ticket,
            probe: None,
        }
    }

    /// The reason phrase of the status.
    pub fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            202 => "Accepted",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            413 => "Payload Too Large",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            _ => "",
        }
    }
}

impl App {
    /// Builds the engine from `options`, registers the cleanup hook and installs the
    /// signal handlers (call it first thing in `main`, before any runtime starts its
    /// threads). Prints the problem and exits 2 if the configuration is refused.
    pub fn start(options: &Options) -> Arc<App> {
        match App::new(options) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }

    /// [`start`](Self::start) without the exit.
    pub fn new(options: &Options) -> Result<Arc<App>, Box<dyn std::error::Error>> {
        let sd = options.builder().build()?;
        let http = sd.kind("http")?;
        let websocket = sd.kind(WEBSOCKET)?;
        let streams_cut = streams_cut(&sd);
        let log = match &options.log_requests {
            Some(path) => Some(Arc::new(
                RequestLog::open(path).map_err(|e| format!("{}: {e}", path.display()))?,
            )),
            None => None,
        };
        // The one cleanup hook: make the request log durable (a real server would close
        // its database pool and flush its queues here).
        let hook_log = log.clone();
        sd.on_close("request log", HookOptions::new(), move || {
            if let Some(log) = hook_log {
                log.sync()?;
            }
            Ok(())
        })?;
        let signals = sd.listen_signals()?;
        Ok(Arc::new(App {
            sd,
            http,
            websocket,
            streams_cut,
            log,
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            connection_closed: Event::new(),
            options: options.clone(),
            signals: Mutex::new(Some(signals)),
        }))
    }

    /// The options the server was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn log(&self, line: &str) {
        if let Some(log) = &self.log {
            log.line(line);
        }
    }

    /// Resolves once the long-lived work of `kind` is cut (its grace ran out:
    /// [`Shutdown::is_cut`]), or the drain itself was cut short: a stream still open
    /// then is destroyed, and the report counts it as aborted.
    pub fn cut(&self, kind: Kind) -> impl Future<Output = ()> + Send + 'static {
        let sd = self.sd.clone();
        let event = self.streams_cut.clone();
        let cancelled = self.sd.cancelled();
        let cut = async move {
            loop {
                if sd.is_cut(kind) {
                    return;
                }
                let listener = event.listen();
                if sd.is_cut(kind) {
                    return;
                }
                listener.await;
            }
        };
        future::or(cut, cancelled)
    }

    /// Decides what to do with one request whose head is complete, on `conn`:
    /// `method`, the request target (`/slow?ms=10`) and the `X-Request-Id` header if
    /// any. The core admits it or not ([`Connection::request_of`]).
    pub fn begin(
        self: &Arc<Self>,
        conn: &Connection,
        method: &str,
        target: &str,
        request_id: Option<&str>,
    ) -> Begin {
        let id = match request_id.map(sanitize).filter(|s| !s.is_empty()) {
            Some(id) => id,
            None => format!("auto-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path == "/readyz" {
            // Probes are not work: no guard, answered in every phase.
            // Still a request of the connection for the core (unlabelled, so the
            // report's `http` counts only work): it ends the request that was arriving
            // and decides the keep-alive. Answered even when the core refuses it.
            let mut probe = conn.request();
            let close = !probe.as_mut().is_some_and(Request::keep_alive);
            let mut reply = if self.sd.is_ready() {
                Reply::new(200, "ready", close, id, None)
            } else {
                // The balancer has seen "not ready" once more (adaptive announce).
                self.sd.readiness_probed();
                Reply::new(503, "draining", close, id, None)
            };
            reply.probe = probe;
            return Begin::Reply(reply);
        }
        let Some(request) = conn.request_of(self.http) else {
            // The core refused it (the drain is over).
            self.log(&format!("refused {id} 503\n"));
            return Begin::Reply(Reply::new(503, "shutting down", true, id, None));
        };
        let work = match (method, path) {
            ("GET" | "HEAD", "/") => Ok(Work::Root),
            ("GET" | "HEAD", "/slow") => slow_ms(query)
                .map(Work::Slow)
                .ok_or((400, "usage: /slow?ms=N")),
            ("POST", "/work") => Ok(Work::Accept),
            ("GET", "/ws") => Ok(Work::WebSocket),
            (_, "/" | "/slow" | "/work" | "/ws") => Err((405, "method not allowed")),
            _ => Err((404, "not found")),
        };
        self.log(&format!("accepted {id}\n"));
        let admitted = Admitted {
            work: Work::Root,
            ticket: Ticket {
                app: self.clone(),
                id,
                status: 0,
                request: Some(request),
            },
        };
        match work {
            Ok(work) => Begin::Admitted(Admitted { work, ..admitted }),
            Err((status, body)) => Begin::Reply(admitted.reply(status, body)),
        }
    }

    /// Counts a connection task; the count drops with the returned token. [`finish`]
    /// lets the surviving connections end before the process exits.
    ///
    /// [`finish`]: Self::finish
    pub fn connection(self: &Arc<Self>) -> ConnectionToken {
        self.connections.fetch_add(1, Ordering::AcqRel);
        ConnectionToken { app: self.clone() }
    }

    /// Waits up to `limit` for every connection task to end.
    pub fn wait_connections(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.connections.load(Ordering::Acquire) == 0 {
                return true;
            }
            let listener = self.connection_closed.listen();
            if self.connections.load(Ordering::Acquire) == 0 {
                return true;
            }
            if listener.wait_deadline(deadline).is_none() {
                return self.connections.load(Ordering::Acquire) == 0;
            }
        }
    }

    /// The end of `main`: lets connections finish their last response (at most a
    /// second), prints the report to stderr (and as JSON on stdout with
    /// `--json-report`), and exits with the report's exit code.
    pub fn finish(&self, report: Report) -> ! {
        if !self.wait_connections(Duration::from_secs(1)) {
            eprintln!("note: some connections were still open at exit");
        }
        if let Some(signals) = self
            .signals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            signals.stop();
        }
        eprint!("{report}");
        if self.options.json_report {
            println!("{}", report.to_json());
        }
        let _ = io::stdout().flush();
        std::process::exit(report.exit_code);
    }
}

/// An event that the engine notifies on every [`Event::StreamsCut`](ShutdownEvent::StreamsCut)
/// (see [`App::cut`]).
fn streams_cut(sd: &Shutdown) -> Arc<Event> {
    let event = Arc::new(Event::new());
    let notify = event.clone();
    sd.on_event(move |_, e| {
        if let ShutdownEvent::StreamsCut { .. } = e {
            notify.notify(usize::MAX);
        }
    });
    event
}

/// One live connection task; see [`App::connection`].
pub struct ConnectionToken {
    app: Arc<App>,
}

impl Drop for ConnectionToken {
    fn drop(&mut self) {
        self.app.connections.fetch_sub(1, Ordering::AcqRel);
        self.app.connection_closed.notify(usize::MAX);
    }
}

/// `N` from `ms=N` in a query string.
fn slow_ms(query: &str) -> Option<Duration> {
    let ms = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("ms="))?
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_millis(ms)).filter(|d| *d <= MAX_SLOW)
}

/// A request id fit for one log line: printable ASCII without spaces, at most 128 bytes.
fn sanitize(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        assert_eq!(slow_ms("ms=15"), Some(Duration::from_millis(15)));
        assert_eq!(slow_ms("a=1&ms=2"), Some(Duration::from_millis(2)));
        assert_eq!(slow_ms("ms=x"), None);
        assert_eq!(slow_ms(""), None);
        assert_eq!(slow_ms("ms=600001"), None);
        assert_eq!(sanitize("a b\nc"), "abc");
    }

    #[test]
    fn policy() {
        let dir = std::env::temp_dir().join(format!("libshutdown-examples-{}", std::process::id()));
        let opts = Options {
            port: 0,
            log_requests: Some(dir.clone()),
            ..Options::default()
        };
        // Not `App::new`: it would install signal handlers in the test process.
        let sd = opts.builder().build().unwrap();
        let app = Arc::new(App {
            http: sd.kind("http").unwrap(),
            websocket: sd.kind(WEBSOCKET).unwrap(),
            streams_cut: streams_cut(&sd),
            sd,
            log: Some(Arc::new(RequestLog::open(&dir).unwrap())),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            connection_closed: Event::new(),
            options: opts,
            signals: Mutex::new(None),
        });
        let conn = app.sd.connection();
        let Begin::Reply(r) = app.begin(&conn, "GET", "/readyz", None) else {
            panic!()
        };
        assert_eq!((r.status, r.close), (200, false));
        drop(r);
        let Begin::Admitted(a) = app.begin(&conn, "GET", "/slow?ms=5", Some("r 1")) else {
            panic!()
        };
        assert_eq!(a.work, Work::Slow(Duration::from_millis(5)));
        assert_eq!(app.sd.in_flight(), 1);
        let Begin::Reply(r) = app.begin(&conn, "GET", "/nope", None) else {
            panic!()
        };
        assert_eq!((r.status, r.close), (404, false));
        drop(r);
        app.sd.trigger("test");
        // A request on a connection accepted before admission closed: served, and its
        // response closes the connection (the core's quiesce-boundary rule).
        let Begin::Admitted(late) = app.begin(&conn, "GET", "/", Some("late")) else {
            panic!()
        };
        let r = late.reply(200, "ok");
        assert!(r.close);
        drop(r);
        let r = a.reply(200, "done");
        assert!(r.close, "draining: close after the response");
        assert_eq!(r.request_id, "r1");
        drop(r);
        assert_eq!(app.sd.in_flight(), 0);
        // Its connection closed, the drain no longer holds anything for connections: a
        // request now is refused.
        drop(conn);
        let conn = app.sd.connection();
        let Begin::Reply(r) = app.begin(&conn, "GET", "/", Some("after")) else {
            panic!()
        };
        assert_eq!((r.status, r.close), (503, true));
        let log = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(
            log,
            "accepted r1\naccepted auto-2\ncompleted auto-2 404\naccepted late\n\
             completed late 200\ncompleted r1 200\nrefused after 503\n"
        );
    }

    #[test]
    fn websocket_upgrade() {
        let opts = Options {
            port: 0,
            ..Options::default()
        };
        let sd = opts.builder().build().unwrap();
        let app = Arc::new(App {
            http: sd.kind("http").unwrap(),
            websocket: sd.kind(WEBSOCKET).unwrap(),
            streams_cut: streams_cut(&sd),
            sd,
            log: None,
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            connection_closed: Event::new(),
            options: opts,
            signals: Mutex::new(None),
        });
        let conn = app.sd.connection();
        let Begin::Reply(r) = app.begin(&conn, "POST", "/ws", None) else {
            panic!()
        };
        assert_eq!(r.status, 405);
        drop(r);
        let Begin::Admitted(a) = app.begin(&conn, "GET", "/ws", Some("w")) else {
            panic!()
        };
        assert_eq!(a.work, Work::WebSocket);
        let stream = a.upgrade(app.websocket);
        assert_eq!(stream.id(), "w");
        assert!(!app.sd.is_ending(app.websocket));
        app.sd.trigger("test");
        // Admission closed: the kind is ending, not cut; the drain waits for it.
        assert!(app.sd.is_ending(app.websocket));
        assert!(!app.sd.is_cut(app.websocket));
        assert_eq!(app.sd.in_flight(), 1);
        drop(stream);
        assert_eq!(app.sd.in_flight(), 0);
    }
}
