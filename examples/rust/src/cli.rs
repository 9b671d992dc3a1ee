//! Command-line flags and environment variables shared by every example server.
//!
//! A flag wins over its environment variable, which wins over the default.
//!
//! | flag | environment | default |
//! |---|---|---|
//! | `--port N` | `SHUTDOWN_PORT` | 8080 (0 picks a free port); always bound on 127.0.0.1 |
//! | `--drain-delay-ms N` | `SHUTDOWN_DRAIN_DELAY_MS` | 0 |
//! | `--drain-timeout-ms N` | `SHUTDOWN_DRAIN_TIMEOUT_MS` | 20000 |
//! | `--close-timeout-ms N` | `SHUTDOWN_CLOSE_TIMEOUT_MS` | 5000 |
//! | `--grace-period-ms N` | `SHUTDOWN_GRACE_PERIOD_MS` | 30000 (0: no grace-period check) |
//! | `--announce-probes N` | `SHUTDOWN_ANNOUNCE_PROBES` | none |
//! | `--forced-exit-code N` | `SHUTDOWN_FORCED_EXIT_CODE` | 1 |
//! | `--close-strategy S` | `SHUTDOWN_CLOSE_STRATEGY` | `immediate` (or `gradual`) |
//! | `--websocket-grace-ms N` | `SHUTDOWN_WEBSOCKET_GRACE_MS` | 5000 |
//! | `--log-requests FILE` | `SHUTDOWN_LOG_REQUESTS` | none |
//! | `--json-report` | `SHUTDOWN_JSON_REPORT=1` | off |

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use libshutdown::{Builder, CloseStrategy, LongLived, Shutdown};

/// The long-lived kind of the WebSocket connections (`GET /ws`).
pub const WEBSOCKET: &str = "websocket";

/// The usage text printed by `--help` and after a bad flag.
pub const USAGE: &str = "\
options (each also read from the environment variable in brackets):
  --port N                 port on 127.0.0.1, 0 = any free port [SHUTDOWN_PORT] (default 8080)
  --drain-delay-ms N       announce window: not ready, still admitting [SHUTDOWN_DRAIN_DELAY_MS] (default 0)
  --drain-timeout-ms N     how long in-flight requests may take once admission closes [SHUTDOWN_DRAIN_TIMEOUT_MS] (default 20000)
  --close-timeout-ms N     budget of the cleanup hooks [SHUTDOWN_CLOSE_TIMEOUT_MS] (default 5000)
  --grace-period-ms N      the orchestrator's budget, 0 = unchecked [SHUTDOWN_GRACE_PERIOD_MS] (default 30000)
  --announce-probes N      end the announce window after N readiness probes answered 503 [SHUTDOWN_ANNOUNCE_PROBES]
  --forced-exit-code N     exit code of a forced shutdown [SHUTDOWN_FORCED_EXIT_CODE] (default 1)
  --close-strategy S       keep-alive advice: immediate or gradual [SHUTDOWN_CLOSE_STRATEGY] (default immediate)
  --websocket-grace-ms N   how long a WebSocket may take to close once told (close 1001) before it is cut [SHUTDOWN_WEBSOCKET_GRACE_MS] (default 5000)
  --log-requests FILE      append `accepted ID` / `completed ID STATUS` / `refused ID STATUS` lines [SHUTDOWN_LOG_REQUESTS]
  --json-report            print the JSON report on stdout when done [SHUTDOWN_JSON_REPORT=1]
  -h, --help               this text";

/// What a server was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// `drain_delay`.
    pub drain_delay: Duration,
    /// `drain_timeout`.
    pub drain_timeout: Duration,
    /// `close_timeout`.
    pub close_timeout: Duration,
    /// `grace_period` (`None`: unchecked).
    pub grace_period: Option<Duration>,
    /// `announce_probes`.
    pub announce_probes: Option<u32>,
    /// `forced_exit_code`.
    pub forced_exit_code: i32,
    /// `close_strategy`.
    pub close_strategy: CloseStrategy,
    /// The grace of the `websocket` long-lived kind: from admission close (when the
    /// sockets are sent their close frame) to the cut. The drain's own deadline still
    /// bounds it.
    pub websocket_grace: Duration,
    /// Where to log request ids.
    pub log_requests: Option<PathBuf>,
    /// Print the JSON report on stdout.
    pub json_report: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 8080,
            drain_delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            grace_period: Some(Duration::from_secs(30)),
            announce_probes: None,
            forced_exit_code: 1,
            close_strategy: CloseStrategy::Immediate,
            websocket_grace: Duration::from_secs(5),
            log_requests: None,
            json_report: false,
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
            CliError::Help => f.write_str(USAGE),
            CliError::Bad(m) => write!(f, "{m}\n{USAGE}"),
        }
    }
}

impl std::error::Error for CliError {}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, CliError> {
    value
        .trim()
        .parse()
        .map_err(|_| CliError::Bad(format!("{name}: `{value}` is not a valid number")))
}

fn millis(name: &str, value: &str) -> Result<Duration, CliError> {
    number::<u64>(name, value).map(Duration::from_millis)
}

impl Options {
    /// Reads the process's environment and arguments; prints usage and exits on error
    /// (status 0 for `--help`, 2 otherwise).
    pub fn from_env_or_exit() -> Options {
        let env = |name: &str| std::env::var(name).ok();
        match Options::parse(std::env::args().skip(1), env) {
            Ok(o) => o,
            Err(CliError::Help) => {
                println!("{USAGE}");
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
        const SETTINGS: &[(&str, &str)] = &[
            ("--port", "SHUTDOWN_PORT"),
            ("--drain-delay-ms", "SHUTDOWN_DRAIN_DELAY_MS"),
            ("--drain-timeout-ms", "SHUTDOWN_DRAIN_TIMEOUT_MS"),
            ("--close-timeout-ms", "SHUTDOWN_CLOSE_TIMEOUT_MS"),
            ("--grace-period-ms", "SHUTDOWN_GRACE_PERIOD_MS"),
            ("--announce-probes", "SHUTDOWN_ANNOUNCE_PROBES"),
            ("--forced-exit-code", "SHUTDOWN_FORCED_EXIT_CODE"),
            ("--close-strategy", "SHUTDOWN_CLOSE_STRATEGY"),
            ("--websocket-grace-ms", "SHUTDOWN_WEBSOCKET_GRACE_MS"),
            ("--log-requests", "SHUTDOWN_LOG_REQUESTS"),
        ];
        let mut o = Options::default();
        // Environment first, flags over it.
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (flag, var) in SETTINGS {
            if let Some(v) = env(var) {
                pairs.push((flag.to_string(), v));
            }
        }
        if env("SHUTDOWN_JSON_REPORT").is_some_and(|v| v == "1" || v == "true") {
            o.json_report = true;
        }
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Err(CliError::Help),
                "--json-report" => o.json_report = true,
                _ => {
                    let (flag, inline) = match arg.split_once('=') {
                        Some((f, v)) => (f.to_string(), Some(v.to_string())),
                        None => (arg.clone(), None),
                    };
                    if !SETTINGS.iter().any(|(f, _)| *f == flag) {
                        return Err(CliError::Bad(format!("unknown argument `{arg}`")));
                    }
                    let value = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| CliError::Bad(format!("{flag} needs a value")))?,
                    };
                    pairs.push((flag, value));
                }
            }
        }
        for (flag, v) in pairs {
            let name = flag.as_str();
            match name {
                "--port" => o.port = number(name, &v)?,
                "--drain-delay-ms" => o.drain_delay = millis(name, &v)?,
                "--drain-timeout-ms" => o.drain_timeout = millis(name, &v)?,
                "--close-timeout-ms" => o.close_timeout = millis(name, &v)?,
                "--grace-period-ms" => {
                    let d = millis(name, &v)?;
                    o.grace_period = (!d.is_zero()).then_some(d);
                }
                "--announce-probes" => o.announce_probes = Some(number(name, &v)?),
                "--forced-exit-code" => o.forced_exit_code = number(name, &v)?,
                "--close-strategy" => {
                    o.close_strategy = match v.trim() {
                        "immediate" => CloseStrategy::Immediate,
                        "gradual" => CloseStrategy::Gradual,
                        _ => {
                            return Err(CliError::Bad(format!(
                                "{name}: `{v}` is not `immediate` or `gradual`"
                            )))
                        }
                    }
                }
                "--websocket-grace-ms" => o.websocket_grace = millis(name, &v)?,
                "--log-requests" => o.log_requests = Some(PathBuf::from(v)),
                _ => unreachable!("checked above"),
            }
        }
        Ok(o)
    }

    /// The address to bind: always loopback.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The engine's builder with these settings.
    pub fn builder(&self) -> Builder {
        let mut b = Shutdown::builder()
            .drain_delay(self.drain_delay)
            .drain_timeout(self.drain_timeout)
            .close_timeout(self.close_timeout)
            .grace_period(self.grace_period)
            .forced_exit_code(self.forced_exit_code)
            .close_strategy(self.close_strategy)
            .long_lived(WEBSOCKET, LongLived::new(self.websocket_grace));
        if let Some(n) = self.announce_probes {
            b = b.announce_probes(n);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(o, Options::default());
        assert_eq!(o.addr().to_string(), "127.0.0.1:8080");
        o.builder().build().unwrap();
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
            ],
            &[
                ("SHUTDOWN_PORT", "9000"),
                ("SHUTDOWN_DRAIN_TIMEOUT_MS", "700"),
            ],
        )
        .unwrap();
        assert_eq!(o.port, 0);
        assert_eq!(o.drain_delay, Duration::from_millis(250));
        assert_eq!(o.drain_timeout, Duration::from_millis(700));
        assert_eq!(o.announce_probes, Some(2));
        assert_eq!(o.websocket_grace, Duration::from_secs(5));
        assert!(o.json_report);
        assert_eq!(o.log_requests.as_deref(), Some("/tmp/x.log".as_ref()));
        o.builder().build().unwrap();
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&["--help"], &[]), Err(CliError::Help));
        assert!(matches!(parse(&["--nope"], &[]), Err(CliError::Bad(_))));
        assert!(matches!(parse(&["--port"], &[]), Err(CliError::Bad(_))));
        assert!(matches!(
            parse(&["--port", "x"], &[]),
            Err(CliError::Bad(_))
        ));
        let o = parse(&["--grace-period-ms", "0"], &[]).unwrap();
        assert_eq!(o.grace_period, None);
        let o = parse(&[], &[("SHUTDOWN_CLOSE_STRATEGY", "gradual")]).unwrap();
        assert_eq!(o.close_strategy, CloseStrategy::Gradual);
        let o = parse(
            &["--websocket-grace-ms", "250"],
            &[("SHUTDOWN_WEBSOCKET_GRACE_MS", "9")],
        )
        .unwrap();
        assert_eq!(o.websocket_grace, Duration::from_millis(250));
        assert!(matches!(
            parse(&["--close-strategy", "slow"], &[]),
            Err(CliError::Bad(_))
        ));
    }
}
