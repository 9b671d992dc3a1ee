//! The boundary: panics caught, pointers checked, strings converted.

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::ShutdownStatus;

/// Runs `f`, turning a panic into `on_panic`.
pub(crate) fn boundary<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Runs a fallible body: `Ok(())` is `SHUTDOWN_STATUS_OK`, a panic is `SHUTDOWN_STATUS_PANIC`.
pub(crate) fn status(f: impl FnOnce() -> Result<(), ShutdownStatus>) -> ShutdownStatus {
    boundary(ShutdownStatus::PANIC, || match f() {
        Ok(()) => ShutdownStatus::OK,
        Err(s) => s,
    })
}

/// A shared reference from a handle pointer, or `NullParameter`.
pub(crate) unsafe fn arg<'a, T>(p: *const T) -> Result<&'a T, ShutdownStatus> {
    // SAFETY: the caller passes NULL or a live handle (the C contract).
    unsafe { p.as_ref() }.ok_or(ShutdownStatus::NULL_PARAMETER)
}

/// An exclusive reference from a handle pointer, or `NullParameter`.
pub(crate) unsafe fn arg_mut<'a, T>(p: *mut T) -> Result<&'a mut T, ShutdownStatus> {
    // SAFETY: the caller passes NULL or a live handle no other thread uses meanwhile
    // (the C contract).
    unsafe { p.as_mut() }.ok_or(ShutdownStatus::NULL_PARAMETER)
}

/// Checks an out-parameter for NULL.
pub(crate) fn out<T>(p: *mut T) -> Result<*mut T, ShutdownStatus> {
    if p.is_null() {
        Err(ShutdownStatus::NULL_PARAMETER)
    } else {
        Ok(p)
    }
}

/// Writes an out-parameter (already checked for NULL).
pub(crate) unsafe fn put<T>(p: *mut T, v: T) {
    // SAFETY: `p` was checked for NULL and points to writable memory (the C contract);
    // it may be uninitialized, so nothing is dropped.
    unsafe { p.write(v) }
}

/// Longest hook or guard kind name accepted (the core narrows it further).
pub(crate) const MAX_NAME: usize = 256;
/// Longest reason detail or hook message accepted.
pub(crate) const MAX_TEXT: usize = 4096;

/// A borrowed C string as `&str`: NULL, overlong (more than `max` bytes before the
/// NUL, scanning no further) and non-UTF-8 strings are refused.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, max: usize) -> Result<&'a str, ShutdownStatus> {
    if p.is_null() {
        return Err(ShutdownStatus::NULL_PARAMETER);
    }
    let mut n = 0usize;
    // SAFETY: the caller passes a NUL-terminated string; we read up to its NUL or to
    // `max + 1` bytes, whichever comes first.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
        if n > max {
            return Err(ShutdownStatus::STRING_TOO_LONG);
        }
    }
    // SAFETY: the `n` bytes before the NUL were just read.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) };
    std::str::from_utf8(bytes).map_err(|_| ShutdownStatus::INVALID_UTF8)
}

/// Copies `text` into a C buffer of `len` bytes, truncated on a character boundary,
/// always NUL-terminated (nothing is written when `buf` is NULL or `len` is 0).
pub(crate) unsafe fn write_message(buf: *mut c_char, len: usize, text: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let mut n = text.len().min(len - 1);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    // SAFETY: `buf` has room for `len` bytes (the C contract) and `n < len`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
}

/// A C `void *user_data`, handed back untouched to the callback it came with. The C
/// caller promises it may be used from the threads each callback documents.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the library never dereferences it; it only passes it back to C, on the
// threads documented for each callback (the C caller's promise).
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer. (A method, so closures capture the whole `Send` wrapper.)
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status() {
        assert_eq!(status(|| panic!("boom")), ShutdownStatus::PANIC);
        assert_eq!(boundary(7, || -> i32 { panic!("boom") }), 7);
        assert_eq!(status(|| Ok(())), ShutdownStatus::OK);
        assert_eq!(
            status(|| Err(ShutdownStatus::TIMED_OUT)),
            ShutdownStatus::TIMED_OUT
        );
    }

    #[test]
    fn strings_are_checked() {
        unsafe {
            assert_eq!(
                c_str(std::ptr::null(), 10),
                Err(ShutdownStatus::NULL_PARAMETER)
            );
            assert_eq!(c_str(c"abc".as_ptr(), 3), Ok("abc"));
            assert_eq!(
                c_str(c"abcd".as_ptr(), 3),
                Err(ShutdownStatus::STRING_TOO_LONG)
            );
            assert_eq!(
                c_str(c"\xff".as_ptr(), 3),
                Err(ShutdownStatus::INVALID_UTF8)
            );
        }
    }

    #[test]
    fn messages_are_truncated_on_a_char_boundary() {
        let mut buf = [1 as c_char; 4];
        unsafe { write_message(buf.as_mut_ptr(), buf.len(), "a\u{e9}b") };
        // "a" + "é" (2 bytes) fits in 3 bytes + NUL.
        assert_eq!(buf.map(|b| b as u8), [b'a', 0xc3, 0xa9, 0]);
        unsafe { write_message(buf.as_mut_ptr(), 3, "a\u{e9}b") };
        assert_eq!(
            buf[..2].iter().map(|&b| b as u8).collect::<Vec<_>>(),
            [b'a', 0]
        );
    }
}
