//! The scheduler: pick the next task, switch to it, block, yield, sleep, count ticks.
//!
//! Round robin among the ready tasks of the highest priority; the PIT (1 kHz) preempts. A
//! task blocks by setting its state and yielding (`int 0x81`); whoever satisfies it sets it
//! ready again. The trap dispatcher (`trap`) calls [`switch`] and [`tick`]; what happens to a
//! task that fails or hangs is `lifecycle`'s business, not the scheduler's.

use crate::arch::cpu;
use crate::arch::switch;
use crate::arch::trap::{TrapFrame, RFLAGS_TF};
use crate::mem::protect::unprotected;
use crate::state::{Context, Kernel, State, Task, IDLE, KERNEL};
use crate::sync::Global;
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
/// current; returns the frame to resume it from. `None`: the current task died and its frame
/// is gone.
pub(crate) fn switch(k: &mut Kernel, frame: Option<*mut TrapFrame>) -> *mut TrapFrame {
    let cur = k.current;
    let depth = crate::sync::swap_depth(0);
    if let (Some(fr), Some(t)) = (frame, k.tasks[cur].as_mut()) {
        t.ctx = Context::Frame(fr as u64);
        t.depth = depth;
        if t.state == State::Running {
            t.state = State::Ready;
        }
    }
    let next = choose(k, cur);
    switch_in(k, next);
    frame_of(k.cur()) as *mut TrapFrame
}

/// The task to run next: the one a call or reply just woke (a direct switch, as in L4) if it
/// can run, else the scheduler's pick.
fn choose(k: &mut Kernel, cur: usize) -> usize {
    match k.handoff.take() {
        Some(h) if k.tasks[h].as_ref().is_some_and(runnable) => h,
        _ => pick(k, cur),
    }
}

fn runnable(t: &Task) -> bool {
    t.state == State::Ready && t.mem().is_some() && !t.paused
}

fn pick(k: &Kernel, cur: usize) -> usize {
    let n = k.tasks.len();
    let mut best: Option<(u8, usize)> = None;
    for off in 1..=n {
        let i = (cur + off) % n;
        if let Some(t) = &k.tasks[i] {
            if runnable(t) && best.is_none_or(|(p, _)| t.prio > p) {
                best = Some((t.prio, i));
            }
        }
    }
    best.map_or(IDLE, |(_, i)| i)
}

/// Make `next` the current task, running, with its critical-section depth, heap and writable
/// slots (the outgoing task's depth is saved first).
fn switch_in(k: &mut Kernel, next: usize) {
    k.current = next;
    let t = k.cur();
    t.state = State::Running;
    crate::sync::swap_depth(t.depth);
    crate::mem::heap::switch_to(t.heap_base());
    crate::mem::paging::open(t.slots());
}

/// The trap frame that resumes `t` (current, its stack open): the one it left, or one built
/// for it if it switched away. A fault injected into it and waiting for its moment gets its
/// single step armed there (see `inject`).
fn frame_of(t: &mut Task) -> u64 {
    let at = frame_at(t.ctx, t.pending.is_some());
    t.ctx = Context::Frame(at);
    at
}

/// The trap frame that resumes context `ctx` (its task current, its stack open), with the trap
/// flag set if `step`; a task that switched away gets one built below its stack pointer
/// (`arch::switch::frame_for`).
fn frame_at(ctx: Context, step: bool) -> u64 {
    let at = match ctx {
        Context::Frame(f) => f,
        Context::Switched(sp) => {
            let at = (sp - size_of::<TrapFrame>() as u64) & !15;
            // SAFETY: `block` switches away only with `ROOM` left below the stack pointer in the
            // task's own stack, which is open (writable) now that it is current; the task keeps
            // nothing below its stack pointer.
            unsafe { (at as *mut TrapFrame).write(switch::frame_for(sp)) };
            at
        }
    };
    if step {
        // SAFETY: `at` is the task's saved frame on its own stack (above), open.
        unsafe { (*(at as *mut TrapFrame)).rflags |= RFLAGS_TF };
    }
    at
}

/// Room a task keeps below its stack pointer when it blocks by a switch: the frames down to the
/// switch itself, and a trap frame the trap path may build below them (`frame_at`).
const ROOM: u64 = 1024;

/// A message for the task a blocking operation woke (see [`Wait`]): `len` bytes from `from`
/// (the blocking task's memory, or the image) into `into` (task `to`'s own stack or heap), both
/// checked by the channel that made it.
#[derive(Clone, Copy)]
pub(crate) struct Carry {
    pub to: usize,
    pub from: u64,
    pub into: u64,
    pub len: usize,
}

impl Carry {
    /// Copy it now, from any task: the destination is another task's, read-only now.
    pub(crate) fn deliver(&self) {
        // SAFETY: both buffers were checked by the channel that made the carry (see `Carry`),
        // and lie in different tasks' memory, which stays mapped (interrupts are masked).
        unprotected(|| unsafe { self.copy() });
    }

    /// The copy itself. A message of one word (a channel's commonest) is one load and one
    /// store, not a call of `memcpy`.
    ///
    /// # Safety
    /// `from` readable and `into` writable for `len` bytes (as the channel checked), not
    /// overlapping.
    unsafe fn copy(&self) {
        if self.len == size_of::<u64>() {
            // SAFETY: the caller's contract; unaligned accesses, as a byte copy's.
            unsafe { (self.into as *mut u64).write_unaligned((self.from as *const u64).read_unaligned()) }
        } else {
            // SAFETY: the caller's contract.
            unsafe { core::ptr::copy_nonoverlapping(self.from as *const u8, self.into as *mut u8, self.len) }
        }
    }
}

/// What a blocking operation's condition answers: done, or block — with a message for the task
/// it woke, copied at the switch if that task runs next (its memory is open then, and no
/// protection is lifted), else at once.
pub(crate) enum Wait<R> {
    Done(R),
    Block(Option<Carry>),
}

/// A switch [`block`] decided with the task table held: what `libos_kernel_switch_between`
/// does once the outgoing task's context is saved.
struct Plan {
    /// The incoming task's slots, to open.
    slots: [usize; 3],
    carry: Option<Carry>,
    /// How the incoming task resumes, and whether its single step is to be armed.
    to: Context,
    step: bool,
}

/// The switch planned now. One CPU, and interrupts are masked from the plan to the switch: one
/// at a time. Borrowed (`get_in_trap`) only by `block`, under the task table, and by
/// `libos_kernel_switch_between`, after it.
static PLAN: Global<Plan> =
    Global::new(Plan { slots: [usize::MAX; 3], carry: None, to: Context::Frame(0), step: false });

/// Block the current task in `state` and make the next one current (all but opening its
/// memory, which the switch does). Returns the switch to make once the table is released, and
/// where the outgoing context goes; `None`: the task yields through the trap gate instead,
/// because a fault injected into it is counting its instructions (single steps, which the trap
/// frame keeps and a switch would not) or its stack has no room left for a switch.
#[inline(always)]
fn block(k: &mut Kernel, state: State, carry: Option<Carry>) -> Option<*mut u64> {
    let cur = k.current;
    let t = k.cur();
    t.state = state;
    t.ran_ticks = 0;
    let [(stack, _), _] = t.data_ranges();
    if t.pending.is_some() || cpu::stack_pointer() < stack + ROOM {
        if let Some(c) = carry {
            c.deliver();
        }
        return None;
    }
    t.depth = crate::sync::depth();
    let next = choose(k, cur);
    k.current = next;
    let t = k.cur();
    t.state = State::Running;
    crate::sync::swap_depth(t.depth);
    crate::mem::heap::switch_to(t.heap_base());
    let carry = match carry {
        Some(c) if c.to == next => Some(c),
        Some(c) => {
            c.deliver();
            None
        }
        None => None,
    };
    // SAFETY: interrupts are masked, and nothing else borrows PLAN now (see PLAN).
    let plan = unsafe { PLAN.get_in_trap() };
    plan.slots = t.slots();
    plan.carry = carry;
    plan.to = t.ctx;
    plan.step = t.pending.is_some();
    let t = k.tasks[cur].as_mut().expect("the blocking task exists");
    t.ctx = Context::Switched(0);
    let Context::Switched(save) = &mut t.ctx else { unreachable!("just set") };
    Some(save)
}

/// The middle of a switch, on the switch stack (`arch::switch`): the outgoing task's context is
/// saved; open the incoming task's memory, carry the message into it, and say where it resumes.
#[no_mangle]
extern "C" fn libos_kernel_switch_between() -> switch::Target {
    // SAFETY: interrupts are masked and `block`'s borrow has ended (see PLAN).
    let plan = unsafe { PLAN.get_in_trap() };
    crate::mem::paging::open(plan.slots);
    if let Some(c) = &plan.carry {
        // SAFETY: checked by the channel that made the carry (see `Carry`): `from` lies in the
        // outgoing task's memory or the image (mapped, readable), `into` in the incoming task's
        // own stack or heap, writable now that its slots are open.
        unsafe { c.copy() };
    }
    match plan.to {
        Context::Switched(sp) if !plan.step => switch::Target { at: sp, frame: 0 },
        ctx => resume_by_frame(ctx, plan.step),
    }
}

/// A switch to a task the trap path resumes (it left by a trap, or its single step is to be
/// armed): apart, so the common switch saves no registers for it.
#[cold]
#[inline(never)]
fn resume_by_frame(ctx: Context, step: bool) -> switch::Target {
    switch::Target { at: frame_at(ctx, step), frame: 1 }
}

/// Block in `state` until `cond` gives an answer. `cond` runs under the task table; whoever can
/// change its answer must wake the task (`Kernel::wake`).
pub(crate) fn block_on<R>(state: State, mut cond: impl FnMut(&mut Kernel) -> Option<R>) -> R {
    wait(state, |k| cond(k).map_or(Wait::Block(None), Wait::Done))
}

/// Block in `state` until `cond` says done, switching to the next task meanwhile: by a call
/// ([`switch`]) from inside this critical section, which the task resumes in, and where `cond`
/// runs again. Through the trap gate only when `block` says so.
///
/// Inlined into each blocking operation, with `block`: the condition's closure, its captures and
/// its answer then stay in that operation's registers, not in a generic frame (80 instructions
/// of a channel round trip, and 62 for `block`).
#[inline(always)]
pub(crate) fn wait<R>(state: State, mut cond: impl FnMut(&mut Kernel) -> Wait<R>) -> R {
    loop {
        let done = crate::sync::masked(|m| loop {
            let step = KERNEL.with_masked(m, |k| match cond(k) {
                Wait::Done(r) => Ok(r),
                Wait::Block(carry) => Err(block(k, state, carry)),
            });
            match step {
                Ok(r) => return Some(r),
                // SAFETY: masked (`m`), the borrow has ended; `save` is the current task's
                // context, and `block` planned the switch just now.
                Err(Some(save)) => unsafe { switch::switch(save) },
                Err(None) => return None,
            }
        });
        if let Some(r) = done {
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
        switch_in(k, next);
        frame_of(k.cur())
    });
    STARTED.store(true, Ordering::Relaxed);
    // SAFETY: the frame was built by `lifecycle::incarnate` on the task's own stack.
    unsafe { crate::arch::trap::enter(frame as *const TrapFrame) }
}
