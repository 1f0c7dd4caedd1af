//! Small CPU primitives: port I/O, the time-stamp counter, control registers, interrupts.

use core::arch::asm;

pub fn outb(port: u16, v: u8) {
    // SAFETY: the core alone does port I/O, on ports it owns (PIC, PIT, COM1, debug-exit).
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) }
}

pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as for `outb`; reading these ports has no memory effect.
    unsafe { asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (hi as u64) << 32 | lo as u64
}

pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading cr2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn interrupts_enabled() -> bool {
    let f: u64;
    // SAFETY: pushfq/pop only reads the flags (uses two bytes of stack briefly).
    unsafe { asm!("pushfq", "pop {}", out(reg) f, options(nomem, preserves_flags)) }
    f & 0x200 != 0
}

pub fn disable_interrupts() {
    // SAFETY: masking interrupts is always allowed in ring 0.
    unsafe { asm!("cli", options(nomem, nostack)) }
}

pub fn enable_interrupts() {
    // SAFETY: the IDT is loaded before the first `sti`.
    unsafe { asm!("sti", options(nomem, nostack)) }
}

/// Wait for the next interrupt with interrupts enabled.
pub fn idle() {
    // SAFETY: `sti; hlt` is atomic with respect to the interrupt window.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) }
}

pub fn invlpg(addr: u64) {
    // SAFETY: dropping a TLB entry is always safe.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) }
}

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

pub fn halt_forever() -> ! {
    loop {
        disable_interrupts();
        // SAFETY: halting with interrupts off stops this CPU for good, as intended.
        unsafe { asm!("hlt", options(nomem, nostack)) }
    }
}
