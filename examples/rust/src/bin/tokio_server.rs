//! HTTP/1.1 server on tokio (hyper 1 through hyper-util) with graceful shutdown. The
//! `libshutdown` crate has no tokio dependency: `sd.run()` is an ordinary future that
//! tokio polls, and the request handling is the module the smol server uses.

use std::time::Duration;

use futures_lite::future;
use hyper_util::rt::{TokioIo, TokioTimer};
use libshutdown_examples::app::App;
use libshutdown_examples::cli::Options;
use libshutdown_examples::hyper_service::serve_connection;
use tokio::net::TcpListener;

fn main() {
    let options = Options::from_env_or_exit();
    // Signal handlers first, before the runtime starts its threads.
    let app = App::start(&options);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = runtime.block_on(async {
        let listener = match TcpListener::bind(options.addr()).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind {}: {e}", options.addr());
                std::process::exit(2);
            }
        };
        eprintln!(
            "tokio-server listening on {}",
            listener.local_addr().expect("bound")
        );
        let server = async {
            let accept = async {
                loop {
                    match listener.accept().await {
                        Ok((stream, _peer)) => {
                            let _ = stream.set_nodelay(true);
                            let io = TokioIo::new(stream);
                            tokio::spawn(serve_connection(app.clone(), io, TokioTimer::new()));
                        }
                        Err(e) => {
                            eprintln!("accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            };
            // Admission closed: stop accepting, drop the listener.
            future::or(accept, app.sd.unlisten()).await;
            drop(listener);
            eprintln!("admission closed: listener dropped");
        };
        // The driver is a plain future: tokio polls it like any other.
        let (report, ()) = future::zip(app.sd.run(), server).await;
        report
    });
    app.finish(report)
}
