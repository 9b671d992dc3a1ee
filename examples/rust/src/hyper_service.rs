//! The hyper 1 service shared by the smol, async-std and tokio servers: one function
//! serves one HTTP/1.1 connection, whatever the executor; only the I/O adaptor and the
//! timer differ.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_io::Timer;
use bytes::Bytes;
use event_listener::Event;
use futures_lite::future;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Timer as HyperTimer, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

use crate::app::{App, Begin, Reply, Ticket, Work, REQUEST_ID};
use libshutdown::Connection;

/// Largest `POST /work` body read.
pub const MAX_BODY: usize = 1 << 20;

/// A response body that holds the request (its [`Ticket`], with the core's
/// [`Request`](libshutdown::Request)) until hyper has taken the last byte, then logs
/// the completion and finishes the request: the drain waits for the response itself.
pub struct GuardedBody {
    data: Option<Bytes>,
    // Dropped in this order: the request finishes, then the connection has no request
    // open (bytes read after that are a new request arriving).
    _ticket: Option<Ticket>,
    _probe: Option<libshutdown::Request>,
    _open: Option<Open>,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

fn response(reply: Reply, open: Option<Open>) -> Response<GuardedBody> {
    let Reply {
        status,
        body,
        close,
        request_id,
        ticket,
        probe,
    } = reply;
    let mut res = Response::new(GuardedBody {
        data: Some(Bytes::from(body)),
        _ticket: ticket,
        _probe: probe,
        _open: open,
    });
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, v);
    }
    if close {
        // The core's keep-alive decision (`Request::keep_alive`), asked as this head
        // is built; hyper ends the connection after a response that says so.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// What a connection task, its I/O and hyper's service share about one connection.
struct Tracked {
    /// The connection, registered with the engine at accept; dropped (closed) when
    /// the last of the task, the I/O and the service lets go of it.
    conn: Connection,
    /// Requests handed to the service whose response body hyper has not finished.
    open: AtomicUsize,
    /// Bytes were read while no request was open: a request head is arriving (the
    /// connection was marked `reading`) and hyper has not completed it yet.
    arriving: AtomicBool,
    /// Notified when a request opens (its head is complete).
    opened: Event,
}

/// One open request of a connection (see [`Tracked::open`]).
struct Open(Arc<Tracked>);

impl Open {
    fn new(t: &Arc<Tracked>) -> Open {
        t.open.fetch_add(1, Ordering::AcqRel);
        t.arriving.store(false, Ordering::Release);
        t.opened.notify(usize::MAX);
        Open(t.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's I/O, watched for the first bytes of a request.
///
/// hyper does not say when a request begins to arrive (only when its head is
/// complete), and until then it takes the connection for idle: `graceful_shutdown`
/// closes it with the half-read head (hyper 1: `disable_keep_alive` closes a
/// connection whose keep-alive state is idle, and it becomes busy only once a head is
/// parsed). So the I/O tells the core instead: bytes read while no request is open
/// are a request arriving, and the connection is marked
/// [`reading`](Connection::reading). The core then does not dismiss it, and counts
/// it as cut if the drain ends before the head is complete.
struct Watched<I> {
    io: I,
    t: Arc<Tracked>,
}

impl<I: Read + Unpin> Read for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        // SAFETY: the inner reader only writes into the unfilled part it is given
        // (it never de-initializes bytes), and `advance` counts exactly the bytes it
        // filled, which it initialized.
        let n = unsafe {
            let mut inner = ReadBuf::uninit(buf.as_mut());
            match Pin::new(&mut self.io).poll_read(cx, inner.unfilled()) {
                Poll::Ready(Ok(())) => inner.filled().len(),
                other => return other,
            }
        };
        // SAFETY: `n` bytes were filled (so initialized) by the inner reader above.
        unsafe { buf.advance(n) };
        let t = &self.t;
        if n > 0 && t.open.load(Ordering::Acquire) == 0 && !t.arriving.swap(true, Ordering::AcqRel)
        {
            t.conn.reading();
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: Write + Unpin> Write for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// Serves one request on `conn`; `open` is held until its response body is done.
async fn handle(
    app: Arc<App>,
    conn: Arc<Tracked>,
    open: Open,
    req: Request<Incoming>,
) -> Result<Response<GuardedBody>, Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let admitted = match app.begin(&conn.conn, req.method().as_str(), &target, id.as_deref()) {
        Begin::Reply(reply) => return Ok(response(reply, Some(open))),
        Begin::Admitted(a) => a,
    };
    let reply = match admitted.work {
        Work::Root => admitted.reply(200, "ok"),
        Work::Slow(d) => {
            // async-io's timer works under every executor (it has its own reactor).
            Timer::after(d).await;
            admitted.reply(200, format!("slept {} ms", d.as_millis()))
        }
        Work::Accept => match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(body) => {
                let n = body.to_bytes().len();
                admitted.reply(202, format!("accepted {n} bytes"))
            }
            Err(e) => {
                let mut reply = admitted.reply(413, format!("body refused: {e}"));
                reply.close = true;
                reply
            }
        },
    };
    Ok(response(reply, Some(open)))
}

/// Serves one connection until the client leaves, a `Connection: close` response was
/// written, or the core dismisses the connection: then hyper's `graceful_shutdown`
/// closes it if idle, or after the response in progress.
pub async fn serve_connection<I, T>(app: Arc<App>, io: I, timer: T)
where
    I: Read + Write + Unpin + Send + 'static,
    T: HyperTimer + Send + Sync + 'static,
{
    let _token = app.connection();
    let t = Arc::new(Tracked {
        conn: app.sd.connection(),
        open: AtomicUsize::new(0),
        arriving: AtomicBool::new(false),
        opened: Event::new(),
    });
    let dismissed = t.conn.dismissed();
    let svc_app = app.clone();
    let svc_t = t.clone();
    let svc = service_fn(move |req| {
        let open = Open::new(&svc_t);
        handle(svc_app.clone(), svc_t.clone(), open, req)
    });
    let io = Watched { io, t: t.clone() };
    let conn = http1::Builder::new().timer(timer).serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    let mut finished = future::or(async { Some(conn.as_mut().await) }, async {
        dismissed.await;
        None
    })
    .await;
    if finished.is_none() && t.arriving.load(Ordering::Acquire) {
        // Dismissed as idle in the instant a request began to arrive (its bytes were
        // read after the core's decision): serve it, as the core asks
        // (`Connection::is_dismissed`), since hyper would close it with the request.
        // Its response says `Connection: close`. If the drain ends first, close.
        let closing = app.sd.closing();
        let head = async {
            loop {
                if !t.arriving.load(Ordering::Acquire) {
                    return;
                }
                let listener = t.opened.listen();
                if !t.arriving.load(Ordering::Acquire) {
                    return;
                }
                listener.await;
            }
        };
        finished = future::or(async { Some(conn.as_mut().await) }, async {
            future::or(head, closing).await;
            None
        })
        .await;
    }
    let result = match finished {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if !e.is_incomplete_message() {
            eprintln!("connection: {e}");
        }
    }
}
