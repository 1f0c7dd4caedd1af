//! The libos core: the only crate of the intralingual personality that contains `unsafe`.
//!
//! Everything runs in ring 0 in one address space. The core boots the machine, owns the page
//! tables, frames and heaps, runs tasks, carries messages between them and recovers from their
//! faults; cells (`libos/cells/*`) are ordinary safe Rust crates that use this API.
//!
//! ```text
//!  GRUB ─► arch::boot (32→64) ─► libos_kernel_entry: serial, GDT/IDT, frames, paging, heap, PIC
//!        ─► libos_main (the image's wiring: endpoints, mailboxes, cells) ─► sched::start
//! ```
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
// The libos's only unsafe crate (its cells forbid unsafe code): memory, traps and tasks.
#![allow(unsafe_code)]

extern crate alloc;

pub mod arch;
pub mod chan;
pub mod fault;
pub mod inject;
pub mod kept;
pub mod mem;
pub mod sched;
pub mod serial;
pub mod symbols;
mod sync;
pub mod task;

pub use fault::power_off;
pub use task::{spawn, TaskId};

use core::sync::atomic::{AtomicBool, Ordering};

/// Set once the scheduler runs (a panic before that is a core panic).
pub(crate) static STARTED: AtomicBool = AtomicBool::new(false);

/// Name the image's wiring function: `libos_kernel::entry!(main)`. It runs once at boot, on the
/// boot stack, before any task, and should spawn the cells.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        extern "C" fn libos_main() {
            let wire: fn() = $main;
            wire()
        }
    };
}

extern "C" {
    fn libos_main();
    static __kernel_end: u8;
}

/// Read the TSC (one tick per retired instruction under QEMU `-icount shift=0`).
pub fn rdtsc() -> u64 {
    arch::cpu::rdtsc()
}

/// Power off cleanly (QEMU's `isa-debug-exit` turns this into exit status 33).
pub fn poweroff() -> ! {
    power_off(axolotl_abi::DEBUG_EXIT_POWEROFF)
}

#[no_mangle]
extern "C" fn libos_kernel_entry(magic: u32, info: u32) -> ! {
    let t0 = arch::cpu::rdtsc();
    serial::init();
    arch::gdt::init();
    arch::trap::init();
    if magic != multiboot2::MAGIC {
        serial::print(format_args!("[kernel] not started by a Multiboot2 loader (magic {magic:#x})\n"));
        power_off(axolotl_abi::DEBUG_EXIT_PANIC);
    }
    // SAFETY: GRUB passed a valid boot information structure at `info`, identity mapped.
    let boot = match unsafe { multiboot2::BootInformation::load(info as usize as *const _) } {
        Ok(b) => b,
        Err(_) => power_off(axolotl_abi::DEBUG_EXIT_PANIC),
    };
    let mut floor = core::ptr::addr_of!(__kernel_end) as u64;
    floor = floor.max(boot.end_address() as u64);
    let (mut symtab, mut strtab) = ((0, 0), (0, 0));
    if let Some(tag) = boot.elf_sections_tag() {
        let sections: heapless::Vec<(u32, u64, u64, u32), 64> =
            tag.sections().map(|s| (s.sh_type, s.sh_addr, s.sh_size, s.sh_link)).take(64).collect();
        for &(kind, addr, size, link) in &sections {
            if addr != 0 && addr < 1 << 30 {
                floor = floor.max(addr + size);
            }
            if kind == 2 && addr != 0 {
                symtab = (addr, size);
                if let Some(&(_, a, s, _)) = sections.get(link as usize) {
                    strtab = (a, s);
                }
            }
        }
    }
    let regions: heapless::Vec<(u64, u64), 32> = boot
        .memory_map_tag()
        .map(|m| {
            m.memory_areas()
                .iter()
                .filter(|a| a.typ() == multiboot2::MemoryAreaType::Available)
                .map(|a| (a.start_address(), a.end_address()))
                .take(32)
                .collect()
        })
        .unwrap_or_default();
    let ram_top = mem::frames::init(regions.into_iter(), floor.max(2 << 20));
    mem::paging::init(ram_top);
    mem::heap::init();
    symbols::init(symtab, strtab);
    arch::pic::init();
    spawn("idle", 0, false, || loop {
        arch::cpu::idle();
    })
    .unwrap_or_else(|_| power_off(axolotl_abi::DEBUG_EXIT_PANIC));
    // SAFETY: the image defines `libos_main` through `entry!`; it is a plain Rust function.
    unsafe { libos_main() };
    let u = mem::usage();
    serial::print(format_args!(
        "[kernel] Axolotl libos core: {} MiB RAM, {} frames in use, core heap {} bytes, booted in {} TSC ticks\n",
        ram_top >> 20,
        u.frames,
        u.core_heap,
        arch::cpu::rdtsc() - t0
    ));
    STARTED.store(true, Ordering::Relaxed);
    sched::start()
}
