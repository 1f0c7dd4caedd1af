//! `virtio_drivers::Hal` over a DMA region and the device's mapped windows.
//!
//! Every buffer the crate shares with the device goes through a bounce buffer in the DMA
//! region: the driver's buffers (and the request headers the crate keeps on its stack) are in
//! memory whose physical address the driver does not know, and need not be contiguous.
//! `share` copies a buffer in, `unshare` copies what the device wrote back out.

use crate::dma::{Pages, Region, PAGE};
use core::marker::PhantomData;
use core::ptr::NonNull;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// A device window: a BAR (or part of one) mapped for the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub phys: u64,
    pub virt: usize,
    pub size: u64,
}

/// What the HAL hands out: the DMA region and the device windows.
pub struct Resources {
    pages: Option<Pages>,
    windows: [Option<Window>; 6],
}

impl Resources {
    pub const fn new() -> Resources {
        Resources { pages: None, windows: [None; 6] }
    }

    /// The DMA region, which must be mapped writable at `region.virt`, lie physically at
    /// `region.phys` and be zeroed: what the HAL hands out from now on.
    pub fn install_dma(&mut self, region: Region) {
        self.pages = Some(Pages::new(region));
    }

    /// A mapped window of device memory; false if six are installed already.
    pub fn install_window(&mut self, w: Window) -> bool {
        match self.windows.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(w);
                true
            }
            None => false,
        }
    }

    /// DMA pages in use (bounce buffers and queues): a leak shows here.
    pub fn dma_pages_used(&self) -> usize {
        self.pages.as_ref().map_or(0, Pages::used)
    }

    fn window_of(&self, phys: u64, size: usize) -> Option<usize> {
        self.windows.iter().flatten().find_map(|w| {
            let off = phys.checked_sub(w.phys)?;
            (off.checked_add(size as u64)? <= w.size).then_some(w.virt + off as usize)
        })
    }
}

impl Default for Resources {
    fn default() -> Self {
        Self::new()
    }
}

/// A driver's [`Resources`] in a static that outlives its incarnations (the libos: one address
/// space, so a restarted driver finds its predecessor's statics). An incarnation that died in
/// the middle of a HAL call left the lock held; the next one takes it over instead of waiting
/// for ever. On the microkernel each incarnation has a fresh address space and the takeover
/// never finds the lock held.
pub struct Shared(spin::Mutex<Resources>);

impl Shared {
    pub const fn new() -> Shared {
        Shared(spin::Mutex::new(Resources::new()))
    }

    /// Called by a new incarnation before its first HAL call: the resources, emptied, whatever
    /// the last incarnation left.
    pub fn take_over(&self) -> spin::MutexGuard<'_, Resources> {
        if self.0.is_locked() {
            // SAFETY: a driver is one task, and this runs before its new incarnation makes any
            // HAL call; the previous incarnation is stopped and can never run again. So the
            // holder of a held lock is dead, and no guard of it will be used or dropped.
            unsafe { self.0.force_unlock() };
        }
        let mut r = self.0.lock();
        *r = Resources::new();
        r
    }

    /// The lock the HAL takes (what [`Platform::resources`] returns).
    pub fn lock(&self) -> &spin::Mutex<Resources> {
        &self.0
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a driver keeps its [`Resources`]: a static of its own.
pub trait Platform {
    fn resources() -> &'static spin::Mutex<Resources>;
}

/// The HAL of a driver on platform `P`.
pub struct GlueHal<P>(PhantomData<P>);

fn pages_for(len: usize) -> usize {
    len.div_ceil(PAGE).max(1)
}

// SAFETY: `dma_alloc` hands out zeroed, page-aligned runs of the installed region, each to one
// owner until `dma_dealloc` (the bitmap in `Pages`); `mmio_phys_to_virt` only answers inside
// an installed window; `share` returns the device address of a bounce run holding the buffer,
// which nothing else uses until `unshare` frees it.
unsafe impl<P: Platform> Hal for GlueHal<P> {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let mut r = P::resources().lock();
        let run = r.pages.as_mut().and_then(|p| p.alloc(pages)).expect("DMA region exhausted");
        // SAFETY: the run is inside the installed region, mapped writable for this driver, and
        // was free, so no reference to it exists.
        unsafe { core::ptr::write_bytes(run.virt as *mut u8, 0, pages * PAGE) };
        (run.phys, NonNull::new(run.virt as *mut u8).expect("a mapped region is not at 0"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        let mut r = P::resources().lock();
        if r.pages.as_mut().is_some_and(|p| p.free(paddr, pages)) {
            0
        } else {
            -1
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let virt = P::resources().lock().window_of(paddr, size);
        // The crate asks only for ranges inside BARs the device named: one outside every mapped
        // window is a device (or driver) fault, and the driver stops here.
        NonNull::new(virt.expect("device memory outside every mapped window") as *mut u8)
            .expect("a mapped window is not at 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let len = buffer.len();
        let mut r = P::resources().lock();
        let run = r.pages.as_mut().and_then(|p| p.alloc(pages_for(len))).expect("DMA region exhausted");
        let bounce = run.virt as *mut u8;
        // SAFETY: the bounce run is ours (just allocated, mapped writable, `len` fits in it); the
        // caller promises `buffer` is valid and not accessed by anyone else during this call.
        unsafe {
            if direction == BufferDirection::DeviceToDriver {
                core::ptr::write_bytes(bounce, 0, len);
            } else {
                core::ptr::copy_nonoverlapping(buffer.as_ptr() as *const u8, bounce, len);
            }
        }
        run.phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let len = buffer.len();
        let mut r = P::resources().lock();
        let Some(pages) = r.pages.as_mut() else { return };
        let Some(bounce) = pages.virt_of(paddr, len) else { return };
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: `paddr` came from `share` of a buffer this long, so the bounce run holds
            // `len` bytes; the caller promises `buffer` is valid and exclusively ours now.
            unsafe { core::ptr::copy_nonoverlapping(bounce as *const u8, buffer.as_ptr() as *mut u8, len) };
        }
        pages.free(paddr, pages_for(len));
    }
}
