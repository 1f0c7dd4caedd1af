//! Tasks: the task table, spawning from closures, and the fault → release → restart path.
//!
//! A task is spawned from a closure. The task table owns the closure (behind an `Arc` in the
//! core heap), the task's stack ([`MappedPages`] with an unmapped guard page) and its heap arena
//! ([`TaskHeap`]). The task runs the closure *by reference*, so what the closure captured stays
//! owned by the table. Killing a task drops its stack and arena — every byte it allocated goes
//! back, no destructor needed — and a supervised task (a cell's server) is started again from
//! the same closure as the next generation. Callers whose request it was serving go back to the
//! front of the endpoint's queue (see `chan`) and are answered by the next generation.

use crate::arch::trap::{Frame, RFLAGS_IF};
use crate::arch::{cpu, gdt};
use crate::chan::EpState;
use crate::mem::heap::TaskHeap;
use crate::mem::mapped::MapError;
use crate::mem::MappedPages;
use crate::sync::Global;
use alloc::sync::Arc;
use heapless::Vec as HVec;

pub const MAX_TASKS: usize = 32;
const STACK_PAGES: usize = 16;
const HEAP_PAGES: usize = 32;
/// A supervised task that faults this many times in a row without serving a request is held.
const CRASH_LOOP: u32 = 4;

/// A task's index and generation: a stale id is refused, never mistaken for its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId {
    pub index: usize,
    pub generation: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    Running,
    /// Waiting for a request on an endpoint.
    Recv,
    /// Waiting for the answer to a call.
    Call,
    Sleep,
    /// Waiting on a mailbox or for another task.
    Wait,
    /// Held after a crash loop; `restart` brings it back.
    Halted,
    /// Ended (returned, or faulted without supervision).
    Dead,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Running => "run",
            State::Recv => "recv",
            State::Call => "call",
            State::Sleep => "sleep",
            State::Wait => "wait",
            State::Halted => "halted",
            State::Dead => "dead",
        }
    }

    pub fn blocked(self) -> bool {
        matches!(self, State::Recv | State::Call | State::Sleep | State::Wait)
    }
}

/// Why a task stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Exception {
        vector: u64,
        error: u64,
        rip: u64,
        addr: u64,
    },
    Panic,
    Killed,
    Hang,
    /// Held a request past the deadline without waiting on another server (a lost reply).
    Unanswered,
    Exited,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Exception { vector, .. } => crate::fault::vector_name(vector),
            Fault::Panic => "panic",
            Fault::Killed => "killed",
            Fault::Hang | Fault::Unanswered => "hang",
            Fault::Exited => "exited",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    TableFull,
    OutOfMemory,
}

impl From<MapError> for SpawnError {
    fn from(_: MapError) -> Self {
        SpawnError::OutOfMemory
    }
}

pub type Entry = Arc<dyn Fn() + Send + Sync>;

/// What the serial interrupt does with each received byte (set by `serial::attach_input`).
pub(crate) type InputHook = alloc::boxed::Box<dyn Fn(&mut Kernel, u8) + Send>;

/// What a task owns while it runs; dropping this releases all of it.
pub(crate) struct TaskMem {
    pub stack: MappedPages,
    pub heap: TaskHeap,
}

pub(crate) struct Task {
    pub name: &'static str,
    pub generation: u32,
    pub restarts: u32,
    pub prio: u8,
    pub supervised: bool,
    /// Requests answered (the `ps` SYSCALLS column in this personality).
    pub served: u64,
    pub state: State,
    pub entry: Entry,
    pub mem: Option<TaskMem>,
    /// The saved frame (on the task's stack) while it is not running.
    pub frame: u64,
    pub call: Option<crate::chan::Call>,
    pub wake_at: u64,
    /// Timer ticks since it last blocked or yielded.
    pub ran_ticks: u32,
    pub pending: Option<crate::inject::Pending>,
    /// Set when it must die the next time it runs (hang, self-kill, panic).
    pub dying: Option<Fault>,
    /// TSC when its predecessor faulted; cleared at its first `recv`.
    pub fault_tsc: u64,
    pub last_latency: Option<u64>,
    /// Faults in a row without serving a request.
    pub crash_streak: u32,
    pub last_fault: Option<Fault>,
    /// Its critical-section depth while it is not running (see `sync::swap_depth`).
    pub depth: u32,
}

pub(crate) struct Kernel {
    pub tasks: [Option<Task>; MAX_TASKS],
    pub current: usize,
    pub eps: HVec<EpState, 16>,
    pub next_seq: u64,
    pub ticks: u64,
    pub kept: HVec<crate::kept::Entry, 64>,
    pub quiet: bool,
    pub input: Option<InputHook>,
    /// The task a call or reply just woke: run it next (a direct switch, as in L4).
    pub handoff: Option<usize>,
    /// Addresses of every mailbox: a mailbox handle from a cell is checked against these.
    pub mailboxes: HVec<u64, 16>,
}

/// The task table and everything the scheduler and channels share. See `sync::Global`.
pub(crate) static KERNEL: Global<Kernel> = Global::new(Kernel {
    tasks: [const { None }; MAX_TASKS],
    current: 0,
    eps: HVec::new(),
    next_seq: 1,
    ticks: 0,
    kept: HVec::new(),
    quiet: false,
    input: None,
    handoff: None,
    mailboxes: HVec::new(),
});

impl Kernel {
    pub fn task(&mut self, i: usize) -> Option<&mut Task> {
        self.tasks.get_mut(i).and_then(|t| t.as_mut())
    }

    pub fn cur(&mut self) -> &mut Task {
        let c = self.current;
        self.tasks[c].as_mut().expect("the current task exists")
    }

    pub fn wake(&mut self, i: usize) {
        if let Some(t) = self.task(i) {
            if t.state.blocked() {
                t.state = State::Ready;
            }
        }
    }
}

extern "C" fn task_start() -> ! {
    let entry: *const (dyn Fn() + Send + Sync) = KERNEL.with(|k| Arc::as_ptr(&k.cur().entry));
    // SAFETY: the closure is owned by this task's table entry, which outlives this incarnation
    // (it is only dropped when the slot is freed, after the task stopped running).
    unsafe { (*entry)() };
    KERNEL.with(|k| k.cur().dying = Some(Fault::Exited));
    cpu::die_now()
}

/// Put a new incarnation's memory and first frame in place.
fn incarnate(t: &mut Task) -> Result<(), MapError> {
    let stack = MappedPages::alloc(STACK_PAGES, true)?;
    let heap = TaskHeap::new(HEAP_PAGES)?;
    let top = stack.end() - 8;
    let frame_at = (top - core::mem::size_of::<Frame>() as u64 - 8) & !15;
    let frame = Frame {
        rip: task_start as *const () as u64,
        cs: gdt::KERNEL_CS as u64,
        rflags: RFLAGS_IF | 2,
        rsp: top,
        ss: gdt::KERNEL_DS as u64,
        ..Frame::default()
    };
    // SAFETY: `frame_at` lies inside the fresh stack pages this task now owns.
    unsafe { (frame_at as *mut Frame).write(frame) };
    t.frame = frame_at;
    t.mem = Some(TaskMem { stack, heap });
    t.state = State::Ready;
    t.call = None;
    t.pending = None;
    t.dying = None;
    t.ran_ticks = 0;
    t.depth = 0;
    Ok(())
}

/// Start a task running `f`. A `supervised` task is restarted from `f` whenever it fails.
pub fn spawn(
    name: &'static str,
    prio: u8,
    supervised: bool,
    f: impl Fn() + Send + Sync + 'static,
) -> Result<TaskId, SpawnError> {
    let entry: Entry = crate::mem::heap::in_core(|| Arc::new(f));
    KERNEL.with(|k| {
        let index = k.tasks.iter().position(|t| t.is_none()).ok_or(SpawnError::TableFull)?;
        let mut t = Task {
            name,
            generation: 0,
            restarts: 0,
            prio,
            supervised,
            served: 0,
            state: State::Dead,
            entry,
            mem: None,
            frame: 0,
            call: None,
            wake_at: 0,
            ran_ticks: 0,
            pending: None,
            dying: None,
            fault_tsc: 0,
            last_latency: None,
            crash_streak: 0,
            last_fault: None,
            depth: 0,
        };
        incarnate(&mut t)?;
        k.tasks[index] = Some(t);
        Ok(TaskId { index, generation: 0 })
    })
}

/// What `ps` shows of one task.
#[derive(Clone, Copy, Debug)]
pub struct Info {
    pub name: &'static str,
    pub index: usize,
    pub generation: u32,
    pub state: State,
    pub restarts: u32,
    pub prio: u8,
    pub served: u64,
    pub heap_used: usize,
    pub last_latency: Option<u64>,
}

pub fn info(index: usize) -> Option<Info> {
    KERNEL.with(|k| {
        let t = k.task(index)?;
        Some(Info {
            name: t.name,
            index,
            generation: t.generation,
            state: t.state,
            restarts: t.restarts,
            prio: t.prio,
            served: t.served,
            heap_used: t.mem.as_ref().map_or(0, |m| m.heap.in_use()),
            last_latency: t.last_latency,
        })
    })
}

/// The index of the task called `name`. The name (cell memory) is compared outside the task
/// table's critical section: task names are `&'static str` in the image.
pub fn find(name: &str) -> Option<usize> {
    let names: [Option<&'static str>; MAX_TASKS] =
        KERNEL.with(|k| core::array::from_fn(|i| k.tasks[i].as_ref().map(|t| t.name)));
    names.iter().position(|n| *n == Some(name))
}

pub fn current() -> TaskId {
    KERNEL.with(|k| {
        let index = k.current;
        TaskId { index, generation: k.cur().generation }
    })
}

/// Report lines after a restart are suppressed while this is set (`restart NAME COUNT`).
pub fn set_quiet(quiet: bool) {
    KERNEL.with(|k| k.quiet = quiet);
}

/// The task's own writable memory: its stack and its heap (for the injector).
pub(crate) fn data_ranges(t: &Task) -> [(u64, u64); 2] {
    match &t.mem {
        Some(m) => [(m.stack.start(), m.stack.end()), (m.heap.pages().start(), m.heap.pages().end())],
        None => [(0, 0); 2],
    }
}

/// Print every task's state on the core's console (Ctrl-T).
pub(crate) fn dump(k: &Kernel) {
    crate::kprintln!("tasks at tick {} (current {}):", k.ticks, k.current);
    for (i, t) in k.tasks.iter().enumerate() {
        if let Some(t) = t {
            crate::kprintln!(
                "  {:>2} {:<10} gen {:<5} {:<6} ran {:>4} ms  call {:?}  pending {}  wake_at {}",
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

/// The task `i` failed with `fault` (it is not running on its own stack now). Release what it
/// owned, put its callers back in line, and restart it if it is supervised.
pub(crate) fn fail(k: &mut Kernel, i: usize, fault: Fault, frame: Option<&Frame>) {
    let quiet = k.quiet;
    let Some(t) = k.task(i) else { return };
    let (name, generation) = (t.name, t.generation);
    let guard = match (fault, &t.mem) {
        (Fault::Exception { addr, .. }, Some(m)) => {
            (m.stack.start() - crate::mem::PAGE..m.stack.start()).contains(&addr)
        }
        _ => false,
    };
    if !quiet || fault != Fault::Killed {
        crate::fault::report(name, i, generation, fault, frame, guard);
    }
    // The restart latency counts from here: detection done, report printed.
    let now = cpu::rdtsc();
    t.mem = None;
    t.call = None;
    t.pending = None;
    t.dying = None;
    t.last_fault = Some(fault);
    if fault != Fault::Killed {
        t.crash_streak += 1;
    }
    let streak = t.crash_streak;
    let supervised = t.supervised;
    k.kept.retain(|h| h.owner != i);
    let (retried, failed) = crate::chan::server_died(k, i);
    for ep in k.eps.iter_mut() {
        if ep.receiver == Some(i) {
            ep.receiver = None;
        }
    }
    let t = k.task(i).expect("still there");
    if !supervised {
        t.state = State::Dead;
        if !quiet {
            crate::kprintln!("  action: {} stopped ({}); not supervised", name, fault.name());
        }
        return;
    }
    if streak >= CRASH_LOOP {
        t.state = State::Halted;
        let failed_more = crate::chan::server_halted(k, i);
        crate::kprintln!(
            "  action: {} gen {} faulted {} times in a row without serving: held (halted); {} caller(s) failed; `restart {}` brings it back",
            name,
            generation,
            streak,
            failed + failed_more,
            name
        );
        return;
    }
    match restart_now(t, now) {
        Ok(()) => {
            if !quiet {
                crate::kprintln!(
                    "  action: restarted {} as gen {}; {} caller(s) retried, {} failed; client state kept by the clients",
                    name,
                    generation + 1,
                    retried,
                    failed
                );
            }
        }
        Err(_) => {
            t.state = State::Halted;
            crate::kprintln!("  action: cannot restart {}: out of memory; held", name);
        }
    }
}

fn restart_now(t: &mut Task, fault_tsc: u64) -> Result<(), MapError> {
    t.generation += 1;
    t.restarts += 1;
    t.fault_tsc = fault_tsc;
    incarnate(t)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    NoSuchTask,
    /// The task is the one asking (use `kill` on yourself through `die`).
    IsCurrent,
    OutOfMemory,
}

/// Kill task `index` now, as a fault from outside (it is restarted if supervised). Killing the
/// current task ends it at once and does not return.
pub fn kill(index: usize) -> Result<(), ControlError> {
    let me = KERNEL.with(|k| {
        if index == crate::sched::IDLE || k.task(index).is_none_or(|t| matches!(t.state, State::Dead)) {
            return Err(ControlError::NoSuchTask);
        }
        if index == k.current {
            k.cur().dying = Some(Fault::Killed);
            return Ok(true);
        }
        fail(k, index, Fault::Killed, None);
        Ok(false)
    })?;
    if me {
        cpu::die_now();
    }
    Ok(())
}

/// Replace task `index` by a fresh incarnation (also brings back a halted task).
pub fn restart(index: usize) -> Result<u32, ControlError> {
    KERNEL.with(|k| {
        if index == k.current {
            return Err(ControlError::IsCurrent);
        }
        let t = k.task(index).ok_or(ControlError::NoSuchTask)?;
        if !t.supervised {
            return Err(ControlError::NoSuchTask);
        }
        if t.state == State::Halted {
            t.crash_streak = 0;
            restart_now(t, cpu::rdtsc()).map_err(|_| ControlError::OutOfMemory)?;
            return Ok(t.generation);
        }
        let quiet = k.quiet;
        k.quiet = true;
        fail(k, index, Fault::Killed, None);
        k.quiet = quiet;
        let t = k.task(index).ok_or(ControlError::NoSuchTask)?;
        Ok(t.generation)
    })
}

/// Wait until task `index`'s current incarnation first waited for work (endpoint or mailbox):
/// it is ready to serve.
/// Returns its restart latency (TSC ticks from the fault to that first `recv`), or `None` if
/// it is halted or dead.
pub fn wait_ready(index: usize) -> Option<u64> {
    loop {
        let r = KERNEL.with(|k| {
            let t = k.task(index)?;
            if t.state == State::Halted || t.state == State::Dead {
                return Some(None);
            }
            (t.fault_tsc == 0 && t.state.blocked()).then_some(t.last_latency)
        });
        if let Some(r) = r {
            return r;
        }
        cpu::yield_now();
    }
}

pub(crate) fn set_heap(t: &Task) -> u64 {
    t.mem.as_ref().map_or(0, |m| m.heap.base())
}
