//! The example servers' command line: the host's own settings, and every option of the
//! core's schema as a flag (`--drain-timeout-ms 15000` for `drain_timeout_ms`) over
//! its `SHUTDOWN_*` environment variable (`SHUTDOWN_DRAIN_TIMEOUT_MS`), both judged by
//! the core (`Builder::set_text`, `Builder::env`): one schema, no second validation here.
//!
//! | flag | variable | default |
//! |---|---|---|
//! | `--port N` | `SHUTDOWN_PORT` | 8080 (0 picks a free port) |
//! | `--bind ADDR` | `SHUTDOWN_BIND` | 127.0.0.1: loopback unless asked (`0.0.0.0` in a pod or container, where the traffic arrives on the pod's address) |
//! | `--log-requests FILE` | `SHUTDOWN_LOG_REQUESTS` | none |
//! | `--json-report` | `SHUTDOWN_JSON_REPORT=1` | off |
//! | `--websocket-grace-ms N` | `SHUTDOWN_WEBSOCKET_GRACE_MS` | 5000: how long a WebSocket may take to close once told (close 1001) before it is cut |
//! | `--<option>` for each of `libshutdown::OPTIONS` | its `SHUTDOWN_*` variable | the core's |

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use libshutdown::{Builder, LongLived, Shutdown, OPTIONS};

/// The long-lived kind of the `/ws` route.
pub const WEBSOCKET: &str = "websocket";

fn usage() -> String {
    let mut u = String::from(
        "usage: <server> [flags]\n\
  --port N                 port, 0 = any free port [SHUTDOWN_PORT] (default 8080)\n\
  --bind ADDR              address to listen on [SHUTDOWN_BIND] (default 127.0.0.1; 0.0.0.0 in a pod)\n\
  --log-requests FILE      append `accepted ID` / `completed ID STATUS` / `refused ID STATUS` lines [SHUTDOWN_LOG_REQUESTS]\n\
  --json-report            print the JSON report on stdout when done [SHUTDOWN_JSON_REPORT=1]\n\
  --websocket-grace-ms N   how long a WebSocket may take to close once told (close 1001) before it is cut [SHUTDOWN_WEBSOCKET_GRACE_MS] (default 5000)\n\
the engine's options (milliseconds; `none` for an optional one), over their variables:\n",
    );
    for spec in OPTIONS {
        u.push_str(&format!("  {:<26} [{}]\n", flag_of(spec.name), spec.env));
    }
    u
}

fn flag_of(option: &str) -> String {
    format!("--{}", option.replace('_', "-"))
}

/// What a server was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port (0: any free port).
    pub port: u16,
    /// The address to listen on (default loopback).
    pub bind: IpAddr,
    /// Where to log request ids.
    pub log_requests: Option<PathBuf>,
    /// Print the JSON report on stdout.
    pub json_report: bool,
    /// The grace of the `websocket` long-lived kind, from admission close (when the
    /// sockets are told to close) to their cut; unless the engine's options give that
    /// kind a policy of their own (`--long-lived`).
    pub websocket_grace: Duration,
    /// The engine's configuration (not yet validated as a whole: `build` does that).
    pub engine: Builder,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 8080,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            log_requests: None,
            json_report: false,
            websocket_grace: Duration::from_secs(5),
            engine: Shutdown::builder(),
        }
    }
}

/// A flag or variable that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// `--help` was asked for.
    Help,
    /// Something was wrong; the message says what.
    Bad(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Help => f.write_str(&usage()),
            CliError::Bad(m) => write!(f, "{m}\n{}", usage()),
        }
    }
}

impl std::error::Error for CliError {}

impl Options {
    /// Reads the process's environment and arguments; prints usage and exits on error
    /// (status 0 for `--help`, 2 otherwise).
    pub fn from_env_or_exit() -> Options {
        let env = |name: &str| std::env::var(name).ok();
        match Options::parse(std::env::args().skip(1), env) {
            Ok(o) => o,
            Err(CliError::Help) => {
                println!("{}", usage());
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (without the program name) over the variables `env` returns.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Options, CliError> {
        let bad = |e: libshutdown::ConfigError| CliError::Bad(e.to_string());
        let mut o = Options {
            engine: Shutdown::builder().env_from(&env).map_err(bad)?,
            ..Options::default()
        };
        if let Some(v) = env("SHUTDOWN_PORT") {
            o.port = port(&v)?;
        }
        if let Some(v) = env("SHUTDOWN_BIND") {
            o.bind = bind("SHUTDOWN_BIND", &v)?;
        }
        o.log_requests = env("SHUTDOWN_LOG_REQUESTS").map(PathBuf::from);
        o.json_report = env("SHUTDOWN_JSON_REPORT").is_some_and(|v| v == "1" || v == "true");
        if let Some(v) = env("SHUTDOWN_WEBSOCKET_GRACE_MS") {
            o.websocket_grace = millis("SHUTDOWN_WEBSOCKET_GRACE_MS", &v)?;
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            match flag.as_str() {
                "-h" | "--help" => return Err(CliError::Help),
                "--json-report" => {
                    o.json_report = true;
                    continue;
                }
                _ => {}
            }
            let option = OPTIONS.iter().find(|s| flag_of(s.name) == flag);
            const HOST_FLAGS: [&str; 4] =
                ["--port", "--bind", "--log-requests", "--websocket-grace-ms"];
            if option.is_none() && !HOST_FLAGS.contains(&flag.as_str()) {
                return Err(CliError::Bad(format!("unknown argument `{arg}`")));
            }
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| CliError::Bad(format!("{flag} needs a value")))?,
            };
            match (flag.as_str(), option) {
                ("--port", _) => o.port = port(&value)?,
                ("--bind", _) => o.bind = bind(&flag, &value)?,
                ("--log-requests", _) => o.log_requests = Some(PathBuf::from(value)),
                ("--websocket-grace-ms", _) => o.websocket_grace = millis(&flag, &value)?,
                (_, Some(spec)) => {
                    o.engine = o
                        .engine
                        .set_text(spec.name, &value)
                        .map_err(|e| CliError::Bad(format!("{flag}: {}", e.reason())))?;
                }
                _ => unreachable!("checked above"),
            }
        }
        Ok(o)
    }

    /// The address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.bind, self.port))
    }

    /// The engine's builder with these settings.
    pub fn builder(&self) -> Builder {
        let b = self.engine.clone();
        let own = b
            .config()
            .is_ok_and(|c| c.long_lived().iter().any(|(k, _)| k == WEBSOCKET));
        if own {
            b
        } else {
            b.long_lived(WEBSOCKET, LongLived::new(self.websocket_grace))
        }
    }
}

fn millis(name: &str, v: &str) -> Result<Duration, CliError> {
    v.trim()
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| CliError::Bad(format!("{name}: `{v}` is not a number of milliseconds")))
}

fn bind(name: &str, v: &str) -> Result<IpAddr, CliError> {
    v.trim()
        .parse()
        .map_err(|_| CliError::Bad(format!("{name}: `{v}` is not an IP address")))
}

fn port(v: &str) -> Result<u16, CliError> {
    v.trim()
        .parse()
        .map_err(|_| CliError::Bad(format!("--port: `{v}` is not a port number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use libshutdown::CloseStrategy;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Options, CliError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Options::parse(args.iter().map(|s| s.to_string()), move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults() {
        let o = parse(&[], &[]).unwrap();
        assert_eq!(o.port, 8080);
        assert_eq!(o.addr().to_string(), "127.0.0.1:8080");
        let o = parse(&["--bind", "0.0.0.0"], &[("SHUTDOWN_BIND", "::1")]).unwrap();
        assert_eq!(
            o.addr().to_string(),
            "0.0.0.0:8080",
            "the flag over the variable"
        );
        let o = parse(&[], &[("SHUTDOWN_BIND", "::1")]).unwrap();
        assert_eq!(o.addr().to_string(), "[::1]:8080");
        assert!(
            matches!(parse(&[], &[("SHUTDOWN_BIND", "localhost")]), Err(CliError::Bad(m)) if m.contains("SHUTDOWN_BIND"))
        );
        assert_eq!(
            o.builder().config().unwrap(),
            Shutdown::builder()
                .long_lived(WEBSOCKET, LongLived::new(Duration::from_secs(5)))
                .config()
                .unwrap()
        );
    }

    #[test]
    fn the_websocket_grace_is_a_flag_unless_the_engine_options_set_the_kind() {
        let o = parse(
            &["--websocket-grace-ms", "250"],
            &[("SHUTDOWN_WEBSOCKET_GRACE_MS", "9")],
        )
        .unwrap();
        let c = o.builder().config().unwrap();
        assert_eq!(c.long_lived()[0].1.grace, Duration::from_millis(250));
        let o = parse(&["--long-lived", "websocket:40"], &[]).unwrap();
        let c = o.builder().config().unwrap();
        assert_eq!(c.long_lived().len(), 1);
        assert_eq!(c.long_lived()[0].1.grace, Duration::from_millis(40));
    }

    #[test]
    fn flags_override_environment() {
        let o = parse(
            &[
                "--port",
                "0",
                "--drain-delay-ms=250",
                "--announce-probes",
                "2",
                "--json-report",
                "--log-requests",
                "/tmp/x.log",
                "--connection-grace-ms",
                "50",
            ],
            &[
                ("SHUTDOWN_PORT", "9000"),
                ("SHUTDOWN_DRAIN_TIMEOUT_MS", "700"),
                ("SHUTDOWN_DRAIN_DELAY_MS", "100"),
            ],
        )
        .unwrap();
        assert_eq!(o.port, 0);
        let c = o.builder().config().unwrap();
        assert_eq!(c.drain_delay(), Duration::from_millis(250));
        assert_eq!(c.drain_timeout(), Duration::from_millis(700));
        assert_eq!(c.announce_probes(), Some(2));
        assert_eq!(c.connection_grace(), Duration::from_millis(50));
        assert!(o.json_report);
        assert_eq!(o.log_requests.as_deref(), Some("/tmp/x.log".as_ref()));
        o.builder().build().unwrap();
    }

    #[test]
    fn errors_name_the_flag_or_the_variable() {
        assert_eq!(parse(&["--help"], &[]).unwrap_err(), CliError::Help);
        assert!(matches!(parse(&["--nope"], &[]), Err(CliError::Bad(_))));
        assert!(matches!(parse(&["--port"], &[]), Err(CliError::Bad(_))));
        assert!(matches!(
            parse(&["--port", "x"], &[]),
            Err(CliError::Bad(_))
        ));
        let o = parse(&["--grace-period-ms", "none"], &[]).unwrap();
        assert_eq!(o.builder().config().unwrap().grace_period(), None);
        let o = parse(&[], &[("SHUTDOWN_CLOSE_STRATEGY", "gradual")]).unwrap();
        assert_eq!(
            o.builder().config().unwrap().close_strategy(),
            CloseStrategy::Gradual
        );
        let Err(CliError::Bad(m)) = parse(&["--close-strategy", "slow"], &[]) else {
            panic!("refused")
        };
        assert!(m.starts_with("--close-strategy: "), "{m}");
        let Err(CliError::Bad(m)) = parse(&[], &[("SHUTDOWN_DRAIN_TIMEOUT_MS", "5s")]) else {
            panic!("refused")
        };
        assert!(m.contains("SHUTDOWN_DRAIN_TIMEOUT_MS"), "{m}");
    }
}
