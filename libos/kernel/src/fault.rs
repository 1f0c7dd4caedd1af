//! Fault reports a person can act on, the panic handler, and core panics.
//!
//! A fault in a task prints the task, its generation, the fault, the instruction pointer with
//! its symbol (from the image's ELF symbol table, which GRUB loads and names in the Multiboot2
//! ELF-sections tag), the faulting address and the registers; `task::fail` then prints what was
//! done. A fault inside the core itself (a core table borrowed, or in the trap path) cannot be
//! contained: it prints the same report and stops the machine with `DEBUG_EXIT_PANIC`.

use crate::arch::cpu;
use crate::arch::trap::{Frame, REG_NAMES};
use crate::task::{Fault, KERNEL};
use core::fmt::Write;

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
            crate::kprintln!("  {}", line.trim_end());
            line.clear();
        }
    }
    crate::kprintln!("  rflags={:#x}", f.rflags);
}

/// Print the report of `fault` in task `name`.
pub(crate) fn report(
    name: &str,
    index: usize,
    generation: u32,
    fault: Fault,
    frame: Option<&Frame>,
    guard: bool,
) {
    match fault {
        Fault::Exception { vector, error, rip, addr } => {
            crate::kprintln!(
                "FAULT {} (task {}, gen {}): {} (vector {}, error {:#x})",
                name,
                index,
                generation,
                vector_name(vector),
                vector,
                error
            );
            crate::kprintln!("  at rip {:#x} {}", rip, crate::symbols::Symbol(rip));
            if vector == 14 {
                crate::kprintln!(
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
        Fault::Panic => {
            let msg = PANIC_MSG.with(|m| m.clone());
            crate::kprintln!("FAULT {} (task {}, gen {}): panic: {}", name, index, generation, msg);
            if let Some(f) = frame {
                crate::kprintln!("  panicked at rip {:#x} {}", f.rip, crate::symbols::Symbol(f.rip));
            }
        }
        Fault::Killed => crate::kprintln!("KILL {} (task {}, gen {}) on request", name, index, generation),
        Fault::Hang => crate::kprintln!(
            "FAULT {} (task {}, gen {}): hang: ran {} ms without blocking or yielding",
            name,
            index,
            generation,
            crate::sched::HANG_TICKS
        ),
        Fault::Unanswered => crate::kprintln!(
            "FAULT {} (task {}, gen {}): hang: held a request {} ms without answering it or waiting on another server",
            name,
            index,
            generation,
            crate::sched::REQUEST_DEADLINE
        ),
        Fault::Exited => {
            crate::kprintln!("EXIT {} (task {}, gen {}): its closure returned", name, index, generation)
        }
    }
}

static PANIC_MSG: crate::sync::Global<heapless::String<160>> =
    crate::sync::Global::new(heapless::String::new());

/// Stop the machine after a failure of the core itself.
pub(crate) fn core_panic_frame(what: &str, f: &Frame) -> ! {
    crate::kprintln!(
        "CORE PANIC: {}: {} at rip {:#x} {}",
        what,
        vector_name(f.vector),
        f.rip,
        crate::symbols::Symbol(f.rip)
    );
    crate::kprintln!("  error {:#x}, cr2 {:#x}", f.error, cpu::cr2());
    print_frame(f);
    power_off(axolotl_abi::DEBUG_EXIT_PANIC)
}

pub fn power_off(code: u8) -> ! {
    cpu::disable_interrupts();
    cpu::outb(axolotl_abi::DEBUG_EXIT_PORT, code);
    cpu::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let in_task = !crate::sched::in_trap()
        && !crate::sync::busy()
        && KERNEL.with(|k| {
            k.current != crate::sched::IDLE && k.tasks[k.current].as_ref().is_some_and(|t| t.mem.is_some())
        });
    if in_task && crate::STARTED.load(core::sync::atomic::Ordering::Relaxed) {
        PANIC_MSG.with(|m| {
            m.clear();
            let _ = write!(m, "{}", info);
        });
        KERNEL.with(|k| k.cur().dying = Some(Fault::Panic));
        cpu::die_now();
    }
    crate::serial::print(format_args!("[kernel] CORE PANIC: {}\n", info));
    power_off(axolotl_abi::DEBUG_EXIT_PANIC)
}
