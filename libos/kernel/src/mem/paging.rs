//! The page tables: built once at boot with per-section permissions, then changed only by
//! [`super::MappedPages`] in the slot area, and by [`open`], which the scheduler calls at every
//! switch to make the incoming task's own slots the only writable ones there.
//!
//! ```text
//!  identity map (first GiB)   image text r-x, rodata r--, data/bss rw- (NX); page 0 and the
//!                             stack guards unmapped; all other RAM r-- (NX): page tables and
//!                             frames, which are also the physical alias of every slot
//!  slot area (256 GiB + n·2 MiB)   slot n = page-directory entry n of SLOT_PD: writable only
//!                             while its task runs (its stack and heap); every other slot —
//!                             other tasks' stacks and heaps, every MappedPages a cell owns —
//!                             is read-only
//! ```
//! CR0.WP is set, so ring 0 honours these bits: a wild write from a cell outside its own stack
//! and heap faults in the writer (a page fault, "protection violation"), which is then
//! restarted, instead of corrupting another task. Kernel code that must write elsewhere does so
//! inside [`super::protect::unprotected`]. Global pages (CR4.PGE) keep the identity map's
//! translations across the TLB flush that [`open`] needs.

use super::frames;
use crate::arch::cpu;
use crate::sync::Global;
use x86_64::registers::control::{Cr3, Cr4, Cr4Flags};

use x86::paging::{ADDRESS as ADDR, GLOBAL as G, HUGE as PS};
pub use x86::paging::{NO_CACHE as PCD, NO_EXECUTE as NX, PRESENT as P, WRITABLE as W, WRITE_THROUGH as PWT};

/// Start of the slot area (PML4 0, PDPT entry 256).
pub const SLOT_BASE: u64 = 256 << 30;
/// One slot is what one page-directory entry maps, so its writable bit is the slot's alone.
pub const SLOT_SIZE: u64 = 2 << 20;
pub const SLOTS: usize = 512;
/// No slot (an empty place in the open pair).
const NONE: usize = usize::MAX;

/// The slot area's page directory. In the image's data, which the kernel writes without
/// lifting protection: [`open`] flips its bits at every task switch.
#[repr(C, align(4096))]
struct Directory([u64; 512]);

static mut SLOT_PD: Directory = Directory([0; 512]);

struct Tables {
    /// The slots writable now: the running task's stack and heap, and its device's slot.
    open: [usize; 3],
}

static TABLES: Global<Tables> = Global::new(Tables { open: [NONE; 3] });

extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __kernel_end: u8;
    static __boot_stack_guard: u8;
    static __ist1_guard: u8;
    static __ist2_guard: u8;
    static __ist3_guard: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

fn table(addr: u64) -> &'static mut [u64; 512] {
    // SAFETY: page-table frames come from the frame allocator (or are SLOT_PD, in the image),
    // are identity mapped, and are only written under the TABLES critical section (frames: with
    // protection lifted), inside `open` (interrupts masked), or during single-threaded boot.
    unsafe { &mut *(addr as *mut [u64; 512]) }
}

fn slot_pd() -> &'static mut [u64; 512] {
    table(core::ptr::addr_of_mut!(SLOT_PD) as u64)
}

fn new_table() -> u64 {
    frames::alloc().expect("out of memory for page tables")
}

/// Build and load the real page tables for `ram_top` bytes of RAM.
pub fn init(ram_top: u64) {
    // SAFETY: linker symbols; only their addresses are used.
    let (kstart, text_end, ro_start, ro_end, data_start, kend, guards) = unsafe {
        (
            sym(&__kernel_start),
            sym(&__text_end),
            sym(&__rodata_start),
            sym(&__rodata_end),
            sym(&__data_start),
            sym(&__kernel_end),
            [sym(&__boot_stack_guard), sym(&__ist1_guard), sym(&__ist2_guard), sym(&__ist3_guard)],
        )
    };
    assert!(kend <= 4 << 20, "the image must end below 4 MiB");
    let pml4 = new_table();
    let pdpt = new_table();
    let pd = new_table();
    table(pml4)[0] = pdpt | P | W;
    table(pdpt)[0] = pd | P | W;
    let big_pages = ram_top.div_ceil(2 << 20).clamp(2, 512);
    for i in 0..big_pages as usize {
        if i < 2 {
            let pt = new_table();
            for j in 0..512 {
                let a = (i as u64) << 21 | (j as u64) << 12;
                let flags = if a == 0 || guards.contains(&a) {
                    0
                } else if (kstart..text_end).contains(&a) {
                    P | G
                } else if (ro_start..ro_end).contains(&a) {
                    P | NX | G
                } else if (data_start..kend).contains(&a) {
                    P | W | NX | G
                } else {
                    P | NX | G
                };
                table(pt)[j] = if flags == 0 { 0 } else { a | flags };
            }
            table(pd)[i] = pt | P | W;
        } else {
            table(pd)[i] = (i as u64) << 21 | P | PS | NX | G;
        }
    }
    table(pdpt)[(SLOT_BASE >> 30) as usize] = core::ptr::addr_of_mut!(SLOT_PD) as u64 | P | W;
    // SAFETY: the new tables map the running image (text executable, data and stacks writable)
    // and all RAM the kernel reads, as before; RAM outside the image becomes read-only, and the
    // kernel writes there (frames, page tables) only with protection lifted. Global pages are
    // enabled after the switch, so no translation of the boot tables outlives them.
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) pml4, options(nostack));
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }
}

/// Map page `virt` (in the slot area) to frame `phys` with `flags`.
pub fn map(virt: u64, phys: u64, flags: u64) {
    TABLES.with(|t| {
        let pd = slot_pd();
        let i = slot_of(virt);
        if pd[i] & P == 0 {
            let writable = if t.open.contains(&i) { W } else { 0 };
            pd[i] = new_table() | P | writable;
        }
        let pt = table(pd[i] & ADDR);
        super::protect::unprotected(|| pt[((virt >> 12) & 511) as usize] = phys | flags | P);
    });
}

/// Unmap page `virt`; returns the frame it mapped.
pub fn unmap(virt: u64) -> Option<u64> {
    TABLES.with(|_| {
        let pd = slot_pd();
        let i = slot_of(virt);
        if pd[i] & P == 0 {
            return None;
        }
        let pte = &mut table(pd[i] & ADDR)[((virt >> 12) & 511) as usize];
        let old = *pte;
        super::protect::unprotected(|| *pte = 0);
        cpu::invlpg(virt);
        (old & P != 0).then_some(old & ADDR)
    })
}

/// The slot holding `virt` (an address in the slot area).
fn slot_of(virt: u64) -> usize {
    ((virt >> 21) & 511) as usize
}

/// Make `slots` (the incoming task's stack and heap, and the slot of the device it drives) the
/// only writable slots, and drop the translations that still allow writes elsewhere. Called by
/// the scheduler with interrupts masked; nothing changes (and nothing is flushed) when the same
/// task runs on.
pub fn open(slots: [usize; 3]) {
    // SAFETY: interrupts are masked (the scheduler runs in the trap path or under the task
    // table's critical section), and TABLES is otherwise borrowed only inside `with`, which
    // masks interrupts and never switches tasks: no other borrow is live.
    let t = unsafe { TABLES.get_in_trap() };
    // Three word compares: `==` on the arrays is a call of `memcmp`, at every switch.
    if t.open[0] == slots[0] && t.open[1] == slots[1] && t.open[2] == slots[2] {
        return;
    }
    let pd = slot_pd();
    // Three tests each way, written out: an iterator's filter compiled to a loop.
    let mut close = |s: usize| {
        if s < SLOTS {
            pd[s] &= !W;
        }
    };
    let [a, b, c] = t.open;
    close(a);
    close(b);
    close(c);
    let mut grant = |s: usize| {
        if s < SLOTS && pd[s] & P != 0 {
            pd[s] |= W;
        }
    };
    let [a, b, c] = slots;
    grant(a);
    grant(b);
    grant(c);
    t.open = slots;
    cpu::flush_tlb();
}

/// The page directory of the identity map's first GiB (PML4 entry 0, PDPT entry 0: see
/// [`init`]), as the loaded tables have it.
fn identity_pd() -> &'static mut [u64; 512] {
    let pml4 = Cr3::read().0.start_address().as_u64();
    table(table(table(pml4)[0] & ADDR)[0] & ADDR)
}

/// Make the image's pages in `[start, end)` read-only, for the kernel too (CR0.WP). Page
/// aligned, inside the image's data, which is mapped with 4 KiB pages (see [`init`]).
pub fn read_only(start: u64, end: u64) {
    assert!(start.is_multiple_of(4096) && end.is_multiple_of(4096), "read_only takes whole pages");
    let (kstart, kend) = image();
    assert!(kstart <= start && end <= kend, "read_only is for the image's pages");
    TABLES.with(|_| {
        let pd = identity_pd();
        for page in (start..end).step_by(4096) {
            let pt = table(pd[(page >> 21) as usize] & ADDR);
            let pte = &mut pt[((page >> 12) & 511) as usize];
            // Page tables live in frames, which are read-only: write with protection lifted.
            super::protect::unprotected(|| *pte &= !W);
            cpu::invlpg(page);
        }
    });
}

/// Is image page `virt` mapped writable? (Identity map, 4 KiB pages: see [`init`].)
pub fn writable(virt: u64) -> bool {
    TABLES.with(|_| {
        let pd = identity_pd();
        let pde = pd[(virt >> 21) as usize & 511];
        if pde & P == 0 || pde & PS != 0 {
            return pde & P != 0 && pde & W != 0;
        }
        let pte = table(pde & ADDR)[((virt >> 12) & 511) as usize];
        pte & P != 0 && pte & W != 0 && pde & W != 0
    })
}

/// The slot of slot-area address `virt`, if it is one.
pub fn slot(virt: u64) -> Option<usize> {
    (SLOT_BASE..SLOT_BASE + SLOTS as u64 * SLOT_SIZE).contains(&virt).then(|| slot_of(virt))
}

/// Is `virt` mapped? (For the injector, which must only touch live memory.)
pub fn is_mapped(virt: u64) -> bool {
    if slot(virt).is_none() {
        return false;
    }
    TABLES.with(|_| {
        let pd = slot_pd();
        let i = slot_of(virt);
        pd[i] & P != 0 && table(pd[i] & ADDR)[((virt >> 12) & 511) as usize] & P != 0
    })
}

/// The image's extent `[start, end)` (text, rodata, data, bss).
pub fn image() -> (u64, u64) {
    // SAFETY: linker symbols; only their addresses are used.
    unsafe { (sym(&__kernel_start), sym(&__kernel_end)) }
}
