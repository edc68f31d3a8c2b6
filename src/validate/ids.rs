//! The duplicate-id check's state: every document id seen in one table, with
//! the line it was first seen on.
//!
//! Validation inserts one id per document between long scans of the lines,
//! which push the set out of the CPU's nearer caches, so a lookup is a cache
//! miss more often than not. [`IdSet`] is laid out for that: a small array
//! of slots, 8 bytes each (a hash tag and an index), probed linearly, holds
//! the place of the ids, which are kept in order of first sighting in a
//! separate list that is only read when a tag matches. The slot for an id is
//! known before the lookup, so a caller that has a batch of ids can
//! [`preload`](IdSet::preload) their slots first and let the misses overlap;
//! a [`HashedId`] carries its hash from the one to the other.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use crate::convex::DocumentId;

/// A line number kept in [`IdSet`] entries that stands for "past `u32::MAX`,
/// see `far_lines`".
const FAR: u32 = u32::MAX;

/// Entries per block of [`IdSet::entries`] (1.5 MiB): the list grows a block
/// at a time, so that it never holds an old and a new copy of itself.
const BLOCK: usize = 1 << 16;

/// The keys of one [`IdSet`]'s hash: `Copy` and `Send`, so that ids can be
/// hashed where lines are prechecked, on another thread too.
#[derive(Debug, Clone, Copy)]
pub struct IdKeys([u64; 2]);

impl IdKeys {
    /// `id` with its hash under these keys.
    #[inline]
    pub fn hashed(self, id: DocumentId) -> HashedId {
        HashedId {
            id,
            hash: hash(self.0, &id),
        }
    }
}

/// A document id with its hash under one [`IdSet`]'s keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedId {
    /// The id.
    pub id: DocumentId,
    hash: u64,
}

/// Document ids with the line each was first seen on.
pub struct IdSet {
    /// Keys of the hash, random per set where the platform has randomness,
    /// so that ids crafted to collide in one process do not in another.
    seeds: [u64; 2],
    /// Open addressing with linear probing; a power of two long, at most
    /// three quarters full. `0` is an empty slot; otherwise the high 32 bits are the
    /// id's hash tag and the low 32 bits its index in `entries` plus one.
    slots: Vec<u64>,
    /// The ids in the order first seen, with their lines ([`FAR`] for lines
    /// past `u32::MAX`, which only entries of hundreds of gigabytes reach),
    /// in blocks of [`BLOCK`]; blocks past the last entry's are spare.
    entries: Vec<Vec<(DocumentId, u32)>>,
    /// How many entries there are.
    len: usize,
    /// The lines of entries whose line is [`FAR`], by index.
    far_lines: HashMap<u32, u64>,
}

impl Default for IdSet {
    fn default() -> Self {
        let random = RandomState::new();
        IdSet {
            seeds: [random.hash_one(0u8), random.hash_one(1u8)],
            slots: Vec::new(),
            entries: Vec::new(),
            len: 0,
            far_lines: HashMap::new(),
        }
    }
}

impl IdSet {
    /// Distinct ids seen.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The keys ids are hashed with for this set.
    pub fn keys(&self) -> IdKeys {
        IdKeys(self.seeds)
    }

    /// Makes room in the slots for `additional` more ids without growing.
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len.saturating_add(additional);
        if wanted > max_len(self.slots.len()) {
            self.rebuild((wanted.saturating_mul(4) / 3 + 1).next_power_of_two());
        }
    }

    /// Adds `id` (hashed with this set's [`keys`](Self::keys)), first seen
    /// on `line`; if it was already there, adds nothing and returns the line
    /// it was first seen on.
    pub fn insert(&mut self, id: HashedId, line: u64) -> Option<u64> {
        if self.len + 1 > max_len(self.slots.len()) {
            self.rebuild((self.slots.len() * 2).max(64));
        }
        let at = match self.probe(id) {
            Ok(line) => return Some(line),
            Err(free) => free,
        };
        let (id, tag) = (id.id, id.hash >> 32);
        // Indexes are u32: 2^32 ids would take over 100 GiB, far more than
        // memory holds, before they ran out.
        let index = self.len as u32;
        let near = match u32::try_from(line) {
            Ok(near) if near != FAR => near,
            _ => {
                self.far_lines.insert(index, line);
                FAR
            }
        };
        let block = self.len / BLOCK;
        if block == self.entries.len() {
            self.entries.push(Vec::with_capacity(BLOCK));
        }
        self.entries[block].push((id, near));
        self.len += 1;
        self.slots[at] = tag << 32 | u64::from(index + 1);
        None
    }

    /// The line `id` (hashed with this set's [`keys`](Self::keys)) was
    /// first seen on, if it is in the set.
    pub fn get(&self, id: HashedId) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        self.probe(id).ok()
    }

    /// Looks `id` up: the line it was first seen on, or the free slot where
    /// it would go. The table has at least one free slot.
    #[inline(always)]
    fn probe(&self, id: HashedId) -> Result<u64, usize> {
        let HashedId { id, hash } = id;
        let tag = hash >> 32;
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            match self.slots[at] {
                0 => return Err(at),
                slot if slot >> 32 == tag => {
                    let index = (slot as u32 - 1) as usize;
                    if self.entry(index).0 == id {
                        return Ok(self.line(index));
                    }
                }
                _ => {}
            }
            at = (at + 1) & mask;
        }
    }

    /// Reads the slot where `id` would be, so that a later
    /// [`insert`](Self::insert) of it finds it in cache. Reading the slots
    /// of a batch of ids first lets their cache misses overlap, where one
    /// insert after another would wait for each in turn.
    #[inline]
    pub fn preload(&self, id: &HashedId) {
        if !self.slots.is_empty() {
            let at = id.hash as usize & (self.slots.len() - 1);
            std::hint::black_box(self.slots[at]);
        }
    }

    /// Empties the set for another table, keeping the memory the last one
    /// used well (fresh memory costs a page fault on each first touch), and
    /// giving back what it barely used.
    pub fn clear(&mut self) {
        if self.len < self.slots.len() / 8 {
            self.slots = Vec::new();
            self.entries = Vec::new();
        } else {
            self.slots.fill(0);
            self.entries.iter_mut().for_each(Vec::clear);
        }
        self.len = 0;
        self.far_lines.clear();
    }

    /// Entry `index`: an id and its line.
    fn entry(&self, index: usize) -> &(DocumentId, u32) {
        &self.entries[index / BLOCK][index % BLOCK]
    }

    /// The line entry `index` was first seen on.
    fn line(&self, index: usize) -> u64 {
        match self.entry(index).1 {
            FAR => self.far_lines[&(index as u32)],
            near => u64::from(near),
        }
    }

    /// Places every entry again in `len` slots.
    fn rebuild(&mut self, len: usize) {
        // The entries say where everything goes: free the old slots first.
        self.slots = Vec::new();
        self.slots = vec![0; len];
        let mask = len - 1;
        for (index, (id, _)) in self.entries.iter().flatten().enumerate() {
            let hash = hash(self.seeds, id);
            let mut at = hash as usize & mask;
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = (hash >> 32) << 32 | (index as u64 + 1);
        }
    }
}

/// A 64-bit hash of an id, keyed by `seeds`: its 20 bytes folded by two
/// full multiplies, so that every byte reaches both the low bits (the slot)
/// and the high bits (the tag), whatever the internal ids look like.
#[inline]
fn hash(seeds: [u64; 2], id: &DocumentId) -> u64 {
    const MIX: u64 = 0xa409_3822_299f_31d0;
    let internal = u128::from_le_bytes(id.internal);
    let folded = fold(
        internal as u64 ^ seeds[0],
        (internal >> 64) as u64 ^ seeds[1],
    );
    fold(folded ^ u64::from(id.table), MIX)
}

/// The most ids `slots` slots take: three quarters of them.
fn max_len(slots: usize) -> usize {
    slots / 4 * 3
}

/// The high and low halves of a 128-bit product, xored.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let (high, low) = wide_mul(a, b);
    high ^ low
}

/// The 128-bit product of `a` and `b`, as its high and low halves.
#[cfg(not(target_arch = "wasm32"))]
#[inline]
fn wide_mul(a: u64, b: u64) -> (u64, u64) {
    let product = u128::from(a) * u128::from(b);
    ((product >> 64) as u64, product as u64)
}

/// WebAssembly has no 64×64→128 multiply, and LLVM calls a general 128-bit
/// routine for one (about 1% of a validation in Node); the same product
/// from 32-bit halves stays inline.
#[cfg(target_arch = "wasm32")]
#[inline]
fn wide_mul(a: u64, b: u64) -> (u64, u64) {
    wide_mul_by_halves(a, b)
}

/// [`wide_mul`] from four 32×32→64 products.
#[cfg(any(target_arch = "wasm32", test))]
#[inline]
fn wide_mul_by_halves(a: u64, b: u64) -> (u64, u64) {
    const LOW: u64 = 0xFFFF_FFFF;
    let (a0, a1) = (a & LOW, a >> 32);
    let (b0, b1) = (b & LOW, b >> 32);
    let (p00, p01, p10, p11) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    // Below 3 × 2^32: no carry is lost.
    let middle = (p00 >> 32) + (p01 & LOW) + (p10 & LOW);
    let low = (p00 & LOW) | (middle << 32);
    let high = p11 + (p01 >> 32) + (p10 >> 32) + (middle >> 32);
    (high, low)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Inserts `id`, hashed with the set's keys.
    fn put(set: &mut IdSet, id: DocumentId, line: u64) -> Option<u64> {
        let hashed = set.keys().hashed(id);
        set.insert(hashed, line)
    }

    fn id(table: u32, n: u64) -> DocumentId {
        let mut internal = [0; 16];
        internal[..8].copy_from_slice(&n.to_le_bytes());
        DocumentId::new(table, internal)
    }

    #[test]
    fn repeats_name_the_first_line_across_growth() {
        // Past two blocks of entries, from slots too few for them.
        let count = 2 * BLOCK as u64 + 10;
        let mut set = IdSet::default();
        set.reserve(1000);
        for n in 0..count {
            assert_eq!(put(&mut set, id(10001, n), n + 1), None);
        }
        assert_eq!(set.len() as u64, count);
        for n in (0..count).step_by(7) {
            assert_eq!(put(&mut set, id(10001, n), u64::MAX), Some(n + 1));
        }
        // The same internal id in another table is another id.
        assert_eq!(put(&mut set, id(10002, 5), 1), None);
        assert_eq!(set.len() as u64, count + 1);
        // Cleared and filled again, in the blocks it kept.
        set.clear();
        assert_eq!(set.len(), 0);
        for n in (0..count).rev() {
            assert_eq!(put(&mut set, id(10001, n), n), None);
        }
        assert_eq!(
            put(&mut set, id(10001, BLOCK as u64), 1),
            Some(BLOCK as u64)
        );
    }

    #[test]
    fn lines_past_u32_max_are_kept_whole() {
        let far = u64::from(u32::MAX) + 10;
        let mut set = IdSet::default();
        assert_eq!(put(&mut set, id(1, 1), u64::from(u32::MAX)), None);
        assert_eq!(put(&mut set, id(1, 2), far), None);
        assert_eq!(put(&mut set, id(1, 3), 7), None);
        assert_eq!(put(&mut set, id(1, 1), 1), Some(u64::from(u32::MAX)));
        assert_eq!(put(&mut set, id(1, 2), 1), Some(far));
        assert_eq!(put(&mut set, id(1, 3), far + 1), Some(7));
    }

    #[test]
    fn each_set_hashes_with_its_own_keys() {
        // Natively, std seeds from the OS; wasm32-unknown-unknown has no source.
        if cfg!(not(target_arch = "wasm32")) {
            assert_ne!(IdSet::default().seeds, IdSet::default().seeds);
        }
    }

    #[test]
    fn products_by_halves_are_exact() {
        let edges = [
            0,
            1,
            2,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ];
        for a in edges {
            for b in edges {
                let product = u128::from(a) * u128::from(b);
                assert_eq!(
                    wide_mul_by_halves(a, b),
                    ((product >> 64) as u64, product as u64)
                );
            }
        }
    }

    proptest! {
        #[test]
        fn any_product_by_halves_is_exact(a: u64, b: u64) {
            let product = u128::from(a) * u128::from(b);
            prop_assert_eq!(wide_mul_by_halves(a, b), ((product >> 64) as u64, product as u64));
        }

        /// The set answers as a map from id to first line does, whatever
        /// was reserved and preloaded, and cleared for the next table.
        #[test]
        fn agrees_with_a_map(
            ops in proptest::collection::vec((1u32..4, 0u64..300, 1u64..u64::MAX), 0..2000),
            reserve in 0usize..3000,
            clear_at in 0usize..2000,
        ) {
            let mut set = IdSet::default();
            set.reserve(reserve);
            let mut map = HashMap::new();
            for (i, (table, n, line)) in ops.into_iter().enumerate() {
                if i == clear_at {
                    set.clear();
                    map.clear();
                    set.reserve(reserve);
                }
                let id = id(table, n);
                set.preload(&set.keys().hashed(id));
                let expected = map.get(&id).copied();
                map.entry(id).or_insert(line);
                prop_assert_eq!(put(&mut set, id, line), expected);
            }
            prop_assert_eq!(set.len(), map.len());
        }
    }
}
