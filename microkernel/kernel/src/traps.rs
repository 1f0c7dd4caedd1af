//! The Rust side of every kernel entry — syscalls, exceptions and interrupts — and the top
//! layer that decides which task runs next.
//!
//! From user mode the entry stubs have already saved the task's registers in its control block;
//! these handlers take the kernel state (`KERNEL.enter()`), act, and return the frame to resume. From kernel mode the
//! only legitimate entries are interrupts while idle; anything else is a kernel bug and panics
//! with a full report.

use crate::arch::cpu::{self, NO_TASK, PORTS};
use crate::arch::trap::{TrapFrame, SYSCALL_VECTOR};
use crate::state::{Kernel, KernelGuard, KERNEL};

/// Never returns to the entry stub: it resumes a task itself, so it need not restore the
/// registers the stub does not use (that saves the epilogue on every syscall).
#[no_mangle]
extern "C" fn syscall_from_user() -> ! {
    // SAFETY: a kernel entry from user mode.
    let mut k = unsafe { KERNEL.enter() };
    let cur = cpu::this().current.get();
    if let Some(next) = crate::fastpath::try_ipc(&mut k, cur) {
        // The fastpath checked that `next` may run now: no scheduling decision to make.
        let frame = k.activate_other(next);
        debug_assert_eq!(
            k.tasks[next].ctx.vector, SYSCALL_VECTOR,
            "a task blocked in IPC entered by syscall"
        );
        let words = &k.tasks[cur].ctx as *const TrapFrame;
        drop(k);
        // SAFETY: `activate_other` made `next` the running task (space, rsp0, ctx end) and the
        // guard is dropped; `next` was blocked in a receive or a call, both syscalls, so `syscall` saved
        // its frame. `cur` sent it the message and is blocked now (in its call, or receiving).
        unsafe { crate::arch::trap::sysret_ipc(frame, words) }
    }
    let frame = slow_syscall(k, cur);
    // SAFETY: `next_context` made the task whose frame this is the running one (space, rsp0,
    // ctx end), and the guard is dropped.
    unsafe { crate::arch::trap::return_to_user(frame) }
}

/// Every syscall the fastpath does not take. Out of line, so that the fastpath's frame stays
/// small (the general path's locals take kilobytes of stack).
#[inline(never)]
fn slow_syscall(mut k: KernelGuard, cur: usize) -> *const TrapFrame {
    crate::syscall::handle(&mut k, cur);
    next_context(k)
}

#[no_mangle]
extern "C" fn trap_from_user(frame: *mut TrapFrame) -> *const TrapFrame {
    // SAFETY: the stub passes the frame it just built in the running task's control block.
    let vector = unsafe { (*frame).vector };
    // SAFETY: a kernel entry from user mode.
    let mut k = unsafe { KERNEL.enter() };
    let cur = cpu::this().current.get();
    match vector {
        // The state-spill audit's watch: a touch of a page it hid, then the single step after.
        14 if cur != NO_TASK && k.audit_page_fault(cur, x86::cpu::cr2()) => {}
        1 if cur != NO_TASK && k.audit_debug_trap(cur) => {}
        0..=31 if cur != NO_TASK => crate::report::user_fault(&mut k, cur, x86::cpu::cr2()),
        32..=47 => {
            k.charge_interrupt();
            interrupt(&mut k, (vector - 32) as u8)
        }
        _ => {}
    }
    next_context(k)
}

#[no_mangle]
extern "C" fn trap_from_kernel(frame: *mut TrapFrame) {
    // SAFETY: the stub passes the frame it pushed on the current kernel stack.
    let c = unsafe { *frame };
    if (32..48).contains(&c.vector) {
        // SAFETY: an interrupt in ring 0 only ends the idle wait, where no guard is alive (see
        // `KernelCell`).
        interrupt(&mut *unsafe { KERNEL.enter() }, (c.vector - 32) as u8);
        return;
    }
    let running = cpu::this().current.get();
    crate::log::break_lock();
    crate::kprintln!(
        "KERNEL FAULT: {} at rip {:#x}, error {:#x}, cr2 {:#x} (while running task {})",
        x86::exception::name(c.vector),
        c.rip,
        c.error,
        x86::cpu::cr2(),
        running as isize
    );
    crate::report::print_registers(&c);
    panic!("{} in the kernel at rip {:#x}", x86::exception::name(c.vector), c.rip);
}

/// IRQ `line`: the timer ticks the scheduler and the watchdog; a driver's line is masked until
/// it acknowledges, and its notification is signalled.
fn interrupt(k: &mut Kernel, line: u8) {
    if (line == 7 || line == 15) && x86::pic::is_spurious(&PORTS, line) {
        if line == 15 {
            x86::pic::eoi(&PORTS, 0);
        }
        return;
    }
    if line == 0 {
        k.ticks += 1;
        crate::watchdog::tick(k, cpu::this().current.get());
        k.account_tick();
    } else if let Some(n) = k.irqs[line as usize] {
        x86::pic::mask(&PORTS, line, true);
        k.signal(n, 1 << line);
    } else {
        x86::pic::mask(&PORTS, line, true);
    }
    x86::pic::eoi(&PORTS, line);
}

/// The frame to resume after a kernel entry; idles until some task is ready. Consumes the
/// guard: it is dropped before the caller restores the frame. That is safe because a running
/// task's frame is only ever touched by the CPU running it.
pub fn next_context(mut k: KernelGuard) -> *const TrapFrame {
    loop {
        if let Some(t) = k.choose() {
            // A task's own jumps fault at the fetch and the injector faults a rip it breaks at
            // once, so this only guards that invariant: never return to a rip the CPU cannot
            // fetch from (it would fault in ring 0).
            if crate::report::fault_if_unfetchable(&mut k, t) {
                continue;
            }
            return k.activate(t);
        }
        k.charge(NO_TASK);
        drop(k);
        cpu::idle_wait();
        // SAFETY: the guard was dropped before the wait; the interrupt that ended it has
        // returned (and given up its own).
        k = unsafe { KERNEL.enter() };
    }
}
