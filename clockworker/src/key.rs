//! Queue keys: finding a queue by its key, and the `QueueKey` trait that
//! `#[derive(QueueKey)]` implements.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash};

use rustc_hash::FxHasher;

/// A fieldless enum used as a set of queue keys, with a dense index.
///
/// Any `Copy + Eq + Hash + Debug + 'static` type works as a queue key without
/// this trait. `#[derive(QueueKey)]` adds what the typed form of
/// `#[clockworker::main(queues(...))]` needs: the number of variants, all of
/// them in declaration order, a dense index and a name for each.
///
/// # Examples
///
/// A hand-written implementation (the derive writes the same):
///
/// ```
/// use clockworker::QueueKey;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum Queue { Foreground, Background }
///
/// impl QueueKey for Queue {
///     const COUNT: usize = 2;
///     const ALL: &'static [Queue] = &[Queue::Foreground, Queue::Background];
///     fn index(self) -> usize {
///         self as usize
///     }
///     fn name(self) -> &'static str {
///         match self {
///             Queue::Foreground => "Foreground",
///             Queue::Background => "Background",
///         }
///     }
/// }
///
/// assert_eq!(Queue::ALL.iter().map(|q| q.index()).collect::<Vec<_>>(), [0, 1]);
/// assert_eq!(Queue::Background.name(), "Background");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `QueueKey`: add `#[derive(clockworker::QueueKey)]` to it",
    note = "`QueueKey` is derived for fieldless enums whose variants name queues"
)]
pub trait QueueKey: Copy + Eq + Hash + Debug + 'static {
    /// The number of keys (variants).
    const COUNT: usize;
    /// Every key, in declaration order; `ALL[k.index()] == k`.
    const ALL: &'static [Self];
    /// The key's position in [`ALL`](Self::ALL): `0..COUNT`.
    fn index(self) -> usize;
    /// The key's name (the variant's identifier).
    fn name(self) -> &'static str;
}

/// A queue's name as metrics and task spans show it: its key's `Debug`
/// form, without the quotes around a string key (`fg` for the key `"fg"`,
/// `Foreground` for `Queue::Foreground`, `0` for `0`).
pub(crate) fn queue_name(key: &dyn Debug) -> String {
    unquoted(format!("{key:?}"))
}

/// A key's `Debug` form without the quotes around a string key (see
/// [`queue_name`]).
pub(crate) fn unquoted(debug: String) -> String {
    match debug
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => inner.to_owned(),
        None => debug,
    }
}

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
