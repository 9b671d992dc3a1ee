//! The tables of what JavaScript holds by slot number: guards, requests.

use libshutdown::Guard;

/// What JavaScript holds by slot number (guards, requests). Only the JavaScript thread
/// touches it.
pub(crate) struct Slots<T> {
    pub(crate) guards: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            guards: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn store(&mut self, g: T) -> i32 {
        match self.free.pop() {
            Some(i) => {
                self.guards[i as usize] = Some(g);
                i as i32
            }
            None => {
                self.guards.push(Some(g));
                (self.guards.len() - 1) as i32
            }
        }
    }

    pub(crate) fn take(&mut self, slot: u32) -> Option<T> {
        let g = self.guards.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some(g)
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.guards.get_mut(slot as usize)?.as_mut()
    }
}

pub(crate) type Slab = Slots<Guard>;
