//! Interrupt descriptor table gates (64-bit interrupt gates: interrupts masked on entry).

/// One IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gate {
    offset_lo: u16,
    selector: u16,
    ist: u8,
    attr: u8,
    offset_mid: u16,
    offset_hi: u32,
    _zero: u32,
}

/// Present, descriptor privilege 0, 64-bit interrupt gate: only the CPU (exceptions, IRQs) or
/// ring 0 can enter it; `int n` from ring 3 raises #GP instead.
const INTERRUPT_GATE: u8 = 0x8e;

impl Gate {
    pub const EMPTY: Gate =
        Gate { offset_lo: 0, selector: 0, ist: 0, attr: 0, offset_mid: 0, offset_hi: 0, _zero: 0 };

    /// A gate to `handler` in code segment `selector`, on interrupt stack `ist` (0: none).
    pub const fn interrupt(handler: u64, selector: u16, ist: u8) -> Gate {
        Gate {
            offset_lo: handler as u16,
            selector,
            ist,
            attr: INTERRUPT_GATE,
            offset_mid: (handler >> 16) as u16,
            offset_hi: (handler >> 32) as u32,
            _zero: 0,
        }
    }

    pub const fn handler(&self) -> u64 {
        self.offset_lo as u64 | (self.offset_mid as u64) << 16 | (self.offset_hi as u64) << 32
    }
}

pub type Idt = [Gate; 256];

/// A kernel's IDT: a static, filled and loaded once at boot, read only by the CPU after that.
pub struct StaticIdt(core::cell::UnsafeCell<Idt>);

// SAFETY: written only by `init`, which its caller runs once during single-threaded boot;
// afterwards only the CPU reads the table.
unsafe impl Sync for StaticIdt {}

impl Default for StaticIdt {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticIdt {
    pub const fn new() -> Self {
        StaticIdt(core::cell::UnsafeCell::new([Gate::EMPTY; 256]))
    }

    /// Let `fill` set the gates, then load the table.
    ///
    /// # Safety
    /// Called once, during single-threaded boot, before interrupts are enabled; every gate
    /// `fill` sets points at a valid entry stub.
    pub unsafe fn init(&'static self, fill: impl FnOnce(&mut Idt)) {
        // SAFETY: the caller's contract: nothing else touches the table now.
        let idt = unsafe { &mut *self.0.get() };
        fill(idt);
        // SAFETY: filled above, static, and never written again.
        unsafe { load(idt) };
    }
}

/// Emit the entry stubs of vectors 0–47 (the CPU's exceptions and the 16 IRQs) and a table of
/// their addresses, `TABLE` (`[u64; 48]`), for the IDT: each stub makes the frame's error and
/// vector words (see `frame`) and jumps to the kernel's common entry code, the asm label
/// `COMMON`. The CPU pushes an error code itself for vectors 8, 10–14, 17, 21, 29 and 30;
/// every other stub pushes a 0 in its place, so that all frames have the same layout. Each stub is
/// a sized function symbol, `TABLE_stub_N` (a kernel that tells its own code from its symbols,
/// as the libos's injector does, counts every byte of it). A macro, like the boot trampoline, so
/// that only the kernel that asks links it.
///
/// ```ignore
/// x86::trap_stubs!(common = "isr_common", table = "isr_table");
/// extern "C" { static isr_table: [u64; 48]; }
/// ```
#[macro_export]
macro_rules! trap_stubs {
    (common = $common:literal, table = $table:literal $(,)?) => {
        ::core::arch::global_asm!(
            concat!(
                "    .section .text\n",
                "    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,",
                "24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47\n",
                "    .balign 16\n",
                "    .type ",
                $table,
                "_stub_\\vec, @function\n",
                $table,
                "_stub_\\vec\\():\n",
                "    .if (\\vec != 8) && (\\vec != 10) && (\\vec != 11) && (\\vec != 12) && (\\vec != 13)",
                " && (\\vec != 14) && (\\vec != 17) && (\\vec != 21) && (\\vec != 29) && (\\vec != 30)\n",
                "    push $0\n",
                "    .endif\n",
                "    push $\\vec\n",
                "    jmp ",
                $common,
                "\n",
                "    .size ",
                $table,
                "_stub_\\vec, . - ",
                $table,
                "_stub_\\vec\n",
                "    .endr\n",
                "    .section .rodata\n",
                "    .balign 8\n",
                "    .global ",
                $table,
                "\n",
                $table,
                ":\n",
                "    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,",
                "24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47\n",
                "    .quad ",
                $table,
                "_stub_\\vec\n",
                "    .endr\n",
                "    .text\n",
            ),
            options(att_syntax)
        );
    };
}

/// Load `idt` into the CPU.
///
/// # Safety
/// Every present gate must point at a valid entry stub of the selector's code segment, and the
/// table must never move or change while loaded (it is `'static`; the caller fills it before).
pub unsafe fn load(idt: &'static Idt) {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer { limit: (core::mem::size_of::<Idt>() - 1) as u16, base: idt.as_ptr() as u64 };
    // SAFETY: the caller's contract; `lidt` reads the 10-byte pointer only.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_splits_its_handler_address() {
        let g = Gate::interrupt(0x1234_5678_9abc_def0, 0x08, 1);
        assert_eq!(g.handler(), 0x1234_5678_9abc_def0);
        assert_eq!((g.selector, g.ist, g.attr), (0x08, 1, 0x8e));
        assert_eq!(core::mem::size_of::<Gate>(), 16);
    }
}
