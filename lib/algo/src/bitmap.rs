//! A first-fit allocator of runs of bits: bit set = unit in use.
//!
//! The same code hands out physical frames (unit 4 KiB), virtual slots (1 MiB) and heap
//! granules (16 bytes) inside every task's arena. The bitmap is borrowed, so the caller decides
//! where it lives (a static for frames, the head of the arena for a heap).

/// A bitmap over `units` units, borrowed from the caller.
pub struct Bitmap<'a> {
    words: &'a mut [u64],
    units: usize,
}

impl<'a> Bitmap<'a> {
    /// `words` must hold at least `units` bits; bits past `units` are never handed out.
    pub fn new(words: &'a mut [u64], units: usize) -> Self {
        let units = units.min(words.len() * 64);
        Bitmap { words, units }
    }

    pub fn units(&self) -> usize {
        self.units
    }

    pub fn is_set(&self, i: usize) -> bool {
        i < self.units && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Mark `[start, start + n)` used (true) or free (false); units past the end are ignored.
    /// A word at a time: a heap allocation of a few KiB is hundreds of units.
    pub fn mark(&mut self, start: usize, n: usize, used: bool) {
        let end = start.saturating_add(n).min(self.units);
        let mut i = start;
        while i < end {
            let (w, lo) = (i / 64, i % 64);
            let hi = (end - w * 64).min(64);
            let mask = (u64::MAX >> (64 - (hi - lo))) << lo;
            if used {
                self.words[w] |= mask;
            } else {
                self.words[w] &= !mask;
            }
            i = w * 64 + hi;
        }
    }

    /// The first unit in `[from, to)` that is used (`used`) or free (`!used`), a word at a
    /// time; `to` is at most `units`.
    fn first(&self, from: usize, to: usize, used: bool) -> Option<usize> {
        let mut i = from;
        while i < to {
            let w = i / 64;
            let word = if used { self.words[w] } else { !self.words[w] };
            let found = word >> (i % 64);
            if found != 0 {
                let at = i + found.trailing_zeros() as usize;
                return (at < to).then_some(at);
            }
            i = (w + 1) * 64;
        }
        None
    }

    /// Units in use.
    pub fn used(&self) -> usize {
        let full: usize = self.words[..self.units / 64].iter().map(|w| w.count_ones() as usize).sum();
        let tail = self.units % 64;
        let part =
            if tail == 0 { 0 } else { (self.words[self.units / 64] & ((1u64 << tail) - 1)).count_ones() };
        full + part as usize
    }

    /// Find and mark one free unit, looking from word `from_word` on (a caller's hint that
    /// every word below it is full); lowest first. A word at a time: the frame allocators call
    /// this on every page they hand out.
    pub fn alloc_one(&mut self, from_word: usize) -> Option<usize> {
        for w in from_word..self.units.div_ceil(64) {
            let free = !self.words[w];
            if free != 0 {
                let i = w * 64 + free.trailing_zeros() as usize;
                if i >= self.units {
                    return None;
                }
                self.words[w] |= 1 << (i % 64);
                return Some(i);
            }
        }
        None
    }

    /// Find and mark `n` free units in a row whose first index is a multiple of `align`;
    /// returns the first index. Lowest addresses first, so freed units are reused.
    pub fn alloc(&mut self, n: usize, align: usize) -> Option<usize> {
        let align = align.max(1);
        if n == 0 || n > self.units {
            return None;
        }
        if n == 1 {
            return self.alloc_one(0);
        }
        let mut start = 0;
        while start + n <= self.units {
            match self.first(start, start + n, true) {
                None => {
                    self.mark(start, n, true);
                    return Some(start);
                }
                // Past the whole used run: no start inside it can be free.
                Some(busy) => start = self.first(busy, self.units, false)?.div_ceil(align) * align,
            }
        }
        None
    }

    /// Free `[start, start + n)`. Returns false (and frees nothing) if any unit was already free:
    /// a double free or a bad pointer is reported, not silently accepted.
    pub fn free(&mut self, start: usize, n: usize) -> bool {
        if start.checked_add(n).is_none_or(|end| end > self.units)
            || self.first(start, start + n, false).is_some()
        {
            return false;
        }
        self.mark(start, n, false);
        true
    }
}

/// Where a [`Bitmap`] that gives units out one at a time (both kernels' frame allocators) may
/// have a free one: every word below the hint is full. A unit is looked for from there, not
/// from word 0 past every full word (on the libos, about 20 words of used frames with the usual
/// tasks, which made each restart's ~50 frames cost ~12,800 instructions more, and by a number
/// that moved with what the other tasks held).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hint(usize);

impl Hint {
    /// Anything may be free (what the owner says after marking ranges free).
    pub const fn new() -> Hint {
        Hint(0)
    }

    /// Find and mark one free unit of `bits`, the lowest ([`Bitmap::alloc_one`] from the
    /// hint); the hint moves to its word. None free: the hint moves past the end, so that
    /// until a unit is freed each request fails without a search.
    #[inline]
    pub fn alloc(&mut self, bits: &mut Bitmap<'_>) -> Option<usize> {
        let unit = bits.alloc_one(self.0);
        self.0 = unit.map_or(usize::MAX, |u| u / 64);
        unit
    }

    /// Unit `unit` was freed: it may lie below the hint.
    #[inline]
    pub fn freed(&mut self, unit: usize) {
        self.0 = self.0.min(unit / 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_finds_the_lowest_free_unit_without_looking_below_it() {
        let mut words = [0u64; 4];
        let mut hint = Hint::new();
        let taken: [usize; 130] =
            core::array::from_fn(|_| hint.alloc(&mut Bitmap::new(&mut words, 200)).unwrap());
        assert!(taken.iter().enumerate().all(|(i, &u)| i == u), "lowest first");
        assert_eq!(hint, Hint(2));
        assert!(Bitmap::new(&mut words, 200).free(5, 1));
        hint.freed(5);
        assert_eq!(hint.alloc(&mut Bitmap::new(&mut words, 200)), Some(5), "a freed unit below it");
        assert_eq!(hint.alloc(&mut Bitmap::new(&mut words, 200)), Some(130));
        while hint.alloc(&mut Bitmap::new(&mut words, 200)).is_some() {}
        assert_eq!(hint, Hint(usize::MAX), "exhausted: no search until a free");
        assert_eq!(hint.alloc(&mut Bitmap::new(&mut words, 200)), None);
        assert!(Bitmap::new(&mut words, 200).free(199, 1));
        hint.freed(199);
        assert_eq!(hint.alloc(&mut Bitmap::new(&mut words, 200)), Some(199));
    }

    /// The word-at-a-time bitmap against the bit-at-a-time one it replaced: the same answers
    /// and the same bits, over random allocations and frees of every size and alignment.
    #[test]
    fn words_at_a_time_do_what_bits_at_a_time_did() {
        struct Bits {
            bits: [bool; 300],
        }
        impl Bits {
            fn alloc(&mut self, n: usize, align: usize) -> Option<usize> {
                if n == 0 || n > 300 {
                    return None;
                }
                let align = if n == 1 { 1 } else { align.max(1) };
                let at = (0..=300 - n).step_by(align).find(|&s| self.bits[s..s + n].iter().all(|b| !b))?;
                self.bits[at..at + n].fill(true);
                Some(at)
            }
            fn free(&mut self, start: usize, n: usize) -> bool {
                if start + n > 300 || self.bits[start..start + n].iter().any(|b| !b) {
                    return false;
                }
                self.bits[start..start + n].fill(false);
                true
            }
        }
        let mut rng = crate::rng::Rng(3);
        let mut w = [0u64; 5];
        let mut b = Bitmap::new(&mut w, 300);
        let mut r = Bits { bits: [false; 300] };
        for step in 0..20_000 {
            let n = [1, 2, 3, 63, 64, 65, 130][rng.below(7) as usize].min(1 + rng.below(140) as usize);
            if rng.below(3) == 0 {
                let start = rng.below(300) as usize;
                assert_eq!(b.free(start, n), r.free(start, n), "step {step}: free({start}, {n})");
            } else {
                let align = [1, 2, 8, 64, 128][rng.below(5) as usize];
                assert_eq!(b.alloc(n, align), r.alloc(n, align), "step {step}: alloc({n}, {align})");
            }
            assert!((0..300).all(|i| b.is_set(i) == r.bits[i]), "step {step}");
        }
    }

    #[test]
    fn a_run_aligned_past_a_word_is_aligned_even_after_full_words() {
        let mut w = [u64::MAX, 0, 0, 0];
        let mut b = Bitmap::new(&mut w, 256);
        assert_eq!(b.alloc(4, 128), Some(128), "not 64: the first word is full, but 64 is not aligned");
    }

    #[test]
    fn first_fit_reuses_freed_runs() {
        let mut w = [0u64; 2];
        let mut b = Bitmap::new(&mut w, 100);
        assert_eq!(b.alloc(10, 1), Some(0));
        assert_eq!(b.alloc(10, 1), Some(10));
        assert!(b.free(0, 10));
        assert_eq!(b.alloc(5, 1), Some(0));
        assert_eq!(b.alloc(6, 1), Some(20));
        assert_eq!(b.used(), 21);
    }

    #[test]
    fn alignment_and_exhaustion() {
        let mut w = [0u64; 2];
        let mut b = Bitmap::new(&mut w, 128);
        assert_eq!(b.alloc(1, 1), Some(0));
        assert_eq!(b.alloc(4, 64), Some(64));
        assert_eq!(b.alloc(64, 1), None);
        assert_eq!(b.alloc(63, 1), Some(1));
        assert_eq!(b.alloc(61, 1), None);
        assert_eq!(b.alloc(60, 1), Some(68));
        assert_eq!(b.used(), 128);
        assert_eq!(b.alloc(1, 1), None);
    }

    #[test]
    fn double_free_is_refused() {
        let mut w = [0u64; 1];
        let mut b = Bitmap::new(&mut w, 64);
        let a = b.alloc(3, 1).unwrap();
        assert!(b.free(a, 3));
        assert!(!b.free(a, 3));
        assert!(!b.free(60, 8));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn single_units_come_a_word_at_a_time_from_the_hint() {
        let mut w = [u64::MAX, 0b1011, 0];
        let mut b = Bitmap::new(&mut w, 130);
        assert_eq!(b.alloc_one(0), Some(66), "the first clear bit");
        assert_eq!(b.alloc_one(1), Some(68));
        assert_eq!(b.alloc_one(2), Some(128), "the hint skips words");
        assert_eq!(b.alloc_one(2), Some(129));
        assert_eq!(b.alloc_one(2), None, "bits past the end are never handed out");
        assert_eq!(b.alloc(1, 1), Some(69));
    }

    #[test]
    fn units_past_the_end_are_never_used() {
        let mut w = [0u64; 1];
        let mut b = Bitmap::new(&mut w, 10);
        assert_eq!(b.alloc(10, 1), Some(0));
        assert_eq!(b.alloc(1, 1), None);
        assert_eq!(b.used(), 10);
    }
}
