//! HTTP/1.1 server on async-std (hyper 1 through smol-hyper's futures-io adaptor) with
//! graceful shutdown. The request handling is the same module as the smol server's.

use std::time::Duration;

use async_std::net::TcpListener;
use futures_lite::future;
use libshutdown_examples::app::App;
use libshutdown_examples::cli::Options;
use libshutdown_examples::hyper_service::serve_connection;
use smol_hyper::rt::{FuturesIo, SmolTimer};

fn main() {
    let options = Options::from_env_or_exit();
    // Signal handlers first, before any executor thread exists.
    let app = App::start(&options);
    let report = async_std::task::block_on(async {
        let listener = match TcpListener::bind(options.addr()).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind {}: {e}", options.addr());
                std::process::exit(2);
            }
        };
        eprintln!(
            "async-std-server listening on {}",
            listener.local_addr().expect("bound")
        );
        let server = async {
            let accept = async {
                loop {
                    match listener.accept().await {
                        Ok((stream, _peer)) => {
                            let _ = stream.set_nodelay(true);
                            let io = FuturesIo::new(stream);
                            async_std::task::spawn(serve_connection(
                                app.clone(),
                                io,
                                SmolTimer::new(),
                            ));
                        }
                        Err(e) => {
                            eprintln!("accept: {e}");
                            async_std::task::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            };
            // Admission closed: stop accepting, drop the listener.
            future::or(accept, app.sd.unlisten()).await;
            drop(listener);
            eprintln!("admission closed: listener dropped");
        };
        let (report, ()) = future::zip(app.sd.run(), server).await;
        report
    });
    app.finish(report)
}
