//! Ordered delivery of what the machine asks the host to see or do: milestone
//! callbacks, hook calls and connection dismissals.
//!
//! Steps are queued in the machine's order, under the machine's lock, and delivered
//! outside it by one thread at a time: whichever thread finds the queue idle delivers
//! until it is empty, including what other threads (or its own callbacks, reentrantly)
//! queued meanwhile. So a callback that advances the clock or releases the last guard
//! never sees later milestones nested inside an earlier one, and a driver thread's
//! Closing is never overtaken by another thread's Done.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use std::time::Duration;

use crate::event::Event;
use crate::machine::HookId;

pub(crate) use crate::event::EventCallback;

/// One step for the host.
pub(crate) enum Delivery {
    /// Call these callbacks (the ones registered when it happened) with this event.
    Event(Duration, Event, Vec<EventCallback>),
    /// Call this hook, if the machine still says it is due.
    StartHook(HookId),
}

#[derive(Default)]
struct Queue {
    steps: VecDeque<Delivery>,
    /// A thread is delivering: it will also deliver what is queued now.
    busy: bool,
}

/// The queue; see the module documentation.
#[derive(Default)]
pub(crate) struct Deliveries {
    queue: Mutex<Queue>,
}

impl Deliveries {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a step. Call with the machine's lock held, so the queue's order is the
    /// machine's order.
    pub(crate) fn push(&self, step: Delivery) {
        self.lock().steps.push_back(step);
    }

    /// Delivers every queued step through `deliver`, unless another thread (or an
    /// outer frame of this one) is already delivering, in which case that one will.
    /// Never called with the machine's lock held: `deliver` runs host code.
    pub(crate) fn deliver_all(&self, mut deliver: impl FnMut(Delivery)) {
        {
            let mut q = self.lock();
            // Claimed only with something to deliver: a thread passing by with nothing
            // queued (a driver's tick) must not take the next milestones from the
            // thread that causes them (the C test_lifecycle saw them arrive late, on
            // the driver thread, under valgrind).
            if q.busy || q.steps.is_empty() {
                return;
            }
            q.busy = true;
        }
        loop {
            let step = {
                let mut q = self.lock();
                match q.steps.pop_front() {
                    Some(step) => step,
                    None => {
                        q.busy = false;
                        return;
                    }
                }
            };
            // A panic here would leave `busy` set and stall delivery for good; the
            // callers catch panics from host code, so none reaches this frame.
            deliver(step);
        }
    }
}
