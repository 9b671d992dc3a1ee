//! The core's progress snapshot for JavaScript (`Shutdown#progress()`, a metrics
//! endpoint).

use napi_derive::napi;

use crate::NativeShutdown;

/// The core's `Progress` snapshot, for JavaScript (`Shutdown#progress()`).
#[napi(object)]
pub struct NativeProgress {
    /// The core's progress line.
    pub line: String,
    pub phase: String,
    pub accepting: bool,
    pub in_flight: f64,
    pub in_flight_by_kind: std::collections::HashMap<String, f64>,
    pub connections: f64,
    pub aborted: f64,
    pub time_left_ms: Option<f64>,
    /// `[milestone, ms since the trigger]`.
    pub timeline: Vec<(String, f64)>,
}

#[napi]
impl NativeShutdown {
    /// What the engine is doing now (`Shutdown::progress`), for a metrics endpoint.
    #[napi(catch_unwind)]
    pub fn progress(&self) -> NativeProgress {
        let p = self.sd.progress();
        NativeProgress {
            line: p.to_string(),
            phase: p.phase.as_str().to_string(),
            accepting: p.accepting,
            in_flight: p.in_flight as f64,
            in_flight_by_kind: p
                .in_flight_by_kind
                .iter()
                .map(|(k, n)| (k.clone(), *n as f64))
                .collect(),
            connections: p.connections as f64,
            aborted: p.aborted as f64,
            time_left_ms: p.time_left.map(|d| d.as_secs_f64() * 1e3),
            timeline: p
                .timeline
                .iter()
                .map(|t| (t.milestone.as_str().to_string(), t.at.as_secs_f64() * 1e3))
                .collect(),
        }
    }
}
