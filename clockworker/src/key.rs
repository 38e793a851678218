//! Finding a queue by its key.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

use rustc_hash::FxHasher;

/// Up to this many queues, a linear scan beats hashing.
const LINEAR_MAX: usize = 8;

/// The configured keys, in order, with a fast key → index lookup.
#[derive(Debug)]
pub(crate) struct KeyTable<K> {
    keys: Box<[K]>,
    /// Only for tables longer than `LINEAR_MAX`.
    index: Option<HashMap<K, u32, BuildHasherDefault<FxHasher>>>,
}

impl<K: Copy + Eq + Hash> KeyTable<K> {
    /// A table of distinct keys.
    pub(crate) fn new(keys: Vec<K>) -> KeyTable<K> {
        let index = (keys.len() > LINEAR_MAX).then(|| {
            keys.iter()
                .enumerate()
                .map(|(i, &key)| (key, i as u32))
                .collect()
        });
        KeyTable {
            keys: keys.into_boxed_slice(),
            index,
        }
    }

    /// The index of `key`, if it is configured.
    #[inline]
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        match &self.index {
            None => self.keys.iter().position(|k| k == key).map(|i| i as u32),
            Some(index) => index.get(key).copied(),
        }
    }
}

impl<K> KeyTable<K> {
    pub(crate) fn keys(&self) -> &[K] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_short_and_long_tables() {
        for n in [1u32, 2, 8, 9, 64] {
            let table = KeyTable::new((0..n).map(|i| i * 3).collect());
            for i in 0..n {
                assert_eq!(table.find(&(i * 3)), Some(i));
            }
            assert_eq!(table.find(&1), None);
            assert_eq!(table.find(&(n * 3)), None);
        }
    }

    #[test]
    fn string_keys() {
        let table = KeyTable::new(vec!["fg", "bg"]);
        assert_eq!(table.find(&"bg"), Some(1));
        assert_eq!(table.find(&String::from("fg").as_str()), Some(0));
        assert_eq!(table.find(&"nope"), None);
    }
}
