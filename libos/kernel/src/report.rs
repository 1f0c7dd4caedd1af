//! Fault reports a person can act on, the kernel's own failures, and the Ctrl-T task dump.
//!
//! A fault in a task prints the task, its generation, the fault, the instruction pointer with
//! its symbol (from the image's ELF symbol table, which GRUB loads and names in the Multiboot2
//! ELF-sections tag), the faulting address and the registers; `lifecycle::fail` then prints
//! what it decided. A fault inside the kernel itself (a kernel table borrowed, or in the trap
//! path) cannot be contained: it prints the same report and stops the machine with
//! `DEBUG_EXIT_PANIC`.

use crate::arch::cpu;
use crate::arch::trap::{Frame, REG_NAMES};
use crate::state::{Detail, Fault, Kernel};
use core::fmt::Write;
use fault::FaultKind;

pub fn vector_name(v: u64) -> &'static str {
    match v {
        0 => "divide error",
        1 => "debug",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack fault",
        13 => "general protection",
        14 => "page fault",
        16 => "x87 error",
        17 => "alignment check",
        19 => "SIMD error",
        _ => "exception",
    }
}

fn page_fault_cause(error: u64) -> &'static str {
    match (error & 1 != 0, error & 2 != 0, error & 16 != 0) {
        (_, _, true) => "instruction fetch from a no-execute page",
        (false, true, _) => "write to an unmapped page",
        (false, false, _) => "read of an unmapped page",
        (true, true, _) => "write to a read-only page",
        (true, false, _) => "protection violation on read",
    }
}

fn print_frame(f: &Frame) {
    let mut f2 = *f;
    let mut line: heapless::String<200> = heapless::String::new();
    for (i, name) in REG_NAMES.iter().enumerate().take(16) {
        let _ = write!(line, "{}={:#x} ", name, *f2.reg_mut(i));
        if i % 6 == 5 || i == 15 {
            crate::serial::kprintln!("  {}", line.trim_end());
            line.clear();
        }
    }
    crate::serial::kprintln!("  rflags={:#x}", f.rflags);
}

/// Print the report of `fault` in task `name`. `guard`: the address lies in its stack's guard
/// page.
pub(crate) fn report(
    name: &str,
    index: usize,
    generation: u32,
    fault: Fault,
    frame: Option<&Frame>,
    guard: bool,
) {
    match (fault.kind, fault.detail) {
        (_, Detail::Exception(e)) => {
            let (vector, error, rip, addr) = (e.vector, e.error, e.rip, e.addr);
            crate::serial::kprintln!(
                "FAULT {} (task {}, gen {}): {} (vector {}, error {:#x})",
                name,
                index,
                generation,
                vector_name(vector),
                vector,
                error
            );
            crate::serial::kprintln!("  at rip {:#x} {}", rip, crate::symbols::Symbol(rip));
            if vector == 14 {
                crate::serial::kprintln!(
                    "  address {:#x}: {}{}",
                    addr,
                    page_fault_cause(error),
                    if guard { " (stack guard page: stack overflow)" } else { "" }
                );
            }
            if let Some(f) = frame {
                print_frame(f);
            }
        }
        (FaultKind::Panic, _) => {
            let msg = PANIC_MSG.with(|m| m.clone());
            crate::serial::kprintln!("FAULT {} (task {}, gen {}): panic: {}", name, index, generation, msg);
            if let Some(f) = frame {
                crate::serial::kprintln!("  panicked at rip {:#x} {}", f.rip, crate::symbols::Symbol(f.rip));
            }
        }
        (FaultKind::Killed, _) => {
            crate::serial::kprintln!("KILL {} (task {}, gen {}) on request", name, index, generation)
        }
        (FaultKind::Hang, Detail::Hang(hang)) => {
            crate::serial::kprintln!("FAULT {} (task {}, gen {}): hang: {}", name, index, generation, hang)
        }
        (FaultKind::Exited, _) => {
            crate::serial::kprintln!(
                "EXIT {} (task {}, gen {}): its closure returned",
                name,
                index,
                generation
            )
        }
        (kind, _) => {
            crate::serial::kprintln!("FAULT {} (task {}, gen {}): {}", name, index, generation, kind.name())
        }
    }
}

/// What a fault was, in the words of the supervisor's decision line (as the microkernel's
/// reincarnation server puts it): `page fault at 0x…`, `killed`, `hang`, ...
pub(crate) struct What(pub Fault);

impl core::fmt::Display for What {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.detail {
            Detail::Exception(e) => write!(f, "{} at {:#x}", vector_name(e.vector), e.rip),
            _ => f.write_str(self.0.kind.name()),
        }
    }
}

/// The message of the panic a task is dying of (written by the panic handler, read by
/// [`report`]).
static PANIC_MSG: crate::sync::Global<heapless::String<160>> =
    crate::sync::Global::new(heapless::String::new());

/// Keep the panic message of the current task for its report.
pub(crate) fn set_panic_message(info: &core::panic::PanicInfo<'_>) {
    PANIC_MSG.with(|m| {
        m.clear();
        let _ = write!(m, "{}", info);
    });
}

/// Stop the machine after a failure of the kernel itself.
pub(crate) fn core_panic_frame(what: &str, f: &Frame) -> ! {
    crate::serial::kprintln!(
        "CORE PANIC: {}: {} at rip {:#x} {}",
        what,
        vector_name(f.vector),
        f.rip,
        crate::symbols::Symbol(f.rip)
    );
    crate::serial::kprintln!("  error {:#x}, cr2 {:#x}", f.error, cpu::cr2());
    print_frame(f);
    stop_machine(axolotl_abi::DEBUG_EXIT_PANIC)
}

/// Switch the machine off with exit status `code` (QEMU's `isa-debug-exit` reports it).
pub(crate) fn stop_machine(code: u8) -> ! {
    cpu::disable_interrupts();
    cpu::outb(axolotl_abi::DEBUG_EXIT_PORT, code);
    cpu::halt_forever()
}

/// Print every task's state on the kernel's console (Ctrl-T).
pub(crate) fn dump(k: &Kernel) {
    crate::serial::kprintln!("tasks at tick {} (current {}):", k.ticks, k.current);
    for (i, t) in k.tasks.iter().enumerate() {
        if let Some(t) = t {
            crate::serial::kprintln!(
                "  {:>2} {:<10} gen {:<5} {:<7} ran {:>4} ms  call {:?}  pending {}  wake_at {}",
                i,
                t.name,
                t.generation,
                t.state.name(),
                t.ran_ticks,
                t.call.map(|c| (c.ep, c.phase)),
                t.pending.is_some(),
                t.wake_at
            );
        }
    }
}
