//! The C kind ids of an engine, and the long-lived kinds' queries.

use crate::engine::*;
use crate::gate::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, c_str, out, put, status, MAX_NAME};
use shutdown_core::{Kind, Shutdown, MAX_KINDS};
use std::ffi::c_char;
use std::sync::{Mutex, OnceLock};

/// The C kind ids of one engine (shutdown_kind()), shared with the handles that may
/// outlive it (connections).
pub(crate) struct KindIds {
    pub(crate) kinds: Mutex<Vec<Kind>>,
    pub(crate) slots: [OnceLock<Kind>; MAX_KINDS],
}

impl KindIds {
    pub(crate) fn new() -> Self {
        KindIds {
            kinds: Mutex::new(Vec::new()),
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Interns a guard kind name in `core`; the index is the C `kind` id.
    pub(crate) fn intern(&self, core: &Shutdown, name: &str) -> Result<u32, ShutdownStatus> {
        let kind = core.kind(name).map_err(|e| match e {
            shutdown_core::KindError::TooMany => ShutdownStatus::TOO_MANY_KINDS,
            _ => ShutdownStatus::INVALID_NAME,
        })?;
        self.id_of(kind)
    }

    /// The C id and the name of a kind of `core` (an event's), giving it an id if it
    /// has none yet (0 if it cannot have one).
    pub(crate) fn describe(&self, core: &Shutdown, kind: Kind) -> (u32, String) {
        (self.id_of(kind).unwrap_or(0), core.kind_name(kind))
    }

    /// The C id of a kind of the core, given one if it has none yet.
    pub(crate) fn id_of(&self, kind: Kind) -> Result<u32, ShutdownStatus> {
        let mut kinds = lock(&self.kinds);
        let idx = match kinds.iter().position(|k| *k == kind) {
            Some(i) => i,
            None => {
                kinds.push(kind);
                kinds.len() - 1
            }
        };
        let slot = self.slots.get(idx).ok_or(ShutdownStatus::TOO_MANY_KINDS)?;
        let _ = slot.set(kind);
        Ok(idx as u32)
    }

    /// The kind behind a C `kind` id, `None` for an id never handed out.
    pub(crate) fn get(&self, id: u32) -> Option<Kind> {
        self.slots.get(id as usize)?.get().copied()
    }

    /// A kind by name, for the functions that take one (interned, so that it has an
    /// id as shutdown_kind() would give).
    pub(crate) fn by_name(&self, core: &Shutdown, name: &str) -> Result<Kind, ShutdownStatus> {
        let id = self.intern(core, name)?;
        self.get(id).ok_or(ShutdownStatus::INVALID_ARGUMENT)
    }
}

/// Writes to `*out_ending` whether the host was told to end its long-lived work of
/// kind `kind_name` (its policy's milestone was reached: event 9; see
/// shutdown_config_builder_set_long_lived()). False for a kind with no policy.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_ending(
    engine: *const Engine,
    kind_name: *const c_char,
    out_ending: *mut bool,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { kind_query(engine, kind_name, out_ending, Shutdown::is_ending) }
}

/// Writes to `*out_cut` whether the grace of long-lived kind `kind_name` ran out (event
/// 10): what is left of it is cut. False for a kind with no policy.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_is_cut(
    engine: *const Engine,
    kind_name: *const c_char,
    out_cut: *mut bool,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { kind_query(engine, kind_name, out_cut, Shutdown::is_cut) }
}

/// Answers a query of the core about one kind, by name.
///
/// # Safety
/// `engine` is NULL or a live handle; `kind_name` NULL or a C string; `o` NULL or
/// writable.
pub(crate) unsafe fn kind_query(
    engine: *const Engine,
    kind_name: *const c_char,
    o: *mut bool,
    query: fn(&Shutdown, Kind) -> bool,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle / a C string (the C contract).
        let e = unsafe { arg(engine)? };
        let name = unsafe { c_str(kind_name, MAX_NAME)? };
        let o = out(o)?;
        let kind = e.kinds.by_name(&e.core, name)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, query(&e.core, kind)) };
        Ok(())
    })
}
