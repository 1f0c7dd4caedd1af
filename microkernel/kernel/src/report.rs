//! Faults detected by the CPU or reported by a task: a report a person can act on, then the
//! task's stop (`lifecycle`). Both kernels print the same report, from the `x86` layer's names,
//! page-fault decoding and register dump.
//!
//! ```text
//! [kernel] FAULT in hostile (task 3, gen 0): page fault (#PF), error 0x7 (user write, protection violation)
//! [kernel]   rip 0x40001234 <hostile::main+0x34>  address 0x100000
//! [kernel]   rax 0x0000000000000000  rbx ...
//! [kernel]   action: hostile stopped (exception); 0 waiting caller(s) failed with ServerFailed
//! ```

use crate::arch::trap::TrapFrame;
use crate::state::Kernel;
use axolotl_abi::{FaultKind, PAGE_SIZE, USER_STACK_SIZE, USER_STACK_TOP};
use core::fmt;
use x86::exception::{self, Exception, PageFault};

/// `<symbol+0xoff>` for an address in the task's image, if its ELF has symbols.
struct Symbol<'a>(Option<(&'a str, u64)>);

impl fmt::Display for Symbol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((name, off)) => write!(f, "<{:#}+{off:#x}>", rustc_demangle::demangle(name)),
            None => f.write_str("<no symbol>"),
        }
    }
}

/// The register dump of a report, a line each.
pub fn print_registers(f: &TrapFrame) {
    for line in f.dump() {
        crate::kprintln!("  {}", line);
    }
}

/// A CPU exception in user task `t` (`cr2`: the faulting address of a page fault): report it
/// and stop the task.
pub fn user_fault(k: &mut Kernel, t: usize, cr2: u64) {
    let c = k.tasks[t].ctx;
    let guard = USER_STACK_TOP - USER_STACK_SIZE - PAGE_SIZE;
    let page_fault = c.vector == exception::PAGE_FAULT;
    let task = &k.tasks[t];
    let head = (task.name(), t, task.id.generation);
    if page_fault && (guard..guard + PAGE_SIZE).contains(&cr2) {
        crate::kprintln!(
            "FAULT in {} (task {}, gen {}): stack overflow (hit the guard page), error {:#x} ({})",
            head.0,
            head.1,
            head.2,
            c.error,
            PageFault(c.error)
        );
    } else {
        let e = Exception { vector: c.vector, error: c.error };
        crate::kprintln!("FAULT in {} (task {}, gen {}): {}", head.0, head.1, head.2, e);
    }
    // An update's image came from a client: `symbolize` checks every offset it reads (and most
    // update images are stripped of their symbols anyway).
    let sym = Symbol(k.module_of(t).and_then(|m| axolotl_kcore::elf::symbolize(m.bytes(), c.rip)));
    if page_fault {
        crate::kprintln!("  rip {:#x} {}  address {:#x}", c.rip, sym, cr2);
    } else if !exception::is_canonical(c.rip) {
        crate::kprintln!("  rip {:#x} <not a canonical address: nothing can be fetched there>", c.rip);
    } else {
        crate::kprintln!("  rip {:#x} {}", c.rip, sym);
    }
    print_registers(&c);
    let addr = if page_fault { cr2 } else { 0 };
    crate::lifecycle::task_failed(k, t, FaultKind::Exception, c.vector, c.error, addr);
}

/// A task's panic handler ended it with `EXIT_PANIC` and this message: report it and stop it.
pub fn panicked(k: &mut Kernel, t: usize, msg: &str) {
    let task = &k.tasks[t];
    crate::kprintln!(
        "FAULT in {} (task {}, gen {}): panicked: {}",
        task.name(),
        t,
        task.id.generation,
        fault::OneLine(msg)
    );
    crate::lifecycle::task_failed(k, t, FaultKind::Panic, 0, 0, 0);
}

/// The task's own rip is one it cannot fetch from (only an injected fault makes one, see
/// `inject`): returning there would fault in ring 0 (`sysretq` on Intel, `iretq` everywhere),
/// so charge the #GP the fetch would raise to the task now. True if it did.
pub fn fault_if_unfetchable(k: &mut Kernel, t: usize) -> bool {
    if exception::is_canonical(k.tasks[t].ctx.rip) {
        return false;
    }
    crate::arch::trap::raise_gp(&mut k.tasks[t].ctx);
    user_fault(k, t, 0);
    true
}
