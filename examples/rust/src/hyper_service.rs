//! The hyper 1 service shared by the smol, async-std and tokio servers: one function
//! serves one HTTP/1.1 connection, whatever the executor; only the I/O adaptor and the
//! timer differ.
//!
//! `GET /ws` is a WebSocket echo server: hyper answers `101 Switching Protocols` and
//! hands over the connection ([`hyper::upgrade::on`]), async-tungstenite speaks the
//! protocol on it (through futures-io, so under any executor), and the request's guard
//! becomes long-lived work of kind `websocket` ([`Admitted::upgrade`](crate::app::Admitted::upgrade)).
//! When the core says the kind is ending (admission closed), the socket is sent a
//! Close frame 1001 (Going Away) and the server waits for the client's Close; if the
//! kind's grace runs out first, the socket is cut (the report counts it aborted).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use async_io::Timer;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use event_listener::Event;
use futures_lite::{future, AsyncRead, AsyncWrite, StreamExt};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Timer as HyperTimer, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};

use crate::app::{App, Begin, Reply, Stream, Ticket, Work, REQUEST_ID};
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
    /// The connection is a WebSocket (its `101` is on its way): bytes read are frames,
    /// not a request arriving.
    upgraded: AtomicBool,
    /// The WebSocket to serve once hyper hands the connection over.
    pending: Mutex<Option<(OnUpgrade, Stream)>>,
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
        if n > 0
            && t.open.load(Ordering::Acquire) == 0
            && !t.upgraded.load(Ordering::Acquire)
            && !t.arriving.swap(true, Ordering::AcqRel)
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

/// Whether `headers` ask for a WebSocket (RFC 6455 section 4.2.1): its
/// `Sec-WebSocket-Key` if so.
fn websocket_key(headers: &HeaderMap) -> Option<&HeaderValue> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let version = headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes());
    (has_token(UPGRADE, "websocket") && has_token(CONNECTION, "upgrade") && version == Some(b"13"))
        .then(|| headers.get(SEC_WEBSOCKET_KEY))
        .flatten()
}

/// Serves one request on `conn`; `open` is held until its response body is done.
async fn handle(
    app: Arc<App>,
    conn: Arc<Tracked>,
    open: Open,
    mut req: Request<Incoming>,
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
        Work::WebSocket => {
            let Some(key) = websocket_key(req.headers()) else {
                let reply = admitted.reply(400, "a WebSocket handshake (version 13) expected");
                return Ok(response(reply, Some(open)));
            };
            let accept = derive_accept_key(key.as_bytes());
            let on = hyper::upgrade::on(&mut req);
            let stream = admitted.upgrade(app.websocket);
            let id = stream.id().to_string();
            conn.upgraded.store(true, Ordering::Release);
            *conn.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some((on, stream));
            let mut res = Response::new(GuardedBody {
                data: None,
                _ticket: None,
                _probe: None,
                _open: Some(open),
            });
            *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = res.headers_mut();
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            if let Ok(v) = HeaderValue::from_str(&accept) {
                headers.insert(SEC_WEBSOCKET_ACCEPT, v);
            }
            if let Ok(v) = HeaderValue::from_str(&id) {
                headers.insert(REQUEST_ID, v);
            }
            return Ok(res);
        }
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
        upgraded: AtomicBool::new(false),
        pending: Mutex::new(None),
    });
    let dismissed = t.conn.dismissed();
    let svc_app = app.clone();
    let svc_t = t.clone();
    let svc = service_fn(move |req| {
        let open = Open::new(&svc_t);
        handle(svc_app.clone(), svc_t.clone(), open, req)
    });
    let io = Watched { io, t: t.clone() };
    let conn = http1::Builder::new()
        .timer(timer)
        .serve_connection(io, svc)
        .with_upgrades();
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
    // Upgraded: the connection is a WebSocket now, served on this same task (so
    // whatever the executor, nothing is spawned).
    let pending = t.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(t);
    if let Some((on, stream)) = pending {
        websocket(&app, on, stream).await;
    }
}

/// Serves one WebSocket: echoes text and binary messages until the client closes, or
/// until the core says `websocket` streams are ending; then sends a Close frame 1001
/// (Going Away) and waits for the client's Close. The kind's cut (or the drain's)
/// ends it wherever it is. Drops `stream` (its guard) last.
async fn websocket(app: &App, on: OnUpgrade, stream: Stream) {
    let kind = app.websocket;
    let session = async {
        let upgraded = match on.await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("websocket {}: upgrade: {e}", stream.id());
                return;
            }
        };
        let mut ws = WebSocketStream::from_raw_socket(HyperIo(upgraded), Role::Server, None).await;
        let told = loop {
            let next = future::or(async { Some(ws.next().await) }, async {
                app.sd.ending(kind).await;
                None
            })
            .await;
            match next {
                None => break true,
                // The client closed (its Close was answered), left, or broke the protocol.
                Some(None | Some(Err(_))) => break false,
                Some(Some(Ok(msg @ (Message::Text(_) | Message::Binary(_))))) => {
                    if ws.send(msg).await.is_err() {
                        break false;
                    }
                }
                // Pings are answered by tungstenite; pongs and raw frames are ignored.
                Some(Some(Ok(_))) => {}
            }
        };
        if told {
            let frame = CloseFrame {
                code: CloseCode::Away,
                reason: "server shutting down".into(),
            };
            if ws.close(Some(frame)).await.is_ok() {
                // Until the client's Close (then the stream ends) or it leaves.
                while let Some(Ok(_)) = ws.next().await {}
            }
        }
    };
    let finished = future::or(
        async {
            session.await;
            true
        },
        async {
            app.cut(kind).await;
            false
        },
    )
    .await;
    if !finished {
        eprintln!("websocket {}: cut (its grace ran out)", stream.id());
    }
    drop(stream);
}

/// hyper's I/O (the upgraded connection) as futures-io, for async-tungstenite.
struct HyperIo<T>(T);

impl<T: Read + Unpin> AsyncRead for HyperIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        ready!(Pin::new(&mut self.0).poll_read(cx, rb.unfilled()))?;
        Poll::Ready(Ok(rb.filled().len()))
    }
}

impl<T: Write + Unpin> AsyncWrite for HyperIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
