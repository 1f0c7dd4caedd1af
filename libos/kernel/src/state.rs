//! The task table's data: tasks, endpoints, calls in flight, kept-state records, and the one
//! [`KERNEL`] that holds them. Accessors only: what happens to a task (scheduling, channels,
//! faults, restarts) lives in the modules above, which all meet here.
//!
//! ```text
//!  KERNEL ─ tasks[i] ─ Task: name, generation, state, entry (the closure), mem (stack + heap),
//!         │                  saved frame, call in flight, pending injected fault, crash loop,
//!         │                  version, an update in its rollback window
//!         ├ staged ─── server versions staged in the image (closures `update` switches to)
//!         ├ eps[e] ─── EpState: queue of callers, waiting receiver, serving task
//!         ├ kept ───── where each client keeps a server's state (the `ssr` injector, updates)
//!         └ mailboxes, input hook, ticks, current, handoff
//! ```

use crate::mem::heap::TaskHeap;
use crate::mem::MappedPages;
use crate::sync::Global;
use fault::inject::RegFlip;
use fault::recovery::{CrashLoop, Hang};
use fault::{FaultKind, InjectKind};
use heapless::Deque;
use heapless::Vec as HVec;

/// Slots in the task table.
pub const MAX_TASKS: usize = 32;
/// The idle task's index (spawned first at boot).
pub(crate) const IDLE: usize = 0;

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
    /// Failed, and waits out a back-off before its next incarnation starts; callers queue.
    Restarting,
    /// Held after a crash loop; `restart` brings it back.
    Halted,
    /// Ended (returned, or faulted without supervision).
    Dead,
}

impl State {
    /// The word `ps` prints (the microkernel's word where both have the state).
    pub fn name(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Running => "run",
            State::Recv => "recv",
            State::Call => "call",
            State::Sleep => "sleep",
            State::Wait => "wait",
            State::Restarting => "restart",
            State::Halted => "halted",
            State::Dead => "dead",
        }
    }

    pub fn blocked(self) -> bool {
        matches!(self, State::Recv | State::Call | State::Sleep | State::Wait)
    }

    /// Not running and not coming back by itself: it waits for a restart (or for nothing).
    pub fn stopped(self) -> bool {
        matches!(self, State::Restarting | State::Halted | State::Dead)
    }
}

/// Where and how a CPU exception struck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exception {
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    /// cr2: the faulting address of a page fault.
    pub addr: u64,
}

/// Why a task stopped: the kind both personalities name, with what this kernel knows beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub detail: Detail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    None,
    Exception(Exception),
    /// Spinning, or holding a request it lost (both are [`FaultKind::Hang`]).
    Hang(Hang),
    /// An interrupt found its stack pointer outside its stack, where the CPU's push of the
    /// interrupt's frame would have faulted or landed in memory not the task's (an
    /// [`FaultKind::Exception`] the kernel detected instead of the CPU; see `trap::keep`).
    Stack(StackFault),
}

/// A stack pointer an interrupt found unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackFault {
    pub rsp: u64,
    pub rip: u64,
    /// It was inside the stack, with no room left below it for a frame (an overflow).
    pub overflow: bool,
}

impl Fault {
    pub const KILLED: Fault = Fault { kind: FaultKind::Killed, detail: Detail::None };
    pub const PANIC: Fault = Fault { kind: FaultKind::Panic, detail: Detail::None };
    pub const EXITED: Fault = Fault { kind: FaultKind::Exited, detail: Detail::None };
    pub const MALFORMED: Fault = Fault { kind: FaultKind::Malformed, detail: Detail::None };

    pub fn exception(e: Exception) -> Fault {
        Fault { kind: FaultKind::Exception, detail: Detail::Exception(e) }
    }

    pub fn hang(h: Hang) -> Fault {
        Fault { kind: FaultKind::Hang, detail: Detail::Hang(h) }
    }

    pub fn stack(s: StackFault) -> Fault {
        Fault { kind: FaultKind::Exception, detail: Detail::Stack(s) }
    }
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The server failed on this request twice, or is held after a crash loop.
    ServerFailed,
    /// No such endpoint.
    BadEndpoint,
    /// Too many callers queued.
    QueueFull,
    /// The request or answer buffer is not in the caller's own memory (a corrupted pointer).
    BadBuffer,
    /// The request or answer is not a valid value of its type (a corrupted message, see
    /// `CheckedEndpoint`).
    Malformed,
}

impl CallError {
    /// In the microkernel ABI's words where it has the same error.
    pub fn describe(self) -> &'static str {
        match self {
            CallError::ServerFailed => "server failed before replying",
            CallError::BadEndpoint => "no such endpoint",
            CallError::QueueFull => "too many callers queued",
            CallError::BadBuffer => "bad buffer address",
            CallError::Malformed => "message does not decode",
        }
    }
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallPhase {
    Queued,
    Served(usize),
    Replied,
    Failed(CallError),
}

/// A call in progress, in the caller's task record. `req`/`resp` point into the caller's
/// stack, which stays mapped while the caller waits (it is blocked; if it dies, the call dies).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call {
    pub ep: usize,
    pub req: u64,
    pub resp: u64,
    pub seq: u64,
    pub phase: CallPhase,
    /// A server already failed on it once and it went to the next incarnation.
    pub delivered_again: bool,
    /// Tick at which a server took it (for the unanswered-request deadline).
    pub served_at: u64,
}

/// Where a task that is not running resumes (see `arch::switch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// A full trap frame on its stack, at this address: it was interrupted, trapped (a yield, an
    /// exception), or has not run yet.
    Frame(u64),
    /// Its stack pointer where it switched away inside the kernel (`sched::block_on`): the
    /// callee-saved registers and a return address are there.
    Switched(u64),
}

/// A server waiting in `recv` on endpoint `ep`: where the request goes, and, once a caller
/// delivered one straight there, whose it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Receiving {
    pub ep: usize,
    /// The request buffer (`len` bytes, checked to lie in the server's own stack or heap).
    pub out: u64,
    pub len: usize,
    /// The server's stack pointer and the buffer around `out`, for the audit (`audit::taken`).
    pub floor: u64,
    pub inbox: (u64, usize),
    /// Set by the call that delivered its request into `out`: the caller (index | generation
    /// << 32) and the call's sequence number, what `recv` returns.
    pub handed: Option<(u64, u64)>,
}

pub(crate) struct EpState {
    /// For reports and debugging.
    #[allow(dead_code)]
    pub name: &'static str,
    pub queue: Deque<usize, 32>,
    pub receiver: Option<usize>,
    pub server: Option<usize>,
    /// The sizes of its request and answer types: every call, receive and reply is checked
    /// against them (a corrupted endpoint value may name an endpoint of other types).
    pub req_size: usize,
    pub resp_size: usize,
    /// Its message checks, for a `CheckedEndpoint`.
    pub checks: Option<Checks>,
}

/// An endpoint's message checks (see `chan::CheckedEndpoint`): is the request, the answer, at
/// this address a valid value of its type?
#[derive(Clone, Copy)]
pub(crate) struct Checks {
    pub req: fn(u64) -> bool,
    pub resp: fn(u64) -> bool,
}

/// An injected fault waiting for its moment (see `inject`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub kind: InjectKind,
    pub countdown: u32,
    pub flip: RegFlip,
}

/// Where a client keeps a server's state (see `kept`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeptEntry {
    pub addr: u64,
    pub len: usize,
    pub owner: usize,
    pub server: &'static str,
}

pub(crate) type Entry = crate::mem::recipes::Recipe;

/// What a version of a server says of itself, for `update`: its number, the layout of client
/// state it writes, and the layouts it reads (the server's own numbering; the fs cell's session
/// layouts are numbered like the microkernel fs's SSR layouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub number: u32,
    pub writes: u32,
    pub reads: &'static [u32],
}

/// A version of server `server` staged in the image under `name` (see `lifecycle::stage`):
/// the closure an incarnation of that version runs.
pub(crate) struct Staged {
    pub server: &'static str,
    pub name: &'static str,
    pub version: Version,
    pub entry: Entry,
    /// The closure's type, as the compiler names it (for the audit's reports).
    pub entry_name: &'static str,
}

/// A copy of one client's kept state (see `kept`), taken at an update for its rollback.
pub(crate) struct KeptCopy {
    pub entry: KeptEntry,
    /// Where its bytes are in `Update::bytes`.
    pub at: usize,
}

/// An update within its rollback window (see `lifecycle::update`).
pub(crate) struct Update {
    pub old_entry: Entry,
    pub old_entry_name: &'static str,
    pub old_version: Option<Version>,
    /// The layouts client states could be in before it (restored with the old version).
    pub old_layouts: HVec<u32, MAX_LAYOUTS>,
    pub window: fault::update::Window,
    /// Every state the server's clients kept for it at the update, and their bytes (in the
    /// kernel heap: dropped with `mem::heap::in_core`).
    pub copies: alloc::vec::Vec<KeptCopy>,
    pub bytes: alloc::vec::Vec<u8>,
    /// The TSC at the update.
    pub since: u64,
}

/// Most layouts a task's client states may be in at once (written by its versions since boot).
pub(crate) const MAX_LAYOUTS: usize = 8;

/// What the serial interrupt does with each received byte (set by `input::attach_input`).
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
    /// The closure's type, as the compiler names it (for the audit's reports).
    pub entry_name: &'static str,
    mem: Option<TaskMem>,
    /// Its stack's and heap's extents while it has memory (`[(0, 0); 2]` when not): read at
    /// every channel operation's buffer checks, so kept here rather than derived.
    ranges: [(u64, u64); 2],
    /// Its writable slots while it runs (see [`Task::slots`]): read at every switch, so kept
    /// here too, with `ranges`.
    slots: [usize; 3],
    /// Where it resumes while it is not running.
    pub ctx: Context,
    pub call: Option<Call>,
    /// Waiting in `recv`: where its request goes (see `chan`).
    pub receiving: Option<Receiving>,
    /// Tick at which a sleep ends.
    pub wake_at: u64,
    /// Tick at which a task in [`State::Restarting`] starts its next incarnation.
    pub restart_at: u64,
    /// Timer ticks since it last blocked or yielded.
    pub ran_ticks: u64,
    pub pending: Option<Pending>,
    /// Set when it must die the next time it runs (hang, self-kill, panic).
    pub dying: Option<Fault>,
    /// TSC when its predecessor faulted; cleared at its first `recv`.
    pub fault_tsc: u64,
    pub last_latency: Option<u64>,
    /// This incarnation answered a request: its next fault does not continue a crash loop.
    pub answered: bool,
    /// Its recent faults (supervised tasks).
    pub crash: CrashLoop,
    /// Its critical-section depth while it is not running (see `sync::swap_depth`).
    pub depth: u32,
    /// The slot of the device it drives (DMA region and BARs, see `device`), writable while it
    /// runs like its stack and heap; `usize::MAX`: none.
    device_slot: usize,
    /// The version it runs, if it was started from one staged in the image (`spawn_staged`).
    pub version: Option<Version>,
    /// The layouts its clients' states may be in: every layout a version of it wrote since boot.
    pub layouts: HVec<u32, MAX_LAYOUTS>,
    /// An update of it within its rollback window.
    pub update: Option<Update>,
    /// Not scheduled (`pause`); what it waits for still happens, and it runs again at `resume`.
    pub paused: bool,
    /// Server-global state this incarnation declared (`audit::declare`): address, length, name.
    pub declared: HVec<(u64, usize, &'static str), MAX_DECLARED>,
}

/// Most ranges one incarnation declares.
pub(crate) const MAX_DECLARED: usize = 8;

impl Task {
    /// A task record without memory yet (`lifecycle` gives it its first incarnation).
    pub fn new(name: &'static str, prio: u8, supervised: bool, entry: Entry) -> Task {
        Task {
            name,
            generation: 0,
            restarts: 0,
            prio,
            supervised,
            served: 0,
            state: State::Dead,
            entry,
            entry_name: "",
            mem: None,
            ranges: [(0, 0); 2],
            slots: [usize::MAX; 3],
            ctx: Context::Frame(0),
            call: None,
            receiving: None,
            wake_at: 0,
            restart_at: 0,
            ran_ticks: 0,
            pending: None,
            dying: None,
            fault_tsc: 0,
            last_latency: None,
            answered: false,
            crash: CrashLoop::new(),
            depth: 0,
            device_slot: usize::MAX,
            version: None,
            layouts: HVec::new(),
            update: None,
            paused: false,
            declared: HVec::new(),
        }
    }

    /// What it owns while it runs (`None`: not incarnated, or released).
    pub fn mem(&self) -> Option<&TaskMem> {
        self.mem.as_ref()
    }

    /// Give it memory, or drop what it had (`None`).
    pub fn set_mem(&mut self, mem: Option<TaskMem>) {
        self.ranges = match &mem {
            Some(m) => [(m.stack.start(), m.stack.end()), (m.heap.pages().start(), m.heap.pages().end())],
            None => [(0, 0); 2],
        };
        self.mem = mem;
        self.slots = self.slots_now();
    }

    /// Make `slot` the slot of the device it drives (see `device`).
    pub fn set_device_slot(&mut self, slot: usize) {
        self.device_slot = slot;
        self.slots = self.slots_now();
    }

    /// The task's own writable memory: its stack and its heap.
    pub fn data_ranges(&self) -> [(u64, u64); 2] {
        self.ranges
    }

    /// The slots of its stack and heap, and of the device it drives: the only ones writable
    /// while it runs.
    pub fn slots(&self) -> [usize; 3] {
        self.slots
    }

    fn slots_now(&self) -> [usize; 3] {
        match &self.mem {
            Some(m) => [m.stack.slot(), m.heap.pages().slot(), self.device_slot],
            None => [usize::MAX; 3],
        }
    }

    /// Where its allocations go while it runs (0: it has no heap, the kernel's arena).
    pub fn heap_base(&self) -> u64 {
        self.mem.as_ref().map_or(0, |m| m.heap.base())
    }

    /// Its stack's guard page: a fault there is a stack overflow.
    pub fn guard_page(&self) -> Option<core::ops::Range<u64>> {
        self.mem.as_ref().map(|m| m.stack.start() - crate::mem::PAGE..m.stack.start())
    }
}

pub(crate) struct Kernel {
    pub tasks: [Option<Task>; MAX_TASKS],
    pub current: usize,
    pub eps: HVec<EpState, 16>,
    pub next_seq: u64,
    pub ticks: u64,
    pub kept: HVec<KeptEntry, 64>,
    /// Reports of kills and restarts are left out (`restart NAME COUNT`, the restart bench).
    pub quiet: bool,
    pub input: Option<InputHook>,
    /// The task a call or reply just woke: run it next (a direct switch, as in L4).
    pub handoff: Option<usize>,
    /// Addresses of every mailbox: a mailbox handle from a cell is checked against these.
    pub mailboxes: HVec<u64, 16>,
    /// Every PCI function found at boot (see `device`).
    pub devices: HVec<PciDevice, MAX_DEVICES>,
    /// The server versions staged in the image (see `lifecycle::stage`).
    pub staged: HVec<Staged, MAX_STAGED>,
    /// The state-spill audit in progress (see `audit`).
    pub audit: Option<Audit>,
}

/// Most server versions an image may stage.
pub(crate) const MAX_STAGED: usize = 12;

/// PCI functions the kernel records.
pub(crate) const MAX_DEVICES: usize = 16;

/// A PCI function as the kernel keeps it: what enumeration found, and, once a cell took it
/// (`device::Device::take`), where its DMA region and BARs are and the state of its line.
pub(crate) struct PciDevice {
    pub f: x86::pci::Function,
    pub taken: bool,
    /// The task driving it (bound at its first use of the handle), for every incarnation.
    pub owner: Option<usize>,
    /// The slot holding its DMA region (from the slot's start) and its mapped BARs.
    pub slot: usize,
    /// The DMA region: physical address (identity mapped, contiguous) and pages.
    pub dma: (u64, usize),
    /// Each memory BAR mapped in the slot: its address there.
    pub windows: [Option<u64>; 6],
    /// The legacy interrupt line delivered to the driver, if any.
    pub line: Option<u8>,
    /// The line fired and was masked; the driver has not seen it yet.
    pub fired: bool,
    /// The task waiting for the line to fire.
    pub waiter: Option<usize>,
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
    devices: HVec::new(),
    staged: HVec::new(),
    audit: None,
});

impl Kernel {
    pub fn task(&mut self, i: usize) -> Option<&mut Task> {
        self.tasks.get_mut(i).and_then(|t| t.as_mut())
    }

    pub fn cur(&mut self) -> &mut Task {
        let c = self.current;
        self.tasks[c].as_mut().expect("the current task exists")
    }

    /// Make a blocked task ready (whoever changed what it waits for calls this).
    pub fn wake(&mut self, i: usize) {
        if let Some(t) = self.task(i) {
            if t.state.blocked() {
                t.state = State::Ready;
            }
        }
    }
}

/// What `ps` and `mem` show of one task.
#[derive(Clone, Copy, Debug)]
pub struct TaskInfo {
    pub name: &'static str,
    pub index: usize,
    pub generation: u32,
    pub state: State,
    pub restarts: u32,
    pub prio: u8,
    pub served: u64,
    pub heap_used: usize,
    pub last_latency: Option<u64>,
    /// The version it runs (0: none declared).
    pub version: u32,
    /// Requests still to answer in an update's rollback window (0: none in progress).
    pub window_left: u32,
    pub paused: bool,
}

/// Task `index` now, if the slot is in use.
pub fn task_info(index: usize) -> Option<TaskInfo> {
    KERNEL.with(|k| {
        let t = k.task(index)?;
        Some(TaskInfo {
            name: t.name,
            index,
            generation: t.generation,
            state: t.state,
            restarts: t.restarts,
            prio: t.prio,
            served: t.served,
            heap_used: t.mem.as_ref().map_or(0, |m| m.heap.in_use()),
            last_latency: t.last_latency,
            version: t.version.map_or(0, |v| v.number),
            window_left: t.update.as_ref().map_or(0, |u| u.window.left(t.served)),
            paused: t.paused,
        })
    })
}

/// The index of the task called `name`. The name (cell memory) is compared outside the task
/// table's critical section: task names are `&'static str` in the image.
pub fn find_task(name: &str) -> Option<usize> {
    let names: [Option<&'static str>; MAX_TASKS] =
        KERNEL.with(|k| core::array::from_fn(|i| k.tasks[i].as_ref().map(|t| t.name)));
    names.iter().position(|n| *n == Some(name))
}

/// Most records one audit keeps (a range that spills at every switch is one record, counted).
pub const MAX_AUDIT_RECORDS: usize = 48;
/// Where an audited byte lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    Closure,
    Heap,
    Stack,
}

impl Region {
    pub fn name(self) -> &'static str {
        match self {
            Region::Closure => "closure",
            Region::Heap => "heap",
            Region::Stack => "stack",
        }
    }
}

/// One range a request left changed when another client's request came: spill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub region: Region,
    /// Its address, and its offset in its region, and length.
    pub addr: u64,
    pub offset: usize,
    pub len: usize,
    /// The request (numbered from 1 in the audit) that left it, and its client's task index
    /// (`usize::MAX`: the keyboard, for a mailbox the input interrupt fills).
    pub request: u32,
    pub client: usize,
    /// Switches at which this range was found so.
    pub times: u32,
}

/// What an audit saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub records: heapless::Vec<Record, MAX_AUDIT_RECORDS>,
    /// Records that found no room.
    pub dropped: u32,
    pub requests: u32,
    /// Times the client changed between two requests.
    pub switches: u32,
    /// Different clients seen.
    pub clients: u32,
    /// Bytes audited: the closure's, the heap arena's, the stack's.
    pub bytes: [usize; 3],
    /// The closure's type, as the compiler names it.
    pub closure: &'static str,
    /// The task stopped (a fault, a restart) during the audit: it ended there.
    pub target_gone: bool,
    /// What the task declared (`declare`), as it was at the end: address, length, name.
    pub declared: heapless::Vec<(u64, usize, &'static str), MAX_DECLARED>,
    /// For each of `declared`, its bytes found changed at a switch at least once.
    pub declared_changed: heapless::Vec<usize, MAX_DECLARED>,
}

/// An audit in progress (in the kernel heap).
pub(crate) struct Audit {
    pub target: TaskId,
    /// Each region's start address and length, in the order of the buffers.
    pub regions: [(Region, u64, usize); 3],
    pub snapshot: alloc::vec::Vec<u8>,
    pub baseline: alloc::vec::Vec<u8>,
    /// The request that last changed each byte since the baseline (0: none).
    pub tags: alloc::vec::Vec<u16>,
    /// Declared bytes found changed at a switch.
    pub crossed: alloc::vec::Vec<bool>,
    /// Each request's client (index = request number).
    pub clients_of: alloc::vec::Vec<u32>,
    /// The client of the requests since the last switch.
    pub current: Option<usize>,
    /// Where the task's last answer went from (address, length).
    pub outbox: (u64, usize),
    pub seen: heapless::Vec<usize, 32>,
    pub report: Report,
}
