//! The pollable notifications: the milestone and cancellation fds.

use crate::engine::*;
use crate::gate::*;
use crate::status::ShutdownStatus;
use crate::util::{arg, out, put, status};
use shutdown_core::{Phase, Shutdown};
use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

// ----- pollable notifications -------------------------------------------------------

/// A file descriptor that becomes readable when notified: an eventfd on Linux, a pipe
/// elsewhere.
pub(crate) struct Notifier {
    pub(crate) read: OwnedFd,
    #[cfg(not(target_os = "linux"))]
    pub(crate) write: OwnedFd,
}

impl Notifier {
    #[cfg(target_os = "linux")]
    pub(crate) fn new() -> std::io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        Ok(Notifier {
            read: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn new() -> std::io::Result<Self> {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for two descriptors; the result is checked.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors we own.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in &fds {
            // SAFETY: valid descriptors.
            unsafe {
                libc::fcntl(*fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(Notifier { read, write })
    }

    pub(crate) fn notify(&self) {
        #[cfg(target_os = "linux")]
        let fd = self.read.as_raw_fd();
        #[cfg(not(target_os = "linux"))]
        let fd = self.write.as_raw_fd();
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor we own. A full pipe or
        // counter just means it is readable already.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a live buffer from a non-blocking descriptor we own.
            let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), 64) };
            if n <= 0 || cfg!(target_os = "linux") {
                break;
            }
        }
    }

    pub(crate) fn raw(&self) -> c_int {
        self.read.as_raw_fd()
    }
}

pub(crate) struct Fds {
    pub(crate) milestone: Option<Notifier>,
    pub(crate) cancel: Option<Notifier>,
}

/// The latest milestone, as the queries see it.
pub(crate) fn current_milestone(core: &Shutdown) -> ShutdownMilestone {
    match core.phase() {
        Phase::Running => ShutdownMilestone::NONE,
        Phase::Draining if core.is_accepting() => ShutdownMilestone::DRAINING,
        Phase::Draining => ShutdownMilestone::QUIESCING,
        Phase::Closing => ShutdownMilestone::CLOSING,
        Phase::Done => ShutdownMilestone::DONE,
    }
}

/// Writes to `*out_fd` a file descriptor that becomes readable on every milestone
/// (draining, quiescing, closing, done) and when the host should stop listening
/// (shutdown_should_listen() turns false), for poll/epoll/kqueue/libuv loops. It is
/// level-triggered: it stays readable until shutdown_fd_clear(). Do not read, write or
/// close it; it is closed by shutdown_free(). (An eventfd on Linux, a pipe elsewhere.)
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_fd(engine: *const Engine, out_fd: *mut c_int) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { notifier_fd(engine, out_fd, |f| f.milestone.as_ref()) }
}

/// Writes the descriptor of one of the engine's notifiers to `*out_fd`.
///
/// # Safety
/// `engine` is NULL or a live handle; `out_fd` is NULL or writable.
pub(crate) unsafe fn notifier_fd(
    engine: *const Engine,
    out_fd: *mut c_int,
    pick: impl FnOnce(&Fds) -> Option<&Notifier>,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_fd)?;
        let fd = pick(&lock(&e.shared.fds))
            .map(Notifier::raw)
            .ok_or(ShutdownStatus::IO_ERROR)?;
        // SAFETY: checked for NULL.
        unsafe { put(o, fd) };
        Ok(())
    })
}

/// Makes shutdown_fd() unreadable again and writes the current milestone (the latest
/// reached, a shutdown_milestone_t; SHUTDOWN_MILESTONE_NONE while Running) to
/// `*out_milestone`. It agrees with the queries (QUIESCING once
/// shutdown_is_accepting() is false). A milestone reached after the clear makes the fd
/// readable again, so a loop that clears, then acts on what it reads, misses nothing.
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_fd_clear(
    engine: *const Engine,
    out_milestone: *mut ShutdownMilestone,
) -> ShutdownStatus {
    status(|| {
        // SAFETY: NULL or a live handle (the C contract).
        let e = unsafe { arg(engine)? };
        let o = out(out_milestone)?;
        if let Some(n) = &lock(&e.shared.fds).milestone {
            n.clear();
        }
        // Read after the clear: a milestone reached from now on makes the fd readable
        // again.
        let latest = current_milestone(&e.core);
        // SAFETY: checked for NULL.
        unsafe { put(o, latest) };
        Ok(())
    })
}

/// Writes to `*out_fd` a file descriptor that becomes readable when the cancellation
/// signal fires (see shutdown_is_cancelled()) and stays readable. Do not read, write
/// or close it; it is closed by shutdown_free().
///
/// Thread: any. Callbacks: none.
#[no_mangle]
pub unsafe extern "C" fn shutdown_cancel_fd(
    engine: *const Engine,
    out_fd: *mut c_int,
) -> ShutdownStatus {
    // SAFETY: the caller's contract, passed on.
    unsafe { notifier_fd(engine, out_fd, |f| f.cancel.as_ref()) }
}
