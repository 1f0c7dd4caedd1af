//! Page tables: the kernel's mapping, shared by every address space, and per-task user spaces.
//!
//! ```text
//!  task PML4[0] ──► task PDPT ─┬─[0]──► kernel PD (shared, supervisor-only)
//!                              │          ├─ 2 MiB chunks holding the kernel image: 4 KiB pages
//!                              │          │   (boot+text r-x, rodata r--, data rw-, guard pages absent,
//!                              │          │    page 0 absent)
//!                              │          └─ the rest of RAM below 1 GiB: 2 MiB pages rw-, NX
//!                              └─[1..]──► user PDs ─► PTs ─► user pages (U bit)
//! ```
//!
//! Physical memory below 1 GiB is identity-mapped for the kernel, so a frame's physical address
//! is also where the kernel reads and writes it. User pointers are never dereferenced directly:
//! [`AddressSpace::copy_from_user`] and [`AddressSpace::copy_to_user`] walk the task's tables,
//! check present/user/writable on every level, and copy through the identity map.

use crate::frames::Frames;
use axolotl_abi::{Error, PAGE_SIZE, USER_BASE, USER_END};
use core::cell::UnsafeCell;

use x86::paging::{ADDRESS as ADDR, GLOBAL as G, HUGE as PS, PRESENT as P, USER as U};
pub use x86::paging::{NO_EXECUTE as NX, WRITABLE as W};
/// Software bit: the frame behind this entry belongs to the address space and is freed with it.
pub const OWNED: u64 = 1 << 9;
/// Software bit: the page is device memory (a PCI BAR). Never RAM: the kernel neither frees it
/// nor reads or writes it for a syscall ([`AddressSpace::translate`] refuses it).
pub const DEVICE: u64 = 1 << 10;
/// The flags of a device page: uncached, never executable.
pub const DEVICE_FLAGS: u64 = DEVICE | W | NX | x86::paging::NO_CACHE | x86::paging::WRITE_THROUGH;
const TWO_MIB: u64 = 2 << 20;

/// 2 MiB chunks mapped with 4 KiB pages (must cover the kernel image).
const SMALL_CHUNKS: usize = 4;

type Table = [u64; 512];

#[repr(C, align(4096))]
struct KernelTables {
    pml4: Table,
    pdpt: Table,
    pd: Table,
    pts: [Table; SMALL_CHUNKS],
}

struct KernelTablesCell(UnsafeCell<KernelTables>);
// SAFETY: written only during single-threaded boot; read by the MMU afterwards.
unsafe impl Sync for KernelTablesCell {}

static KERNEL: KernelTablesCell = KernelTablesCell(UnsafeCell::new(KernelTables {
    pml4: [0; 512],
    pdpt: [0; 512],
    pd: [0; 512],
    pts: [[0; 512]; SMALL_CHUNKS],
}));

extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
    static __kstack_guard: u8;
    static __dfstack_guard: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The kernel image's extent, from the linker script.
pub fn kernel_image() -> (u64, u64) {
    // SAFETY: linker-defined symbols; only their addresses are taken.
    unsafe { (sym(&__kernel_start), sym(&__kernel_end)) }
}

/// A page table frame, through the identity map.
///
/// # Safety
/// `phys` must be a page-table frame owned by the paging code, not aliased by a live reference.
unsafe fn table(phys: u64) -> &'static mut Table {
    // SAFETY: per the contract; identity mapping makes the physical address usable.
    unsafe { &mut *(phys as *mut Table) }
}

/// Build the kernel mapping for RAM up to `ram_top` and switch to it.
pub fn init(ram_top: u64) {
    // SAFETY: linker symbols (addresses only).
    let (start, text_end, ro_end, end, guards) = unsafe {
        (
            sym(&__kernel_start),
            sym(&__text_end),
            sym(&__rodata_end),
            sym(&__kernel_end),
            [sym(&__kstack_guard), sym(&__dfstack_guard)],
        )
    };
    assert!(end <= SMALL_CHUNKS as u64 * TWO_MIB, "kernel image larger than the 4 KiB-mapped area");
    // SAFETY: single-threaded boot; nothing else references the kernel tables.
    let k = unsafe { &mut *KERNEL.0.get() };
    for (c, pt) in k.pts.iter_mut().enumerate() {
        for (i, e) in pt.iter_mut().enumerate() {
            let pa = c as u64 * TWO_MIB + i as u64 * PAGE_SIZE;
            let flags = if pa == 0 || guards.contains(&pa) || pa >= ram_top {
                0
            } else if pa < text_end && pa >= start {
                P | G
            } else if pa < ro_end && pa >= text_end {
                P | G | NX
            } else {
                P | W | G | NX
            };
            *e = if flags == 0 { 0 } else { pa | flags };
        }
        k.pd[c] = pt.as_ptr() as u64 | P | W;
    }
    let chunks = (ram_top.min(1 << 30) / TWO_MIB) as usize;
    for c in SMALL_CHUNKS..chunks {
        k.pd[c] = (c as u64 * TWO_MIB) | P | W | PS | G | NX;
    }
    k.pdpt[0] = k.pd.as_ptr() as u64 | P | W;
    k.pml4[0] = k.pdpt.as_ptr() as u64 | P | W;
    // SAFETY: the new tables map the running kernel (code, data, stack) at the same addresses;
    // CR4.PGE lets kernel entries (G) survive address-space switches.
    unsafe {
        use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
        use x86_64::structures::paging::PhysFrame;
        use x86_64::PhysAddr;
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
        Cr3::write(PhysFrame::containing_address(PhysAddr::new(k.pml4.as_ptr() as u64)), Cr3Flags::empty());
    }
}

fn kernel_pd_phys() -> u64 {
    // SAFETY: only the address is taken.
    unsafe { (*KERNEL.0.get()).pd.as_ptr() as u64 }
}

/// Switch to the kernel-only address space (used while idle and before the first task).
pub fn load_kernel_space() {
    // SAFETY: only the address is taken.
    let pml4 = unsafe { (*KERNEL.0.get()).pml4.as_ptr() as u64 };
    load_cr3(pml4);
}

fn load_cr3(pml4: u64) {
    let cur: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cur, options(nomem, nostack, preserves_flags)) };
    // The kernel writes CR3 with a bare table address (no PCID, no cache bits), so comparing
    // the whole register is enough; a boot value with flags only costs one needless reload.
    if cur != pml4 {
        // SAFETY: `pml4` is a live top-level table, and every address space maps the kernel
        // identically (shared kernel PD), so the code running now stays mapped.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) pml4, options(nostack, preserves_flags)) };
    }
}

/// Point the page-table entry at physical address `pte` (from [`AddressSpace::leaf_entry`]) to
/// `frame` with user read/write access, and flush the TLB entry.
///
/// # Safety
/// `pte` must come from `leaf_entry` of a live address space, `vaddr` be the address it maps,
/// and `frame` a frame of RAM the task may read and write.
#[inline(always)]
pub unsafe fn map_user_page(pte: u64, vaddr: u64, frame: u64) {
    // SAFETY: the caller's contract.
    unsafe { write_user_entry(pte, vaddr, frame | P | U | W | NX) }
}

/// Clear the page-table entry at physical address `pte` (see [`map_user_page`]) and flush the
/// TLB entry.
///
/// # Safety
/// `pte` must come from `leaf_entry` of a live address space, and `vaddr` be the address it maps.
#[inline(always)]
pub unsafe fn clear_user_page(pte: u64, vaddr: u64) {
    // SAFETY: the caller's contract.
    unsafe { write_user_entry(pte, vaddr, 0) }
}

/// # Safety
/// As for [`map_user_page`].
#[inline(always)]
unsafe fn write_user_entry(pte: u64, vaddr: u64, value: u64) {
    // SAFETY: per the contract the entry belongs to a live space's page table (identity mapped).
    unsafe { (pte as *mut u64).write_volatile(value) };
    x86::cpu::invlpg(vaddr);
}

/// Show (`on`) or hide a user page from its task by its user bit, keeping it present (so
/// freeing the space still finds the frame): a touch of a hidden page by the task is a page
/// fault the state-spill audit takes.
///
/// # Safety
/// `pte` must come from [`AddressSpace::user_page`] of a live address space, and `vaddr` be
/// the address it maps.
pub unsafe fn set_user_bit(pte: u64, vaddr: u64, on: bool) {
    let e = pte as *mut u64;
    // SAFETY: per the contract the entry belongs to a live space's page table (identity mapped).
    unsafe {
        let value = e.read_volatile();
        e.write_volatile(if on { value | U } else { value & !U });
    }
    x86::cpu::invlpg(vaddr);
}

/// A range of a task's memory that the kernel checked: a pointer from user space is an
/// allegation until it becomes one of these (Hubris's `USlice`). Valid for the address space
/// that made it, within the syscall that made it.
#[derive(Clone, Copy, Debug)]
pub struct UserSlice {
    addr: u64,
    len: u64,
}

impl UserSlice {
    pub fn len(&self) -> usize {
        self.len as usize
    }
}

/// A user address space. Not `Clone`: exactly one owner frees it.
pub struct AddressSpace {
    pml4: u64,
}

impl AddressSpace {
    pub fn new(frames: &mut Frames) -> Result<Self, Error> {
        let pml4 = frames.alloc_zeroed()?;
        let pdpt = match frames.alloc_zeroed() {
            Ok(f) => f,
            Err(e) => {
                frames.free(pml4);
                return Err(e);
            }
        };
        // SAFETY: both frames were just allocated for this address space.
        unsafe {
            table(pml4)[0] = pdpt | P | W | U;
            table(pdpt)[0] = kernel_pd_phys() | P | W;
        }
        Ok(AddressSpace { pml4 })
    }

    pub fn load(&self) {
        load_cr3(self.pml4);
    }

    /// [`load`](Self::load) without first comparing CR3 with this space: for a switch from
    /// another task, whose space is always another (each task has its own).
    #[inline(always)]
    pub fn load_other(&self) {
        // SAFETY: as in `load_cr3`: a live space's top-level table, which maps the kernel.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) self.pml4, options(nostack, preserves_flags)) };
    }

    fn indices(vaddr: u64) -> [usize; 3] {
        [(vaddr >> 30) as usize & 511, (vaddr >> 21) as usize & 511, (vaddr >> 12) as usize & 511]
    }

    fn pdpt(&self) -> u64 {
        // SAFETY: pml4 is this space's table; entry 0 was set in `new`.
        unsafe { table(self.pml4)[0] & ADDR }
    }

    /// The leaf entry for `vaddr`, creating the intermediate tables on the way (with `frames`)
    /// or failing with `BadAddress` where one is missing (without).
    fn entry(&self, mut frames: Option<&mut Frames>, vaddr: u64) -> Result<*mut u64, Error> {
        if !(USER_BASE..USER_END).contains(&vaddr) {
            return Err(Error::BadAddress);
        }
        let mut t = self.pdpt();
        for idx in &Self::indices(vaddr)[..2] {
            // SAFETY: `t` is a table frame of this address space.
            let e = unsafe { &mut table(t)[*idx] };
            if *e & P == 0 {
                let Some(frames) = frames.as_deref_mut() else { return Err(Error::BadAddress) };
                *e = frames.alloc_zeroed()? | P | W | U;
            }
            t = *e & ADDR;
        }
        // SAFETY: as above.
        Ok(unsafe { &mut table(t)[Self::indices(vaddr)[2]] as *mut u64 })
    }

    /// Map the page at `vaddr` to `phys` with `flags` (P and U are added).
    pub fn map(&self, frames: &mut Frames, vaddr: u64, phys: u64, flags: u64) -> Result<(), Error> {
        let e = self.entry(Some(frames), vaddr)?;
        // SAFETY: `entry` returned a pointer into one of this space's tables.
        unsafe {
            if *e & P != 0 {
                return Err(Error::AlreadyDone);
            }
            *e = phys | flags | P | U;
        }
        Ok(())
    }

    /// Create the page tables down to `vaddr`'s entry and return the entry's physical address,
    /// so the kernel can later map and unmap that one page with a single store.
    pub fn leaf_entry(&self, frames: &mut Frames, vaddr: u64) -> Result<u64, Error> {
        self.entry(Some(frames), vaddr).map(|e| e as u64)
    }

    /// Allocate a zeroed frame and map it (the frame is freed with the space).
    pub fn map_new(&self, frames: &mut Frames, vaddr: u64, flags: u64) -> Result<u64, Error> {
        self.map_filled(frames, vaddr, flags, 0, &[])
    }

    /// Allocate a frame holding `src` at byte `at`, zeros elsewhere, and map it (freed with
    /// the space).
    pub fn map_filled(
        &self,
        frames: &mut Frames,
        vaddr: u64,
        flags: u64,
        at: usize,
        src: &[u8],
    ) -> Result<u64, Error> {
        let f = frames.alloc_filled(at, src)?;
        if let Err(e) = self.map(frames, vaddr, f, flags | OWNED) {
            frames.free(f);
            return Err(e);
        }
        Ok(f)
    }

    /// Whether `vaddr` is mapped.
    pub fn is_mapped(&self, vaddr: u64) -> bool {
        // SAFETY: pointer from `entry` into this space's tables.
        self.entry(None, vaddr).is_ok_and(|e| unsafe { *e } & P != 0)
    }

    /// The physical address of the page-table entry of a present user page at `vaddr`, and
    /// the RAM frame it maps (never device memory), for the state-spill audit.
    pub fn user_page(&self, vaddr: u64) -> Option<(u64, u64)> {
        let e = self.entry(None, vaddr).ok()?;
        // SAFETY: pointer from `entry` into this space's tables.
        let value = unsafe { *e };
        let frame = value & ADDR;
        let ram = value & (P | U) == P | U && value & DEVICE == 0 && frame < axolotl_kcore::frames::MAX_PHYS;
        ram.then_some((e as u64, frame))
    }

    /// Remove the mapping of `vaddr`; frees the frame if the space owns it.
    pub fn unmap(&self, frames: &mut Frames, vaddr: u64) {
        let Ok(e) = self.entry(None, vaddr) else { return };
        // SAFETY: pointer from `entry` into this space's tables.
        let old = unsafe { core::mem::replace(&mut *e, 0) };
        if old & (P | OWNED) == P | OWNED {
            frames.free(old & ADDR);
        }
        x86::cpu::invlpg(vaddr);
    }

    /// Physical address behind user address `vaddr`, if user code may access it (`write`: may
    /// write) and the kernel may copy through it: RAM it identity-maps, never device memory. A
    /// user pointer into a BAR, or anything else the kernel cannot reach, is `BadAddress` in the
    /// syscall that passed it, not a kernel fault.
    fn translate(&self, vaddr: u64, write: bool) -> Option<u64> {
        if !(USER_BASE..USER_END).contains(&vaddr) {
            return None;
        }
        let need = P | U | if write { W } else { 0 };
        let mut t = self.pdpt();
        for (level, idx) in Self::indices(vaddr).iter().enumerate() {
            // SAFETY: `t` is a table frame of this space (levels are only ever tables here).
            let e = unsafe { table(t)[*idx] };
            if e & need != need {
                return None;
            }
            if level == 2 {
                let frame = e & ADDR;
                if e & DEVICE != 0 || frame >= axolotl_kcore::frames::MAX_PHYS {
                    return None;
                }
                return Some(frame | (vaddr & (PAGE_SIZE - 1)));
            }
            t = e & ADDR;
        }
        None
    }

    /// Check that `[addr, addr + len)` is accessible to the user (writably if `write`): what a
    /// syscall's decode step does before anything changes.
    pub fn check(&self, addr: u64, len: u64, write: bool) -> Result<(), Error> {
        let end = addr.checked_add(len).ok_or(Error::BadAddress)?;
        let mut page = addr & !(PAGE_SIZE - 1);
        while page < end {
            self.translate(page, write).ok_or(Error::BadAddress)?;
            page += PAGE_SIZE;
        }
        Ok(())
    }

    /// Copy `out.len()` bytes from user address `addr` (an allegation until checked here).
    pub fn copy_from_user(&self, addr: u64, out: &mut [u8]) -> Result<(), Error> {
        self.check(addr, out.len() as u64, false)?;
        self.copy_pages(addr, out.len(), |pa, off, n| {
            // SAFETY: `pa` is a checked user frame (identity mapped), `n` stays inside its page.
            unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, out[off..].as_mut_ptr(), n) }
        });
        Ok(())
    }

    /// Copy `data` to user address `addr`, all or nothing.
    pub fn copy_to_user(&self, addr: u64, data: &[u8]) -> Result<(), Error> {
        self.check(addr, data.len() as u64, true)?;
        self.copy_pages(addr, data.len(), |pa, off, n| {
            // SAFETY: as in `copy_from_user`, and the pages were checked writable.
            unsafe { core::ptr::copy_nonoverlapping(data[off..].as_ptr(), pa as *mut u8, n) }
        });
        Ok(())
    }

    /// The range `[addr, addr + len)` of this space, checked accessible to the user (writable
    /// too if `write`): what a syscall's decode step turns a user pointer into.
    pub fn user_slice(&self, addr: u64, len: u64, write: bool) -> Result<UserSlice, Error> {
        self.check(addr, len, write)?;
        Ok(UserSlice { addr, len })
    }

    /// Copy the start of checked range `from` into `out` (at most its length).
    pub fn read_user(&self, from: UserSlice, out: &mut [u8]) -> Result<(), Error> {
        let n = out.len().min(from.len as usize);
        self.copy_checked(from.addr, n, false, |pa, off, n| {
            // SAFETY: `pa` is a user frame of this space (identity mapped); `n` stays inside its
            // page and inside `out`.
            unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, out[off..].as_mut_ptr(), n) }
        })
    }

    /// Copy `data` (at most the range's length) into checked writable range `to`.
    pub fn write_user(&self, to: UserSlice, data: &[u8]) -> Result<(), Error> {
        let n = data.len().min(to.len as usize);
        self.copy_checked(to.addr, n, true, |pa, off, n| {
            // SAFETY: `pa` is a user frame of this space, writable by it; `n` stays inside its
            // page and inside `data`.
            unsafe { core::ptr::copy_nonoverlapping(data[off..].as_ptr(), pa as *mut u8, n) }
        })
    }

    /// Walk a range page by page as [`copy_pages`](Self::copy_pages) does, for a range that was
    /// checked when its [`UserSlice`] was made. The same syscall cannot have unmapped it since,
    /// but a missing page still ends the copy with `BadAddress` rather than a panic.
    fn copy_checked(
        &self,
        addr: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(u64, usize, usize),
    ) -> Result<(), Error> {
        let mut off = 0;
        while off < len {
            let va = addr + off as u64;
            let n = ((PAGE_SIZE - (va & (PAGE_SIZE - 1))) as usize).min(len - off);
            f(self.translate(va, write).ok_or(Error::BadAddress)?, off, n);
            off += n;
        }
        Ok(())
    }

    fn copy_pages(&self, addr: u64, len: usize, mut f: impl FnMut(u64, usize, usize)) {
        let mut off = 0;
        while off < len {
            let va = addr + off as u64;
            let n = ((PAGE_SIZE - (va & (PAGE_SIZE - 1))) as usize).min(len - off);
            let pa = self.translate(va, false).expect("range checked by caller");
            f(pa, off, n);
            off += n;
        }
    }

    /// Call `f` with every frame this space owns: each owned user page, then each table after
    /// the entries in it were read, the PML4 last (the order `destroy` frees them in).
    fn each_owned(&self, mut f: impl FnMut(u64)) {
        let pdpt = self.pdpt();
        // SAFETY: walking this space's own tables, which only the kernel changes, and nothing
        // does while it runs (one CPU, interrupts off); `f` sees a table only after its
        // entries were read. Entry 0 of the PDPT is the shared kernel PD and is skipped.
        unsafe {
            for pdpte in table(pdpt).iter().skip(1).filter(|e| *e & P != 0) {
                let pd = pdpte & ADDR;
                for pde in table(pd).iter().filter(|e| *e & P != 0) {
                    let pt = pde & ADDR;
                    for pte in table(pt).iter().filter(|e| *e & (P | OWNED) == P | OWNED) {
                        f(pte & ADDR);
                    }
                    f(pt);
                }
                f(pd);
            }
        }
        f(pdpt);
        f(self.pml4);
    }

    /// How many frames this space owns: what [`destroy`](Self::destroy) would free.
    pub fn owned_frames(&self) -> usize {
        let mut n = 0;
        self.each_owned(|_| n += 1);
        n
    }

    /// Free every owned user frame and every table of this space.
    pub fn destroy(self, frames: &mut Frames) {
        self.each_owned(|frame| frames.free(frame));
    }
}
