//! The Axolotl microkernel.
//!
//! Boot order: serial log, Multiboot2 information, frame pool, kernel page tables, descriptor
//! tables and `syscall`, the boot manifest and its tasks, interrupt controller; then the first
//! task runs and the kernel is only ever entered through a syscall, an exception or an interrupt.
#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]
// The ring-0 binary: page tables, trap frames, the identity map are its unsafe work, each
// block fenced with the invariant it relies on.
#![allow(unsafe_code)]

// The modules form layers, each using only those above it in this list (a test,
// `tests/modules.rs`, keeps the graph free of cycles):
mod arch; // entry stubs, GDT/TSS, per-CPU data
mod audit; // the state-spill audit of a server
mod fastpath; // the IPC fastpath
mod frames; // the frame pool
mod inject; // faults from outside
mod ipc; // message transfer, notifications
mod lifecycle; // stop, fault record, hold, restart
mod loader; // tasks from the manifest and their images
mod log; // the kernel's serial log
mod object; // what deleting a capability does to its object
mod paging; // page tables, user address spaces
mod pci; // PCI devices given to drivers: the guard, and quiescing a stopped driver's device
mod report; // CPU faults and panics: report, then stop
mod sched; // choosing and activating the running task
mod ssr; // sessions and their Server State Regions
mod state; // the kernel's data: tasks, objects, queues
mod syscall; // decode, then invoke
mod traps;
mod watchdog; // delayed restarts and hangs, every tick // every kernel entry, and what runs next

use arch::{cpu, gdt, trap};
use axolotl_abi::{padded, SYSCALL_COUNT};
use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};
use state::{Module, KERNEL, MAX_MODULES};
use x86::boot::MULTIBOOT2_MAGIC;
use x86::pic::Mask;
use x86::qemu::{DEBUG_EXIT_PANIC, DEBUG_EXIT_PORT};

extern "C" {
    static __kstack_top: u8;
    static __dfstack_top: u8;
}

#[no_mangle]
extern "C" fn kmain(magic: u32, info: u32) -> ! {
    let boot_tsc = x86::cpu::rdtsc();
    log::init();
    kprintln!("Axolotl microkernel {} starting", env!("CARGO_PKG_VERSION"));
    if magic != MULTIBOOT2_MAGIC {
        panic!("not started by a Multiboot2 loader (magic {magic:#x})");
    }
    // SAFETY: a Multiboot2 loader passed `info` (checked by the magic); it lies in identity-mapped
    // low memory that we reserve below and never write.
    let boot = unsafe { BootInformation::load(info as *const BootInformationHeader) }
        .unwrap_or_else(|e| panic!("unreadable Multiboot2 information: {e:?}"));

    // SAFETY: boot, the first entry: no guard exists yet, and interrupts are off.
    let mut k = unsafe { KERNEL.enter() };
    k.boot_tsc = boot_tsc;
    let areas = boot.memory_map_tag().expect("Multiboot2 memory map missing").memory_areas();
    let mut ram_top = 0;
    for a in areas.iter().filter(|a| a.typ() == MemoryAreaType::Available) {
        k.frames.add_free(a.start_address(), a.end_address());
        ram_top = ram_top.max(a.end_address());
    }
    let (kstart, kend) = paging::kernel_image();
    k.frames.reserve(0, 0x10_0000);
    k.frames.reserve(kstart, kend);
    k.frames.reserve(boot.start_address() as u64, boot.end_address() as u64);
    for m in boot.module_tags() {
        k.frames.reserve(m.start_address() as u64, m.end_address() as u64);
        let name = m.cmdline().unwrap_or("?");
        let n = k.module_count;
        if n < MAX_MODULES {
            let (start, len) = (m.start_address() as u64, (m.end_address() - m.start_address()) as u64);
            // SAFETY: the module's bytes lie in RAM GRUB loaded and the frame pool reserves.
            let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, len as usize) };
            let version = axolotl_kcore::elf::server_version(bytes).map_or(0, |v| v.version);
            k.modules[n] = Module { name: padded(name), start, len, version, updated: false };
            k.module_count += 1;
        }
    }
    kprintln!(
        "memory: {} MiB usable below 1 GiB, {} boot modules",
        k.frames.free_count() / 256,
        k.module_count
    );

    paging::init(ram_top.min(1 << 30));
    // SAFETY: linker-script symbols; only their addresses are used.
    let (kstack, dfstack) =
        unsafe { (&__kstack_top as *const u8 as u64, &__dfstack_top as *const u8 as u64) };
    gdt::init(dfstack);
    trap::init();
    cpu::init_this_cpu(kstack, trap::syscall_entry_addr());

    k.tsc_per_ms = x86::pit::measure_tsc_per_ms(&cpu::PORTS, x86::cpu::rdtsc).unwrap_or_else(|| {
        kprintln!("the PIT did not count: assuming a 1 GHz TSC; timers will be off");
        1_000_000
    });
    kprintln!("TSC: {} ticks per ms (measured against the PIT)", k.tsc_per_ms);

    pci::enumerate(&mut k);
    let manifest = k.modules[..k.module_count].iter().find(|m| m.name() == "manifest").copied();
    let loaded = match manifest.map(|m| core::str::from_utf8(m.bytes())) {
        Some(Ok(text)) => loader::load_system(&mut k, text),
        Some(Err(_)) => {
            kprintln!("the manifest module is not UTF-8 text");
            0
        }
        None => {
            kprintln!("no module named 'manifest': nothing to start");
            0
        }
    };
    match k.frames.alloc_zeroed() {
        Ok(f) => {
            // `pause; jmp .-2` (F3 90 EB FC): what the `hang` injection makes a task spin in.
            // SAFETY: a fresh kernel frame, identity mapped.
            unsafe { (f as *mut [u8; 4]).write([0xf3, 0x90, 0xeb, 0xfc]) };
            k.hang_frame = f;
        }
        Err(_) => kprintln!("no frame for the hang injection page"),
    }
    // The timer and the cascade; a driver's line opens when it acknowledges its first interrupt.
    x86::pic::init(&cpu::PORTS, Mask::all_but(&[0, 2]));
    x86::pit::start_tick(&cpu::PORTS, state::TICK_HZ);
    kprintln!(
        "{} tasks loaded, {} syscalls, {} KiB free; boot took {} TSC ticks (the kernel entered at {})",
        loaded,
        SYSCALL_COUNT,
        k.frames.free_count() * 4,
        x86::cpu::rdtsc() - boot_tsc,
        boot_tsc
    );
    let first = traps::next_context(k);
    // SAFETY: `next_context` activated the task whose frame this is (space, rsp0, ctx end).
    unsafe { trap::return_to_user(first) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    log::print_unlocked(format_args!("\n[kernel] KERNEL PANIC: {info}\n"));
    // Tell QEMU (when the isa-debug-exit device is present) so a test run ends at once.
    x86::port::PortIo::outb(&cpu::PORTS, DEBUG_EXIT_PORT, DEBUG_EXIT_PANIC);
    x86::cpu::halt_forever()
}
