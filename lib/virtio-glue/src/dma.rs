//! A DMA region: physically contiguous pages a device may read and write, handed out a run of
//! pages at a time. Only the bookkeeping lives here (host-tested); the HAL does the memory work.

/// Most pages a region may have (one bit each in a word).
pub const MAX_PAGES: usize = 64;
pub const PAGE: usize = 4096;

/// Where a region lies, for the driver (`virt`) and for the device (`phys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub virt: usize,
    pub phys: u64,
    pub pages: usize,
}

/// The pages of a region in use.
#[derive(Debug)]
pub struct Pages {
    region: Region,
    used: u64,
}

/// A run of pages handed out: where it is for both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub virt: usize,
    pub phys: u64,
    pub pages: usize,
}

impl Pages {
    /// Manage `region` (at most [`MAX_PAGES`] pages; the rest is ignored).
    pub fn new(region: Region) -> Pages {
        Pages { region: Region { pages: region.pages.min(MAX_PAGES), ..region }, used: 0 }
    }

    pub fn region(&self) -> Region {
        self.region
    }

    /// Pages in use.
    pub fn used(&self) -> usize {
        self.used.count_ones() as usize
    }

    /// The lowest free run of `n` pages.
    pub fn alloc(&mut self, n: usize) -> Option<Run> {
        if n == 0 || n > self.region.pages {
            return None;
        }
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        let first = (0..=self.region.pages - n).find(|&i| self.used & (mask << i) == 0)?;
        self.used |= mask << first;
        Some(Run {
            virt: self.region.virt + first * PAGE,
            phys: self.region.phys + (first * PAGE) as u64,
            pages: n,
        })
    }

    /// Return a run by its physical address; false (and nothing freed) if it is not a run of
    /// this region that is in use: a double free is reported, not accepted.
    pub fn free(&mut self, phys: u64, n: usize) -> bool {
        let Some(off) = phys.checked_sub(self.region.phys) else { return false };
        if off % PAGE as u64 != 0 || n == 0 {
            return false;
        }
        let first = (off / PAGE as u64) as usize;
        if first + n > self.region.pages {
            return false;
        }
        let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 } << first;
        if self.used & mask != mask {
            return false;
        }
        self.used &= !mask;
        true
    }

    /// The driver's address of device address `phys` inside the region, for `len` bytes.
    pub fn virt_of(&self, phys: u64, len: usize) -> Option<usize> {
        let off = phys.checked_sub(self.region.phys)? as usize;
        (off.checked_add(len)? <= self.region.pages * PAGE).then_some(self.region.virt + off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(n: usize) -> Pages {
        Pages::new(Region { virt: 0x1_0000_0000, phys: 0x20_0000, pages: n })
    }

    #[test]
    fn runs_are_lowest_first_and_map_both_ways() {
        let mut p = pages(8);
        let a = p.alloc(2).unwrap();
        assert_eq!(a, Run { virt: 0x1_0000_0000, phys: 0x20_0000, pages: 2 });
        let b = p.alloc(1).unwrap();
        assert_eq!(b.phys, 0x20_2000);
        assert_eq!(p.virt_of(b.phys + 12, 4), Some(b.virt + 12));
        assert_eq!(p.virt_of(0x20_0000 + 8 * 4096, 1), None, "past the region");
        assert_eq!(p.virt_of(0x1f_f000, 1), None, "before the region");
        assert!(p.free(a.phys, 2));
        assert_eq!(p.alloc(2).unwrap().phys, 0x20_0000, "freed pages are reused");
        assert_eq!(p.used(), 3);
    }

    #[test]
    fn exhaustion_and_bad_frees_are_refused() {
        let mut p = pages(4);
        assert!(p.alloc(5).is_none());
        assert!(p.alloc(0).is_none());
        let a = p.alloc(4).unwrap();
        assert!(p.alloc(1).is_none());
        assert!(!p.free(a.phys + 1, 1), "not page aligned");
        assert!(!p.free(a.phys + 4 * 4096, 1), "outside");
        assert!(p.free(a.phys, 4));
        assert!(!p.free(a.phys, 4), "double free");
        let mut big = pages(100);
        assert_eq!(big.region().pages, MAX_PAGES);
        assert!(big.alloc(64).is_some());
    }
}
