//! The page tables: built once at boot with per-section permissions, then changed only by
//! [`super::MappedPages`] in the slot area.

use super::frames;
use crate::arch::cpu;
use crate::sync::Global;

use x86::paging::{ADDRESS as ADDR, HUGE as PS};
pub use x86::paging::{NO_EXECUTE as NX, PRESENT as P, WRITABLE as W};

/// Start of the slot area (PML4 0, PDPT entry 256).
pub const SLOT_BASE: u64 = 256 << 30;
pub const SLOT_SIZE: u64 = 1 << 20;
pub const SLOTS: usize = 512;

struct Tables {
    slot_pd: u64,
}

static TABLES: Global<Tables> = Global::new(Tables { slot_pd: 0 });

extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
    static __boot_stack_guard: u8;
    static __ist1_guard: u8;
    static __ist2_guard: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

fn table(addr: u64) -> &'static mut [u64; 512] {
    // SAFETY: page-table frames come from the frame allocator, are identity mapped, and are
    // only written under the TABLES critical section or during single-threaded boot.
    unsafe { &mut *(addr as *mut [u64; 512]) }
}

fn new_table() -> u64 {
    frames::alloc().expect("out of memory for page tables")
}

/// Build and load the real page tables for `ram_top` bytes of RAM.
pub fn init(ram_top: u64) {
    // SAFETY: linker symbols; only their addresses are used.
    let (kstart, text_end, ro_start, ro_end, kend, guards) = unsafe {
        (
            sym(&__kernel_start),
            sym(&__text_end),
            sym(&__rodata_start),
            sym(&__rodata_end),
            sym(&__kernel_end),
            [sym(&__boot_stack_guard), sym(&__ist1_guard), sym(&__ist2_guard)],
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
                    P
                } else if (ro_start..ro_end).contains(&a) {
                    P | NX
                } else {
                    P | W | NX
                };
                table(pt)[j] = if flags == 0 { 0 } else { a | flags };
            }
            table(pd)[i] = pt | P | W;
        } else {
            table(pd)[i] = (i as u64) << 21 | P | W | PS | NX;
        }
    }
    let slot_pd = new_table();
    table(pdpt)[(SLOT_BASE >> 30) as usize] = slot_pd | P | W;
    TABLES.with(|t| t.slot_pd = slot_pd);
    // SAFETY: the new tables map the running image (text executable, stacks writable) and all
    // RAM the kernel touches, exactly as before, with narrower permissions.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) pml4, options(nostack)) };
}

/// Map page `virt` (in the slot area) to frame `phys` with `flags`.
pub fn map(virt: u64, phys: u64, flags: u64) {
    TABLES.with(|t| {
        let pd = table(t.slot_pd);
        let i = ((virt >> 21) & 511) as usize;
        if pd[i] & P == 0 {
            pd[i] = new_table() | P | W;
        }
        let pt = table(pd[i] & ADDR);
        pt[((virt >> 12) & 511) as usize] = phys | flags | P;
    });
}

/// Unmap page `virt`; returns the frame it mapped.
pub fn unmap(virt: u64) -> Option<u64> {
    TABLES.with(|t| {
        let pd = table(t.slot_pd);
        let i = ((virt >> 21) & 511) as usize;
        if pd[i] & P == 0 {
            return None;
        }
        let pte = &mut table(pd[i] & ADDR)[((virt >> 12) & 511) as usize];
        let old = *pte;
        *pte = 0;
        cpu::invlpg(virt);
        (old & P != 0).then_some(old & ADDR)
    })
}

/// Is `virt` mapped, and writable? (For the injector, which must only touch live memory.)
pub fn is_mapped(virt: u64) -> bool {
    if virt < SLOT_BASE {
        return false;
    }
    TABLES.with(|t| {
        let pd = table(t.slot_pd);
        let i = ((virt >> 21) & 511) as usize;
        pd[i] & P != 0 && table(pd[i] & ADDR)[((virt >> 12) & 511) as usize] & P != 0
    })
}

/// The image's extent `[start, end)` (text, rodata, data, bss).
pub fn image() -> (u64, u64) {
    // SAFETY: linker symbols; only their addresses are used.
    unsafe { (sym(&__kernel_start), sym(&__kernel_end)) }
}
