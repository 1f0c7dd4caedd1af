//! Comparing byte strings a word at a time.

/// Are `a` and `b` the same bytes? Eight at a time, every word looked at: the fs cell compares
/// its two runs' results, states and blocks, and its client the two copies of each answer,
/// on every request (`compiler_builtins`' `memcmp` spent about one instruction per byte).
/// Whole words are read as arrays (`as_chunks`: no length check per word), and the last,
/// short one is folded in a byte at a time (comparing it as a slice called `memcmp`, about
/// 40 instructions even when it was empty).
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (x, x_rest) = a.as_chunks::<8>();
    let (y, y_rest) = b.as_chunks::<8>();
    let mut d = tail(x_rest) ^ tail(y_rest);
    for (p, q) in x.iter().zip(y) {
        d |= u64::from_le_bytes(*p) ^ u64::from_le_bytes(*q);
    }
    d == 0
}

/// The bytes after the last whole word, as one word (none: 0).
#[inline]
fn tail(rest: &[u8]) -> u64 {
    rest.iter().enumerate().fold(0, |w, (i, &c)| w | u64::from(c) << (8 * i))
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
