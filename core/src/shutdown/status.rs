//! The published status word: the phase and the quiescing and cancelled flags, read
//! without the machine's lock.

use crate::machine::Phase;

// The published status word: phase in the low bits, then flags.
pub(super) const PHASE_MASK: u8 = 0b11;
pub(super) const QUIESCING: u8 = 1 << 2;
pub(super) const CANCELLED: u8 = 1 << 3;

pub(crate) fn reached_draining(s: u8) -> bool {
    s & PHASE_MASK >= Phase::Draining as u8
}
pub(crate) fn reached_quiescing(s: u8) -> bool {
    s & QUIESCING != 0
}
pub(crate) fn reached_closing(s: u8) -> bool {
    s & PHASE_MASK >= Phase::Closing as u8
}
pub(crate) fn reached_done(s: u8) -> bool {
    s & PHASE_MASK == Phase::Done as u8
}
pub(crate) fn reached_cancelled(s: u8) -> bool {
    s & CANCELLED != 0
}
