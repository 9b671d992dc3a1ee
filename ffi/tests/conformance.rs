//! The conformance scenarios (`tests/scenarios/*.json`) through the C ABI: every step
//! goes through the `extern "C"` entry points with C types (the config builder, guard,
//! hook-completion, connection and request handles, C callbacks with `user_data`, the
//! virtual clock, the report's JSON), exactly as a C host would use them.

// The boxes give `user_data` pointers stable addresses while the engine holds them.
#![allow(clippy::vec_box, clippy::box_collection)]

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use libshutdown_conformance::{
    run_all, Engine, HookBehavior, ReasonSpec, Scenario, State, Target, TraceEntry,
};
use libshutdown_ffi::*;
use serde_json::Value;

const OK: ShutdownStatus = ShutdownStatus::OK;

/// What the milestone callback records: (milestone, virtual µs since creation).
struct TraceSink {
    engine: *const libshutdown_ffi::Engine,
    entries: Vec<(ShutdownMilestone, u64)>,
    /// When the event stream said unlisten (code 13), in virtual µs.
    unlisten_us: Option<u64>,
}

unsafe extern "C" fn on_event(user_data: *mut c_void, e: *const ShutdownEvent) {
    let sink = unsafe { &mut *(user_data as *mut TraceSink) };
    let e = unsafe { &*e };
    if e.code == 13 {
        sink.unlisten_us = Some(e.at_us);
    }
}

unsafe extern "C" fn on_milestone(user_data: *mut c_void, m: ShutdownMilestone) {
    let sink = unsafe { &mut *(user_data as *mut TraceSink) };
    let mut us = 0u64;
    assert_eq!(unsafe { shutdown_elapsed_us(sink.engine, &mut us) }, OK);
    sink.entries.push((m, us));
}

/// A hook's `user_data`: its name and where deferred completions wait.
struct HookCtx {
    name: CString,
    pending: *mut BTreeMap<String, *mut HookDoneHandle>,
}

unsafe extern "C" fn hook_ok(_: *mut c_void, _: *mut c_char, _: usize) -> c_int {
    0
}

unsafe extern "C" fn hook_fail(user_data: *mut c_void, msg: *mut c_char, len: usize) -> c_int {
    let ctx = unsafe { &*(user_data as *const HookCtx) };
    let text = format!("{} failed\0", ctx.name.to_str().unwrap());
    assert!(text.len() <= len);
    unsafe { ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), msg, text.len()) };
    1
}

unsafe extern "C" fn hook_deferred(user_data: *mut c_void, done: *mut HookDoneHandle) {
    let ctx = unsafe { &*(user_data as *const HookCtx) };
    let pending = unsafe { &mut *ctx.pending };
    pending.insert(ctx.name.to_str().unwrap().to_string(), done);
}

/// What the dismissal callback records: the scenario names of the connections, by id,
/// and the names dismissed so far, in callback order.
#[derive(Default)]
struct DismissSink {
    names: BTreeMap<u64, String>,
    dismissed: Vec<String>,
}

unsafe extern "C" fn on_dismissed(user_data: *mut c_void, ids: *const u64, len: usize) {
    let sink = unsafe { &mut *(user_data as *mut DismissSink) };
    assert!(!ids.is_null() && len > 0, "an empty batch");
    for id in unsafe { std::slice::from_raw_parts(ids, len) } {
        let name = sink.names.get(id).expect("a registered connection").clone();
        sink.dismissed.push(name);
    }
}

struct CEngine {
    sd: *mut libshutdown_ffi::Engine,
    guards: BTreeMap<String, *mut GuardHandle>,
    conns: BTreeMap<String, *mut ConnectionHandle>,
    requests: BTreeMap<String, *mut RequestHandle>,
    holds: BTreeMap<String, *mut ListenerHoldHandle>,
    dismiss: Box<DismissSink>,
    trace: Box<TraceSink>,
    _hooks: Vec<Box<HookCtx>>,
    manual: Box<BTreeMap<String, *mut HookDoneHandle>>,
    hung: Box<BTreeMap<String, *mut HookDoneHandle>>,
}

impl Drop for CEngine {
    fn drop(&mut self) {
        unsafe {
            for (_, g) in std::mem::take(&mut self.guards) {
                shutdown_guard_release(g);
            }
            for (_, r) in std::mem::take(&mut self.requests) {
                assert_eq!(shutdown_request_finish(r, ptr::null_mut()), OK);
            }
            for (_, c) in std::mem::take(&mut self.conns) {
                shutdown_connection_free(c);
            }
            for (_, h) in std::mem::take(&mut self.holds) {
                shutdown_listener_release(h);
            }
            // Completions never given: finishing them now is ignored (late) and frees them.
            for (_, d) in std::mem::take(&mut *self.manual)
                .into_iter()
                .chain(std::mem::take(&mut *self.hung))
            {
                assert_eq!(shutdown_hook_done(d, 1, ptr::null()), OK);
            }
            shutdown_free(self.sd);
        }
    }
}

struct C;

/// A configuration builder, freed however `create` returns.
struct OwnedBuilder(*mut ConfigBuilder);

impl Drop for OwnedBuilder {
    fn drop(&mut self) {
        unsafe { shutdown_config_builder_free(self.0) };
    }
}

impl Target for C {
    fn name(&self) -> &str {
        "c"
    }

    fn create(&self, s: &Scenario) -> Result<Box<dyn Engine>, String> {
        let c = &s.config;
        let mut b = ptr::null_mut();
        assert_eq!(unsafe { shutdown_config_builder_new(&mut b) }, OK);
        let builder = OwnedBuilder(b);
        let b = builder.0;
        // Every setter accepts what the scenarios give; the core judges it at build.
        unsafe {
            assert_eq!(shutdown_config_builder_set_manual_clock(b, true), OK);
            if let Some(p) = &c.preset {
                // C refuses an unknown name at the setter, not at the build.
                let name = CString::new(p.as_str()).unwrap();
                let st = shutdown_config_builder_set_preset(b, name.as_ptr());
                if st != OK {
                    return Err(format!("preset {p:?} refused: {st:?}"));
                }
            }
            if let Some(v) = c.drain_delay_ms {
                assert_eq!(shutdown_config_builder_set_drain_delay_ms(b, v), OK);
            }
            if let Some(v) = c.announce_settle_ms {
                assert_eq!(shutdown_config_builder_set_announce_settle_ms(b, v), OK);
            }
            if let Some(v) = c.announce_probes {
                assert_eq!(shutdown_config_builder_set_announce_probes(b, v), OK);
            }
            if let Some(v) = c.drain_timeout_ms {
                assert_eq!(shutdown_config_builder_set_drain_timeout_ms(b, v), OK);
            }
            if let Some(v) = c.close_timeout_ms {
                assert_eq!(shutdown_config_builder_set_close_timeout_ms(b, v), OK);
            }
            if let Some(v) = c.grace_period_ms {
                let v = v.unwrap_or(0);
                assert_eq!(shutdown_config_builder_set_grace_period_ms(b, v), OK);
            }
            if let Some(v) = c.force_at {
                assert_eq!(shutdown_config_builder_set_force_at(b, v.unwrap_or(0)), OK);
            }
            if let Some(v) = c.terminate_at {
                let v = v.unwrap_or(0);
                assert_eq!(shutdown_config_builder_set_terminate_at(b, v), OK);
            }
            if let Some(v) = c.same_signal_window_ms {
                assert_eq!(shutdown_config_builder_set_same_signal_window_ms(b, v), OK);
            }
            if let Some(v) = c.forced_exit_code {
                assert_eq!(shutdown_config_builder_set_forced_exit_code(b, v), OK);
            }
            if let Some(v) = c.connection_grace_ms {
                assert_eq!(shutdown_config_builder_set_connection_grace_ms(b, v), OK);
            }
        }
        for l in &c.long_lived {
            let kind = CString::new(l.kind.clone()).unwrap();
            let at = match l.notify_at.as_deref() {
                None => ShutdownMilestone::NONE,
                Some("draining") => ShutdownMilestone::DRAINING,
                Some("quiescing") => ShutdownMilestone::QUIESCING,
                Some("closing") => ShutdownMilestone::CLOSING,
                Some("done") => ShutdownMilestone::DONE,
                Some(other) => return Err(format!("long_lived: unknown notify_at {other}")),
            };
            assert_eq!(
                unsafe {
                    shutdown_config_builder_set_long_lived(b, kind.as_ptr(), l.grace_ms, at as u32)
                },
                OK
            );
        }
        let strategy = match c.close_strategy.as_deref() {
            None | Some("immediate") => ShutdownCloseStrategy::IMMEDIATE,
            Some("gradual") => ShutdownCloseStrategy::GRADUAL,
            Some(other) => return Err(format!("close_strategy: unknown {other}")),
        };
        assert_eq!(
            unsafe { shutdown_config_builder_set_close_strategy(b, strategy as u32) },
            OK
        );
        let mut sd = ptr::null_mut();
        let st = unsafe { shutdown_new(b, &mut sd) };
        if st != OK {
            assert_eq!(st, ShutdownStatus::INVALID_CONFIG);
            assert!(sd.is_null(), "out-param written on failure");
            let mut field = [0 as c_char; SHUTDOWN_CONFIG_FIELD_LEN];
            let mut msg = [0 as c_char; 512];
            let st = unsafe {
                shutdown_config_builder_validate(
                    b,
                    field.as_mut_ptr(),
                    field.len(),
                    msg.as_mut_ptr(),
                    msg.len(),
                )
            };
            assert_eq!(st, ShutdownStatus::INVALID_CONFIG);
            let field = unsafe { CStr::from_ptr(field.as_ptr()) }.to_string_lossy();
            let msg = unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy();
            // The field out-parameter is the one the message names.
            assert!(
                msg.starts_with(&format!("invalid shutdown configuration: {field}: ")),
                "{field} / {msg}"
            );
            return Err(field.into_owned());
        }
        let mut e = CEngine {
            sd,
            guards: BTreeMap::new(),
            conns: BTreeMap::new(),
            requests: BTreeMap::new(),
            holds: BTreeMap::new(),
            dismiss: Box::default(),
            trace: Box::new(TraceSink {
                engine: sd,
                entries: Vec::new(),
                unlisten_us: None,
            }),
            _hooks: Vec::new(),
            manual: Box::default(),
            hung: Box::default(),
        };
        let sink: *mut TraceSink = &mut *e.trace;
        assert_eq!(
            unsafe { shutdown_on_milestone(sd, Some(on_milestone), sink.cast()) },
            OK
        );
        assert_eq!(
            unsafe { shutdown_on_event(sd, Some(on_event), sink.cast()) },
            OK
        );
        let dismiss: *mut DismissSink = &mut *e.dismiss;
        assert_eq!(
            unsafe { shutdown_on_dismissed(sd, Some(on_dismissed), dismiss.cast()) },
            OK
        );
        for h in &s.hooks {
            let pending: *mut BTreeMap<String, *mut HookDoneHandle> = match h.behavior {
                HookBehavior::Hang => &mut *e.hung,
                _ => &mut *e.manual,
            };
            let ctx = Box::new(HookCtx {
                name: CString::new(h.name.clone()).unwrap(),
                pending,
            });
            let ud = &*ctx as *const HookCtx as *mut c_void;
            let name = ctx.name.as_ptr();
            let timeout = h.timeout_ms.unwrap_or(0);
            let st = unsafe {
                match h.behavior {
                    HookBehavior::Ok => {
                        shutdown_on_close(sd, name, h.order, timeout, Some(hook_ok), ud)
                    }
                    HookBehavior::Fail => {
                        shutdown_on_close(sd, name, h.order, timeout, Some(hook_fail), ud)
                    }
                    HookBehavior::Hang | HookBehavior::Manual => shutdown_on_close_deferred(
                        sd,
                        name,
                        h.order,
                        timeout,
                        Some(hook_deferred),
                        ud,
                    ),
                    HookBehavior::Panic => return Err("C cannot panic".into()),
                }
            };
            e._hooks.push(ctx);
            if st != OK {
                return Err(format!("hook {}: status {st:?}", h.name));
            }
        }
        Ok(Box::new(e))
    }
}

impl Engine for CEngine {
    fn guard(&mut self, id: &str, kind: Option<&str>) -> bool {
        let mut g = ptr::null_mut();
        let st = unsafe {
            match kind {
                Some(k) => {
                    let k = CString::new(k).unwrap();
                    shutdown_guard_acquire_kind(self.sd, k.as_ptr(), &mut g)
                }
                None => shutdown_guard_acquire(self.sd, &mut g),
            }
        };
        match st {
            ShutdownStatus::OK => {
                assert!(!g.is_null());
                self.guards.insert(id.to_string(), g);
                true
            }
            ShutdownStatus::ADMISSION_CLOSED => {
                assert!(g.is_null(), "out-param written on failure");
                false
            }
            other => panic!("guard: {other:?}"),
        }
    }

    fn child(&mut self, id: &str, parent: &str) {
        let mut g = ptr::null_mut();
        assert_eq!(
            unsafe { shutdown_guard_child(self.guards[parent], &mut g) },
            OK
        );
        self.guards.insert(id.to_string(), g);
    }

    fn release(&mut self, id: &str) {
        let g = self.guards.remove(id).expect("release of an unknown guard");
        unsafe { shutdown_guard_release(g) };
    }

    fn trigger(&mut self, r: &ReasonSpec) {
        let kind = match r.kind.as_str() {
            "signal" => ShutdownReasonKind::SIGNAL,
            "fatal" => ShutdownReasonKind::FATAL,
            _ => ShutdownReasonKind::MANUAL,
        };
        let detail = CString::new(r.detail.clone()).unwrap();
        assert_eq!(
            unsafe { shutdown_trigger(self.sd, kind as u32, detail.as_ptr()) },
            OK
        );
    }

    fn readiness_probed(&mut self) {
        assert_eq!(unsafe { shutdown_readiness_probed(self.sd) }, OK);
    }

    fn finish_hook(&mut self, name: &str, ok: bool) {
        let done = self.manual.remove(name).expect("hook not running");
        let msg = CString::new(format!("{name} failed")).unwrap();
        let st = unsafe {
            if ok {
                shutdown_hook_done(done, 0, ptr::null())
            } else {
                shutdown_hook_done(done, 1, msg.as_ptr())
            }
        };
        assert_eq!(st, OK);
    }

    fn advance(&mut self, ms: f64) {
        let us = (ms * 1000.0).round() as u64;
        assert_eq!(unsafe { shutdown_advance_us(self.sd, us) }, OK);
    }

    fn state(&mut self) -> State {
        let mut phase = ShutdownPhase::RUNNING;
        let mut in_flight = 0;
        unsafe {
            assert_eq!(shutdown_phase(self.sd, &mut phase), OK);
            assert_eq!(shutdown_in_flight(self.sd, &mut in_flight), OK);
            State {
                phase: match phase {
                    ShutdownPhase::RUNNING => "running",
                    ShutdownPhase::DRAINING => "draining",
                    ShutdownPhase::CLOSING => "closing",
                    ShutdownPhase::DONE => "done",
                }
                .to_string(),
                ready: shutdown_is_ready(self.sd),
                accepting: shutdown_is_accepting(self.sd),
                should_close: shutdown_should_close(self.sd),
                cancelled: shutdown_is_cancelled(self.sd),
                in_flight,
                listening: shutdown_should_listen(self.sd),
            }
        }
    }

    fn trace(&mut self) -> Vec<TraceEntry> {
        self.trace
            .entries
            .iter()
            .map(|(m, us)| TraceEntry {
                milestone: match m {
                    ShutdownMilestone::DRAINING => "draining",
                    ShutdownMilestone::QUIESCING => "quiescing",
                    ShutdownMilestone::CLOSING => "closing",
                    ShutdownMilestone::DONE => "done",
                    ShutdownMilestone::NONE => "none",
                }
                .to_string(),
                at_ms: *us as f64 / 1000.0,
            })
            .collect()
    }

    fn report(&mut self) -> Option<Value> {
        let mut r = ptr::null_mut();
        match unsafe { shutdown_report(self.sd, &mut r) } {
            ShutdownStatus::OK => {}
            ShutdownStatus::NOT_DONE => return None,
            other => panic!("report: {other:?}"),
        }
        let mut json = ptr::null();
        assert_eq!(unsafe { shutdown_report_json(r, &mut json) }, OK);
        let text = unsafe { CStr::from_ptr(json) }
            .to_str()
            .unwrap()
            .to_string();
        unsafe { shutdown_report_free(r) };
        Some(serde_json::from_str(&text).unwrap())
    }

    fn connect(&mut self, conn: &str) {
        let mut c = ptr::null_mut();
        assert_eq!(unsafe { shutdown_connection_new(self.sd, &mut c) }, OK);
        assert!(!c.is_null());
        let mut id = 0u64;
        assert_eq!(unsafe { shutdown_connection_id(c, &mut id) }, OK);
        self.dismiss.names.insert(id, conn.to_string());
        // A connection accepted once the drain is over comes back dismissed (no
        // callback names it).
        let mut dismissed = false;
        assert_eq!(
            unsafe { shutdown_connection_is_dismissed(c, &mut dismissed) },
            OK
        );
        if dismissed {
            self.dismiss.dismissed.push(conn.to_string());
        }
        assert!(
            self.conns.insert(conn.to_string(), c).is_none(),
            "connection {conn} registered twice"
        );
    }

    fn reading(&mut self, conn: &str) {
        assert_eq!(unsafe { shutdown_connection_reading(self.conns[conn]) }, OK);
    }

    fn request(&mut self, conn: &str, id: &str, kind: Option<&str>) -> bool {
        let c = self.conns[conn];
        let mut r = ptr::null_mut();
        let st = unsafe {
            match kind {
                Some(k) => {
                    let k = CString::new(k).unwrap();
                    shutdown_connection_request_kind(c, k.as_ptr(), &mut r)
                }
                None => shutdown_connection_request(c, &mut r),
            }
        };
        match st {
            ShutdownStatus::OK => {
                assert!(!r.is_null());
                self.requests.insert(id.to_string(), r);
                true
            }
            ShutdownStatus::ADMISSION_CLOSED => {
                assert!(r.is_null(), "out-param written on failure");
                false
            }
            other => panic!("request: {other:?}"),
        }
    }

    fn keep_alive(&mut self, id: &str) -> bool {
        let r = *self.requests.get(id).expect("a live request");
        let mut keep = false;
        assert_eq!(unsafe { shutdown_request_keep_alive(r, &mut keep) }, OK);
        keep
    }

    fn finish(&mut self, id: &str) -> bool {
        let r = self.requests.remove(id).expect("a live request");
        let mut open = false;
        assert_eq!(unsafe { shutdown_request_finish(r, &mut open) }, OK);
        open
    }

    fn upgrade(&mut self, id: &str, guard: &str, kind: Option<&str>) {
        let r = self.requests.remove(id).expect("a live request");
        let kind = kind.map(|k| CString::new(k).unwrap());
        let name = kind.as_ref().map_or(ptr::null(), |k| k.as_ptr());
        let mut g = ptr::null_mut();
        assert_eq!(unsafe { shutdown_request_upgrade(r, name, &mut g) }, OK);
        assert!(!g.is_null());
        self.guards.insert(guard.to_string(), g);
    }

    fn request_child(&mut self, id: &str, guard: &str) {
        let mut g = ptr::null_mut();
        assert_eq!(
            unsafe { shutdown_request_child(self.requests[id], &mut g) },
            OK
        );
        assert!(!g.is_null());
        self.guards.insert(guard.to_string(), g);
    }

    fn disconnect(&mut self, conn: &str) {
        let c = self.conns.remove(conn).expect("an open connection");
        unsafe { shutdown_connection_free(c) };
    }

    fn dismissed(&mut self) -> Vec<String> {
        self.dismiss.dismissed.clone()
    }

    fn hold_listener(&mut self, hold: &str) -> bool {
        let mut h = ptr::null_mut();
        match unsafe { shutdown_listener_hold(self.sd, &mut h) } {
            OK => {
                assert!(!h.is_null());
                self.holds.insert(hold.to_string(), h);
                true
            }
            st => {
                assert_eq!(st, ShutdownStatus::TOO_LATE);
                false
            }
        }
    }

    fn release_listener(&mut self, hold: &str) {
        let h = self.holds.remove(hold).expect("a listener hold");
        unsafe { shutdown_listener_release(h) };
    }

    fn unlisten_at(&mut self) -> Option<f64> {
        self.trace.unlisten_us.map(|us| us as f64 / 1000.0)
    }
}

#[test]
fn every_scenario_through_the_c_abi() {
    let ran = run_all(&C);
    eprintln!("{ran} scenarios passed through the C ABI");
}
