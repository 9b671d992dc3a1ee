//! The smol server as a systemd `Type=notify` service: the same server as
//! `smol-server`, plus the two calls that speak systemd's protocol (the core sends
//! STOPPING=1, STATUS and EXTEND_TIMEOUT_USEC on each milestone; READY=1 once the
//! listener is bound). Without NOTIFY_SOCKET it is exactly `smol-server`.
//! Unit file: `examples/systemd/libshutdown-example.service`.

use libshutdown_examples::app::App;
use libshutdown_examples::cli::Options;
use libshutdown_examples::smol_server;

fn main() {
    let options = Options::from_env_or_exit();
    // Signal handlers first, before any executor thread exists.
    let app = App::start(&options);
    let systemd = app.sd.notify_systemd();
    let report = smol::block_on(async {
        let listener = match smol_server::bind(&app).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind {}: {e}", options.addr());
                std::process::exit(2);
            }
        };
        let addr = listener.local_addr().expect("bound");
        // The listener is up: now systemd may start what is ordered after this unit.
        if let Err(e) = app.sd.notify_ready() {
            eprintln!("systemd: READY=1 not sent: {e}");
        }
        eprintln!("systemd-server listening on {addr} (systemd: {systemd})");
        smol_server::serve(app.clone(), listener).await
    });
    app.finish(report)
}
