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
        let f = self.pool.alloc().ok_or(Error::OutOfResources)?;
        // SAFETY: the frame was free, so nothing references it; RAM below 1 GiB is identity mapped.
        unsafe { core::ptr::write_bytes(f as *mut u8, 0, PAGE_SIZE as usize) };
        Ok(f)
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
