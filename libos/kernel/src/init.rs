//! The kernel's Rust entry: bring the machine up, mint the [`Privilege`] token, let the image
//! wire its cells, start scheduling.
//!
//! ```text
//!  GRUB ─► x86 trampoline (32→64) ─► libos_kernel_entry: serial, GDT/IDT, frames, paging, heap,
//!        symbols, PIC, PCI devices, the idle task ─► libos_main(Privilege) (the image's wiring, see
//!        `entry!`: endpoints, mailboxes, cells) ─► sched::start
//! ```

use crate::control::Privilege;
use crate::report::stop_machine;
use x86::qemu::DEBUG_EXIT_PANIC;
use x86_64::registers::control::Cr4Flags;
use x86_64::registers::model_specific::EferFlags;

/// ELF section type of a symbol table.
const SHT_SYMTAB: u32 = 2;
/// The lowest frame the allocator hands out: the first 2 MiB hold the image and GRUB's data.
const FRAME_FLOOR: u64 = 2 << 20;

/// Name the image's wiring function: `libos_kernel::entry!(wire)` with
/// `fn wire(privilege: libos_kernel::Privilege)`. It runs once at boot, on the boot stack,
/// before any task; it should spawn the cells and hand the token to the one cell that may use
/// it (the shell).
#[macro_export]
macro_rules! entry {
    ($wire:path) => {
        #[no_mangle]
        fn libos_main(privilege: $crate::Privilege) {
            let wire: fn($crate::Privilege) = $wire;
            wire(privilege)
        }
    };
}

extern "Rust" {
    /// Defined by the image through [`entry!`].
    fn libos_main(privilege: Privilege);
}

extern "C" {
    static __kernel_end: u8;
    static __boot_stack_top: u8;
}

// GRUB's way in: the shared trampoline brings the CPU into long mode and calls
// `libos_kernel_entry` below on the guarded boot stack, with no-execute and SSE on (the cells
// are ordinary Rust in ring 0).
x86::multiboot2_trampoline!(
    entry = libos_kernel_entry,
    stack_top = __boot_stack_top,
    cr4 = (Cr4Flags::OSFXSR.bits() | Cr4Flags::OSXMMEXCPT_ENABLE.bits()) as u32,
    efer = EferFlags::NO_EXECUTE_ENABLE.bits() as u32,
);

/// The TSC when the firmware and GRUB handed the machine to this kernel.
static ENTRY_TSC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The TSC when the kernel was entered: everything before it was the firmware's and GRUB's.
pub fn entry_tsc() -> u64 {
    ENTRY_TSC.load(core::sync::atomic::Ordering::Relaxed)
}

/// The TSC when the system was first up (0: not yet).
static BOOTED_TSC: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The system is up (the shell is about to show its first prompt): the first call records the
/// TSC, and every call, from any incarnation, returns that first one. Boot to prompt is
/// `booted() - entry_tsc()`. Kept here, by the kernel, because a task's closure is read-only
/// once the system runs (see `mem::recipes`) and its memory dies with each incarnation.
pub fn booted() -> u64 {
    use core::sync::atomic::Ordering::Relaxed;
    let now = crate::arch::cpu::rdtsc();
    match BOOTED_TSC.compare_exchange(0, now, Relaxed, Relaxed) {
        Ok(_) => now,
        Err(first) => first,
    }
}

#[no_mangle]
extern "C" fn libos_kernel_entry(magic: u32, info: u32) -> ! {
    let t0 = crate::arch::cpu::rdtsc();
    ENTRY_TSC.store(t0, core::sync::atomic::Ordering::Relaxed);
    crate::serial::init();
    crate::arch::gdt::init();
    crate::arch::trap::init();
    if magic != multiboot2::MAGIC {
        crate::serial::print(format_args!(
            "[kernel] not started by a Multiboot2 loader (magic {magic:#x})\n"
        ));
        stop_machine(DEBUG_EXIT_PANIC);
    }
    // SAFETY: GRUB passed a valid boot information structure at `info`, identity mapped.
    let boot = match unsafe { multiboot2::BootInformation::load(info as usize as *const _) } {
        Ok(b) => b,
        Err(_) => stop_machine(DEBUG_EXIT_PANIC),
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
            if kind == SHT_SYMTAB && addr != 0 {
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
    let ram_top = crate::mem::frames::init(regions.into_iter(), floor.max(FRAME_FLOOR));
    crate::mem::paging::init(ram_top);
    crate::mem::heap::init();
    crate::symbols::init(symtab, strtab);
    crate::arch::pic::init();
    crate::device::enumerate();
    crate::lifecycle::spawn("idle", 0, false, || loop {
        crate::sched::idle();
    })
    .unwrap_or_else(|_| stop_machine(DEBUG_EXIT_PANIC));
    let privilege = Privilege::mint().unwrap_or_else(|| stop_machine(DEBUG_EXIT_PANIC));
    // SAFETY: the image defines `libos_main` through `entry!`, with this signature, as a plain
    // Rust function; nothing else defines the symbol (a second definition would not link).
    unsafe { libos_main(privilege) };
    let u = crate::mem::usage();
    crate::serial::print(format_args!(
        "[kernel] Axolotl libos kernel: {} MiB RAM, {} frames in use, kernel heap {} bytes, booted in {} TSC ticks\n",
        ram_top >> 20,
        u.frames,
        u.kernel_heap,
        crate::arch::cpu::rdtsc() - t0
    ));
    crate::sched::start()
}
