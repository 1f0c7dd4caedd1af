//! The single instructions both kernels need. Each is a ring-0 operation with no memory effect
//! the compiler has to know about; none of them may be called from ring 3 (they fault there).

use core::arch::asm;

/// The time-stamp counter. Under QEMU `-icount shift=0` it counts retired instructions.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the counter (allowed in ring 3 too unless CR4.TSD is set).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The address of the last page fault.
#[inline]
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading cr2 has no side effect (ring 0).
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

#[inline]
pub fn interrupts_enabled() -> bool {
    let f: u64;
    // SAFETY: pushfq/pop only reads the flags (using eight bytes of stack briefly).
    unsafe { asm!("pushfq", "pop {}", out(reg) f, options(nomem, preserves_flags)) };
    f & crate::frame::RFLAGS_IF != 0
}

#[inline]
pub fn disable_interrupts() {
    // SAFETY: masking interrupts is always allowed in ring 0.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

#[inline]
pub fn enable_interrupts() {
    // SAFETY: the kernels load their IDT before the first `sti`.
    unsafe { asm!("sti", options(nomem, nostack)) };
}

/// Wait for the next interrupt with interrupts enabled (`sti; hlt` takes interrupts only at
/// the `hlt`, so a wake-up cannot be missed between the two), and leave them enabled.
#[inline]
pub fn wait_for_interrupt() {
    // SAFETY: as above; the IDT is loaded.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

/// Drop the TLB entry of the page holding `addr`.
#[inline]
pub fn invlpg(addr: u64) {
    // SAFETY: dropping a TLB entry is always safe; the next access walks the tables again.
    unsafe { asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Stop this CPU for good.
#[inline]
pub fn halt_forever() -> ! {
    loop {
        disable_interrupts();
        // SAFETY: halting with interrupts off stops this CPU, as intended.
        unsafe { asm!("hlt", options(nomem, nostack)) };
    }
}
