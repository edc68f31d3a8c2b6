//! CRC-32 as ZIP, zlib and snappack's frames use it, on every target.
//!
//! Natively the CPU's carry-less multiply makes CRC-32 nearly free
//! (crc32fast). WebAssembly has no such instruction, and a table-driven
//! CRC-32 ran at about 2.5 GB/s there, a tenth of a validation's time.
//! `Sparse` instead reduces the message by a sparse multiple of the CRC
//! polynomial, a few word XORs per 8 bytes and no table lookups (about
//! 15 GB/s in Node); only the last 2.4 KB go through a table-driven CRC-32.
//!
//! The reduction: with `y = x^64`, the polynomial
//! `Q = y^300 + y^155 + y^117 + y^89 + 1` is a multiple of ZIP's CRC
//! polynomial (a test checks it), so adding a multiple of `Q` to the message
//! leaves its CRC unchanged. Going through the message a 64-bit word at a
//! time (bits in stream order), adding the word's value times the right
//! power of `x` times `Q` clears the word and adds its value to the words
//! 145, 183, 211 and 300 words further on. Clearing every word but the last
//! 300 leaves a message of zeros, which do not change a CRC started from
//! state 0, followed by 300 words that have the same CRC as the whole.
//! Each cleared word `e[w]` is the input word plus what earlier words
//! added: `e[w] = input[w] ^ e[w - 145] ^ e[w - 183] ^ e[w - 211] ^ e[w - 300]`.
//! The CRC's running state is folded in as the CRC-32 definition allows, by
//! adding it to the first four bytes and starting from state 0: it is kept
//! as `e[-300]`, which only the first word adds in.

use std::fmt;

#[cfg(any(target_arch = "wasm32", test))]
pub use sparse::Sparse;

/// A running CRC-32: crc32fast natively, `Sparse` on wasm32.
#[derive(Clone, Default)]
pub struct Crc32(
    #[cfg(not(target_arch = "wasm32"))] crc32fast::Hasher,
    #[cfg(target_arch = "wasm32")] Sparse,
);

impl Crc32 {
    /// A CRC-32 of nothing yet.
    pub fn new() -> Self {
        Crc32::default()
    }

    /// Adds the next bytes of the message.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC-32 of the message so far.
    pub fn value(&self) -> u32 {
        #[cfg(not(target_arch = "wasm32"))]
        return self.0.clone().finalize();
        #[cfg(target_arch = "wasm32")]
        self.0.value()
    }
}

impl fmt::Debug for Crc32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Crc32({:#010x})", self.value())
    }
}

/// The CRC-32 of `bytes`.
pub fn hash(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.value()
}

/// [`Sparse`], compiled where it is used and tested.
#[cfg(any(target_arch = "wasm32", test))]
mod sparse {
    /// Words left at the end: the degree of `Q` in words.
    const SPAN: usize = 300;

    /// How many words further on a cleared word is added: `SPAN` minus the
    /// degrees (in words) of `Q`'s other terms.
    const DISTANCES: [usize; 4] = [SPAN - 155, SPAN - 117, SPAN - 89, SPAN];

    /// Words cleared per pass over [`Sparse::cleared`], after the `SPAN` it keeps.
    const BLOCK: usize = 2048;

    /// A running CRC-32 by reduction with a sparse multiple of the polynomial
    /// (see the module).
    #[derive(Clone)]
    pub struct Sparse {
        /// The CRC-32 the message continues (0 for a new message).
        start: u32,
        /// The last `SPAN` cleared words, then room for a block more; `None`
        /// until a message is long enough to clear any (a short one, as a
        /// frame header, never allocates it).
        cleared: Option<Box<[u64; SPAN + BLOCK]>>,
        /// The message's bytes after the cleared words: at most `SPAN` words
        /// and a part of one once [`update`](Self::update) returns.
        held: Vec<u8>,
    }

    impl Default for Sparse {
        fn default() -> Self {
            Sparse::new(0)
        }
    }

    impl Sparse {
        /// A CRC-32 that continues one whose value was `start`.
        pub fn new(start: u32) -> Self {
            Sparse {
                start,
                cleared: None,
                held: Vec::new(),
            }
        }

        /// Adds the next bytes of the message.
        pub fn update(&mut self, mut bytes: &[u8]) {
            if self.held.len() + bytes.len() < 8 * (SPAN + 1) {
                self.held.extend_from_slice(bytes);
                return;
            }
            // Whole words in `held`, so that `bytes` continues at a word's start.
            let top_up = bytes
                .len()
                .min(self.held.len().next_multiple_of(8) - self.held.len());
            self.held.extend_from_slice(&bytes[..top_up]);
            bytes = &bytes[top_up..];
            let words = (self.held.len() + bytes.len()) / 8;
            let mut to_clear = words - SPAN;
            let from_held = to_clear.min(self.held.len() / 8);
            let held = std::mem::take(&mut self.held);
            self.clear(&held[..8 * from_held]);
            to_clear -= from_held;
            self.clear(&bytes[..8 * to_clear]);
            // Keep what is left: the rest of `held`, then of `bytes`.
            self.held = held;
            self.held.drain(..8 * from_held);
            self.held.extend_from_slice(&bytes[8 * to_clear..]);
        }

        /// The CRC-32 of the message so far.
        pub fn value(&self) -> u32 {
            let Some(cleared) = &self.cleared else {
                return table_crc32(self.start, &self.held);
            };
            // The held words with what the cleared words added to them.
            let mut tail = self.held.clone();
            for (k, word) in tail.chunks_exact_mut(8).enumerate() {
                let mut value = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                for distance in DISTANCES {
                    if k < distance {
                        value ^= cleared[SPAN - distance + k];
                    }
                }
                word.copy_from_slice(&value.to_le_bytes());
            }
            // A CRC-32 continuing from !0 starts from state 0.
            table_crc32(u32::MAX, &tail)
        }

        /// Clears the words of `bytes` (whole words), which follow those
        /// cleared before.
        fn clear(&mut self, bytes: &[u8]) {
            if bytes.is_empty() {
                return;
            }
            let start = self.start;
            let cleared = self.cleared.get_or_insert_with(|| {
                // Before the first word: zeros but for the running state.
                let mut cleared = Box::new([0; SPAN + BLOCK]);
                cleared[0] = u64::from(!start);
                cleared
            });
            for block in bytes.chunks(8 * BLOCK) {
                clear_block(cleared, block);
            }
        }
    }

    /// The CRC-32 of `bytes` continuing `start`, table-driven: for the few KiB
    /// at the end.
    fn table_crc32(start: u32, bytes: &[u8]) -> u32 {
        let mut hasher = crc32fast::Hasher::new_with_initial(start);
        hasher.update(bytes);
        hasher.finalize()
    }

    /// Clears the words of `block` (at most `BLOCK` whole words) into
    /// `cleared[SPAN..]`, then moves the last `SPAN` cleared words to the front.
    fn clear_block(cleared: &mut [u64; SPAN + BLOCK], block: &[u8]) {
        let [d0, d1, d2, d3] = DISTANCES;
        let n = (block.len() / 8).min(BLOCK);
        for (j, word) in block.chunks_exact(8).take(n).enumerate() {
            let at = SPAN + j;
            let input = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            cleared[at] =
                input ^ cleared[at - d0] ^ cleared[at - d1] ^ cleared[at - d2] ^ cleared[at - d3];
        }
        cleared.copy_within(n..n + SPAN, 0);
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        #[cfg(not(target_arch = "wasm32"))]
        use proptest::prelude::*;

        /// ZIP's polynomial, with its x^32 term.
        const POLYNOMIAL: u64 = 0x1_04C1_1DB7;

        fn times_x(a: u64) -> u64 {
            let a = a << 1;
            if a >> 32 != 0 {
                a ^ POLYNOMIAL
            } else {
                a
            }
        }

        /// `x^power` modulo the polynomial.
        fn x_to_the(power: usize) -> u64 {
            (0..power).fold(1, |a, _| times_x(a))
        }

        #[test]
        fn the_sparse_polynomial_is_a_multiple_of_the_crc_polynomial() {
            let terms = [SPAN, 155, 117, 89, 0];
            let sum = terms.iter().fold(0, |sum, &t| sum ^ x_to_the(64 * t));
            assert_eq!(sum, 0);
            for (distance, term) in DISTANCES.iter().zip(&terms[1..]) {
                assert_eq!(SPAN - distance, *term);
            }
        }

        fn crc(start: u32, pieces: &[&[u8]]) -> u32 {
            let mut crc = Sparse::new(start);
            for piece in pieces {
                crc.update(piece);
            }
            crc.value()
        }

        /// crc32fast, natively with carry-less multiply.
        fn reference(start: u32, data: &[u8]) -> u32 {
            table_crc32(start, data)
        }

        fn bytes(len: usize, seed: u64) -> Vec<u8> {
            let mut state = seed | 1;
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        }

        /// Runs in both builds: crc32fast has a carry-less multiply natively, a
        /// byte table in WebAssembly.
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn lengths_around_every_edge_agree_with_crc32fast() {
            let data = bytes(8 * (SPAN + 2 * BLOCK) + 64, 3);
            let edges = [0, 1, 7, 8, 9, 8 * SPAN, 8 * (SPAN + 1) - 1, 8 * (SPAN + 1)];
            let mut lens: Vec<usize> = edges.iter().flat_map(|&e| [e, e + 3]).collect();
            lens.extend([8 * (SPAN + BLOCK), 8 * (SPAN + BLOCK) + 5, data.len()]);
            for len in lens {
                for start in [0, 0xDEAD_BEEF] {
                    assert_eq!(
                        crc(start, &[&data[..len]]),
                        reference(start, &data[..len]),
                        "{len}"
                    );
                }
            }
        }

        #[test]
        fn the_check_value_and_the_empty_message() {
            assert_eq!(crc(0, &[b"123456789"]), 0xCBF4_3926);
            assert_eq!(crc(0, &[]), 0);
            assert_eq!(crc(0x1234_5678, &[b""]), 0x1234_5678);
        }

        #[cfg(not(target_arch = "wasm32"))]
        proptest! {
            #[test]
            fn any_split_agrees_with_crc32fast(
                len in 0usize..40_000,
                cuts in proptest::collection::vec(0usize..40_000, 0..6),
                start: u32,
                seed: u64,
            ) {
                let data = bytes(len, seed);
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
                cuts.push(0);
                cuts.push(len);
                cuts.sort_unstable();
                let pieces: Vec<&[u8]> = cuts.windows(2).map(|w| &data[w[0]..w[1]]).collect();
                prop_assert_eq!(crc(start, &pieces), reference(start, &data));
            }
        }
    }
}
