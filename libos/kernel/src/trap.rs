//! The one dispatcher every interrupt, exception, yield and `die` goes through (the stubs in
//! `arch::trap` call it), and the panic handler, which ends a panicking task through `die`.
//!
//! ```text
//!  vector                      goes to
//!  exception (0..31, not #DB)  lifecycle::fail (the task), or a kernel panic (the kernel)
//!  #DB single step             inject::single_step
//!  timer (32)                  sched::tick, lifecycle::restart_due, keep_updates, watchdog,
//!                              then keep (the frame onto the task's stack) and
//!                              sched::switch (preemption)
//!  COM1 (36)                   Ctrl-T dump, or the console's input hook
//!  a driven device's line      device::interrupt (masked, its driver woken)
//!  yield (0x81)                keep, then sched::switch
//!  die (0x82)                  lifecycle::fail with the reason the task left in `dying`
//! ```
//! Every way out that resumes another task goes through [`resume`], which arms the single step
//! of a fault injected into it.

use crate::arch::cpu;
use crate::arch::pic;
use crate::arch::trap::{TrapFrame, VEC_DIE, VEC_YIELD};
use crate::state::{Exception, Fault, Kernel, StackFault, IDLE, KERNEL};
use core::sync::atomic::{AtomicBool, Ordering};
use fault::FaultKind;

/// Ctrl-T on the serial line: the kernel prints every task's state (like BSD's SIGINFO), even
/// when the shell is stuck.
const CTRL_T: u8 = 0x14;
const IRQ_TIMER: u64 = 32;
const IRQ_COM1: u64 = 36;

static IN_TRAP: AtomicBool = AtomicBool::new(false);
/// COM1 raised its line inside a critical section: serve it at the next tick.
static SERIAL_DEFERRED: AtomicBool = AtomicBool::new(false);

fn in_trap() -> bool {
    IN_TRAP.load(Ordering::Relaxed)
}

/// The dispatcher (called by the trap stubs with interrupts masked). Returns the frame to resume.
#[no_mangle]
extern "C" fn libos_kernel_trap(frame: *mut TrapFrame) -> *mut TrapFrame {
    if IN_TRAP.swap(true, Ordering::Relaxed) {
        // SAFETY: the stub passed a valid frame.
        let f = unsafe { &*frame };
        crate::report::kernel_panic_frame("exception inside the kernel's trap path", f);
    }
    let old_heap = crate::mem::heap::switch_to(0);
    // SAFETY: the frame is valid (built by the stub on this stack).
    let f = unsafe { &mut *frame };
    if (32..48).contains(&f.vector) {
        crate::sched::woke();
    }
    // SAFETY (every `get_in_trap` below): interrupts are masked by the gate and no
    // `KERNEL.with` is open: a trap inside one is an exception that turns into a kernel panic
    // (or, on a task's behalf, drops the borrow) before borrowing.
    let next = match f.vector {
        // A single step inside a kernel critical section: keep stepping, touch nothing (but
        // route allocations back to the task's arena, as every return to it does: this path
        // once resumed with them going to the kernel's, so that a cell that then died left
        // what it had allocated there, lost to the kernel heap).
        1 if crate::sync::busy() => finish(frame, old_heap),
        0..=31 => {
            if !task_context() {
                crate::report::kernel_panic_frame("CPU exception in the kernel", f);
            }
            if crate::sync::busy() {
                // Kernel code running for a task, on its stack, faulted with a kernel table
                // borrowed: the task's own state fed the kernel garbage (a corrupted saved frame
                // or argument). The task dies; the update it was making may be half done.
                crate::serial::kprintln!(
                    "warning: fault in kernel code at rip {:#x} {} on a task's behalf, with a kernel table borrowed; the task is stopped and the borrow dropped",
                    f.rip,
                    crate::symbols::Symbol(f.rip)
                );
                crate::sync::reset_busy();
            }
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            if f.vector == 1 {
                crate::inject::single_step(k, f);
                finish(frame, old_heap)
            } else {
                crate::sync::reset_depth();
                let e = Exception { vector: f.vector, error: f.error, rip: f.rip, addr: cpu::cr2() };
                let cur = k.current;
                crate::lifecycle::fail(k, cur, Fault::exception(e), Some(f));
                resume(k, None)
            }
        }
        // An interrupt inside a critical section (its `cli` was faulted away): the interrupted
        // code may hold the task table; touch nothing, switch nothing.
        // The serial line is served at the next tick instead (its line stays in service until
        // then: the UART would not raise a new edge while bytes wait).
        32..=47 if crate::sync::depth() > 0 => {
            if f.vector == IRQ_COM1 {
                SERIAL_DEFERRED.store(true, Ordering::Relaxed);
            } else if pic::armed((f.vector - 32) as u8) && crate::sync::busy() {
                // A device's level-triggered line with a kernel table borrowed: masked now, its
                // driver told at the tick.
                crate::device::defer((f.vector - 32) as u8);
            } else if pic::armed((f.vector - 32) as u8) {
                // No table borrowed: the common case is an interrupt held while a critical
                // section ran, taken at its `sti` before the depth drops. Wake the driver now
                // (switching nothing): the next tick may be far, or never come while
                // preemption is off (`without_preemption`), and the driver would wait for ever.
                // SAFETY: see above; `busy()` is false, so no `KERNEL.with` is open.
                crate::device::interrupt(unsafe { KERNEL.get_in_trap() }, (f.vector - 32) as u8);
            } else {
                pic::eoi((f.vector - 32) as u8);
            }
            finish(frame, old_heap)
        }
        IRQ_TIMER => {
            pic::eoi(0);
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            crate::sched::tick(k);
            if SERIAL_DEFERRED.swap(false, Ordering::Relaxed) {
                serial_input(k);
            }
            crate::device::deliver_deferred(k);
            crate::lifecycle::restart_due(k);
            crate::lifecycle::keep_updates(k);
            crate::lifecycle::watchdog(k, f);
            if !crate::sched::preemptible() {
                finish(frame, old_heap)
            } else {
                match keep(k, f) {
                    Ok(saved) => resume(k, Some(saved)),
                    Err(bad) => {
                        if k.current == IDLE {
                            crate::report::kernel_panic_frame("the idle task's stack pointer is bad", f);
                        }
                        let cur = k.current;
                        crate::lifecycle::fail(k, cur, Fault::stack(bad), Some(f));
                        resume(k, None)
                    }
                }
            }
        }
        IRQ_COM1 => {
            // SAFETY: see above.
            serial_input(unsafe { KERNEL.get_in_trap() });
            finish(frame, old_heap)
        }
        v @ 33..=47 if pic::armed((v - 32) as u8) && !spurious((v - 32) as u8) => {
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            crate::device::interrupt(k, (v - 32) as u8);
            // From idle, run the driver it woke now. Idle must not go back to check for work
            // itself: the interrupt may have come just before its `hlt`, with the line then
            // masked (and, with preemption off, the timer too), and it would halt for ever.
            if k.current != IDLE {
                finish(frame, old_heap)
            } else {
                match keep(k, f) {
                    Ok(saved) => resume(k, Some(saved)),
                    Err(_) => crate::report::kernel_panic_frame("the idle task's stack pointer is bad", f),
                }
            }
        }
        39 | 47 => {
            let line = (f.vector - 32) as u8;
            if !pic::is_spurious(line) {
                pic::eoi(line);
            } else if line == 15 {
                pic::eoi(2);
            }
            finish(frame, old_heap)
        }
        33..=47 => {
            pic::eoi((f.vector - 32) as u8);
            finish(frame, old_heap)
        }
        VEC_YIELD => {
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            k.cur().ran_ticks = 0;
            match keep(k, f) {
                Ok(saved) => resume(k, Some(saved)),
                Err(_) if k.current == IDLE => {
                    crate::report::kernel_panic_frame("the idle task's stack pointer is bad", f)
                }
                Err(bad) => {
                    let cur = k.current;
                    crate::lifecycle::fail(k, cur, Fault::stack(bad), Some(f));
                    resume(k, None)
                }
            }
        }
        VEC_DIE => {
            if !task_context() {
                crate::report::kernel_panic_frame("die outside a task", f);
            }
            crate::sync::reset_depth();
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            let cur = k.current;
            let why = k.cur().dying.take().unwrap_or(Fault::KILLED);
            let frame_for_report = (why.kind == FaultKind::Panic).then_some(&*f);
            crate::lifecycle::fail(k, cur, why, frame_for_report);
            resume(k, None)
        }
        _ => finish(frame, old_heap),
    };
    IN_TRAP.store(false, Ordering::Relaxed);
    next
}

/// Is an interrupt on `line` spurious (only lines 7 and 15 can be)?
fn spurious(line: u8) -> bool {
    (line == 7 || line == 15) && pic::is_spurious(line)
}

/// Resume the interrupted frame, heap routing as it was.
fn finish(frame: *mut TrapFrame, heap: u64) -> *mut TrapFrame {
    crate::mem::heap::switch_to(heap);
    frame
}

/// Switch to the task the scheduler picks (saving `frame` as the current task's, if it lives),
/// with a pending injected fault armed in it.
fn resume(k: &mut Kernel, frame: Option<*mut TrapFrame>) -> *mut TrapFrame {
    // A kernel copy that faulted with protection lifted never resumes: protect again.
    crate::mem::protect::restore();
    crate::sched::switch(k, frame)
}

/// Keep the frame of an interrupt that preempts the current task (or of its yield) as the task's
/// context: copy it off the interrupt stack (IST3, see `arch::trap`) to where the CPU would have pushed it
/// without one, just below the task's stack pointer, 16-aligned. Only inside the task's own
/// stack: a stack pointer a fault bent elsewhere (non-canonical, unmapped, another task's
/// memory, the kernel's data) is the task's fault, and it has no context to keep.
fn keep(k: &mut Kernel, f: &TrapFrame) -> Result<*mut TrapFrame, StackFault> {
    let t = k.cur();
    let [(start, end), _] = t.data_ranges();
    let at = (f.rsp & !15).wrapping_sub(core::mem::size_of::<TrapFrame>() as u64);
    if (start..=end).contains(&f.rsp) && at >= start {
        // SAFETY: `[at, at + size)` lies in the current task's own stack (checked above), which
        // is mapped and writable while it runs (`paging::open`), and below its stack pointer,
        // so the task holds nothing there; `f` is on the interrupt stack, so they do not overlap.
        unsafe { (at as *mut TrapFrame).write(*f) };
        return Ok(at as *mut TrapFrame);
    }
    let bottom = t.guard_page().map_or(start, |g| g.start);
    Err(StackFault { rsp: f.rsp, rip: f.rip, overflow: (bottom..=end).contains(&f.rsp) })
}

/// Is a cell task (not the idle task, not boot) running?
fn task_context() -> bool {
    // SAFETY: only reads `current` and one slot, with interrupts masked.
    let k = unsafe { KERNEL.get_in_trap() };
    let c = k.current;
    c != IDLE && k.tasks[c].as_ref().is_some_and(|t| t.mem().is_some())
}

/// Hand every received byte to the input hook; acknowledge IRQ 4.
fn serial_input(k: &mut Kernel) {
    while let Some(b) = crate::serial::try_read() {
        if b == CTRL_T {
            crate::report::dump(k);
            continue;
        }
        if let Some(input) = k.input.take() {
            input(k, b);
            k.input = Some(input);
        }
    }
    pic::eoi(4);
}

/// A panic in a task ends the task (through `die`, on the fault stack); anywhere else it is a
/// kernel panic and stops the machine.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let in_task = !in_trap()
        && !crate::sync::busy()
        && KERNEL
            .with(|k| k.current != IDLE && k.tasks[k.current].as_ref().is_some_and(|t| t.mem().is_some()));
    if in_task && crate::sched::started() {
        crate::report::set_panic_message(info);
        KERNEL.with(|k| k.cur().dying = Some(Fault::PANIC));
        cpu::die_now();
    }
    crate::serial::print(format_args!("[kernel] KERNEL PANIC: {}\n", info));
    crate::report::stop_machine(x86::qemu::DEBUG_EXIT_PANIC)
}
