//! The conformance scenarios through the Rust API of the core.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libshutdown::{
    CloseStrategy, Connection, ConnectionId, Event, Guard, HookDone, HookOptions, ListenerHold,
    LongLived, Milestone, OptionValue, Reason, Request, Shutdown,
};
use libshutdown_conformance::{
    run_all, Engine, HookBehavior, ReasonSpec, Scenario, State, Target, TraceEntry,
};
use serde_json::Value;

type Pending = Arc<Mutex<BTreeMap<String, HookDone>>>;

struct RustEngine {
    sd: Shutdown,
    guards: BTreeMap<String, Guard>,
    conns: BTreeMap<String, Connection>,
    requests: BTreeMap<String, Request>,
    /// Scenario names of the connections, by the engine's id.
    names: Arc<Mutex<BTreeMap<ConnectionId, String>>>,
    dismissed: Arc<Mutex<Vec<String>>>,
    trace: Arc<Mutex<Vec<TraceEntry>>>,
    holds: BTreeMap<String, ListenerHold>,
    /// When the event stream said unlisten, in ms.
    unlisten: Arc<Mutex<Option<f64>>>,
    manual: Pending,
    /// Hooks that never finish: kept so their completion is never dropped.
    _hung: Pending,
}

struct Rust;

/// A milestone by name, for policies that name one the core must refuse.
fn milestone(name: &str) -> Milestone {
    match name {
        "draining" => Milestone::Draining,
        "quiescing" => Milestone::Quiescing,
        "closing" => Milestone::Closing,
        _ => Milestone::Done,
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Target for Rust {
    fn name(&self) -> &str {
        "rust"
    }

    fn create(&self, s: &Scenario) -> Result<Box<dyn Engine>, String> {
        let c = &s.config;
        let mut b = Shutdown::builder().manual_clock();
        if let Some(p) = &c.preset {
            b = b.preset(p).map_err(|e| e.to_string())?;
        }
        if let Some(v) = c.drain_delay_ms {
            b = b.drain_delay(ms(v));
        }
        if let Some(v) = c.announce_probes {
            b = b.announce_probes(v);
        }
        if let Some(v) = c.announce_settle_ms {
            b = b.announce_settle(ms(v));
        }
        if let Some(v) = c.drain_timeout_ms {
            b = b.drain_timeout(ms(v));
        }
        if let Some(v) = c.close_timeout_ms {
            b = b.close_timeout(ms(v));
        }
        if let Some(v) = c.grace_period_ms {
            b = b.grace_period(v.map(ms));
        }
        // Field by field through the schema: `Builder::escalation` would replace all
        // three, and with them what a preset set.
        let count = |v: Option<u32>| v.map_or(OptionValue::Null, |n| OptionValue::Number(n.into()));
        if let Some(v) = c.force_at {
            b = b.set("force_at", count(v)).map_err(|e| e.to_string())?;
        }
        if let Some(v) = c.terminate_at {
            b = b.set("terminate_at", count(v)).map_err(|e| e.to_string())?;
        }
        if let Some(v) = c.same_signal_window_ms {
            b = b
                .set("same_signal_window_ms", OptionValue::Number(v as f64))
                .map_err(|e| e.to_string())?;
        }
        if let Some(v) = c.forced_exit_code {
            b = b.forced_exit_code(v);
        }
        match c.close_strategy.as_deref() {
            None | Some("immediate") => {}
            Some("gradual") => b = b.close_strategy(CloseStrategy::Gradual),
            Some(other) => return Err(format!("close_strategy: unknown {other}")),
        }
        if let Some(v) = c.connection_grace_ms {
            b = b.connection_grace(ms(v));
        }
        for l in &c.long_lived {
            let mut p = LongLived::new(ms(l.grace_ms));
            match l.notify_at.as_deref() {
                None | Some("quiescing") => {}
                Some("draining") => p = p.notify_at(Milestone::Draining),
                Some(other) => p = p.notify_at(milestone(other)),
            }
            b = b.long_lived(&l.kind, p);
        }
        let sd = b.build().map_err(|e| e.to_string())?;
        let names: Arc<Mutex<BTreeMap<ConnectionId, String>>> = Default::default();
        let dismissed: Arc<Mutex<Vec<String>>> = Default::default();
        let (n, d) = (names.clone(), dismissed.clone());
        sd.on_dismissed(move |ids| {
            let names = n.lock().unwrap();
            d.lock()
                .unwrap()
                .extend(ids.iter().map(|id| names[id].clone()));
        });

        let trace = Arc::new(Mutex::new(Vec::new()));
        let (t, clock) = (trace.clone(), sd.clone());
        sd.on_milestone(move |m| {
            t.lock().unwrap().push(TraceEntry {
                milestone: m.as_str().to_string(),
                at_ms: clock.elapsed().as_micros() as f64 / 1000.0,
            })
        });
        let unlisten = Arc::new(Mutex::new(None));
        let u = unlisten.clone();
        sd.on_event(move |at, e| {
            if *e == Event::Unlisten {
                *u.lock().unwrap() = Some(at.as_micros() as f64 / 1000.0);
            }
        });
        let manual: Pending = Default::default();
        let hung: Pending = Default::default();
        for h in &s.hooks {
            let mut opts = HookOptions::new().order(h.order);
            if let Some(t) = h.timeout_ms {
                opts = opts.timeout(ms(t));
            }
            let name = h.name.clone();
            let r = match h.behavior {
                HookBehavior::Ok => sd.on_close(&h.name, opts, || Ok(())),
                HookBehavior::Fail => {
                    sd.on_close(&h.name, opts, move || Err(format!("{name} failed").into()))
                }
                HookBehavior::Panic => {
                    sd.on_close(&h.name, opts, move || panic!("{name} panicked"))
                }
                HookBehavior::Hang | HookBehavior::Manual => {
                    let keep = if h.behavior == HookBehavior::Hang {
                        hung.clone()
                    } else {
                        manual.clone()
                    };
                    sd.on_close_deferred(&h.name, opts, move |done| {
                        keep.lock().unwrap().insert(name, done);
                    })
                }
            };
            r.map_err(|e| format!("hook {}: {e}", h.name))?;
        }
        Ok(Box::new(RustEngine {
            sd,
            guards: BTreeMap::new(),
            conns: BTreeMap::new(),
            requests: BTreeMap::new(),
            names,
            dismissed,
            trace,
            holds: BTreeMap::new(),
            unlisten,
            manual,
            _hung: hung,
        }))
    }
}

impl Engine for RustEngine {
    fn guard(&mut self, id: &str, kind: Option<&str>) -> bool {
        let g = match kind {
            Some(k) => self.sd.guard_of(self.sd.kind(k).unwrap()),
            None => self.sd.guard(),
        };
        match g {
            Some(g) => {
                self.guards.insert(id.to_string(), g);
                true
            }
            None => false,
        }
    }

    fn child(&mut self, id: &str, parent: &str) {
        let child = self.guards[parent].child();
        self.guards.insert(id.to_string(), child);
    }

    fn release(&mut self, id: &str) {
        drop(self.guards.remove(id).expect("release of an unknown guard"));
    }

    fn trigger(&mut self, r: &ReasonSpec) {
        let reason = match r.kind.as_str() {
            "signal" => Reason::Signal(r.detail.clone()),
            "fatal" => Reason::Fatal(r.detail.clone()),
            _ => Reason::Manual(r.detail.clone()),
        };
        self.sd.trigger(reason);
    }

    fn readiness_probed(&mut self) {
        self.sd.readiness_probed();
    }

    fn finish_hook(&mut self, name: &str, ok: bool) {
        let done = self
            .manual
            .lock()
            .unwrap()
            .remove(name)
            .expect("hook not running");
        done.finish(if ok {
            Ok(())
        } else {
            Err(format!("{name} failed").into())
        });
    }

    fn advance(&mut self, ms: f64) {
        self.sd
            .advance(Duration::from_micros((ms * 1000.0).round() as u64))
            .unwrap();
    }

    fn state(&mut self) -> State {
        State {
            phase: self.sd.phase().as_str().to_string(),
            ready: self.sd.is_ready(),
            accepting: self.sd.is_accepting(),
            should_close: self.sd.should_close(),
            cancelled: self.sd.is_cancelled(),
            in_flight: self.sd.in_flight(),
            listening: self.sd.should_listen(),
        }
    }

    fn trace(&mut self) -> Vec<TraceEntry> {
        self.trace.lock().unwrap().clone()
    }

    fn report(&mut self) -> Option<Value> {
        self.sd
            .report()
            .map(|r| serde_json::from_str(&r.to_json()).unwrap())
    }

    fn connect(&mut self, conn: &str) {
        let c = self.sd.connection();
        self.names.lock().unwrap().insert(c.id(), conn.to_string());
        // A connection accepted once the drain is over comes back dismissed.
        if c.is_dismissed() {
            self.dismissed.lock().unwrap().push(conn.to_string());
        }
        self.conns.insert(conn.to_string(), c);
    }

    fn reading(&mut self, conn: &str) {
        self.conns[conn].reading();
    }

    fn request(&mut self, conn: &str, id: &str, kind: Option<&str>) -> bool {
        let c = &self.conns[conn];
        let r = match kind {
            Some(k) => c.request_of(self.sd.kind(k).unwrap()),
            None => c.request(),
        };
        r.map(|r| self.requests.insert(id.to_string(), r)).is_some()
    }

    fn keep_alive(&mut self, id: &str) -> bool {
        self.requests
            .get_mut(id)
            .expect("a live request")
            .keep_alive()
    }

    fn finish(&mut self, id: &str) -> bool {
        self.requests.remove(id).expect("a live request").finish()
    }

    fn upgrade(&mut self, id: &str, guard: &str, kind: Option<&str>) {
        let kind = kind.map(|k| self.sd.kind(k).unwrap());
        let r = self.requests.remove(id).expect("a live request");
        self.guards.insert(guard.to_string(), r.upgrade(kind));
    }

    fn request_child(&mut self, id: &str, guard: &str) {
        let child = self.requests[id].child();
        self.guards.insert(guard.to_string(), child);
    }

    fn disconnect(&mut self, conn: &str) {
        drop(self.conns.remove(conn).expect("an open connection"));
    }

    fn dismissed(&mut self) -> Vec<String> {
        self.dismissed.lock().unwrap().clone()
    }

    fn hold_listener(&mut self, hold: &str) -> bool {
        self.sd
            .hold_listener()
            .map(|h| self.holds.insert(hold.to_string(), h))
            .is_some()
    }

    fn release_listener(&mut self, hold: &str) {
        drop(self.holds.remove(hold).expect("a listener hold"));
    }

    fn unlisten_at(&mut self) -> Option<f64> {
        *self.unlisten.lock().unwrap()
    }
}

#[test]
fn every_scenario_through_the_rust_api() {
    let ran = run_all(&Rust);
    eprintln!("{ran} scenarios passed through the Rust API");
}
