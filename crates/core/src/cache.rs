//! A bounded map for values that are expensive to compute and cheap to keep: the cross-encoder's
//! score of a (query, document) pair, which depends only on the two texts and the model.
//!
//! Two generations approximate least-recently-used at O(1) per operation: entries go into the
//! young generation; when it holds half the capacity, it becomes the old one and the previous old
//! generation is dropped. A hit in the old generation moves the entry back to the young one, so
//! what was used within the last half-capacity insertions always survives the next turnover.
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Clone)]
pub struct TwoGenCache<K, V> {
    capacity: usize,
    young: HashMap<K, V>,
    old: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Copy> TwoGenCache<K, V> {
    /// A cache holding at most `capacity` entries (0: holds nothing). The most recently used
    /// `capacity / 2` keys are always kept.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the cache and sets its capacity.
    pub fn reset(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.young = HashMap::new();
        self.old = HashMap::new();
    }

    pub fn get(&mut self, key: &K) -> Option<V>
    where
        K: Clone,
    {
        if let Some(v) = self.young.get(key) {
            return Some(*v);
        }
        let v = self.old.remove(key)?;
        self.put(key.clone(), v);
        Some(v)
    }

    pub fn put(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        // Each generation holds at most half the capacity (a capacity of 1: the young one only).
        let half = (self.capacity / 2).max(1);
        if !self.young.contains_key(&key) && self.young.len() >= half {
            self.old = std::mem::take(&mut self.young);
            if self.capacity == 1 {
                self.old.clear();
            }
        }
        self.old.remove(&key);
        self.young.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_what_fits_and_moves_hits_forward() {
        let mut c = TwoGenCache::new(4);
        for k in 0..4 {
            c.put(k, k * 10);
        }
        assert_eq!(c.len(), 4);
        // 0 and 1 are old now; a hit on 0 brings it back.
        assert_eq!(c.get(&0), Some(0));
        c.put(4, 40);
        c.put(5, 50);
        assert_eq!(c.get(&0), Some(0));
        assert_eq!(c.get(&1), None);
        assert_eq!(c.get(&5), Some(50));
    }

    #[test]
    fn zero_capacity_holds_nothing() {
        let mut c = TwoGenCache::new(0);
        c.put(1, 1);
        assert!(c.is_empty());
        assert_eq!(c.get(&1), None);
    }

    #[test]
    fn capacity_one_holds_the_latest() {
        let mut c = TwoGenCache::new(1);
        c.put(1, 1);
        c.put(2, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&2), Some(2));
    }

    #[test]
    fn reset_empties() {
        let mut c = TwoGenCache::new(8);
        c.put(1, 1.0);
        c.reset(2);
        assert!(c.is_empty());
        assert_eq!(c.capacity(), 2);
    }

    proptest! {
        /// Never more than the capacity; a value read back is the one last put for that key;
        /// the most recent half-capacity keys touched are always there.
        #[test]
        fn bounded_and_exact(cap in 0usize..20, ops in proptest::collection::vec((0u8..30, any::<bool>(), any::<u16>()), 0..300)) {
            let mut c = TwoGenCache::new(cap);
            let mut truth: HashMap<u8, u16> = HashMap::new();
            let mut recent: Vec<u8> = Vec::new();
            for (k, is_put, v) in ops {
                if is_put {
                    c.put(k, v);
                    truth.insert(k, v);
                    recent.retain(|&x| x != k);
                    recent.push(k);
                } else if let Some(got) = c.get(&k) {
                    prop_assert_eq!(Some(&got), truth.get(&k));
                    recent.retain(|&x| x != k);
                    recent.push(k);
                }
                prop_assert!(c.len() <= cap);
                let keep = cap / 2;
                let mut probe = c.clone();
                for &k in recent.iter().rev().take(keep) {
                    prop_assert_eq!(probe.get(&k), truth.get(&k).copied());
                }
            }
        }
    }
}
