//! The kernel's frame pool: the core allocator plus zeroing through the identity map.

use axolotl_abi::{Error, PAGE_SIZE};
use axolotl_kcore::frames::FrameAllocator;

pub struct Frames {
    pool: FrameAllocator,
}

impl Frames {
    pub const fn new() -> Self {
        Frames { pool: FrameAllocator::new() }
    }

    pub fn add_free(&mut self, start: u64, end: u64) {
        self.pool.add_free(start, end);
    }

    pub fn reserve(&mut self, start: u64, end: u64) {
        self.pool.reserve(start, end);
    }

    /// A zeroed frame, or `OutOfResources`.
    pub fn alloc_zeroed(&mut self) -> Result<u64, Error> {
        self.alloc_filled(0, &[])
    }

    /// A frame holding `src` at byte `at` and zeros around it, each byte written once (a
    /// loader's page is not zeroed first and then overwritten); `InvalidArgument` if `src`
    /// does not fit, `OutOfResources` if no frame is free.
    pub fn alloc_filled(&mut self, at: usize, src: &[u8]) -> Result<u64, Error> {
        let page = PAGE_SIZE as usize;
        let end = at.checked_add(src.len()).filter(|&e| e <= page).ok_or(Error::InvalidArgument)?;
        let f = self.pool.alloc().ok_or(Error::OutOfResources)?;
        let p = f as *mut u8;
        // SAFETY: the frame was free, so nothing references it; RAM below 1 GiB is identity
        // mapped; `at <= end <= PAGE_SIZE`, so the three writes cover the frame exactly, and
        // `src` (kernel or module memory) cannot overlap a free frame.
        unsafe {
            core::ptr::write_bytes(p, 0, at);
            core::ptr::copy_nonoverlapping(src.as_ptr(), p.add(at), src.len());
            core::ptr::write_bytes(p.add(end), 0, page - end);
        }
        Ok(f)
    }

    /// `n` physically contiguous zeroed frames (at most 64), for DMA; the first one's address.
    pub fn contiguous_zeroed(&mut self, n: usize) -> Result<u64, Error> {
        let base = self.pool.alloc_contiguous(n).ok_or(Error::OutOfResources)?;
        // SAFETY: the frames were free, so nothing references them; RAM below 1 GiB is
        // identity mapped, and the run lies inside it.
        unsafe { core::ptr::write_bytes(base as *mut u8, 0, n * PAGE_SIZE as usize) };
        Ok(base)
    }

    /// Return a frame. A failure here is a kernel bug (double free); it is reported, not hidden.
    pub fn free(&mut self, frame: u64) {
        if let Err(e) = self.pool.free(frame) {
            crate::kprintln!("BUG: freeing frame {frame:#x}: {e:?}");
        }
    }

    pub fn free_count(&self) -> usize {
        self.pool.free_count()
    }
}
