//! Memory: physical frames, the page tables, [`MappedPages`] (owned mappings that unmap on
//! drop), the heaps (one arena per task, one for the kernel) and the write protection that
//! keeps each task's writes in its own memory.
//!
//! ```text
//!  virtual = physical below 1 GiB     the image: 4 KiB pages, text r-x, rodata r--, data rw-
//!                                     (NX), but the restart recipes r-- once the scheduler
//!                                     runs (`recipes`); guard pages and page 0 unmapped; the
//!                                     rest of RAM: 2 MiB pages r-- NX (page tables, frames)
//!  256 GiB + n·2 MiB                  slot n (one page-directory entry each): one MappedPages
//!                                     each — task stacks (guard page unmapped below), task
//!                                     heap arenas, the ramdisk's blocks; writable only while
//!                                     its task runs (`protect`)
//! ```

pub mod frames;
pub mod heap;
pub mod mapped;
pub mod paging;
pub mod protect;
pub mod recipes;

pub use mapped::MappedPages;

pub const PAGE: u64 = 4096;

/// Frames and heap bytes in use, for `mem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub frames: usize,
    pub kernel_heap: usize,
    pub slots: usize,
    /// Bytes of restart recipes (`recipes`), and whether their pages are read-only now.
    pub recipes: usize,
    pub recipes_read_only: bool,
}

pub fn usage() -> Usage {
    let (recipes, recipes_read_only) = recipes::usage();
    Usage {
        frames: frames::in_use(),
        kernel_heap: heap::kernel_heap_in_use(),
        slots: mapped::slots_in_use(),
        recipes,
        recipes_read_only,
    }
}
