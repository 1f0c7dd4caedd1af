//! A keyed seal over plain bytes, for state a server hands to its client to keep.
//!
//! This is not cryptography: it detects corruption (a flipped bit, an overwritten word, a value
//! from another server incarnation's key) with high probability, which is what fault isolation
//! needs. The key is chosen at boot and outlives every incarnation of the server.

fn step(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29)
}

/// The seal of `len` bytes under `key` whose state after the last of them is `h` (see [`start`]).
#[inline]
pub fn finish(key: u64, mut h: u64, len: usize) -> u64 {
    h ^= len as u64;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h ^ (h >> 33)) ^ key.rotate_left(17)
}

/// [`seal`] of one word's 8 little-endian bytes, the same value without the loop: for state
/// that is one word (the timer's lap count), sealed and checked on every call.
#[inline]
pub fn seal_word(key: u64, word: u64) -> u64 {
    finish(key, step(0xcbf2_9ce4_8422_2325u64 ^ key, word), 8)
}

/// Seal `bytes` under `key` (a keyed FNV-1a variant with a final mix).
pub fn seal(key: u64, bytes: &[u8]) -> u64 {
    finish(key, absorb(start(key), bytes), bytes.len())
}

/// [`seal`] of an array whose length is known where it is called (a session's state): the same
/// value, its words absorbed with no loop (the fs cell seals a 200-byte session four times a
/// request; the loop spent about six instructions a word, unrolled it is three).
#[inline(always)]
pub fn seal_array<const N: usize>(key: u64, bytes: &[u8; N]) -> u64 {
    finish(key, absorb(start(key), bytes), N)
}

/// A seal of an array two words a step, for state sealed and checked several times a request
/// (the fs cell's sessions): each step xors the first word into the state before the
/// multiply and adds the second after the rotation, so it is one-to-one in either word and in
/// the state before it. Any change to one word of `bytes` therefore changes the state after
/// it, every later step carries that on, and [`finish`] is one-to-one in the state: the seal
/// changes, as [`seal`]'s would. Two instructions a word where [`seal_array`] takes three
/// (xor, multiply, rotate); not the same value as [`seal`]. Bytes past the last pair go
/// through [`absorb`].
#[inline(always)]
pub fn seal_pairs<const N: usize>(key: u64, bytes: &[u8; N]) -> u64 {
    let (pairs, rest) = bytes.as_chunks::<16>();
    let mut h = start(key);
    for p in pairs {
        let (a, b) = p.split_at(8);
        let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = (h ^ word(a)).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29).wrapping_add(word(b));
    }
    finish(key, absorb(h, rest), N)
}

/// The state of a seal under `key` before any byte: a seal taken in parts, by [`absorb`] and
/// [`finish`], is the same value, `seal(key, b) == finish(key, absorb(start(key), b), b.len())`,
/// and so is one that absorbs `b` in parts whose lengths, but the last's, are multiples of 8.
/// (The states between the parts are what `algo::mirror` keeps to check a block piece by piece.)
#[inline]
pub fn start(key: u64) -> u64 {
    0xcbf2_9ce4_8422_2325u64 ^ key
}

/// The state after `bytes`, from state `h`: each word changes it one-to-one (for a given word,
/// every state gives another; for a given state, every word), so any change to one word of
/// `bytes`, or to `h`, changes the state after them.
#[inline]
pub fn absorb(mut h: u64, bytes: &[u8]) -> u64 {
    // Whole words straight from the slice, as arrays (a copy per word cost a `memcpy` call
    // each; a slice per word, a length check each); the last, short one zero-padded.
    let (words, rest) = bytes.as_chunks::<8>();
    for w in words {
        h = step(h, u64::from_le_bytes(*w));
    }
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = step(h, u64::from_le_bytes(w));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_are_those_of_the_word_by_word_copy_it_replaced() {
        // Computed with the implementation before this one: sessions sealed by either agree.
        let known = [
            (0, 0x4b37_0275_467d_c7f1),
            (5, 0x189f_6fc3_d1fe_4793),
            (8, 0x087e_ea62_4af7_00b2),
            (13, 0x9de9_3a06_043f_b703),
            (200, 0x867e_f9f6_5e2c_b7d8),
            (512, 0xae6c_7f8a_214c_7e6e),
        ];
        for (len, want) in known {
            let data: [u8; 512] = core::array::from_fn(|i| (i * 37 + 11) as u8);
            assert_eq!(seal(0x1234_5678_9abc_def0, &data[..len]), want, "length {len}");
        }
    }

    #[test]
    fn a_seal_taken_in_parts_is_the_seal() {
        let data: [u8; 200] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        for cut in (0..=200).step_by(8) {
            for len in cut..=200 {
                let h = absorb(absorb(start(9), &data[..cut]), &data[cut..len]);
                assert_eq!(finish(9, h, len), seal(9, &data[..len]), "cut {cut} length {len}");
            }
        }
    }

    #[test]
    fn an_array_seals_as_its_bytes_do() {
        let data: [u8; 203] = core::array::from_fn(|i| (i * 29 + 3) as u8);
        assert_eq!(seal_array(5, &data), seal(5, &data));
        let whole: &[u8; 200] = data[..200].try_into().unwrap();
        assert_eq!(seal_array(5, whole), seal(5, whole));
    }

    /// Flip every bit of `data` in turn: `f` of each bent copy differs from `f` of `data`.
    fn every_flip_changes<const N: usize>(data: &[u8; N], f: impl Fn(&[u8; N]) -> u64) {
        let s = f(data);
        for byte in 0..data.len() {
            for bit in 0..8 {
                let mut d = *data;
                d[byte] ^= 1 << bit;
                assert_ne!(f(&d), s, "flip of bit {bit} in byte {byte} went unseen");
            }
        }
    }

    #[test]
    fn any_single_bit_flip_changes_a_seal_of_pairs() {
        let data: [u8; 203] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let s = seal_pairs(42, &data);
        every_flip_changes(&data, |d| seal_pairs(42, d));
        assert_ne!(seal_pairs(43, &data), s, "another key");
        // Two words swapped within a pair, or pairs swapped, are other values too.
        let mut d = data;
        d[..16].rotate_left(8);
        assert_ne!(seal_pairs(42, &d), s);
        let mut d = data;
        d[..32].rotate_left(16);
        assert_ne!(seal_pairs(42, &d), s);
    }

    #[test]
    fn a_word_seals_as_its_bytes_do() {
        for (key, w) in [(0, 0), (0x1234_5678_9abc_def0, 1), (42, u64::MAX), (7, 0x0123_4567_89ab_cdef)] {
            assert_eq!(seal_word(key, w), seal(key, &w.to_le_bytes()), "key {key:#x} word {w:#x}");
        }
    }

    #[test]
    fn any_single_bit_flip_changes_the_seal() {
        let data = [0x5au8; 200];
        let s = seal(42, &data);
        every_flip_changes(&data, |d| seal(42, d));
        assert_ne!(seal(43, &data), s);
        assert_ne!(seal(42, &data[..199]), s);
    }
}
