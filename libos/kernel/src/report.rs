//! Fault reports a person can act on, the kernel's own failures, and the Ctrl-T task dump.
//!
//! A fault in a task prints the task, its generation, the fault, the instruction pointer with
//! its symbol (from the image's ELF symbol table, which GRUB loads and names in the Multiboot2
//! ELF-sections tag), the faulting address and the registers; `lifecycle::fail` then prints
//! what it decided. A fault inside the kernel itself (a kernel table borrowed, or in the trap
//! path) cannot be contained: it prints the same report and stops the machine with
//! `DEBUG_EXIT_PANIC`.

use crate::arch::cpu;
use crate::arch::trap::TrapFrame;
use crate::state::{Detail, Exception as Trap, Fault, Kernel};
use core::fmt::Write;
use fault::FaultKind;
use x86::exception::{self, Exception, PageFault};

fn print_frame(f: &TrapFrame) {
    for line in f.dump() {
        crate::serial::kprintln!("  {}", line);
    }
}

/// Print the report of `fault` in task `name`. `guard`: the address lies in its stack's guard
/// page.
pub(crate) fn report(
    name: &str,
    index: usize,
    generation: u32,
    fault: Fault,
    frame: Option<&TrapFrame>,
    guard: bool,
) {
    match (fault.kind, fault.detail) {
        (_, Detail::Exception(e)) => {
            // The microkernel's report, line for line (its `report` module).
            let page_fault = e.vector == exception::PAGE_FAULT;
            if page_fault && guard {
                crate::serial::kprintln!(
                    "FAULT in {} (task {}, gen {}): stack overflow (hit the guard page), error {:#x} ({})",
                    name,
                    index,
                    generation,
                    e.error,
                    PageFault(e.error)
                );
            } else {
                let what = Exception { vector: e.vector, error: e.error };
                crate::serial::kprintln!("FAULT in {} (task {}, gen {}): {}", name, index, generation, what);
            }
            let sym = crate::symbols::Symbol(e.rip);
            if page_fault {
                crate::serial::kprintln!("  rip {:#x} {}  address {:#x}", e.rip, sym, e.addr);
            } else {
                crate::serial::kprintln!("  rip {:#x} {}", e.rip, sym);
            }
            if let Some(f) = frame {
                print_frame(f);
            }
        }
        (_, Detail::Stack(s)) => {
            if s.overflow {
                crate::serial::kprintln!(
                    "FAULT in {} (task {}, gen {}): stack overflow (an interrupt found no room below rsp {:#x} for its frame)",
                    name,
                    index,
                    generation,
                    s.rsp
                );
            } else {
                crate::serial::kprintln!(
                    "FAULT in {} (task {}, gen {}): stack pointer {:#x} outside its stack (found by an interrupt)",
                    name,
                    index,
                    generation,
                    s.rsp
                );
            }
            crate::serial::kprintln!("  rip {:#x} {}", s.rip, crate::symbols::Symbol(s.rip));
            if let Some(f) = frame {
                print_frame(f);
            }
        }
        (FaultKind::Panic, _) => {
            let msg = PANIC_MSG.with(|m| m.clone());
            crate::serial::kprintln!(
                "FAULT in {} (task {}, gen {}): panicked: {}",
                name,
                index,
                generation,
                fault::OneLine(&msg)
            );
            if let Some(f) = frame {
                crate::serial::kprintln!("  rip {:#x} {}", f.rip, crate::symbols::Symbol(f.rip));
            }
        }
        (FaultKind::Killed, _) => {
            crate::serial::kprintln!("KILL {} (task {}, gen {}) on request", name, index, generation)
        }
        (FaultKind::Hang, Detail::Hang(hang)) => {
            crate::serial::kprintln!("HANG in {} (task {}, gen {}): {}", name, index, generation, hang)
        }
        (FaultKind::Malformed, _) => {
            crate::serial::kprintln!(
                "FAULT in {} (task {}, gen {}): sent an answer that is not a valid value of its type; not delivered",
                name,
                index,
                generation
            )
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
            crate::serial::kprintln!(
                "FAULT in {} (task {}, gen {}): {}",
                name,
                index,
                generation,
                kind.name()
            )
        }
    }
}

/// A page fault that is a write refused by protection (present page, write access): say whose
/// memory task `me` tried to write. In one address space that is the only trace a wild write
/// leaves when it is stopped (see `mem::protect`).
pub(crate) fn wild_write(k: &mut Kernel, me: usize, e: Trap) {
    const PRESENT: u64 = 1;
    const WRITE: u64 = 2;
    if e.vector != exception::PAGE_FAULT || e.error & (PRESENT | WRITE) != PRESENT | WRITE {
        return;
    }
    let name = k.task(me).map_or("?", |t| t.name);
    let owner = k.tasks.iter().enumerate().find_map(|(j, t)| {
        let t = t.as_ref().filter(|_| j != me)?;
        let [stack, heap] = t.data_ranges();
        let part = if (stack.0..stack.1).contains(&e.addr) {
            "stack"
        } else if (heap.0..heap.1).contains(&e.addr) {
            "heap"
        } else {
            return None;
        };
        Some((t.name, j, part))
    });
    match owner {
        Some((other, j, part)) => crate::serial::kprintln!(
            "  a wild write stopped: {:#x} is in {}'s {} (task {}), read-only while {} runs",
            e.addr,
            other,
            part,
            j,
            name
        ),
        None if crate::mem::recipes::contains(e.addr) => crate::serial::kprintln!(
            "  a wild write stopped: {:#x} is in the tasks' restart recipes, read-only once the system runs",
            e.addr
        ),
        None if crate::mem::paging::slot(e.addr).is_some() => crate::serial::kprintln!(
            "  a wild write stopped: {:#x} is in a cell's pages (MappedPages), written only through the kernel",
            e.addr
        ),
        None => crate::serial::kprintln!(
            "  a wild write stopped: {:#x} is kernel memory outside the image (page tables, frames)",
            e.addr
        ),
    }
}

/// What a fault was, in the words of the supervisor's decision line (as the microkernel's
/// reincarnation server puts it): `page fault at 0x…`, `killed`, `hang`, ...
pub(crate) struct What(pub Fault);

impl core::fmt::Display for What {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.detail {
            Detail::Exception(e) => write!(f, "{} at {:#x}", exception::name(e.vector), e.rip),
            Detail::Stack(s) if s.overflow => write!(f, "stack overflow at {:#x}", s.rip),
            Detail::Stack(s) => write!(f, "bad stack pointer at {:#x}", s.rip),
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
        // One line, so that a report's lines all carry the kernel's prefix (the standard
        // rendering of `PanicInfo` puts the message on a line of its own).
        let _ = match info.location() {
            Some(l) => write!(m, "at {}:{}:{}: {}", l.file(), l.line(), l.column(), info.message()),
            None => write!(m, "{}", info.message()),
        };
    });
}

/// Stop the machine after a failure of the kernel itself.
pub(crate) fn kernel_panic_frame(what: &str, f: &TrapFrame) -> ! {
    crate::serial::kprintln!(
        "KERNEL PANIC: {}: {} at rip {:#x} {}",
        what,
        exception::name(f.vector),
        f.rip,
        crate::symbols::Symbol(f.rip)
    );
    crate::serial::kprintln!("  error {:#x}, cr2 {:#x}", f.error, cpu::cr2());
    print_frame(f);
    stop_machine(x86::qemu::DEBUG_EXIT_PANIC)
}

/// Switch the machine off with exit status `code` (QEMU's `isa-debug-exit` reports it).
pub(crate) fn stop_machine(code: u8) -> ! {
    cpu::disable_interrupts();
    x86::port::PortIo::outb(&cpu::PORTS, x86::qemu::DEBUG_EXIT_PORT, code);
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
