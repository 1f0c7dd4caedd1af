//! Page-table entry bits (4-level paging), as both kernels build their tables.

pub const PRESENT: u64 = 1;
pub const WRITABLE: u64 = 1 << 1;
pub const USER: u64 = 1 << 2;
/// A 2 MiB page (in a page directory entry).
pub const HUGE: u64 = 1 << 7;
pub const GLOBAL: u64 = 1 << 8;
/// Write-through and cache-disable: together, uncached (what device registers need; with the
/// PAT as the firmware leaves it, PCD|PWT selects UC).
pub const WRITE_THROUGH: u64 = 1 << 3;
pub const NO_CACHE: u64 = 1 << 4;
pub const NO_EXECUTE: u64 = 1 << 63;
/// The physical address bits of an entry.
pub const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
pub const PAGE_SIZE: u64 = 4096;
