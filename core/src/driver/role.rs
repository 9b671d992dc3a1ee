//! The driver role: which one driver may tick the machine, as one atomic word.
//!
//! Layout of the `u64`: the holder in the low 2 bits (none, a host's async driver, a
//! host's blocking driver, or the engine's own thread), and above them a claim
//! counter bumped by every claim. A [`Ticket`] is the whole word its claim installed,
//! so a driver that lost the role can never mistake a later claim for its own (the
//! engine's thread is taken over, the host driver ends, a new engine thread starts:
//! the first thread's ticket no longer matches).
//!
//! Hosts outrank the engine: a host driver takes the role from the engine's thread,
//! which notices on its next step and ends. The engine only claims a free role.

#[cfg(feature = "loom")]
use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(feature = "loom"))]
use std::sync::atomic::{AtomicU64, Ordering};

const WHO_MASK: u64 = 0b11;
const CLAIM_ONE: u64 = 1 << 2;

/// Who holds the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Who {
    /// A host's async driver (`Shutdown::run`).
    HostAsync = 1,
    /// A host's blocking driver (`run_blocking`, `spawn_driver`).
    HostBlocking = 2,
    /// The engine's own thread, started when a drain had no driver.
    Engine = 3,
}

impl Who {
    fn from_bits(w: u64) -> Option<Who> {
        match w & WHO_MASK {
            1 => Some(Who::HostAsync),
            2 => Some(Who::HostBlocking),
            3 => Some(Who::Engine),
            _ => None,
        }
    }
}

/// Proof of one claim of the role; compare with [`Role::holds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

impl Ticket {
    /// Who claimed.
    pub fn who(self) -> Who {
        Who::from_bits(self.0).expect("a ticket always names a holder")
    }
}

/// A claim taken from the engine's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Took {
    /// The role was free.
    Free,
    /// The engine's thread held it; it ends on its next step.
    FromEngine,
}

/// The role word.
#[derive(Debug)]
pub struct Role {
    word: AtomicU64,
}

impl Default for Role {
    fn default() -> Self {
        Role::new()
    }
}

impl Role {
    /// A free role.
    pub fn new() -> Self {
        Role {
            word: AtomicU64::new(0),
        }
    }

    /// Who holds the role now.
    pub fn holder(&self) -> Option<Who> {
        Who::from_bits(self.word.load(Ordering::Acquire))
    }

    /// A host driver's claim: succeeds when the role is free or the engine's thread
    /// holds it; fails while another host driver holds it.
    pub fn claim_host(&self, who: Who) -> Option<(Ticket, Took)> {
        debug_assert_ne!(who, Who::Engine);
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let took = match Who::from_bits(cur) {
                None => Took::Free,
                Some(Who::Engine) => Took::FromEngine,
                Some(_) => return None,
            };
            let new = ((cur & !WHO_MASK).wrapping_add(CLAIM_ONE)) | who as u64;
            match self
                .word
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((Ticket(new), took)),
                Err(now) => cur = now,
            }
        }
    }

    /// The engine's claim: only a free role.
    pub fn claim_engine(&self) -> Option<Ticket> {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            if Who::from_bits(cur).is_some() {
                return None;
            }
            let new = ((cur & !WHO_MASK).wrapping_add(CLAIM_ONE)) | Who::Engine as u64;
            match self
                .word
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(Ticket(new)),
                Err(now) => cur = now,
            }
        }
    }

    /// Whether `ticket`'s claim still holds the role.
    pub fn holds(&self, ticket: Ticket) -> bool {
        self.word.load(Ordering::Acquire) == ticket.0
    }

    /// Gives the role back, if `ticket` still holds it; `false` when it had already
    /// been taken over.
    pub fn release(&self, ticket: Ticket) -> bool {
        self.word
            .compare_exchange(
                ticket.0,
                ticket.0 & !WHO_MASK,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

/// Whether a machine step must wake the driver: its next deadline moved (sooner, later
/// or away), or the shutdown reached Done, after which the driver must return even if
/// it was parked with no deadline at all. Waking on every step instead would make the
/// driver wake itself in a loop.
pub fn step_wakes_driver(
    deadline_before: Option<std::time::Instant>,
    deadline_after: Option<std::time::Instant>,
    reached_done: bool,
) -> bool {
    reached_done || deadline_before != deadline_after
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn hosts_outrank_the_engine_and_stale_tickets_never_match() {
        let role = Role::new();
        let engine = role.claim_engine().unwrap();
        assert_eq!(role.holder(), Some(Who::Engine));
        assert!(role.claim_engine().is_none());
        let (host, took) = role.claim_host(Who::HostAsync).unwrap();
        assert_eq!(took, Took::FromEngine);
        assert!(!role.holds(engine));
        assert!(role.claim_host(Who::HostBlocking).is_none());
        assert!(!role.release(engine), "a taken-over claim releases nothing");
        assert!(role.release(host));
        assert_eq!(role.holder(), None);
        let engine2 = role.claim_engine().unwrap();
        assert!(role.holds(engine2));
        assert!(!role.holds(engine), "the first engine claim stays stale");
        assert_eq!(engine2.who(), Who::Engine);
    }
}
