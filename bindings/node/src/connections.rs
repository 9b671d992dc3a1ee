//! Connections and their requests, as JavaScript registers them: plain functions bound
//! to the engine for the per-connection path, and the calls around it (a request
//! arriving, a dismissal asked about, an upgrade to long-lived work, work counted as cut
//! outside any guard).

use libshutdown::Connection;
use napi::bindgen_prelude::Function;
use napi::Env;
use napi_derive::napi;

use crate::NativeShutdown;

#[napi]
impl NativeShutdown {
    // The per-connection and per-request path: plain functions bound to the engine (see
    // `acquireFn`). Connection ids are the core's (`f64`, exact below 2^53).

    /// `connOpen() -> id`: registers an accepted connection (`-id`: it came back
    /// dismissed, the drain is over: close it).
    #[napi(catch_unwind)]
    pub fn conn_open_fn<'env>(&self, env: &'env Env) -> napi::Result<Function<'env, (), f64>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("connOpen", move |_| Ok(hot.open()))
    }

    /// `connClose(id) -> pending`: the connection closed.
    #[napi(catch_unwind)]
    pub fn conn_close_fn<'env>(&self, env: &'env Env) -> napi::Result<Function<'env, f64, bool>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("connClose", move |ctx| {
            let id: f64 = ctx.get(0)?;
            Ok(hot.close(id))
        })
    }

    /// `connRequest(id) -> slot | -1`: a request arrived on connection `id` (its head is
    /// complete); -1: refuse it (503, `Connection: close`). Labelled `kind` when given
    /// (interned once, here).
    #[napi(catch_unwind)]
    pub fn conn_request_fn<'env>(
        &self,
        env: &'env Env,
        kind: Option<String>,
    ) -> napi::Result<Function<'env, f64, i32>> {
        let k = self.kind_of(kind)?;
        let hot = self.hot.clone();
        env.create_function_from_closure("connRequest", move |ctx| {
            let id: f64 = ctx.get(0)?;
            Ok(hot.request(id, k))
        })
    }

    /// `requestKeepAlive(slot) -> bool`: whether the response may keep the connection
    /// open (decided at the first call: ask when its head is written).
    #[napi(catch_unwind)]
    pub fn request_keep_alive_fn<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Function<'env, u32, bool>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("requestKeepAlive", move |ctx| {
            let slot: u32 = ctx.get(0)?;
            Ok(hot.keep_alive(slot))
        })
    }

    /// `requestFinish(slot) -> bits`: the response was sent. Bit 0: the connection stays
    /// open (0: close it after this response), bit 1: events are pending.
    #[napi(catch_unwind)]
    pub fn request_finish_fn<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<Function<'env, u32, u32>> {
        let hot = self.hot.clone();
        env.create_function_from_closure("requestFinish", move |ctx| {
            let slot: u32 = ctx.get(0)?;
            Ok(hot.finish(slot))
        })
    }

    /// A request has begun to arrive on connection `id` (its head is not complete): the
    /// drain waits for it, and counts it as cut if it ends first. Returns whether events
    /// are pending.
    #[napi(catch_unwind)]
    pub fn conn_reading(&self, id: f64) -> bool {
        if let Some(c) = self.hot.conns.borrow().get(&(id as u64)) {
            c.reading();
        }
        self.pending()
    }

    /// Whether the core dismissed connection `id` (`false` for an unknown one).
    #[napi(catch_unwind)]
    pub fn conn_dismissed(&self, id: f64) -> bool {
        self.hot
            .conns
            .borrow()
            .get(&(id as u64))
            .is_some_and(Connection::is_dismissed)
    }

    /// Connections registered and not yet closed.
    #[napi(getter, catch_unwind)]
    pub fn connections(&self) -> u32 {
        self.sd.connections() as u32
    }

    /// The connection of the request in `slot` leaves HTTP (WebSocket, CONNECT tunnel):
    /// the request becomes a long-lived guard (labelled `kind` when given), returned as a
    /// guard slot (release it with `release`); -1 for a free request slot.
    #[napi(catch_unwind)]
    pub fn request_upgrade(&self, slot: u32, kind: Option<String>) -> napi::Result<i32> {
        let k = self.kind_of(kind)?;
        let req = self.hot.reqs.borrow_mut().take(slot);
        let Some(req) = req else {
            return Ok(-1);
        };
        let guard = req.upgrade(k);
        Ok(self.hot.slab.borrow_mut().store(guard))
    }

    /// A child of the guard of the request in `slot` (work it starts that may outlive
    /// its response; admitted even after admission closed), as a guard slot (release it
    /// with `release`); -1 for a free request slot.
    #[napi(catch_unwind)]
    pub fn request_child(&self, slot: u32) -> i32 {
        let child = self.hot.reqs.borrow_mut().get_mut(slot).map(|r| r.child());
        match child {
            Some(g) => self.hot.slab.borrow_mut().store(g),
            None => -1,
        }
    }

    /// `recordAborted(count)` as a plain function bound to this engine and `kind`
    /// (interned once, here): counts work the JavaScript layer cut outside any guard (a
    /// connection destroyed while its request was still arriving) in the report's
    /// `aborted`, and under `kind` in `aborted_by_kind`. Returns the core's answer:
    /// `false` once Done, when the report is final.
    #[napi(catch_unwind)]
    pub fn record_aborted_fn<'env>(
        &self,
        env: &'env Env,
        kind: Option<String>,
    ) -> napi::Result<Function<'env, u32, bool>> {
        let k = self.kind_of(kind)?;
        let sd = self.sd.clone();
        env.create_function_from_closure("recordAborted", move |ctx| {
            let count: u32 = ctx.get(0)?;
            Ok(sd.record_aborted(u64::from(count), k))
        })
    }
}
