//! The scheduler: pick the next task, switch to it, block, yield, sleep, count ticks.
//!
//! Round robin among the ready tasks of the highest priority; the PIT (1 kHz) preempts. A
//! task blocks by setting its state and yielding (`int 0x81`); whoever satisfies it sets it
//! ready again. The trap dispatcher (`trap`) calls [`switch`] and [`tick`]; what happens to a
//! task that fails or hangs is `lifecycle`'s business, not the scheduler's.

use crate::arch::cpu;
use crate::arch::trap::TrapFrame;
use crate::state::{Kernel, State, Task, IDLE, KERNEL};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// While set, the timer counts ticks but does not preempt (see `control::without_preemption`).
static NO_PREEMPT: AtomicBool = AtomicBool::new(false);
/// Set once the scheduler runs (a panic before that is a kernel panic).
static STARTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn started() -> bool {
    STARTED.load(Ordering::Relaxed)
}

pub(crate) fn preemptible() -> bool {
    !NO_PREEMPT.load(Ordering::Relaxed)
}

pub(crate) fn set_preemptible(on: bool) {
    NO_PREEMPT.store(!on, Ordering::Relaxed);
}

/// One timer tick: count it and wake the sleepers whose time has come.
pub(crate) fn tick(k: &mut Kernel) {
    k.ticks += 1;
    let now = k.ticks;
    for t in k.tasks.iter_mut().flatten() {
        if t.state == State::Sleep && t.wake_at <= now {
            t.state = State::Ready;
        }
    }
}

/// Save `frame` as the current task's (if it is still alive), pick the next task and make it
/// current; returns it (its saved frame is the one to resume). `None`: the current task died
/// and its frame is gone.
pub(crate) fn switch(k: &mut Kernel, frame: Option<*mut TrapFrame>) -> &mut Task {
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
        Some(h)
            if k.tasks[h]
                .as_ref()
                .is_some_and(|t| t.state == State::Ready && t.mem.is_some() && !t.paused) =>
        {
            h
        }
        _ => pick(k, cur),
    };
    k.current = next;
    let t = k.cur();
    t.state = State::Running;
    crate::sync::swap_depth(t.depth);
    crate::mem::heap::switch_to(t.heap_base());
    crate::mem::paging::open(t.slots());
    t
}

fn pick(k: &Kernel, cur: usize) -> usize {
    let n = k.tasks.len();
    let mut best: Option<(u8, usize)> = None;
    for off in 1..=n {
        let i = (cur + off) % n;
        if let Some(t) = &k.tasks[i] {
            let runnable = t.state == State::Ready && t.mem.is_some() && !t.paused;
            if runnable && best.is_none_or(|(p, _)| t.prio > p) {
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

/// TSC ticks the idle task spent halted (from its `hlt` to the interrupt that woke it).
static IDLE_TSC: AtomicU64 = AtomicU64::new(0);
/// The TSC when the idle task halted, while it is halted; else 0.
static HALTED_AT: AtomicU64 = AtomicU64::new(0);

/// The idle task's loop body: halt until an interrupt.
pub(crate) fn idle() {
    // Masked from the stamp to the `hlt` (`sti; hlt` opens only at the `hlt`), so no interrupt
    // can take the stamp and leave the halt itself uncounted.
    cpu::disable_interrupts();
    HALTED_AT.store(cpu::rdtsc(), Ordering::Relaxed);
    cpu::idle();
}

/// An interrupt came (the trap dispatcher): if it woke the idle task, count the halt.
pub(crate) fn woke() {
    let at = HALTED_AT.swap(0, Ordering::Relaxed);
    if at != 0 {
        IDLE_TSC.fetch_add(cpu::rdtsc().wrapping_sub(at), Ordering::Relaxed);
    }
}

/// TSC ticks the CPU has spent halted, waiting for an interrupt, since boot. Under QEMU
/// `-icount` with `sleep=off` the clock jumps to the next timer while halted: a benchmark that
/// waits for a device subtracts this to count the instructions its work retired.
pub fn idle_time() -> u64 {
    IDLE_TSC.load(Ordering::Relaxed)
}

/// Read the TSC (one tick per retired instruction under QEMU `-icount shift=0`).
pub fn rdtsc() -> u64 {
    cpu::rdtsc()
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

/// Start scheduling: run the first ready task. Never returns.
pub(crate) fn start() -> ! {
    crate::mem::recipes::seal();
    let frame = KERNEL.with(|k| {
        let next = pick(k, IDLE);
        k.current = next;
        let t = k.cur();
        t.state = State::Running;
        crate::mem::heap::switch_to(t.heap_base());
        crate::mem::paging::open(t.slots());
        t.frame
    });
    STARTED.store(true, Ordering::Relaxed);
    // SAFETY: the frame was built by `lifecycle::incarnate` on the task's own stack.
    unsafe { crate::arch::trap::enter(frame as *const TrapFrame) }
}
