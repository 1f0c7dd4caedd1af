//! The CPU primitives the libos kernel uses: the shared `x86` layer's, its own ports, and the
//! two software interrupts that are this kernel's own (yield and die).

use core::arch::asm;
pub use x86::cpu::{
    cr2, disable_interrupts, enable_interrupts, halt_forever, interrupts_enabled, invlpg, rdtsc,
    wait_for_interrupt as idle,
};

/// The ports the kernel drives itself: the PIC, the PIT, COM1, QEMU's debug-exit device.
// SAFETY: the libos kernel runs in ring 0 and is the only code allowed port I/O (cells cannot
// write `unsafe`, so they reach the UART only through the `Serial` handle).
pub const PORTS: x86::port::Direct = unsafe { x86::port::Direct::new() };

/// Ask the scheduler to run someone else (`int 0x81`, see `trap`).
pub fn yield_now() {
    // SAFETY: vector 0x81 is the scheduler gate; it saves and restores every register.
    unsafe { asm!("int 0x81") }
}

/// End the current task on the fault stack (`int 0x82`): used by panics and self-kills.
pub fn die_now() -> ! {
    // SAFETY: vector 0x82 never returns to this task: the handler runs on IST1 and resumes
    // another task.
    unsafe { asm!("int 0x82", options(noreturn)) }
}

/// The stack pointer where it is read: inlined, the caller's.
#[inline(always)]
pub fn stack_pointer() -> u64 {
    let rsp: u64;
    // SAFETY: reads a register into a local; no memory touched.
    unsafe { asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    rsp
}

/// Clear the direction flag. The Rust ABI promises DF = 0 at every call, and `memcpy` and
/// `memset` rely on it; a cell whose flags a fault bent could otherwise make the kernel's next
/// copy run backwards, below its destination (into the stack of the task it answers).
#[inline]
pub fn clear_direction() {
    // SAFETY: `cld` only clears DF; no memory effect of its own (no `nomem`, so no copy the
    // compiler emitted is moved before it).
    unsafe { asm!("cld", options(nostack)) };
}

/// CR0.WP: with it set, ring 0 honours read-only pages (the libos relies on it to keep a task's
/// writes inside its own memory, see `mem::protect`).
const CR0_WP: u64 = 1 << 16;

/// Set CR0.WP to `on`; returns what it was. CR0 is written only when the bit changes.
///
/// The write is a full compiler barrier (the asm may touch memory), so no store the compiler
/// generated moves across it.
pub fn write_protect(on: bool) -> bool {
    let cr0: u64;
    // SAFETY: reading CR0 has no side effect (ring 0).
    unsafe { asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags)) };
    let was = cr0 & CR0_WP != 0;
    if was != on {
        let new = if on { cr0 | CR0_WP } else { cr0 & !CR0_WP };
        // SAFETY: only the WP bit changes. Clearing it lets kernel code write through read-only
        // pages: `mem::protect::unprotected` does so only with interrupts masked, for a bounded
        // kernel copy, and sets it again before any task runs (the trap path checks too).
        unsafe { asm!("mov cr0, {}", in(reg) new, options(nostack, preserves_flags)) };
    }
    was
}

/// Drop every TLB entry that is not global (reload CR3): after a page-directory entry's
/// writable bit changed, no stale writable translation may survive.
pub fn flush_tlb() {
    // SAFETY: reloading CR3 with its own value keeps the same tables; only cached
    // translations are dropped (global ones, the kernel's identity map, stay).
    unsafe { asm!("mov {t}, cr3", "mov cr3, {t}", t = out(reg) _, options(nostack, preserves_flags)) };
}
