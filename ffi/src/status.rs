//! Status codes, their descriptions, and the library version.

use std::ffi::c_char;

use crate::util::boundary;

/// A static C string.
macro_rules! cstr {
    ($s:literal) => {
        concat!($s, "\0").as_ptr().cast::<c_char>()
    };
}

/// What a fallible call returns. `SHUTDOWN_STATUS_OK` is 0; every other value is an
/// error, described by shutdown_status_str().
/// cbindgen:rename-all=prefix:SHUTDOWN_STATUS_
#[repr(u32)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownStatus {
    /// Success.
    OK = 0,
    /// A required pointer argument was NULL.
    NULL_PARAMETER = 1,
    /// An argument is out of range (an unknown enum value, a hook timeout longer than
    /// close_timeout, an index past the end).
    INVALID_ARGUMENT = 2,
    /// A string is not valid UTF-8.
    INVALID_UTF8 = 3,
    /// A string is longer than the documented maximum.
    STRING_TOO_LONG = 4,
    /// A name is empty or too long for its use (hook names: 1 to 256 bytes; guard
    /// kinds: 1 to 64 bytes).
    INVALID_NAME = 5,
    /// The configuration was refused (shutdown_config_builder_validate() says why).
    INVALID_CONFIG = 6,
    /// Admission is closed: the guard was refused (the quiesce stage or later).
    ADMISSION_CLOSED = 7,
    /// Cleanup hooks have already started: a hook registered now would never run.
    TOO_LATE = 8,
    /// More distinct guard kinds than the engine can label (64).
    TOO_MANY_KINDS = 9,
    /// The shutdown is not Done yet: no report, no exit code.
    NOT_DONE = 10,
    /// A wait ended at its timeout.
    TIMED_OUT = 11,
    /// shutdown_advance() on an engine without a manual clock.
    NOT_MANUAL_CLOCK = 12,
    /// The report has no such entry (a milestone never reached).
    NOT_FOUND = 13,
    /// The operating system refused (a thread, an eventfd, signal handlers).
    IO_ERROR = 14,
    /// A Rust panic was caught at the boundary (a bug in libshutdown).
    PANIC = 15,
}

/// A static, NUL-terminated English description of a status code (never NULL; unknown
/// codes give "unknown status").
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub extern "C" fn shutdown_status_str(status: u32) -> *const c_char {
    boundary(cstr!("panic"), || match status {
        0 => cstr!("ok"),
        1 => cstr!("a required pointer argument was NULL"),
        2 => cstr!("an argument is out of range"),
        3 => cstr!("a string is not valid UTF-8"),
        4 => cstr!("a string is too long"),
        5 => cstr!("a name is empty or too long"),
        6 => cstr!("invalid configuration"),
        7 => cstr!("admission is closed"),
        8 => cstr!("cleanup hooks have already started"),
        9 => cstr!("too many guard kinds"),
        10 => cstr!("the shutdown is not done"),
        11 => cstr!("timed out"),
        12 => cstr!("the engine does not run on a manual clock"),
        13 => cstr!("not found"),
        14 => cstr!("the operating system refused"),
        15 => cstr!("a panic was caught in libshutdown"),
        _ => cstr!("unknown status"),
    })
}

/// The library version ("0.1.0"), a static NUL-terminated string.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub extern "C" fn shutdown_version() -> *const c_char {
    boundary(cstr!("unknown"), || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}
