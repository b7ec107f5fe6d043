//! A small bounded CLOCK cache (second-chance LRU approximation).
//!
//! Used for unwrapped barrier keys and unsealed material keys. Values are dropped as soon as they
//! are evicted or removed; for keys that is an `Arc<Jwk>`, whose secret bytes zeroize when the
//! last reference goes away.

use std::collections::HashMap;
use std::hash::Hash;

struct Slot<K, V> {
    key: K,
    value: V,
    referenced: bool,
}

/// Fixed-capacity map evicting with the CLOCK algorithm: a hit sets the slot's reference bit,
/// eviction sweeps the hand past referenced slots (clearing their bit) and evicts the first
/// unreferenced one. `get`, `insert` and `remove` are O(1) amortised.
pub(crate) struct Clock<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    index: HashMap<K, usize>,
    free: Vec<usize>,
    hand: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Copy, V> Clock<K, V> {
    /// An empty cache holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slots: Vec::new(),
            index: HashMap::new(),
            free: Vec::new(),
            hand: 0,
            capacity,
        }
    }

    /// Most entries held at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held now.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// The value for `key`, marking it recently used.
    pub(crate) fn get(&mut self, key: &K) -> Option<&V> {
        let i = *self.index.get(key)?;
        let slot = self.slots.get_mut(i)?.as_mut()?;
        slot.referenced = true;
        Some(&slot.value)
    }

    /// Inserts or replaces; returns the entry evicted to make room, if any.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(&i) = self.index.get(&key)
            && let Some(Some(slot)) = self.slots.get_mut(i)
        {
            slot.value = value;
            slot.referenced = true;
            return None;
        }
        let fresh = Slot {
            key,
            value,
            referenced: false,
        };
        if let Some(i) = self.free.pop() {
            if let Some(s) = self.slots.get_mut(i) {
                *s = Some(fresh);
                self.index.insert(key, i);
            }
            return None;
        }
        if self.slots.len() < self.capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push(Some(fresh));
            return None;
        }
        // Full: sweep. At most two passes: the first clears every reference bit.
        for _ in 0..2 * self.slots.len() {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            match slot {
                Some(s) if s.referenced => s.referenced = false,
                Some(_) => {
                    let old = slot.replace(fresh);
                    self.index.insert(key, i);
                    return old.map(|o| {
                        self.index.remove(&o.key);
                        (o.key, o.value)
                    });
                }
                None => {
                    *slot = Some(fresh);
                    self.index.insert(key, i);
                    return None;
                }
            }
        }
        None
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.index.remove(key)?;
        let old = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        Some(old.value)
    }

    /// Keys whose entry matches `pred`.
    pub(crate) fn keys_where(&self, mut pred: impl FnMut(&K, &V) -> bool) -> Vec<K> {
        self.slots
            .iter()
            .flatten()
            .filter(|s| pred(&s.key, &s.value))
            .map(|s| s.key)
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_second_chance() {
        let mut c = Clock::new(3);
        for k in 0..3 {
            assert!(c.insert(k, k * 10).is_none());
        }
        assert_eq!(c.len(), 3);
        // 0 is used again, so 1 is the victim.
        assert_eq!(c.get(&0), Some(&0));
        let evicted = c.insert(3, 30).unwrap();
        assert_eq!(evicted, (1, 10));
        assert_eq!(c.len(), 3);
        assert!(c.get(&1).is_none());
        assert_eq!(c.get(&0), Some(&0));
        for k in 4..100 {
            c.insert(k, k);
            assert!(c.len() <= 3);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&99), Some(&99));
    }

    #[test]
    fn replace_remove_and_reuse() {
        let mut c = Clock::new(2);
        c.insert(1, "a");
        c.insert(1, "b");
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&1), Some(&"b"));
        assert_eq!(c.remove(&1), Some("b"));
        assert_eq!(c.remove(&1), None);
        assert_eq!(c.len(), 0);
        c.insert(2, "c");
        c.insert(3, "d");
        assert_eq!(c.len(), 2);
        assert!(c.insert(4, "e").is_some());
        assert_eq!(c.len(), 2);
        assert_eq!(c.keys_where(|_, v| *v == "e"), vec![4]);
    }

    #[test]
    fn zero_capacity_means_one() {
        let mut c = Clock::new(0);
        assert_eq!(c.capacity(), 1);
        c.insert(1, 1);
        assert_eq!(c.insert(2, 2), Some((1, 1)));
        assert_eq!(c.len(), 1);
    }
}
