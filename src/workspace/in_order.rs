//! Looking paths up in a map in about the order the map holds them: a walk lists a tree in
//! walk order (a directory's entries right after it), which is the map's byte order except
//! where a name holds a byte below `/` (`a-b` sorts before `a/x`). A lookup that follows the
//! map's own iterator costs a comparison or two instead of a search from the root — most of
//! what bringing a kept tree of 20,000 files to a manifest cost was such searches.

use std::collections::BTreeMap;
use std::collections::btree_map::Range;
use std::iter::Peekable;
use std::ops::Bound;

use super::rel_path::RelPath;

/// How far ahead of its place a lookup steps before it searches instead.
const STEPS: usize = 4;

/// A map and a place in it: lookups at or just past that place follow the iterator, any other
/// is a search. Whatever the order of the lookups, each answers what `map.get` would.
pub(super) struct InOrder<'a, V> {
    map: &'a BTreeMap<RelPath, V>,
    next: Peekable<Range<'a, RelPath, V>>,
}

impl<'a, V> InOrder<'a, V> {
    pub(super) fn new(map: &'a BTreeMap<RelPath, V>) -> Self {
        Self { map, next: map.range::<RelPath, _>(..).peekable() }
    }

    /// What the map holds at `path`.
    pub(super) fn get(&mut self, path: &RelPath) -> Option<&'a V> {
        for _ in 0..STEPS {
            match self.next.peek() {
                Some((key, value)) if *key == path => {
                    let value = *value;
                    self.next.next();
                    return Some(value);
                }
                Some((key, _)) if *key < path => {
                    self.next.next();
                }
                // Behind the place (or past the end): searched for, the place kept.
                _ => return self.map.get(path),
            }
        }
        // Far ahead: searched for, and the place moved just past it.
        let found = self.map.get(path);
        self.next = self.map.range::<RelPath, _>((Bound::Excluded(path), Bound::Unbounded)).peekable();
        found
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the keys and the order of the lookups, each answers what a search would.
        #[test]
        fn every_lookup_answers_what_a_search_would(
            keys in proptest::collection::btree_set("[a-c/-]{1,4}", 0..40),
            lookups in proptest::collection::vec("[a-c/-]{1,4}", 0..80),
            walk_order in any::<bool>(),
        ) {
            let map: BTreeMap<RelPath, usize> = keys
                .iter()
                .filter_map(|key| RelPath::parse(key.as_bytes()).ok())
                .enumerate()
                .map(|(i, path)| (path, i))
                .collect();
            let mut asked: Vec<RelPath> = lookups.iter().filter_map(|key| RelPath::parse(key.as_bytes()).ok()).collect();
            if walk_order {
                // The map's own keys, in the order a walk lists them, among the others.
                asked.extend(map.keys().cloned());
                asked.sort_by(|a, b| a.components().cmp(b.components()));
            }
            let mut in_order = InOrder::new(&map);
            for path in &asked {
                prop_assert_eq!(in_order.get(path), map.get(path), "{}", path);
            }
        }
    }
}
