//! The Rust side of every kernel entry: syscalls, exceptions and interrupts.
//!
//! From user mode the entry stubs have already saved the task's registers in its control block;
//! these handlers take the kernel lock, act, and return the frame to resume. From kernel mode the
//! only legitimate entries are interrupts while idle; anything else is a kernel bug and panics
//! with a full report.

use crate::arch::cpu::{self, NO_TASK};
use crate::arch::pic;
use crate::arch::trap::{Context, SYSCALL_VECTOR};
use crate::sched::next_context;
use crate::state::{Kernel, KERNEL};
use crate::{fault, syscall};

/// Never returns to the entry stub: it resumes a task itself, so it need not restore the
/// registers the stub does not use (that saves the epilogue on every syscall).
#[no_mangle]
extern "C" fn syscall_from_user() -> ! {
    // Uncontended with one CPU. `try_lock` first keeps `lock`'s aligned spin loop (and the
    // padding before it) off the straight path.
    let mut k = KERNEL.try_lock().unwrap_or_else(|| KERNEL.lock());
    let cur = cpu::this().current.get();
    if let Some(next) = crate::fastpath::try_ipc(&mut k, cur) {
        // The fastpath checked that `next` may run now: no scheduling decision to make.
        let frame = k.activate(next);
        debug_assert_eq!(
            k.tasks[next].ctx.vector, SYSCALL_VECTOR,
            "a task blocked in IPC entered by syscall"
        );
        drop(k);
        // SAFETY: `activate` made `next` the running task (space, rsp0, ctx end) and the lock is
        // released; `next` was blocked in a receive or a call, both syscalls, so `syscall` saved its frame.
        unsafe { crate::arch::trap::sysret_to_user(frame) }
    }
    let frame = slow_syscall(k, cur);
    // SAFETY: `next_context` made the task whose frame this is the running one (space, rsp0,
    // ctx end), and the kernel lock is released.
    unsafe { crate::arch::trap::return_to_user(frame) }
}

/// Every syscall the fastpath does not take. Out of line, so that the fastpath's frame stays
/// small (the general path's locals take kilobytes of stack).
#[inline(never)]
fn slow_syscall(mut k: spin::MutexGuard<'static, Kernel>, cur: usize) -> *const Context {
    syscall::handle(&mut k, cur);
    next_context(k)
}

#[no_mangle]
extern "C" fn trap_from_user(frame: *mut Context) -> *const Context {
    // SAFETY: the stub passes the frame it just built in the running task's control block.
    let vector = unsafe { (*frame).vector };
    let mut k = KERNEL.lock();
    let cur = cpu::this().current.get();
    match vector {
        0..=31 if cur != NO_TASK => fault::user_fault(&mut k, cur, cpu::read_cr2()),
        32..=47 => interrupt(&mut k, (vector - 32) as u8),
        _ => {}
    }
    next_context(k)
}

#[no_mangle]
extern "C" fn trap_from_kernel(frame: *mut Context) {
    // SAFETY: the stub passes the frame it pushed on the current kernel stack.
    let c = unsafe { *frame };
    if (32..48).contains(&c.vector) {
        interrupt(&mut KERNEL.lock(), (c.vector - 32) as u8);
        return;
    }
    let running = cpu::this().current.get();
    crate::log::break_lock();
    crate::kprintln!(
        "KERNEL FAULT: {} at rip {:#x}, error {:#x}, cr2 {:#x} (while running task {})",
        fault::exception_name(c.vector),
        c.rip,
        c.error,
        cpu::read_cr2(),
        running as isize
    );
    fault::print_registers(&c);
    panic!("{} in the kernel at rip {:#x}", fault::exception_name(c.vector), c.rip);
}

/// IRQ `line`: the timer ticks the scheduler; a driver's line is masked until it acknowledges,
/// and its notification is signalled.
fn interrupt(k: &mut Kernel, line: u8) {
    if (line == 7 || line == 15) && pic::is_spurious(line) {
        if line == 15 {
            pic::eoi(0);
        }
        return;
    }
    if line == 0 {
        k.tick();
    } else if let Some(n) = k.irqs[line as usize] {
        pic::mask(line, true);
        k.signal(n, 1 << line);
    } else {
        pic::mask(line, true);
    }
    pic::eoi(line);
}
