//! The request policy every example server shares, whatever its executor or HTTP
//! stack: readiness, admission (one guard per request), keep-alive advice, the request
//! log, the cleanup hook, and what happens when the shutdown is Done.
//!
//! A server turns each request into [`App::begin`], does the work a [`Begin::Admitted`]
//! asks for (sleeping, reading the body) in its own way, and writes the [`Reply`]. The
//! reply carries the request's guard: drop the reply only after the response is
//! written, so the drain waits for the bytes, not just for the handler.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use libshutdown::{Guard, HookOptions, Kind, Report, Shutdown, SignalListener};

use crate::cli::Options;

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

    /// The answer, once the work is done.
    pub fn reply(mut self, status: u16, body: impl Into<String>) -> Reply {
        self.ticket.status = status;
        let app = self.ticket.app.clone();
        Reply::new(
            &app,
            status,
            body,
            self.ticket.id.clone(),
            Some(self.ticket),
        )
    }
}

/// Holds a request's guard; logs `completed ID STATUS` when dropped, after the response
/// was written (then releases the guard).
pub struct Ticket {
    app: Arc<App>,
    id: String,
    status: u16,
    _guard: Guard,
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
    /// The guard of an admitted request: drop it once the response is written.
    pub ticket: Option<Ticket>,
}

impl Reply {
    fn new(
        app: &App,
        status: u16,
        body: impl Into<String>,
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
            // Asked when the response is ready, not when the request arrived: a slow
            // request that began before the drain closes its connection after it.
            close: app.sd.should_close(),
            request_id,
            ticket,
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

    /// Decides what to do with one request: `method`, the request target
    /// (`/slow?ms=10`) and the `X-Request-Id` header if any.
    pub fn begin(self: &Arc<Self>, method: &str, target: &str, request_id: Option<&str>) -> Begin {
        self.begin_with(method, target, request_id, None)
    }

    /// A guard taken when a connection is accepted, for its first request: a client
    /// (a proxy without health checks) may send that request in the instant admission
    /// closes, after the connection was accepted. Admitted as a child of this guard,
    /// it is served instead of refused. Drop it if no request comes soon.
    pub fn connection_reserve(&self) -> Option<Guard> {
        self.sd.guard_of(self.http)
    }

    /// [`begin`](Self::begin) for a connection's first request, with the connection's
    /// reserve guard.
    pub fn begin_with(
        self: &Arc<Self>,
        method: &str,
        target: &str,
        request_id: Option<&str>,
        reserve: Option<Guard>,
    ) -> Begin {
        let id = match request_id.map(sanitize).filter(|s| !s.is_empty()) {
            Some(id) => id,
            None => format!("auto-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path == "/readyz" {
            // Probes are not work: no guard, answered in every phase.
            return Begin::Reply(if self.sd.is_ready() {
                Reply::new(self, 200, "ready", id, None)
            } else {
                // The balancer has seen "not ready" once more (adaptive announce).
                self.sd.readiness_probed();
                Reply::new(self, 503, "draining", id, None)
            });
        }
        let admitted = match reserve {
            Some(reserve) => Some(reserve.child()),
            None => self.sd.guard_of(self.http),
        };
        let Some(guard) = admitted else {
            // Admission closed: a request on a surviving keep-alive connection.
            self.log(&format!("refused {id} 503\n"));
            let mut reply = Reply::new(self, 503, "shutting down", id, None);
            reply.close = true;
            return Begin::Reply(reply);
        };
        let work = match (method, path) {
            ("GET" | "HEAD", "/") => Ok(Work::Root),
            ("GET" | "HEAD", "/slow") => slow_ms(query)
                .map(Work::Slow)
                .ok_or((400, "usage: /slow?ms=N")),
            ("POST", "/work") => Ok(Work::Accept),
            (_, "/" | "/slow" | "/work") => Err((405, "method not allowed")),
            _ => Err((404, "not found")),
        };
        self.log(&format!("accepted {id}\n"));
        let admitted = Admitted {
            work: Work::Root,
            ticket: Ticket {
                app: self.clone(),
                id,
                status: 0,
                _guard: guard,
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
            sd,
            log: Some(Arc::new(RequestLog::open(&dir).unwrap())),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            connection_closed: Event::new(),
            options: opts,
            signals: Mutex::new(None),
        });
        let Begin::Reply(r) = app.begin("GET", "/readyz", None) else {
            panic!()
        };
        assert_eq!((r.status, r.close), (200, false));
        let Begin::Admitted(a) = app.begin("GET", "/slow?ms=5", Some("r 1")) else {
            panic!()
        };
        assert_eq!(a.work, Work::Slow(Duration::from_millis(5)));
        assert_eq!(app.sd.in_flight(), 1);
        let Begin::Reply(r) = app.begin("GET", "/nope", None) else {
            panic!()
        };
        assert_eq!(r.status, 404);
        drop(r);
        app.sd.trigger("test");
        let Begin::Reply(r) = app.begin("GET", "/", Some("late")) else {
            panic!()
        };
        assert_eq!((r.status, r.close), (503, true));
        let r = a.reply(200, "done");
        assert!(r.close, "draining: close after the response");
        assert_eq!(r.request_id, "r1");
        drop(r);
        assert_eq!(app.sd.in_flight(), 0);
        let log = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(
            log,
            "accepted r1\naccepted auto-2\ncompleted auto-2 404\nrefused late 503\ncompleted r1 200\n"
        );
    }
}
