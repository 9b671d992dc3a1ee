//! The demo: a smol server in this process, five slow requests in flight, and SIGTERM
//! sent to ourselves. Every request finishes with 200, the report says so, and the
//! process exits 0. About one second.
//!
//! `cargo run -p libshutdown-examples --bin demo`

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use libshutdown_examples::app::App;
use libshutdown_examples::cli::Options;
use libshutdown_examples::smol_server;
use smol::net::TcpStream;

const SLOW: usize = 5;

struct Answer {
    status: u16,
    close: bool,
    body: String,
    took: Duration,
}

fn main() {
    let options = Options {
        port: 0,
        // Announce for up to 2 s, but stop as soon as one probe has seen "not ready".
        engine: libshutdown::Shutdown::builder()
            .drain_delay(Duration::from_secs(2))
            .announce_probes(1)
            .drain_timeout(Duration::from_secs(5))
            .close_timeout(Duration::from_secs(1))
            .grace_period(Some(Duration::from_secs(10))),
        ..Options::default()
    };
    let app = App::start(&options);
    let code = smol::block_on(async {
        let listener = smol_server::bind(&app).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound");
        println!("demo: server on http://{addr}");
        let server = smol::spawn(smol_server::serve(app.clone(), listener));

        // Five slow requests, each on its own keep-alive connection.
        let clients: Vec<_> = (0..SLOW)
            .map(|i| {
                let ms = 500 + 100 * i;
                smol::spawn(get(addr, format!("/slow?ms={ms}"), format!("slow-{i}")))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while app.sd.in_flight() < SLOW as u64 {
            if Instant::now() > deadline {
                eprintln!("demo: the requests never arrived");
                return 1;
            }
            Timer::after(Duration::from_millis(2)).await;
        }

        println!("demo: {SLOW} requests in flight; sending SIGTERM to myself");
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).expect("raise");
        app.sd.draining().await;

        // The announce window: a late request is still served, and readiness fails.
        show("late request", get(addr, "/".into(), "late".into()).await);
        show(
            "readiness probe",
            get(addr, "/readyz".into(), "probe".into()).await,
        );
        // One probe saw "not ready": admission closes and the listener goes.
        app.sd.unlisten().await;
        show(
            "request after admission closed",
            get(addr, "/".into(), "too-late".into()).await,
        );

        let mut all_ok = true;
        for (i, client) in clients.into_iter().enumerate() {
            let answer = client.await;
            all_ok &= matches!(&answer, Ok(a) if a.status == 200);
            show(&format!("in-flight request slow-{i}"), answer);
        }
        let report = server.await;
        app.wait_connections(Duration::from_secs(1));
        println!();
        print!("{report}");
        if !all_ok || report.aborted != 0 {
            println!("demo: FAILED: an in-flight request did not complete with 200");
            return 1;
        }
        println!(
            "demo: all {SLOW} in-flight requests completed with 200; exit code {}",
            report.exit_code
        );
        report.exit_code
    });
    std::process::exit(code);
}

fn show(what: &str, answer: io::Result<Answer>) {
    match answer {
        Ok(a) => println!(
            "demo: {what:<32} -> {} {:<16} {:>5} ms{}",
            a.status,
            a.body.trim(),
            a.took.as_millis(),
            if a.close { "  (Connection: close)" } else { "" }
        ),
        Err(e) => println!("demo: {what:<32} -> {e}"),
    }
}

/// One GET on a fresh connection: a raw HTTP/1.1 request, the response read with
/// httparse. Bounded to 10 s.
async fn get(addr: SocketAddr, target: String, id: String) -> io::Result<Answer> {
    let start = Instant::now();
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nX-Request-Id: {id}\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut res = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = res
                .parse(&buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            else {
                continue;
            };
            let header = |name: &str| {
                res.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let len: usize = header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < head + len {
                continue;
            }
            return Ok(Answer {
                status: res.code.unwrap_or(0),
                close: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
                body: String::from_utf8_lossy(&buf[head..head + len]).into_owned(),
                took: start.elapsed(),
            });
        }
    };
    future::or(exchange, async {
        Timer::after(Duration::from_secs(10)).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in 10 s"))
    })
    .await
}
