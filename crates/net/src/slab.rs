//! Generation-checked slot storage for connections and listeners.
//!
//! An id is `generation << 32 | index`. When a slot is freed its generation is bumped, so an id
//! kept by the application after its connection ended names nothing and is refused with
//! [`crate::Error::StaleId`] instead of reaching whichever connection reuses the slot.
//! Generations start at 1, so the id 0 is never valid (handy for C callers).

use std::fmt;

/// A connection, valid until its `Closed` (or terminal `Error`) event has been delivered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A listening socket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub u64);

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}#{})", self.0 & 0xffff_ffff, self.0 >> 32)
    }
}

impl fmt::Debug for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListenerId({}#{})", self.0 & 0xffff_ffff, self.0 >> 32)
    }
}

pub(crate) fn split(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

pub(crate) fn join(index: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | index as u64
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A vector of slots with a free list. Indices are stable while a value lives.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` and returns its id. `None` once 2^32 slots exist.
    pub(crate) fn insert(&mut self, value: T) -> Option<u64> {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                if self.slots.len() >= u32::MAX as usize {
                    return None;
                }
                self.slots.push(Slot {
                    generation: 1,
                    value: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.value = Some(value);
        self.len += 1;
        Some(join(index, slot.generation))
    }

    /// The id of whatever lives at `index` now.
    pub(crate) fn id_at(&self, index: usize) -> Option<u64> {
        let slot = self.slots.get(index)?;
        slot.value.as_ref()?;
        Some(join(index, slot.generation))
    }

    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        let (index, generation) = split(id);
        let slot = self.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let (index, generation) = split(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
        let (index, generation) = split(id);
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        // Skip 0 on wrap-around so that 0 stays an invalid id.
        slot.generation = slot.generation.checked_add(1).unwrap_or(1);
        self.free.push(index as u32);
        self.len -= 1;
        Some(value)
    }

    /// Ids of every live value (a snapshot: the caller may remove while walking it).
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| join(i, s.generation))
            .collect()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let generation = s.generation;
            s.value.as_mut().map(|v| (join(i, generation), v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_id_is_stale_even_when_slot_is_reused() {
        let mut slab = Slab::new();
        let a = slab.insert("a").unwrap_or(0);
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b").unwrap_or(0);
        assert_eq!(split(a).0, split(b).0, "slot reused");
        assert_ne!(a, b);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn id_zero_and_out_of_range_ids_name_nothing() {
        let mut slab = Slab::new();
        let _ = slab.insert(1);
        assert_eq!(slab.get(0), None);
        assert_eq!(slab.get(u64::MAX), None);
        assert_eq!(slab.get_mut(join(7, 1)), None);
    }
}
