//! Comparing byte strings a word at a time.

/// Are `a` and `b` the same bytes? Eight at a time, every word looked at: the fs cell compares
/// its two runs' results, states and blocks, and its client the two copies of each answer,
/// on every request (`compiler_builtins`' `memcmp` spent about one instruction per byte).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (x, y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
    x.remainder() == y.remainder() && x.zip(y).fold(0, |d, (p, q)| d | (word(p) ^ word(q))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_is() {
        let a: [u8; 203] = core::array::from_fn(|i| (i * 13) as u8);
        assert!(same(&a, &a.clone()));
        assert!(same(&[], &[]));
        assert!(!same(&a, &a[..202]), "lengths differ");
        for byte in 0..a.len() {
            for bit in 0..8 {
                let mut b = a;
                b[byte] ^= 1 << bit;
                assert!(!same(&a, &b), "byte {byte} bit {bit}");
            }
        }
    }
}
