//! The physical frame allocator: one bit per 4 KiB frame below [`MAX_PHYS`], in the bitmap
//! both personalities allocate frames with (`algo::bitmap`).
//!
//! Frames start out reserved; the boot code frees the usable ranges of the Multiboot2 memory map
//! and then reserves what is already taken (kernel image, modules, boot info). Freeing a frame
//! that is not allocated is reported instead of corrupting the pool, so a double free in the
//! kernel shows up as an error at the place it happens.

/// Highest physical address (exclusive) the kernel manages: it maps the first GiB one to one.
pub const MAX_PHYS: u64 = 1 << 30;
const FRAME: u64 = 4096;
const FRAMES: usize = (MAX_PHYS / FRAME) as usize;
const WORDS: usize = FRAMES / 64;

use algo::bitmap::{Bitmap, Hint};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not page aligned or lies beyond [`MAX_PHYS`].
    BadAddress,
    /// The frame is not currently allocated.
    NotAllocated,
}

/// A bitmap over every frame below [`MAX_PHYS`] (`algo::bitmap`: a set bit means in use).
pub struct FrameAllocator {
    used: [u64; WORDS],
    free_count: usize,
    /// Where the next search starts (every word below it is full).
    hint: Hint,
}

impl Default for FrameAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameAllocator {
    /// An allocator with every frame reserved.
    pub const fn new() -> Self {
        FrameAllocator { used: [u64::MAX; WORDS], free_count: 0, hint: Hint::new() }
    }

    fn bitmap(&mut self) -> Bitmap<'_> {
        Bitmap::new(&mut self.used, FRAMES)
    }

    /// Set frames `[first, last)` in use or free (boot only: it recounts the pool).
    fn mark(&mut self, first: u64, last: u64, used: bool) {
        if last > first {
            self.bitmap().mark(first as usize, (last - first) as usize, used);
        }
        self.free_count = FRAMES - self.bitmap().used();
        self.hint = Hint::new();
    }

    /// Mark the frames wholly inside `[start, end)` free (partial frames at the edges stay
    /// reserved). Addresses beyond [`MAX_PHYS`] are ignored.
    pub fn add_free(&mut self, start: u64, end: u64) {
        self.mark(start.div_ceil(FRAME), end.min(MAX_PHYS) / FRAME, false);
    }

    /// Mark every frame touching `[start, end)` reserved.
    pub fn reserve(&mut self, start: u64, end: u64) {
        if end > start {
            self.mark(start / FRAME, end.min(MAX_PHYS).div_ceil(FRAME), true);
        }
    }

    /// Take one free frame; returns its physical address.
    pub fn alloc(&mut self) -> Option<u64> {
        let frame = self.hint.alloc(&mut Bitmap::new(&mut self.used, FRAMES))?;
        self.free_count -= 1;
        Some(frame as u64 * FRAME)
    }

    /// Take `n` physically contiguous free frames (aligned to `n` rounded up to a power of
    /// two, at most 64 frames); returns the first one's address. For DMA, which devices do by
    /// physical address.
    pub fn alloc_contiguous(&mut self, n: usize) -> Option<u64> {
        if n == 0 || n > 64 {
            return None;
        }
        let first = self.bitmap().alloc(n, n.next_power_of_two())?;
        self.free_count -= n;
        Some(first as u64 * FRAME)
    }

    /// Return a frame taken with [`alloc`](Self::alloc).
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        if !addr.is_multiple_of(FRAME) || addr >= MAX_PHYS {
            return Err(FrameError::BadAddress);
        }
        let frame = (addr / FRAME) as usize;
        if !self.bitmap().free(frame, 1) {
            return Err(FrameError::NotAllocated);
        }
        self.free_count += 1;
        self.hint.freed(frame);
        Ok(())
    }

    /// Frames free right now.
    pub fn free_count(&self) -> usize {
        self.free_count
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    fn pool() -> Box<FrameAllocator> {
        Box::new(FrameAllocator::new())
    }

    #[test]
    fn starts_empty_and_hands_out_only_freed_ranges() {
        let mut a = pool();
        assert_eq!(a.alloc(), None);
        a.add_free(0x10_0000, 0x10_3000);
        assert_eq!(a.free_count(), 3);
        assert_eq!(a.alloc(), Some(0x10_0000));
        assert_eq!(a.alloc(), Some(0x10_1000));
        assert_eq!(a.alloc(), Some(0x10_2000));
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn partial_frames_at_the_edges_stay_reserved() {
        let mut a = pool();
        a.add_free(0x1001, 0x3fff);
        assert_eq!(a.free_count(), 1);
        assert_eq!(a.alloc(), Some(0x2000));
    }

    #[test]
    fn reserve_punches_holes_covering_partial_frames() {
        let mut a = pool();
        a.add_free(0, 0x10000);
        a.reserve(0x2800, 0x4001);
        assert_eq!(a.free_count(), 16 - 3);
        let got: std::vec::Vec<u64> = std::iter::from_fn(|| a.alloc()).collect();
        assert!(!got.contains(&0x2000) && !got.contains(&0x3000) && !got.contains(&0x4000));
        assert_eq!(got.len(), 13);
    }

    #[test]
    fn double_free_and_bad_addresses_are_errors() {
        let mut a = pool();
        a.add_free(0x5000, 0x6000);
        let f = a.alloc().unwrap();
        assert_eq!(a.free(f), Ok(()));
        assert_eq!(a.free(f), Err(FrameError::NotAllocated));
        assert_eq!(a.free(f + 1), Err(FrameError::BadAddress));
        assert_eq!(a.free(MAX_PHYS), Err(FrameError::BadAddress));
        assert_eq!(a.free_count(), 1);
    }

    #[test]
    fn freed_frames_below_the_hint_are_found_again() {
        let mut a = pool();
        a.add_free(0, 64 * 4096 * 3);
        let frames: std::vec::Vec<u64> = (0..150).map(|_| a.alloc().unwrap()).collect();
        a.free(frames[3]).unwrap();
        assert_eq!(a.alloc(), Some(frames[3]));
    }

    #[test]
    fn contiguous_runs_are_aligned_and_skip_used_frames() {
        let mut a = pool();
        a.add_free(0, 64 * 4096 * 4);
        let single = a.alloc().unwrap();
        assert_eq!(single, 0);
        let run = a.alloc_contiguous(32).unwrap();
        assert_eq!(run % (32 * 4096), 0);
        assert!(run >= 32 * 4096, "frame 0 is taken, so the run starts at the next aligned place");
        assert_eq!(a.free_count(), 256 - 33);
        for f in (run..run + 32 * 4096).step_by(4096) {
            assert_eq!(a.free(f), Ok(()));
        }
        assert_eq!(a.alloc_contiguous(0), None);
        assert_eq!(a.alloc_contiguous(65), None);
        assert_eq!(a.alloc_contiguous(512), None);
    }

    #[test]
    fn memory_beyond_the_managed_range_is_ignored() {
        let mut a = pool();
        a.add_free(MAX_PHYS - 4096, MAX_PHYS + (1 << 20));
        assert_eq!(a.free_count(), 1);
    }
}
