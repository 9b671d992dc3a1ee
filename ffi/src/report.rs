//! The final report: accessors and the core's JSON.

use std::ffi::{c_char, c_int, CString};

use shutdown_core::{ForceCause, HookOutcome, Reason, Report};

use crate::engine::{Engine, ShutdownMilestone, ShutdownReasonKind};
use crate::status::ShutdownStatus;
use crate::util::{arg, boundary, out, put, status};

/// Why the shutdown was not clean, if it was not.
/// cbindgen:rename-all=prefix:SHUTDOWN_FORCED_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownForced {
    /// Not forced.
    NONE = 0,
    /// drain_timeout passed with work in flight.
    DRAIN_TIMEOUT = 1,
    /// A repeated trigger skipped the rest of the drain.
    ESCALATION = 2,
    /// A repeated trigger ended everything at once.
    TERMINATED = 3,
}

/// How one cleanup hook ended.
/// cbindgen:rename-all=prefix:SHUTDOWN_HOOK_OUTCOME_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownHookOutcome {
    /// Succeeded.
    OK = 0,
    /// Returned a failure.
    FAILED = 1,
    /// Panicked (Rust hooks) or threw (other languages).
    PANICKED = 2,
    /// Did not finish within its timeout; it was abandoned.
    TIMED_OUT = 3,
    /// Never started: the close budget ran out, or the process was terminated.
    SKIPPED = 4,
    /// Still running when a repeated trigger ended the Closing phase; it was abandoned.
    CANCELLED = 5,
}

impl From<&HookOutcome> for ShutdownHookOutcome {
    fn from(o: &HookOutcome) -> Self {
        match o {
            HookOutcome::Ok => ShutdownHookOutcome::OK,
            HookOutcome::Failed(_) => ShutdownHookOutcome::FAILED,
            HookOutcome::Panicked(_) => ShutdownHookOutcome::PANICKED,
            HookOutcome::TimedOut => ShutdownHookOutcome::TIMED_OUT,
            HookOutcome::Skipped => ShutdownHookOutcome::SKIPPED,
            HookOutcome::Cancelled => ShutdownHookOutcome::CANCELLED,
        }
    }
}

/// One cleanup hook's result, as shutdown_report_hook() writes it. The strings belong
/// to the report and live until shutdown_report_free().
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ShutdownHookReport {
    /// The name given at registration.
    pub name: *const c_char,
    /// Its order group.
    pub order: i32,
    /// A shutdown_hook_outcome_t.
    pub outcome: ShutdownHookOutcome,
    /// The failure or panic message; NULL for the other outcomes.
    pub message: *const c_char,
    /// How long it ran, in microseconds (0 when skipped).
    pub duration_us: u64,
}

/// The final report of a shutdown (a snapshot; it owns its strings). Freed by
/// shutdown_report_free().
pub struct ReportHandle {
    report: Report,
    json: CString,
    detail: CString,
    hooks: Vec<(CString, Option<CString>)>,
    by_kind: Vec<(CString, u64)>,
}

pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

fn us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl ReportHandle {
    fn new(report: Report) -> Self {
        let detail = match &report.reason {
            Reason::Signal(s) | Reason::Manual(s) | Reason::Fatal(s) => cstring(s),
        };
        let hooks = report
            .hooks
            .iter()
            .map(|h| {
                let msg = match &h.outcome {
                    HookOutcome::Failed(m) | HookOutcome::Panicked(m) => Some(cstring(m)),
                    _ => None,
                };
                (cstring(&h.name), msg)
            })
            .collect();
        let by_kind = report
            .aborted_by_kind
            .iter()
            .map(|(k, n)| (cstring(k), *n))
            .collect();
        ReportHandle {
            json: cstring(&report.to_json()),
            detail,
            hooks,
            by_kind,
            report,
        }
    }
}

/// Writes a new report to `*out_report` once the shutdown is Done
/// (SHUTDOWN_STATUS_NOT_DONE before). Free it with shutdown_report_free().
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report(
    engine: *const Engine,
    out_report: *mut *mut ReportHandle,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_report)?;
        let r = e.core.report().ok_or(ShutdownStatus::NOT_DONE)?;
        let handle = Box::into_raw(Box::new(ReportHandle::new(r)));
        // SAFETY: checked for NULL.
        unsafe { put(o, handle) };
        Ok(())
    })
}

/// Frees a report and its strings. NULL does nothing.
///
/// Thread: any, once. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_free(report: *mut ReportHandle) {
    boundary((), || {
        if !report.is_null() {
            // SAFETY: a report from this library, freed once (the C contract).
            drop(unsafe { Box::from_raw(report) });
        }
    })
}

/// Reads one value of a live report into a checked out-parameter.
fn get<T>(
    report: *const ReportHandle,
    out_value: *mut T,
    f: impl FnOnce(&ReportHandle) -> T,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live report (the C contract).
        let r = unsafe { arg(report)? };
        let o = out(out_value)?;
        let v = f(r);
        // SAFETY: checked for NULL.
        unsafe { put(o, v) };
        Ok(())
    })
}

/// The report as the core's JSON object (the same in every language): a
/// NUL-terminated string owned by the report, valid until shutdown_report_free().
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_json(
    report: *const ReportHandle,
    out_value: *mut *const c_char,
) -> ShutdownStatus {
    get(report, out_value, |r| r.json.as_ptr())
}

/// 0 when clean, the configured forced exit code otherwise.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_exit_code(
    report: *const ReportHandle,
    out_value: *mut c_int,
) -> ShutdownStatus {
    get(report, out_value, |r| r.report.exit_code)
}

/// What kind of reason started the shutdown (a shutdown_reason_kind_t).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_reason_kind(
    report: *const ReportHandle,
    out_value: *mut ShutdownReasonKind,
) -> ShutdownStatus {
    get(report, out_value, |r| match r.report.reason {
        Reason::Manual(_) => ShutdownReasonKind::MANUAL,
        Reason::Signal(_) => ShutdownReasonKind::SIGNAL,
        Reason::Fatal(_) => ShutdownReasonKind::FATAL,
    })
}

/// The reason's detail ("SIGTERM", "deploy"), a string owned by the report.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_reason_detail(
    report: *const ReportHandle,
    out_value: *mut *const c_char,
) -> ShutdownStatus {
    get(report, out_value, |r| r.detail.as_ptr())
}

/// How many triggers arrived (repeats escalate), duplicates not counted.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_triggers(
    report: *const ReportHandle,
    out_value: *mut u32,
) -> ShutdownStatus {
    get(report, out_value, |r| r.report.triggers)
}

/// How many signal triggers were taken for a duplicate delivery of the previous one
/// (the same signal within the same-signal window): not counted in triggers.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_duplicate_triggers(
    report: *const ReportHandle,
    out_value: *mut u32,
) -> ShutdownStatus {
    get(report, out_value, |r| r.report.duplicate_triggers)
}

/// Why it was not clean (a shutdown_forced_t; SHUTDOWN_FORCED_NONE when nothing was
/// forced, even if a hook failed).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_forced(
    report: *const ReportHandle,
    out_value: *mut ShutdownForced,
) -> ShutdownStatus {
    get(report, out_value, |r| match r.report.forced {
        None => ShutdownForced::NONE,
        Some(ForceCause::DrainTimeout) => ShutdownForced::DRAIN_TIMEOUT,
        Some(ForceCause::Escalation) => ShutdownForced::ESCALATION,
        Some(ForceCause::Terminated) => ShutdownForced::TERMINATED,
    })
}

/// Guards in flight when the drain started.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_in_flight_at_trigger(
    report: *const ReportHandle,
    out_value: *mut u64,
) -> ShutdownStatus {
    get(report, out_value, |r| r.report.in_flight_at_trigger)
}

/// Guards still in flight when the drain was cut short.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_aborted(
    report: *const ReportHandle,
    out_value: *mut u64,
) -> ShutdownStatus {
    get(report, out_value, |r| r.report.aborted)
}

/// How many guard kinds shutdown_report_aborted_kind() lists.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_aborted_kind_count(
    report: *const ReportHandle,
    out_value: *mut usize,
) -> ShutdownStatus {
    get(report, out_value, |r| r.by_kind.len())
}

/// How many hooks shutdown_report_hook() lists (in registration order).
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_hook_count(
    report: *const ReportHandle,
    out_value: *mut usize,
) -> ShutdownStatus {
    get(report, out_value, |r| r.hooks.len())
}

/// Time from the first trigger to Done, in microseconds.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_total_us(
    report: *const ReportHandle,
    out_value: *mut u64,
) -> ShutdownStatus {
    get(report, out_value, |r| us(r.report.total()))
}

/// Writes entry `index` of the aborted guards by kind: the kind's name (owned by the
/// report) and how many guards of it were aborted. SHUTDOWN_STATUS_INVALID_ARGUMENT
/// past the end.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_aborted_kind(
    report: *const ReportHandle,
    index: usize,
    out_name: *mut *const c_char,
    out_count: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live report (the C contract).
        let r = unsafe { arg(report)? };
        let (on, oc) = (out(out_name)?, out(out_count)?);
        let (name, n) = r
            .by_kind
            .get(index)
            .ok_or(ShutdownStatus::INVALID_ARGUMENT)?;
        // SAFETY: checked for NULL.
        unsafe {
            put(on, name.as_ptr());
            put(oc, *n);
        }
        Ok(())
    })
}

/// Writes when `milestone` (a shutdown_milestone_t) was reached, in microseconds since
/// the first trigger. SHUTDOWN_STATUS_NOT_FOUND if it was not reached,
/// SHUTDOWN_STATUS_INVALID_ARGUMENT for SHUTDOWN_MILESTONE_NONE or an unknown value.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_milestone_us(
    report: *const ReportHandle,
    milestone: u32,
    out_us: *mut u64,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live report (the C contract).
        let r = unsafe { arg(report)? };
        let o = out(out_us)?;
        let m = ShutdownMilestone::from_u32(milestone)
            .and_then(ShutdownMilestone::to_core)
            .ok_or(ShutdownStatus::INVALID_ARGUMENT)?;
        let at = r.report.reached(m).ok_or(ShutdownStatus::NOT_FOUND)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, us(at)) };
        Ok(())
    })
}

/// Writes hook `index` (registration order) to `*out_hook`; its strings are owned by
/// the report. SHUTDOWN_STATUS_INVALID_ARGUMENT past the end.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_report_hook(
    report: *const ReportHandle,
    index: usize,
    out_hook: *mut ShutdownHookReport,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live report (the C contract).
        let r = unsafe { arg(report)? };
        let o = out(out_hook)?;
        let h = r
            .report
            .hooks
            .get(index)
            .ok_or(ShutdownStatus::INVALID_ARGUMENT)?;
        let (name, msg) = &r.hooks[index];
        let outcome = ShutdownHookOutcome::from(&h.outcome);
        let v = ShutdownHookReport {
            name: name.as_ptr(),
            order: h.order,
            outcome,
            message: msg.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            duration_us: us(h.duration),
        };
        // SAFETY: checked for NULL.
        unsafe { put(o, v) };
        Ok(())
    })
}
