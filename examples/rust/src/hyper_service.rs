//! The hyper 1 service shared by the smol, async-std and tokio servers: one function
//! serves one HTTP/1.1 connection, whatever the executor; only the I/O adaptor and the
//! timer differ.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_io::Timer;
use bytes::Bytes;
use futures_lite::future;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::rt::{Read, Timer as HyperTimer, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

use crate::app::{App, Begin, Reply, Ticket, Work, REQUEST_ID};
use libshutdown::Guard;

/// How long after admission closed a connection accepted before it keeps its reserve
/// for a first request that has not arrived yet.
pub const RESERVE_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Largest `POST /work` body read.
pub const MAX_BODY: usize = 1 << 20;

/// A response body that holds the request's guard until hyper has taken the last
/// byte (and logs the completion then), so the drain waits for the response itself.
pub struct GuardedBody {
    data: Option<Bytes>,
    _ticket: Option<Ticket>,
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

fn response(reply: Reply) -> Response<GuardedBody> {
    let Reply {
        status,
        body,
        close,
        request_id,
        ticket,
    } = reply;
    let mut res = Response::new(GuardedBody {
        data: Some(Bytes::from(body)),
        _ticket: ticket,
    });
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, v);
    }
    if close {
        // hyper ends the keep-alive connection after a response that says so.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Serves one request; `reserve` is the connection's reserve guard for its first one.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    reserve: Option<Guard>,
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
    let admitted = match app.begin_with(req.method().as_str(), &target, id.as_deref(), reserve) {
        Begin::Reply(reply) => return Ok(response(reply)),
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
    Ok(response(reply))
}

/// Serves one connection until the client leaves, or until a `Connection: close`
/// response was written. When the shutdown is Done, idle keep-alive connections are
/// closed and a response being written is finished first.
pub async fn serve_connection<I, T>(app: Arc<App>, io: I, timer: T)
where
    I: Read + Write + Unpin + Send + 'static,
    T: HyperTimer + Send + Sync + 'static,
{
    let _token = app.connection();
    // Held from the accept until the first request begins (see `connection_reserve`),
    // or until shortly after admission closed if no request comes.
    let reserve = Arc::new(Mutex::new(app.connection_reserve()));
    let svc_app = app.clone();
    let svc_reserve = reserve.clone();
    let svc = service_fn(move |req| {
        let first = svc_reserve.lock().unwrap_or_else(|e| e.into_inner()).take();
        handle(svc_app.clone(), req, first)
    });
    let conn = http1::Builder::new().timer(timer).serve_connection(io, svc);
    let mut conn = std::pin::pin!(conn);
    let done = app.sd.done();
    let quiescing = app.sd.quiescing();
    let finished = future::or(async { Some(conn.as_mut().await) }, async {
        quiescing.await;
        Timer::after(RESERVE_GRACE).await;
        drop(reserve.lock().unwrap_or_else(|e| e.into_inner()).take());
        done.await;
        None
    })
    .await;
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
