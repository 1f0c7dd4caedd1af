//! The seeded choices of one injected fault. Both injectors draw from [`algo::rng::Rng`] in the
//! same order, so one seed picks the same register and bit, and the same place in a list of
//! memory ranges, on either personality.

use crate::InjectKind;
use algo::rng::Rng;

/// Registers a `regflip` can hit, numbered as the saved trap frame's `reg_mut` numbers them:
/// rax rbx rcx rdx rsi rdi rbp rsp r8..r15 (0 to 15), then rip (16) and rflags (17).
pub const REGISTERS: u64 = 18;
/// The register number of rip.
pub const RIP: usize = 16;
/// The register number of rflags.
pub const RFLAGS: usize = 17;
/// The rflags bits a flip may hit: the arithmetic flags and the direction flag. A privileged
/// bit (IOPL, VM, ...) would make the kernel's `iretq` fail, which is not the task's fault.
const RFLAGS_BITS: [u64; 7] = [0, 2, 4, 6, 7, 10, 11];

/// One bit of one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegFlip {
    pub reg: usize,
    pub bit: u64,
}

impl RegFlip {
    /// Draw the register, then the bit.
    pub fn pick(rng: &mut Rng) -> RegFlip {
        let reg = rng.below(REGISTERS) as usize;
        let bit = rng.below(64);
        let bit = if reg == RFLAGS { RFLAGS_BITS[bit as usize % RFLAGS_BITS.len()] } else { bit };
        RegFlip { reg, bit }
    }

    /// What the injector reports it hit: register << 8 | bit.
    pub fn describe(self) -> u64 {
        (self.reg as u64) << 8 | self.bit
    }
}

/// A random 8-aligned word in the union of `ranges` (`[start, end)`, each 8-aligned), every
/// word equally likely; `None` if the ranges hold no word.
pub fn pick_word(rng: &mut Rng, ranges: &[(u64, u64)]) -> Option<u64> {
    let total: u64 = ranges.iter().map(|&(a, b)| b.saturating_sub(a)).sum();
    if total < 8 {
        return None;
    }
    let mut pick = rng.below(total / 8) * 8;
    for &(a, b) in ranges {
        let len = b.saturating_sub(a);
        if pick < len {
            return Some((a + pick) & !7);
        }
        pick -= len;
    }
    None
}

/// The value a `memflip` or `memword` writes over the word `old`: one bit flipped, or a new
/// random word.
pub fn new_word(kind: InjectKind, old: u64, rng: &mut Rng) -> u64 {
    if kind == InjectKind::MemFlip {
        old ^ 1 << rng.below(64)
    } else {
        rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_flips_stay_in_the_frame_and_the_arithmetic_flags() {
        let mut rng = Rng(3);
        let mut seen = [false; REGISTERS as usize];
        for _ in 0..2000 {
            let f = RegFlip::pick(&mut rng);
            seen[f.reg] = true;
            assert!(f.bit < 64);
            if f.reg == RFLAGS {
                assert!(RFLAGS_BITS.contains(&f.bit), "privileged flag {}", f.bit);
            }
            assert_eq!(f.describe(), (f.reg as u64) << 8 | f.bit);
        }
        assert!(seen.iter().all(|&s| s), "every register is a possible target");
        assert_eq!(RegFlip::pick(&mut Rng(9)), RegFlip::pick(&mut Rng(9)), "a seed fixes the choice");
    }

    #[test]
    fn words_are_picked_across_every_range_and_only_inside() {
        let ranges = [(0x1000, 0x1010), (0x8000, 0x8008), (0x9000, 0x9000)];
        let mut rng = Rng(1);
        let mut seen = [0u32; 3];
        for _ in 0..600 {
            let w = pick_word(&mut rng, &ranges).unwrap();
            let i = ranges.iter().position(|&(a, b)| (a..b).contains(&w)).expect("inside a range");
            assert_eq!(w % 8, 0);
            seen[i] += 1;
        }
        assert!(seen[0] > seen[1] && seen[1] > 0 && seen[2] == 0, "{seen:?}: weighted by size");
        assert_eq!(pick_word(&mut rng, &[]), None);
        assert_eq!(pick_word(&mut rng, &[(16, 20)]), None);
    }

    #[test]
    fn memflip_flips_one_bit_and_memword_draws_a_word() {
        let mut rng = Rng(5);
        for _ in 0..100 {
            assert_eq!((new_word(InjectKind::MemFlip, 0xabcd, &mut rng) ^ 0xabcd).count_ones(), 1);
        }
        let (mut a, mut b) = (Rng(8), Rng(8));
        assert_eq!(new_word(InjectKind::MemWord, 1, &mut a), b.next_u64());
    }
}
