//! The physical frame allocator: a bitmap over the first GiB, filled from the Multiboot2
//! memory map. Frames below the end of the image and the boot information stay reserved.

use crate::sync::Global;
use algo::bitmap::{Bitmap, Hint};

const MAX_FRAMES: usize = 1 << 18;

struct Frames {
    words: [u64; MAX_FRAMES / 64],
    units: usize,
    reserved: usize,
    /// Where a frame is looked for (`algo::bitmap::Hint`, as the microkernel's allocator).
    hint: Hint,
}

static FRAMES: Global<Frames> =
    Global::new(Frames { words: [u64::MAX; MAX_FRAMES / 64], units: 0, reserved: 0, hint: Hint::new() });

/// Make `[start, end)` (physical, page-aligned inward) available, above `floor`.
pub fn init(regions: impl Iterator<Item = (u64, u64)>, floor: u64) -> u64 {
    FRAMES.with(|f| {
        let mut top = 0;
        for (start, end) in regions {
            let s = start.max(floor).div_ceil(super::PAGE) as usize;
            let e = ((end / super::PAGE) as usize).min(MAX_FRAMES);
            if s < e {
                Bitmap::new(&mut f.words, MAX_FRAMES).mark(s, e - s, false);
                top = top.max(e);
            }
        }
        f.units = top;
        f.reserved = Bitmap::new(&mut f.words, top).used();
        top as u64 * super::PAGE
    })
}

/// A zeroed frame's physical address (identity mapped), or `None` when memory is exhausted.
pub fn alloc() -> Option<u64> {
    let frame = FRAMES.with(|f| f.hint.alloc(&mut Bitmap::new(&mut f.words, f.units)))?;
    let addr = frame as u64 * super::PAGE;
    // SAFETY: the frame was free, so nobody else uses it; RAM below 1 GiB is identity mapped
    // (read-only outside the image, hence the lifted protection).
    super::protect::unprotected(|| unsafe {
        core::ptr::write_bytes(addr as *mut u8, 0, super::PAGE as usize)
    });
    Some(addr)
}

/// `n` physically contiguous zeroed frames, never freed (a device's DMA region): the first
/// one's physical address (identity mapped).
pub fn alloc_run(n: usize) -> Option<u64> {
    let addr = FRAMES.with(|f| Bitmap::new(&mut f.words, f.units).alloc(n, 1))? as u64 * super::PAGE;
    // SAFETY: the frames were free, so nobody else uses them; RAM below 1 GiB is identity
    // mapped (read-only outside the image, hence the lifted protection).
    super::protect::unprotected(|| unsafe {
        core::ptr::write_bytes(addr as *mut u8, 0, n * super::PAGE as usize)
    });
    Some(addr)
}

pub fn free(addr: u64) {
    let frame = (addr / super::PAGE) as usize;
    let ok = FRAMES.with(|f| {
        let freed = Bitmap::new(&mut f.words, f.units).free(frame, 1);
        if freed {
            f.hint.freed(frame);
        }
        freed
    });
    if !ok {
        crate::serial::kprintln!("frame {:#x} freed twice or never allocated (ignored)", addr);
    }
}

/// Frames handed out since boot and not yet freed.
pub fn in_use() -> usize {
    FRAMES.with(|f| Bitmap::new(&mut f.words, f.units).used() - f.reserved)
}
