//! The heaps: one arena per task, one for the kernel, and the global allocator that routes
//! between them.
//!
//! An allocation goes to the arena of the task running now (the kernel's arena inside the kernel's
//! own bookkeeping, see [`in_core`]); a free goes to the arena that contains the address. When
//! a task is killed its arena — a [`super::MappedPages`] held by the task table — is dropped
//! whole, so everything it allocated is released without running a single destructor: release
//! does not depend on unwinding, which this target does not have.
//!
//! ```text
//!  arena:  [ granules: u64 | bitmap (1 bit per 16 bytes) | allocations ...               ]
//! ```
//! Anything that outlives a task or is shared between tasks (task records, channels) must be
//! allocated in the kernel arena; the kernel's own constructors do that.

use crate::sync::{critical, Global};
use algo::bitmap::Bitmap;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

const GRANULE: usize = 16;
const KERNEL_HEAP: usize = 2 << 20;
/// A task arena fits in one page slot.
const TASK_ARENA_MAX: u64 = crate::mem::paging::SLOT_SIZE;

#[repr(C, align(4096))]
struct KernelHeap([u8; KERNEL_HEAP]);

static mut KERNEL_ARENA: KernelHeap = KernelHeap([0; KERNEL_HEAP]);

/// Base of the arena allocations go to now; 0 = the kernel arena.
static CURRENT: AtomicU64 = AtomicU64::new(0);

fn kernel_base() -> u64 {
    core::ptr::addr_of!(KERNEL_ARENA) as u64
}

/// An arena laid out in `len` bytes at `base`: header and bitmap at the start.
struct Arena {
    base: u64,
}

impl Arena {
    fn layout(len: usize) -> (usize, usize) {
        let granules = len / GRANULE;
        let words = granules.div_ceil(64);
        (granules, words)
    }

    /// Format `len` bytes at `base` as an empty arena.
    ///
    /// # Safety
    /// `[base, base + len)` must be mapped, writable and owned by the caller.
    unsafe fn format(base: u64, len: usize) {
        let (granules, words) = Self::layout(len);
        // SAFETY: the caller's contract; the header fits (len is at least a few pages).
        unsafe {
            (base as *mut u64).write(granules as u64);
            core::ptr::write_bytes((base + 8) as *mut u64, 0, words);
        }
        let a = Arena { base };
        let head = (8 + words * 8).div_ceil(GRANULE);
        a.with_bitmap(|b| b.mark(0, head, true));
    }

    fn with_bitmap<R>(&self, f: impl FnOnce(&mut Bitmap<'_>) -> R) -> R {
        // SAFETY: `base` is a formatted, mapped arena (the kernel arena, or the running task's,
        // or the one containing a pointer being freed); interrupts are masked by our callers.
        let granules = unsafe { (self.base as *const u64).read() } as usize;
        let words = granules.div_ceil(64);
        // SAFETY: the bitmap follows the header inside the arena and is only used here.
        let slice = unsafe { core::slice::from_raw_parts_mut((self.base + 8) as *mut u64, words) };
        f(&mut Bitmap::new(slice, granules))
    }

    fn alloc(&self, layout: Layout) -> *mut u8 {
        let n = layout.size().div_ceil(GRANULE).max(1);
        let align = (layout.align() / GRANULE).max(1);
        match self.with_bitmap(|b| b.alloc(n, align)) {
            Some(g) => (self.base as usize + g * GRANULE) as *mut u8,
            None => core::ptr::null_mut(),
        }
    }

    fn free(&self, ptr: *mut u8, layout: Layout) {
        let g = (ptr as usize - self.base as usize) / GRANULE;
        let n = layout.size().div_ceil(GRANULE).max(1);
        self.with_bitmap(|b| b.free(g, n));
    }

    fn in_use(&self) -> usize {
        self.with_bitmap(|b| b.used()) * GRANULE
    }
}

pub fn init() {
    // SAFETY: the kernel heap is a static this module alone uses.
    unsafe { Arena::format(kernel_base(), KERNEL_HEAP) };
}

/// A task's heap: pages it owns, formatted as an arena. Dropping it releases everything.
pub struct TaskHeap {
    pages: super::MappedPages,
}

impl TaskHeap {
    pub fn new(pages: usize) -> Result<TaskHeap, super::mapped::MapError> {
        let pages = super::MappedPages::alloc_task(pages, false)?;
        // SAFETY: the pages are fresh, mapped and owned by `pages`; writable with protection
        // lifted (a new task's heap is not the running task's).
        super::protect::unprotected(|| unsafe { Arena::format(pages.start(), pages.len()) });
        let entry = (pages.start(), pages.len() as u64);
        let registered = LIVE.with(|l| match l.iter_mut().find(|e| e.0 == 0) {
            Some(e) => {
                *e = entry;
                true
            }
            None => false,
        });
        if !registered {
            return Err(super::mapped::MapError::OutOfMemory);
        }
        Ok(TaskHeap { pages })
    }

    pub fn base(&self) -> u64 {
        self.pages.start()
    }

    pub fn pages(&self) -> &super::MappedPages {
        &self.pages
    }

    pub fn in_use(&self) -> usize {
        critical(|| Arena { base: self.base() }.in_use())
    }

    /// Call `f` with the offset and length of every run of free granules (bytes nothing
    /// allocated holds: what a freed allocation left there is no one's state).
    pub fn free_runs(&self, mut f: impl FnMut(usize, usize)) {
        critical(|| {
            // SAFETY: the arena was formatted by `new` and stays mapped while `self` lives; its
            // header and bitmap are read only, under `critical` (no allocation meanwhile).
            let granules = unsafe { (self.base() as *const u64).read() } as usize;
            let bit = |g: usize| {
                // SAFETY: as above; `g / 64` is below the bitmap's word count.
                let w = unsafe { ((self.base() + 8) as *const u64).add(g / 64).read() };
                w >> (g % 64) & 1 == 1
            };
            let mut g = 0;
            while g < granules {
                if bit(g) {
                    g += 1;
                    continue;
                }
                let start = g;
                while g < granules && !bit(g) {
                    g += 1;
                }
                f(start * GRANULE, (g - start) * GRANULE);
            }
        })
    }
}

impl Drop for TaskHeap {
    fn drop(&mut self) {
        let base = self.base();
        LIVE.with(|l| l.iter_mut().filter(|e| e.0 == base).for_each(|e| *e = (0, 0)));
        if CURRENT.load(Ordering::Relaxed) == base {
            switch_to(0);
        }
    }
}

/// Route allocations to the arena at `base` (0: the kernel's) from now on; returns the old one.
pub fn switch_to(base: u64) -> u64 {
    CURRENT.swap(base, Ordering::Relaxed)
}

/// Run `f` with allocations going to the kernel arena (for objects that outlive a task).
pub fn in_core<R>(f: impl FnOnce() -> R) -> R {
    let old = switch_to(0);
    let r = f();
    switch_to(old);
    r
}

pub fn kernel_heap_in_use() -> usize {
    critical(|| Arena { base: kernel_base() }.in_use())
}

/// The arena a free of `ptr` goes to. While a task runs, only its own arena: a cell never frees
/// kernel memory (its objects are dropped by the kernel), so a corrupted pointer in a cell cannot
/// free the kernel's heap from under it.
fn arena_of(ptr: u64) -> Option<Arena> {
    let current = CURRENT.load(Ordering::Relaxed);
    if current != 0 {
        return (ptr >= current && ptr < current + TASK_ARENA_MAX).then_some(Arena { base: current });
    }
    if (kernel_base()..kernel_base() + KERNEL_HEAP as u64).contains(&ptr) {
        return Some(Arena { base: kernel_base() });
    }
    // SAFETY: interrupts are masked by our callers (GlobalAlloc runs inside `critical`), and
    // LIVE is only touched here and by TaskHeap's constructor and destructor, never nested.
    let live = unsafe { LIVE.get_in_trap() };
    live.iter().find(|&&(b, len)| b != 0 && (b..b + len).contains(&ptr)).map(|&(base, _)| Arena { base })
}

/// Live task arenas: (base, length). Not in the task table, because a free may happen while the
/// task table is borrowed.
static LIVE: Global<[(u64, u64); 64]> = Global::new([(0, 0); 64]);

struct Router;

// SAFETY: allocations come from arenas whose bitmaps are updated with interrupts masked; a
// block is handed out once until freed; frees go to the arena that contains the pointer.
unsafe impl GlobalAlloc for Router {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        critical(|| {
            let base = CURRENT.load(Ordering::Relaxed);
            Arena { base: if base == 0 { kernel_base() } else { base } }.alloc(layout)
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // No arena: it died with its task, and the memory is already gone. The kernel freeing
        // into a task's arena (not the running one's, which alone is writable) lifts protection.
        critical(|| match arena_of(ptr as u64) {
            Some(a) if a.base == kernel_base() || a.base == CURRENT.load(Ordering::Relaxed) => {
                a.free(ptr, layout)
            }
            Some(a) => super::protect::unprotected(|| a.free(ptr, layout)),
            None => {}
        })
    }
}

#[global_allocator]
static ROUTER: Router = Router;
