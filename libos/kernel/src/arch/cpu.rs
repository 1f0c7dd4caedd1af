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
