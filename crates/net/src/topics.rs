//! Topics: named sets of connections that one publish reaches (chat rooms, feeds, lobbies).
//!
//! A topic exists while it has subscribers. Each keeps its subscribers in a vector (a publish
//! walks it in order) and their places in a map (unsubscribing is a swap-remove); each
//! connection keeps the indices of its topics, so leaving all of them when it ends costs one
//! step per topic. Costs: `subscribe` and `unsubscribe` are a hash lookup of the name plus
//! O(1); a connection's end is O(its topics); `publish` is O(subscribers) with one frame built
//! per message and one compression per parameter set (see `tidewire_proto::Prepared`).

use std::collections::HashMap;

use crate::slab::ConnId;

struct Topic {
    name: Box<[u8]>,
    subscribers: Vec<ConnId>,
    places: HashMap<ConnId, usize>,
}

#[derive(Default)]
pub(crate) struct Topics {
    by_name: HashMap<Box<[u8]>, u32>,
    topics: Vec<Option<Topic>>,
    free: Vec<u32>,
}

impl Topics {
    /// Adds `conn` to `name`; returns the topic's index when it was not subscribed yet (the
    /// caller records it on the connection).
    pub(crate) fn subscribe(&mut self, conn: ConnId, name: &[u8]) -> Option<u32> {
        let index = match self.by_name.get(name) {
            Some(&index) => index,
            None => {
                let topic = Topic {
                    name: name.into(),
                    subscribers: Vec::new(),
                    places: HashMap::new(),
                };
                let index = match self.free.pop() {
                    Some(index) => {
                        self.topics[index as usize] = Some(topic);
                        index
                    }
                    None => {
                        self.topics.push(Some(topic));
                        (self.topics.len() - 1) as u32
                    }
                };
                self.by_name.insert(name.into(), index);
                index
            }
        };
        let topic = self.topics[index as usize].as_mut()?;
        if topic.places.contains_key(&conn) {
            return None;
        }
        topic.places.insert(conn, topic.subscribers.len());
        topic.subscribers.push(conn);
        Some(index)
    }

    /// The index of the topic `name`, if it has subscribers.
    pub(crate) fn find(&self, name: &[u8]) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// Removes `conn` from the topic at `index`; false when it was not there. A topic left
    /// without subscribers is forgotten.
    pub(crate) fn remove(&mut self, conn: ConnId, index: u32) -> bool {
        let Some(topic) = self.topics.get_mut(index as usize).and_then(Option::as_mut) else {
            return false;
        };
        let Some(place) = topic.places.remove(&conn) else {
            return false;
        };
        topic.subscribers.swap_remove(place);
        if let Some(&moved) = topic.subscribers.get(place) {
            topic.places.insert(moved, place);
        }
        if topic.subscribers.is_empty() {
            if let Some(topic) = self.topics[index as usize].take() {
                self.by_name.remove(&topic.name);
            }
            self.free.push(index);
        }
        true
    }

    pub(crate) fn subscriber_count(&self, name: &[u8]) -> usize {
        self.find(name)
            .and_then(|i| self.topics[i as usize].as_ref())
            .map_or(0, |t| t.subscribers.len())
    }

    pub(crate) fn name(&self, index: u32) -> Option<&[u8]> {
        self.topics
            .get(index as usize)
            .and_then(Option::as_ref)
            .map(|t| &*t.name)
    }

    /// Lends the subscriber list of the topic at `index` out (a publish walks it while it
    /// changes connections); give it back with [`Topics::put_back`]. Nothing may subscribe
    /// to or leave this topic in between.
    pub(crate) fn take_subscribers(&mut self, index: u32) -> Vec<ConnId> {
        self.topics
            .get_mut(index as usize)
            .and_then(Option::as_mut)
            .map(|t| std::mem::take(&mut t.subscribers))
            .unwrap_or_default()
    }

    pub(crate) fn put_back(&mut self, index: u32, subscribers: Vec<ConnId>) {
        if let Some(t) = self.topics.get_mut(index as usize).and_then(Option::as_mut) {
            t.subscribers = subscribers;
        }
    }

    /// How many topics have subscribers.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_come_and_go_and_empty_topics_are_forgotten() {
        let mut t = Topics::default();
        let (a, b, c) = (ConnId(1), ConnId(2), ConnId(3));
        let room = t.subscribe(a, b"room").unwrap();
        assert_eq!(t.subscribe(a, b"room"), None, "already subscribed");
        assert_eq!(t.subscribe(b, b"room"), Some(room));
        assert_eq!(t.subscribe(c, b"room"), Some(room));
        assert_eq!(t.subscriber_count(b"room"), 3);
        assert!(t.remove(a, room));
        assert!(!t.remove(a, room));
        let subs = t.take_subscribers(room);
        assert_eq!(subs, vec![c, b], "swap-removed");
        t.put_back(room, subs);
        assert!(t.remove(b, room));
        assert!(t.remove(c, room));
        assert_eq!(t.len(), 0);
        assert_eq!(t.find(b"room"), None);
        // The freed slot is reused for the next new topic.
        assert_eq!(t.subscribe(a, b"other"), Some(room));
        assert_eq!(t.name(room), Some(&b"other"[..]));
    }

    #[test]
    fn places_stay_right_through_many_removals() {
        let mut t = Topics::default();
        let ids: Vec<ConnId> = (1..=100).map(ConnId).collect();
        let mut index = 0;
        for &id in &ids {
            index = t.subscribe(id, b"feed").unwrap_or(index);
        }
        for &id in ids.iter().step_by(3) {
            assert!(t.remove(id, index));
        }
        let subs = t.take_subscribers(index);
        let mut left: Vec<u64> = subs.iter().map(|c| c.0).collect();
        t.put_back(index, subs);
        left.sort_unstable();
        let expected: Vec<u64> = (1..=100).filter(|i| (i - 1) % 3 != 0).collect();
        assert_eq!(left, expected);
        for id in expected {
            assert!(t.remove(ConnId(id), index));
        }
        assert_eq!(t.len(), 0);
    }
}
