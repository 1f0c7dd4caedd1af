//! The scheduler and the one trap dispatcher every interrupt, exception and yield goes through.
//!
//! Round robin among the ready tasks of the highest priority; the PIT (1 kHz) preempts. A
//! task blocks by setting its state and yielding (`int 0x81`); whoever satisfies it sets it
//! ready again. Hang detection: a supervised task that runs [`HANG_TICKS`] timer ticks (ms)
//! without blocking or yielding is declared hung and restarted.

use crate::arch::cpu;
use crate::arch::pic;
use crate::arch::trap::{Frame, VEC_DIE, VEC_YIELD};
use crate::chan::CallPhase;
use crate::task::{Fault, Kernel, State, KERNEL};
use core::sync::atomic::{AtomicBool, Ordering};

pub const HANG_TICKS: u32 = 250;
/// A request a server took and neither answered nor passed on (it waits on no other server)
/// within this many ticks (ms) means the server lost it: the server is restarted, the request
/// retried.
pub const REQUEST_DEADLINE: u64 = 1000;
/// Ctrl-T on the serial line: the core prints every task's state (like BSD's SIGINFO), even
/// when the shell is stuck.
const CTRL_T: u8 = 0x14;

static IN_TRAP: AtomicBool = AtomicBool::new(false);
/// While set, the timer counts ticks but does not preempt (benchmarks).
static NO_PREEMPT: AtomicBool = AtomicBool::new(false);

pub fn in_trap() -> bool {
    IN_TRAP.load(Ordering::Relaxed)
}

/// Run a task's `die` stub: the task ends itself on the fault stack (see `Task::dying`).
extern "C" fn die_trampoline() -> ! {
    cpu::die_now()
}

/// The dispatcher (called by the trap stubs with interrupts masked). Returns the frame to resume.
#[no_mangle]
extern "C" fn libos_kernel_trap(frame: *mut Frame) -> *mut Frame {
    if IN_TRAP.swap(true, Ordering::Relaxed) {
        // SAFETY: the stub passed a valid frame.
        let f = unsafe { &*frame };
        crate::fault::core_panic_frame("exception inside the core's trap path", f);
    }
    let old_heap = crate::mem::heap::switch_to(0);
    // SAFETY: the frame is valid (built by the stub on this stack).
    let f = unsafe { &mut *frame };
    // SAFETY: interrupts are masked by the gate and no `KERNEL.with` is open: a trap inside one
    // is an exception that `crate::fault` turns into a core panic before borrowing.
    let next = match f.vector {
        // A single step inside a core critical section: keep stepping, touch nothing.
        1 if crate::sync::busy() => frame,
        0..=31 => {
            if !task_context() {
                crate::fault::core_panic_frame("CPU exception in the core", f);
            }
            if crate::sync::busy() {
                // Core code running for a task, on its stack, faulted with a core table
                // borrowed: the task's own state fed the core garbage (a corrupted saved frame or
                // argument). The task dies; the update it was making may be half done.
                crate::kprintln!(
                    "warning: fault in core code at rip {:#x} {} on a task's behalf, with a core table borrowed; the task is stopped and the borrow dropped",
                    f.rip,
                    crate::symbols::Symbol(f.rip)
                );
                crate::sync::reset_busy();
            }
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            if f.vector == 1 {
                crate::inject::single_step(k, f);
                finish(k, frame, old_heap)
            } else {
                crate::sync::reset_depth();
                let fault =
                    Fault::Exception { vector: f.vector, error: f.error, rip: f.rip, addr: cpu::cr2() };
                let cur = k.current;
                crate::task::fail(k, cur, fault, Some(f));
                switch(k, None)
            }
        }
        // An interrupt inside a critical section (its `cli` was faulted away): the interrupted
        // code may hold the task table; touch nothing, switch nothing.
        // The serial line is served at the next tick instead (its line stays in service until
        // then: the UART would not raise a new edge while bytes wait).
        32..=47 if crate::sync::depth() > 0 => {
            if f.vector == 36 {
                SERIAL_DEFERRED.store(true, Ordering::Relaxed);
            } else {
                pic::eoi((f.vector - 32) as u8);
            }
            crate::mem::heap::switch_to(old_heap);
            frame
        }
        32 => {
            pic::eoi(0);
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            tick(k, f);
            if NO_PREEMPT.load(Ordering::Relaxed) {
                finish(k, frame, old_heap)
            } else {
                switch(k, Some(frame))
            }
        }
        36 => {
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            serial_input(k);
            finish(k, frame, old_heap)
        }
        39 | 47 => {
            let line = (f.vector - 32) as u8;
            if !pic::is_spurious(line) {
                pic::eoi(line);
            } else if line == 15 {
                pic::eoi(2);
            }
            // SAFETY: see above.
            finish(unsafe { KERNEL.get_in_trap() }, frame, old_heap)
        }
        33..=47 => {
            pic::eoi((f.vector - 32) as u8);
            // SAFETY: see above.
            finish(unsafe { KERNEL.get_in_trap() }, frame, old_heap)
        }
        VEC_YIELD => {
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            k.cur().ran_ticks = 0;
            switch(k, Some(frame))
        }
        VEC_DIE => {
            if !task_context() {
                crate::fault::core_panic_frame("die outside a task", f);
            }
            crate::sync::reset_depth();
            // SAFETY: see above.
            let k = unsafe { KERNEL.get_in_trap() };
            let cur = k.current;
            let why = k.cur().dying.take().unwrap_or(Fault::Killed);
            let frame_for_report = (why == Fault::Panic).then_some(&*f);
            crate::task::fail(k, cur, why, frame_for_report);
            switch(k, None)
        }
        _ => {
            // SAFETY: see above.
            finish(unsafe { KERNEL.get_in_trap() }, frame, old_heap)
        }
    };
    IN_TRAP.store(false, Ordering::Relaxed);
    next
}

/// Resume the interrupted frame, heap routing as it was.
fn finish(_k: &mut Kernel, frame: *mut Frame, heap: u64) -> *mut Frame {
    crate::mem::heap::switch_to(heap);
    frame
}

/// Is a cell task (not the idle task, not boot) running?
fn task_context() -> bool {
    // SAFETY: only reads `current` and one slot, with interrupts masked.
    let k = unsafe { KERNEL.get_in_trap() };
    let c = k.current;
    c != IDLE && k.tasks[c].as_ref().is_some_and(|t| t.mem.is_some())
}

/// The idle task's index (spawned first at boot).
pub(crate) const IDLE: usize = 0;

/// Hand every received byte to the input hook; acknowledge IRQ 4.
fn serial_input(k: &mut Kernel) {
    while let Some(b) = crate::serial::try_read() {
        if b == CTRL_T {
            crate::task::dump(k);
            continue;
        }
        if let Some(input) = k.input.take() {
            input(k, b);
            k.input = Some(input);
        }
    }
    pic::eoi(4);
}

static SERIAL_DEFERRED: AtomicBool = AtomicBool::new(false);

fn tick(k: &mut Kernel, f: &mut Frame) {
    k.ticks += 1;
    if SERIAL_DEFERRED.swap(false, Ordering::Relaxed) {
        serial_input(k);
    }
    let now = k.ticks;
    for t in k.tasks.iter_mut().flatten() {
        if t.state == State::Sleep && t.wake_at <= now {
            t.state = State::Ready;
        }
    }
    if now.is_multiple_of(64) {
        unanswered(k, now);
    }
    let cur = k.current;
    if cur == IDLE {
        return;
    }
    let t = k.cur();
    if !t.supervised {
        return;
    }
    t.ran_ticks += 1;
    if t.ran_ticks > HANG_TICKS && t.dying.is_none() {
        // It cannot be killed on its own stack from here: make it die when resumed.
        t.dying = Some(Fault::Hang);
        f.rip = die_trampoline as *const () as u64;
        f.rflags &= !crate::arch::trap::RFLAGS_TF;
    }
}

/// Restart servers that hold a request past [`REQUEST_DEADLINE`] while waiting for nothing but
/// new work or a mailbox (so the reply was lost). The running task is left to the run-time
/// check above (its stack is in use).
fn unanswered(k: &mut Kernel, now: u64) {
    for c in 0..k.tasks.len() {
        let Some(call) = k.tasks[c].as_ref().and_then(|t| t.call) else { continue };
        let CallPhase::Served(s) = call.phase else { continue };
        if now.saturating_sub(call.served_at) <= REQUEST_DEADLINE || s == k.current {
            continue;
        }
        let forgot = k.tasks[s]
            .as_ref()
            .is_some_and(|t| t.supervised && matches!(t.state, State::Recv | State::Wait | State::Ready));
        if forgot {
            crate::task::fail(k, s, Fault::Unanswered, None);
        }
    }
}

/// Save `frame` as the current task's (if it is still alive), pick the next task, return its
/// frame. `None`: the current task died and its frame is gone.
fn switch(k: &mut Kernel, frame: Option<*mut Frame>) -> *mut Frame {
    let cur = k.current;
    let depth = crate::sync::swap_depth(0);
    if let (Some(fr), Some(t)) = (frame, k.tasks[cur].as_mut()) {
        t.frame = fr as u64;
        t.depth = depth;
        if t.state == State::Running {
            t.state = State::Ready;
        }
    }
    let next = match k.handoff.take() {
        Some(h) if k.tasks[h].as_ref().is_some_and(|t| t.state == State::Ready && t.mem.is_some()) => h,
        _ => pick(k, cur),
    };
    k.current = next;
    let t = k.cur();
    t.state = State::Running;
    crate::sync::swap_depth(t.depth);
    crate::inject::switched_in(t);
    crate::mem::heap::switch_to(crate::task::set_heap(t));
    t.frame as *mut Frame
}

fn pick(k: &Kernel, cur: usize) -> usize {
    let n = k.tasks.len();
    let mut best: Option<(u8, usize)> = None;
    for off in 1..=n {
        let i = (cur + off) % n;
        if let Some(t) = &k.tasks[i] {
            if t.state == State::Ready && t.mem.is_some() && best.is_none_or(|(p, _)| t.prio > p) {
                best = Some((t.prio, i));
            }
        }
    }
    best.map_or(IDLE, |(_, i)| i)
}

/// Block in `state` until `cond` gives an answer. `cond` runs under the task table; whoever can
/// change its answer must wake the task (`Kernel::wake`).
#[inline(never)]
pub(crate) fn block_on<R>(state: State, mut cond: impl FnMut(&mut Kernel) -> Option<R>) -> R {
    loop {
        let r = KERNEL.with(|k| {
            let r = cond(k);
            if r.is_none() {
                let t = k.cur();
                t.state = state;
                t.ran_ticks = 0;
            }
            r
        });
        if let Some(r) = r {
            return r;
        }
        cpu::yield_now();
    }
}

/// Let other tasks run.
pub fn yield_now() {
    cpu::yield_now();
}

/// Milliseconds (timer ticks) since boot.
pub fn ticks() -> u64 {
    KERNEL.with(|k| k.ticks)
}

/// Sleep until tick `deadline`.
pub fn sleep_until(deadline: u64) {
    block_on(State::Sleep, |k| {
        if k.ticks >= deadline {
            return Some(());
        }
        k.cur().wake_at = deadline;
        None
    })
}

/// Run `f` with the timer and the serial line masked at the interrupt controller, so that a
/// measurement counts only the code under test (deterministic under QEMU `-icount`). Task
/// switches still happen when `f` calls or yields; nothing is preempted and no hang is detected.
pub fn without_preemption<R>(f: impl FnOnce() -> R) -> R {
    NO_PREEMPT.store(true, Ordering::Relaxed);
    crate::sync::critical(|| {
        cpu::outb(0x21, 0xff);
    });
    let r = f();
    crate::sync::critical(|| {
        cpu::outb(0x21, !0b10101);
    });
    NO_PREEMPT.store(false, Ordering::Relaxed);
    r
}

/// Start scheduling: run the first ready task. Never returns.
pub(crate) fn start() -> ! {
    let frame = KERNEL.with(|k| {
        let next = pick(k, IDLE);
        k.current = next;
        let t = k.cur();
        t.state = State::Running;
        crate::mem::heap::switch_to(crate::task::set_heap(t));
        t.frame
    });
    // SAFETY: the frame was built by `incarnate` on the task's own stack.
    unsafe { crate::arch::trap::enter(frame as *const Frame) }
}
