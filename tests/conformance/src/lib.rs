//! The conformance scenarios (`tests/scenarios/*.json`) and a runner that any binding
//! plugs into by implementing [`Target`] and [`Engine`]. The Rust core, the C ABI and
//! the Node addon must produce the same trace and report for every scenario; the
//! format is described in `tests/scenarios/README.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Languages that cannot express this scenario (for example `"c"` for a panicking hook).
    #[serde(default)]
    pub skip: Vec<String>,
    pub config: ScenarioConfig,
    #[serde(default)]
    pub hooks: Vec<HookSpec>,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Virtual time to advance to after the last step (default: far enough for Done).
    pub run_until_ms: Option<f64>,
    pub expect: Expect,
}

/// The engine's options, with the core's names, durations in milliseconds. Absent
/// fields take the core's defaults; `null` means "none" for the optional ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// A platform preset, applied before every other field (which then change it).
    pub preset: Option<String>,
    pub drain_delay_ms: Option<u64>,
    pub announce_probes: Option<u32>,
    pub announce_settle_ms: Option<u64>,
    pub drain_timeout_ms: Option<u64>,
    pub close_timeout_ms: Option<u64>,
    /// Absent: the default (30 s); `null`: no grace period check.
    #[serde(default, deserialize_with = "some_or_null")]
    pub grace_period_ms: Option<Option<u64>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub force_at: Option<Option<u32>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub terminate_at: Option<Option<u32>>,
    /// The escalation's same-signal window; `0` turns it off.
    pub same_signal_window_ms: Option<u64>,
    pub forced_exit_code: Option<i32>,
    /// `"immediate"` or `"gradual"`.
    pub close_strategy: Option<String>,
    pub connection_grace_ms: Option<u64>,
    /// Long-lived kinds and their policies, in this order.
    #[serde(default)]
    pub long_lived: Vec<LongLivedSpec>,
}

/// A long-lived kind's drain policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongLivedSpec {
    pub kind: String,
    /// `"draining"` or `"quiescing"` (default).
    pub notify_at: Option<String>,
    pub grace_ms: u64,
}

fn some_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A cleanup hook the runner registers (in file order).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    pub name: String,
    #[serde(default)]
    pub order: i32,
    /// Absent: the whole close_timeout.
    pub timeout_ms: Option<u64>,
    pub behavior: HookBehavior,
}

/// What a scenario hook does when started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookBehavior {
    /// Succeeds at once.
    Ok,
    /// Fails at once with the message `"<name> failed"`.
    Fail,
    /// Panics (Rust) / throws synchronously (Node) with the message `"<name> panicked"`.
    Panic,
    /// Never finishes.
    Hang,
    /// Finishes when a `finish_hook` step says so.
    Manual,
}

/// One step of the timeline, at a virtual time since the engine was built.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub at_ms: f64,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Acquire a guard named `id` (optionally labelled). `admitted` is the expected answer.
    Guard {
        id: String,
        kind: Option<String>,
        #[serde(default = "yes")]
        admitted: bool,
    },
    /// A child guard `id` of the live guard `parent` (always admitted).
    Child { id: String, parent: String },
    /// Release guard `id`.
    Release { id: String },
    /// A trigger.
    Trigger { reason: ReasonSpec },
    /// A readiness probe answered "not ready".
    Probe,
    /// Finish a `manual` hook.
    FinishHook {
        name: String,
        /// `true`: ok; `false`: fails with `"<name> failed"`.
        ok: bool,
    },
    /// Register an accepted connection `conn`.
    Connect { conn: String },
    /// A request has begun to arrive on `conn`.
    Reading { conn: String },
    /// A request head arrived on `conn`: its request `id`; `admitted` is the expected
    /// answer (a refused request is not kept).
    Request {
        conn: String,
        id: String,
        kind: Option<String>,
        #[serde(default = "yes")]
        admitted: bool,
    },
    /// Ask request `id` whether its response keeps the connection open.
    KeepAlive { id: String, expect: bool },
    /// The response of request `id` was sent; `keep_open` is the expected answer.
    Finish { id: String, keep_open: Option<bool> },
    /// Request `id` upgrades its connection; the long-lived guard is kept as `guard`.
    Upgrade {
        id: String,
        guard: String,
        kind: Option<String>,
    },
    /// Request `id` starts work that may outlive its response: a child of its guard,
    /// kept as guard `guard` (released later with `release`).
    RequestChild { id: String, guard: String },
    /// The host closed connection `conn`.
    Disconnect { conn: String },
    /// Take a listener hold, kept under `hold`; `held` is the expected answer (`false`
    /// once the host was told to stop listening: nothing is kept then).
    HoldListener {
        hold: String,
        #[serde(default = "yes")]
        held: bool,
    },
    /// Release listener hold `hold`.
    ReleaseListener { hold: String },
    /// Check the engine's observable state; absent fields are not checked.
    Expect(StateExpect),
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonSpec {
    /// `"signal"`, `"manual"` or `"fatal"`.
    pub kind: String,
    pub detail: String,
}

/// An observable state of the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateExpect {
    pub phase: Option<String>,
    pub ready: Option<bool>,
    pub accepting: Option<bool>,
    pub should_close: Option<bool>,
    pub cancelled: Option<bool>,
    pub in_flight: Option<u64>,
    /// Whether the host should keep listening (`Shutdown::should_listen`).
    pub listening: Option<bool>,
    /// The connections dismissed so far, in the order the dismissal callback said.
    pub dismissed: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The build must fail, naming this configuration field.
    pub config_error: Option<String>,
    /// Milestones observed through the binding's notifications, in order, with the
    /// virtual time since the engine was built.
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
    /// The report as the core's JSON (`Report::to_json`), compared whole.
    pub report: Option<Value>,
    /// When the binding's event stream said *unlisten* (event 13), in virtual ms
    /// since the engine was built; checked when given.
    pub unlisten_at_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEntry {
    pub milestone: String,
    pub at_ms: f64,
}

/// The observable state, as an engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub phase: String,
    pub ready: bool,
    pub accepting: bool,
    pub should_close: bool,
    pub cancelled: bool,
    pub in_flight: u64,
    pub listening: bool,
}

/// One engine under test, built by a [`Target`] with the scenario's config and hooks
/// registered, on a virtual clock at 0.
pub trait Engine {
    /// Acquires a guard; returns whether it was admitted (and keeps it under `id`).
    fn guard(&mut self, id: &str, kind: Option<&str>) -> bool;
    /// A child of the live guard `parent`, kept under `id`.
    fn child(&mut self, id: &str, parent: &str);
    /// Releases guard `id`.
    fn release(&mut self, id: &str);
    fn trigger(&mut self, reason: &ReasonSpec);
    fn readiness_probed(&mut self);
    /// Completes a `manual` hook.
    fn finish_hook(&mut self, name: &str, ok: bool);
    /// Moves the virtual clock forward and lets every resulting effect settle.
    fn advance(&mut self, ms: f64);
    fn state(&mut self) -> State;
    /// Milestones observed so far, with their virtual times since the engine was built.
    fn trace(&mut self) -> Vec<TraceEntry>;
    /// The final report as JSON, once Done.
    fn report(&mut self) -> Option<Value>;

    // Connections (the `connect` .. `disconnect` steps). A binding that has no
    // connection API yet lists its language in those scenarios' `skip`.

    /// Registers connection `conn`.
    fn connect(&mut self, conn: &str) {
        unsupported(conn)
    }
    /// A request is arriving on `conn`.
    fn reading(&mut self, conn: &str) {
        unsupported(conn)
    }
    /// A request on `conn`, kept under `id` when admitted; returns whether it was.
    fn request(&mut self, conn: &str, id: &str, kind: Option<&str>) -> bool {
        let _ = (id, kind);
        unsupported(conn)
    }
    /// The keep-alive answer of request `id`.
    fn keep_alive(&mut self, id: &str) -> bool {
        unsupported(id)
    }
    /// Finishes request `id`; returns whether the connection stays open.
    fn finish(&mut self, id: &str) -> bool {
        unsupported(id)
    }
    /// Upgrades request `id`; the long-lived guard is kept as guard `guard`.
    fn upgrade(&mut self, id: &str, guard: &str, kind: Option<&str>) {
        let _ = (guard, kind);
        unsupported(id)
    }
    /// A child of request `id`'s guard, kept as guard `guard`.
    fn request_child(&mut self, id: &str, guard: &str) {
        let _ = guard;
        unsupported(id)
    }
    /// Closes connection `conn`.
    fn disconnect(&mut self, conn: &str) {
        unsupported(conn)
    }
    /// The connections dismissed so far, in callback order.
    fn dismissed(&mut self) -> Vec<String> {
        unsupported("dismissed")
    }
    /// Takes a listener hold, kept under `hold` when taken; returns whether it was.
    fn hold_listener(&mut self, hold: &str) -> bool {
        unsupported(hold)
    }
    /// Releases listener hold `hold`.
    fn release_listener(&mut self, hold: &str) {
        unsupported(hold)
    }
    /// When the binding's event stream said *unlisten*, in ms since the engine was built.
    fn unlisten_at(&mut self) -> Option<f64> {
        unsupported("unlisten")
    }
}

fn unsupported(what: &str) -> ! {
    panic!("this binding's runner has no connection steps ({what}): list it in the scenario's skip")
}

/// A language binding that can build engines.
pub trait Target {
    /// The binding's name as used in `skip` (`"rust"`, `"c"`, `"node"`).
    fn name(&self) -> &str;
    /// Builds an engine, or returns the configuration error (its message must name the field).
    fn create(&self, scenario: &Scenario) -> Result<Box<dyn Engine>, String>;
}

/// The folder of scenario files.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Loads every `*.json` scenario in `dir`, sorted by file name.
pub fn load_all(dir: &Path) -> Result<Vec<(PathBuf, Scenario)>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let s: Scenario =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((p, s))
        })
        .collect()
}

/// The default for `run_until_ms`: past any budget a scenario can configure.
pub const FAR_FUTURE_MS: f64 = 3.0 * 24.0 * 3600.0 * 1000.0;

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub trace: Vec<TraceEntry>,
    pub report: Option<Value>,
}

/// Runs one scenario against `target` and compares everything with the expectations.
pub fn run(scenario: &Scenario, target: &dyn Target) -> Result<Outcome, String> {
    let s = scenario;
    let mut engine = match (target.create(s), &s.expect.config_error) {
        (Err(msg), Some(field)) if msg.contains(field.as_str()) => {
            return Ok(Outcome {
                trace: vec![],
                report: None,
            })
        }
        (Err(msg), _) => return Err(format!("{}: build failed: {msg}", s.name)),
        (Ok(_), Some(field)) => {
            return Err(format!(
                "{}: build succeeded, expected an error naming {field}",
                s.name
            ))
        }
        (Ok(e), None) => e,
    };
    let mut now = 0.0;
    let mut failures = String::new();
    for (i, step) in s.steps.iter().enumerate() {
        if step.at_ms < now {
            return Err(format!("{}: step {i} goes back in time", s.name));
        }
        if step.at_ms > now {
            engine.advance(step.at_ms - now);
            now = step.at_ms;
        }
        match &step.op {
            Op::Guard { id, kind, admitted } => {
                let got = engine.guard(id, kind.as_deref());
                if got != *admitted {
                    let _ = writeln!(
                        failures,
                        "step {i} at {now} ms: guard {id}: admitted {got}, expected {admitted}"
                    );
                }
            }
            Op::Child { id, parent } => engine.child(id, parent),
            Op::Release { id } => engine.release(id),
            Op::Trigger { reason } => engine.trigger(reason),
            Op::Probe => engine.readiness_probed(),
            Op::FinishHook { name, ok } => engine.finish_hook(name, *ok),
            Op::Connect { conn } => engine.connect(conn),
            Op::Reading { conn } => engine.reading(conn),
            Op::Request {
                conn,
                id,
                kind,
                admitted,
            } => {
                let got = engine.request(conn, id, kind.as_deref());
                if got != *admitted {
                    let _ = writeln!(
                        failures,
                        "step {i} at {now} ms: request {id} on {conn}: admitted {got}, expected {admitted}"
                    );
                }
            }
            Op::KeepAlive { id, expect } => {
                let got = engine.keep_alive(id);
                if got != *expect {
                    let _ = writeln!(
                        failures,
                        "step {i} at {now} ms: keep_alive of {id} is {got}, expected {expect}"
                    );
                }
            }
            Op::Finish { id, keep_open } => {
                let got = engine.finish(id);
                if keep_open.is_some_and(|w| w != got) {
                    let _ = writeln!(
                        failures,
                        "step {i} at {now} ms: finish of {id} keeps it open: {got}, expected {keep_open:?}"
                    );
                }
            }
            Op::Upgrade { id, guard, kind } => engine.upgrade(id, guard, kind.as_deref()),
            Op::RequestChild { id, guard } => engine.request_child(id, guard),
            Op::Disconnect { conn } => engine.disconnect(conn),
            Op::HoldListener { hold, held } => {
                let got = engine.hold_listener(hold);
                if got != *held {
                    let _ = writeln!(
                        failures,
                        "step {i} at {now} ms: listener hold {hold}: held {got}, expected {held}"
                    );
                }
            }
            Op::ReleaseListener { hold } => engine.release_listener(hold),
            Op::Expect(want) => {
                if let Some(w) = &want.dismissed {
                    let got = engine.dismissed();
                    if &got != w {
                        let _ = writeln!(
                            failures,
                            "step {i} at {now} ms: dismissed {got:?}, expected {w:?}"
                        );
                    }
                }
                let got = engine.state();
                let mut check = |field: &str, want: Option<String>, got: String| {
                    if let Some(w) = want {
                        if w != got {
                            let _ = writeln!(
                                failures,
                                "step {i} at {now} ms: {field} is {got}, expected {w}"
                            );
                        }
                    }
                };
                check("phase", want.phase.clone(), got.phase.clone());
                check(
                    "ready",
                    want.ready.map(|b| b.to_string()),
                    got.ready.to_string(),
                );
                check(
                    "accepting",
                    want.accepting.map(|b| b.to_string()),
                    got.accepting.to_string(),
                );
                check(
                    "should_close",
                    want.should_close.map(|b| b.to_string()),
                    got.should_close.to_string(),
                );
                check(
                    "cancelled",
                    want.cancelled.map(|b| b.to_string()),
                    got.cancelled.to_string(),
                );
                check(
                    "in_flight",
                    want.in_flight.map(|n| n.to_string()),
                    got.in_flight.to_string(),
                );
                check(
                    "listening",
                    want.listening.map(|b| b.to_string()),
                    got.listening.to_string(),
                );
            }
        }
    }
    let until = s.run_until_ms.unwrap_or(FAR_FUTURE_MS);
    if until > now {
        engine.advance(until - now);
    }
    let trace = engine.trace();
    let report = engine.report();
    if !trace_eq(&trace, &s.expect.trace) {
        let _ = writeln!(
            failures,
            "trace:\n  got      {}\n  expected {}",
            show_trace(&trace),
            show_trace(&s.expect.trace)
        );
    }
    if let Some(want) = s.expect.unlisten_at_ms {
        match engine.unlisten_at() {
            Some(got) if (got - want).abs() < 1e-6 => {}
            got => {
                let _ = writeln!(failures, "unlisten at {got:?} ms, expected {want} ms");
            }
        }
    }
    if let Some(want) = &s.expect.report {
        match &report {
            None => {
                let _ = writeln!(failures, "no report (the engine is not Done)");
            }
            Some(got) if !json_eq(got, want) => {
                let _ = writeln!(failures, "report:\n  got      {got}\n  expected {want}");
            }
            Some(_) => {}
        }
    }
    if failures.is_empty() {
        Ok(Outcome { trace, report })
    } else {
        Err(format!("{} ({}):\n{failures}", s.name, target.name()))
    }
}

fn show_trace(t: &[TraceEntry]) -> String {
    t.iter()
        .map(|e| format!("{}@{}", e.milestone, e.at_ms))
        .collect::<Vec<_>>()
        .join(" ")
}

fn trace_eq(a: &[TraceEntry], b: &[TraceEntry]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.milestone == y.milestone && (x.at_ms - y.at_ms).abs() < 1e-6)
}

/// JSON equality with numbers compared as numbers (`3` equals `3.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-6,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Runs every scenario in the folder against `target`; panics with every mismatch.
pub fn run_all(target: &dyn Target) -> usize {
    let all = load_all(&scenarios_dir()).expect("scenarios load");
    assert!(
        !all.is_empty(),
        "no scenario found in {}",
        scenarios_dir().display()
    );
    let mut errors = Vec::new();
    let mut ran = 0;
    for (path, s) in &all {
        if s.skip.iter().any(|l| l == target.name()) {
            continue;
        }
        ran += 1;
        if let Err(e) = run(s, target) {
            errors.push(format!("{}: {e}", path.display()));
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {ran} scenarios failed:\n{}",
        errors.len(),
        errors.join("\n")
    );
    ran
}

/// Guards kept by id, for engines that hold them in a map.
pub type GuardMap<G> = BTreeMap<String, G>;
