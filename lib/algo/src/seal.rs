//! A keyed seal over plain bytes, for state a server hands to its client to keep.
//!
//! This is not cryptography: it detects corruption (a flipped bit, an overwritten word, a value
//! from another server incarnation's key) with high probability, which is what fault isolation
//! needs. The key is chosen at boot and outlives every incarnation of the server.

/// Seal `bytes` under `key` (a keyed FNV-1a variant with a final mix).
pub fn seal(key: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ key;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h ^= u64::from_le_bytes(w);
        h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    h ^= bytes.len() as u64;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h ^ (h >> 33)) ^ key.rotate_left(17)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_single_bit_flip_changes_the_seal() {
        let data = [0x5au8; 200];
        let s = seal(42, &data);
        for byte in 0..data.len() {
            for bit in 0..8 {
                let mut d = data;
                d[byte] ^= 1 << bit;
                assert_ne!(seal(42, &d), s, "flip of bit {bit} in byte {byte} went unseen");
            }
        }
        assert_ne!(seal(43, &data), s);
        assert_ne!(seal(42, &data[..199]), s);
    }
}
