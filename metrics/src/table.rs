//! `KeyTable`: the handles of keys seen before, found without a lock.
//!
//! `metrics::counter!` asks the recorder for a handle on every call, so this lookup is
//! the hot path. The table is a fixed array of write-once slots probed from the key's
//! precomputed hash: a lookup is a few loads and a key comparison, never a lock or an
//! allocation. Slots are never emptied, so a reference into one stays valid for the
//! table's life. A key that finds no free slot within a few probes is simply not
//! remembered (the recorder then makes its handle each time, correct but slower).

use std::sync::OnceLock;

use metrics::Key;

/// How many slots a lookup looks at before giving up.
const PROBES: usize = 8;

/// A write-once map from keys to handles.
pub(crate) struct KeyTable<V> {
    slots: Box<[OnceLock<(Key, V)>]>,
    mask: usize,
}

impl<V: Clone> KeyTable<V> {
    /// A table of `slots` slots, rounded up to a power of two.
    pub(crate) fn new(slots: usize) -> KeyTable<V> {
        let slots = slots.next_power_of_two();
        KeyTable {
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
            mask: slots - 1,
        }
    }

    /// The slots a lookup of a key with this hash probes, in order.
    fn probe(&self, hash: u64) -> impl Iterator<Item = &OnceLock<(Key, V)>> {
        // Truncation is fine: only the low bits pick a slot.
        let start = hash as usize;
        (0..PROBES).map(move |i| &self.slots[start.wrapping_add(i) & self.mask])
    }

    /// The handle remembered for `key`.
    #[inline]
    pub(crate) fn get(&self, key: &Key) -> Option<&V> {
        for slot in self.probe(key.get_hash()) {
            match slot.get() {
                None => return None,
                Some((k, v)) if same_key(k, key) => return Some(v),
                Some(_) => {}
            }
        }
        None
    }

    /// Remembers `value` for `key` and returns the handle now remembered for it:
    /// `value`, or the one another thread remembered first. `None` if no slot is free.
    pub(crate) fn insert(&self, key: &Key, value: V) -> Option<&V> {
        let mut value = value;
        for slot in self.probe(key.get_hash()) {
            match slot.set((key.clone(), value)) {
                Ok(()) => return slot.get().map(|(_, v)| v),
                Err((_, back)) => {
                    value = back;
                    match slot.get() {
                        Some((k, v)) if k == key => return Some(v),
                        _ => {}
                    }
                }
            }
        }
        None
    }
}

/// `a == b`, quicker for the common case of one `counter!` call site asking again:
/// the same static name and the same static labels (the macro's `static`s, which a
/// remembered key still points to), where `Key`'s own comparison would compare bytes.
#[inline]
fn same_key(a: &Key, b: &Key) -> bool {
    if a.get_hash() != b.get_hash() {
        return false;
    }
    if std::ptr::eq(a.name(), b.name())
        && std::ptr::eq(a.labels().as_slice(), b.labels().as_slice())
    {
        return true;
    }
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_remembered_and_keeps_the_first() {
        let table = KeyTable::new(4);
        let a = Key::from_static_name("a");
        assert_eq!(table.get(&a), None);
        assert_eq!(table.insert(&a, 1), Some(&1));
        assert_eq!(table.insert(&a, 2), Some(&1));
        assert_eq!(table.get(&a), Some(&1));
        assert_eq!(table.get(&Key::from_static_name("b")), None);
    }

    #[test]
    fn a_full_table_remembers_no_more() {
        let table = KeyTable::new(2);
        let keys: Vec<Key> = (0..3).map(|i| Key::from_name(format!("k{i}"))).collect();
        assert!(table.insert(&keys[0], 0).is_some());
        assert!(table.insert(&keys[1], 1).is_some());
        assert_eq!(table.insert(&keys[2], 2), None);
        assert_eq!(table.get(&keys[2]), None);
        assert_eq!(table.get(&keys[1]), Some(&1));
    }
}
