//! The core's event stream, for C: shutdown_event_t and shutdown_on_event().

use std::ffi::{c_char, c_void, CString};
use std::time::Duration;

use shutdown_core::{Event, Shutdown};

use crate::engine::{Engine, ShutdownMilestone};
use crate::kinds::KindIds;
use crate::report::{cstring, ShutdownHookOutcome};
use crate::status::ShutdownStatus;
use crate::util::{arg, status};

/// One event of the engine's stream (shutdown_on_event()). `code` is the core's stable
/// code, the same in every language: 1 to 4 the milestones (draining, quiescing,
/// closing, done, as shutdown_milestone_t), 5 cancelled, 6 hook started, 7 hook
/// finished, 8 connections dismissed, 9 streams ending, 10 streams cut, 11 terminate,
/// 12 progress (every progress interval while draining or closing; `count` is the work
/// in flight), 13 unlisten (close the listening sockets: shutdown_should_listen() is
/// false from now on). Codes may be added: ignore the ones you do not know.
///
/// The event and everything it points to are valid only during the callback: copy what
/// you keep. Fields that do not belong to the event's code are zero / NULL.
#[repr(C)]
pub struct ShutdownEvent {
    /// The event's code (see above).
    pub code: u32,
    /// The engine's time of the event since it was created, on its clock (virtual or
    /// not), in microseconds.
    pub at_us: u64,
    /// Codes 1 to 4: the milestone reached (SHUTDOWN_MILESTONE_NONE otherwise).
    pub milestone: ShutdownMilestone,
    /// Codes 6 and 7: the hook's name (NUL-terminated UTF-8); NULL otherwise.
    pub hook_name: *const c_char,
    /// Code 7: how the hook ended (SHUTDOWN_HOOK_OUTCOME_OK otherwise).
    pub hook_outcome: ShutdownHookOutcome,
    /// Code 8: the ids (shutdown_connection_id()) of the dismissed connections, `len`
    /// of them (never 0); NULL otherwise.
    pub connection_ids: *const u64,
    /// Code 8: how many ids `connection_ids` holds; 0 otherwise.
    pub connection_ids_len: usize,
    /// Codes 9 and 10: the long-lived kind, as shutdown_kind() gives its id; 0
    /// otherwise.
    pub kind: u32,
    /// Codes 9 and 10: the kind's name (NUL-terminated UTF-8); NULL otherwise.
    pub kind_name: *const c_char,
    /// Code 10: guards of the kind still held at the cut (counted as aborted); code 12:
    /// the work in flight; 0 otherwise.
    pub count: u64,
}

/// Called with every event of the engine's stream (see shutdown_on_event()).
pub type ShutdownEventFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const ShutdownEvent)>;

pub(crate) type EventCb = unsafe extern "C" fn(*mut c_void, *const ShutdownEvent);

/// A core event as a C struct, with the strings it points to.
pub(crate) struct CEvent {
    pub(crate) event: ShutdownEvent,
    _strings: Vec<CString>,
}

impl CEvent {
    /// Translates `e`; `kinds` gives a long-lived kind its C id, `core` its name.
    pub(crate) fn new(at: Duration, e: &Event, kinds: &KindIds, core: &Shutdown) -> Self {
        let mut strings = Vec::new();
        let mut event = ShutdownEvent {
            code: e.code(),
            at_us: u64::try_from(at.as_micros()).unwrap_or(u64::MAX),
            milestone: ShutdownMilestone::NONE,
            hook_name: std::ptr::null(),
            hook_outcome: ShutdownHookOutcome::OK,
            connection_ids: std::ptr::null(),
            connection_ids_len: 0,
            kind: 0,
            kind_name: std::ptr::null(),
            count: 0,
        };
        let mut text = |s: &str| {
            let c = cstring(s);
            let p = c.as_ptr();
            strings.push(c);
            p
        };
        match e {
            Event::Milestone(m) => event.milestone = (*m).into(),
            Event::HookStarted { name } => event.hook_name = text(name),
            Event::HookFinished { name, outcome } => {
                event.hook_name = text(name);
                event.hook_outcome = outcome.into();
            }
            Event::Dismissed(ids) => {
                event.connection_ids = ids.as_ptr();
                event.connection_ids_len = ids.len();
            }
            Event::StreamsEnding(kind) => {
                let (id, name) = kinds.describe(core, *kind);
                event.kind = id;
                event.kind_name = text(&name);
            }
            Event::StreamsCut { kind, count } => {
                let (id, name) = kinds.describe(core, *kind);
                event.kind = id;
                event.kind_name = text(&name);
                event.count = *count;
            }
            Event::Progress(p) => event.count = p.in_flight,
            _ => {}
        }
        CEvent {
            event,
            _strings: strings,
        }
    }
}

/// Calls `callback(user_data, event)` with every event of the engine's stream from now
/// on (see shutdown_event_t), once each and in the engine's order: the milestones, the
/// cancellation, hooks starting and finishing, dismissed connections, long-lived kinds
/// told to end and cut, the terminating trigger. `event` and what it points to are
/// valid only during the call. The same rules as shutdown_on_milestone(): it must not
/// block and must not call shutdown_wait() or shutdown_free(); it may call the other
/// functions; it never runs once shutdown_free() has returned (it waits for one running
/// on another thread); shutdown_wait() returns once the Done event's callbacks
/// returned.
///
/// Thread: any. Callbacks: `callback` runs on the thread that caused the event (as
/// shutdown_on_milestone() and shutdown_on_dismissed() say), or on a thread delivering
/// an earlier event of this engine at that moment.
#[no_mangle]
pub unsafe extern "C" fn shutdown_on_event(
    engine: *const Engine,
    callback: ShutdownEventFn,
    user_data: *mut c_void,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let cb = callback.ok_or(ShutdownStatus::NULL_PARAMETER)?;
        e.shared.add_event_callback(cb, user_data);
        Ok(())
    })
}
