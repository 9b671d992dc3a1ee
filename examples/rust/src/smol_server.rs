//! The smol server: accepts until admission closes, one task per connection.

use std::io;
use std::sync::Arc;

use futures_lite::future;
use smol::net::TcpListener;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::app::App;
use crate::hyper_service::serve_connection;

/// Binds the server's address (`--bind`, loopback by default).
pub async fn bind(app: &App) -> io::Result<TcpListener> {
    TcpListener::bind(app.options().addr()).await
}

/// Accepts connections until the core says to stop listening (when admission closes,
/// unless a listener hold delays it), then drops the listener: new connections are
/// refused by the kernel from then on, while the connections already open go on (the
/// core decides which are served and when an idle one is closed).
pub async fn accept_loop(app: Arc<App>, listener: TcpListener) {
    let unlisten = app.sd.unlisten();
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    smol::spawn(serve_connection(
                        app,
                        FuturesIo::new(stream),
                        SmolTimer::new(),
                    ))
                    .detach();
                }
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    eprintln!("accept: {e}");
                    async_io::Timer::after(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    };
    future::or(accept, unlisten).await;
    drop(listener);
    eprintln!("admission closed: listener dropped");
}

/// Serves until the shutdown is Done, on the current task; returns the report.
pub async fn serve(app: Arc<App>, listener: TcpListener) -> libshutdown::Report {
    let (report, ()) = future::zip(app.sd.run(), accept_loop(app.clone(), listener)).await;
    report
}
