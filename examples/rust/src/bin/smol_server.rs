//! HTTP/1.1 server on smol (hyper 1 through smol-hyper) with graceful shutdown.
//!
//! `cargo run -p libshutdown-examples --bin smol-server -- --port 8080`, then
//! `curl localhost:8080/slow?ms=3000 & kill -TERM <pid>`.

use libshutdown_examples::app::App;
use libshutdown_examples::cli::Options;
use libshutdown_examples::smol_server;

fn main() {
    let options = Options::from_env_or_exit();
    // Signal handlers first, before any executor thread exists.
    let app = App::start(&options);
    let report = smol::block_on(async {
        let listener = match smol_server::bind(&app).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind {}: {e}", options.addr());
                std::process::exit(2);
            }
        };
        eprintln!(
            "smol-server listening on {}",
            listener.local_addr().expect("bound")
        );
        smol_server::serve(app.clone(), listener).await
    });
    app.finish(report)
}
