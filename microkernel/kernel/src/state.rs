//! The kernel's state: task control blocks, kernel objects, queues and the frame pool, all in one
//! structure that each kernel entry takes whole ([`KERNEL`]; seL4's choice: the kernel is short
//! and non-preemptible). One CPU runs the kernel, with interrupts off, so the structure needs
//! no lock: [`KernelCell`] says why, and stops the build if a second CPU is configured.

use crate::arch::trap::{user_frame, TrapFrame};
use crate::frames::Frames;
use crate::paging::AddressSpace;
use axolotl_abi::{FaultRecord, MsgInfo, TaskState, CAP_SLOTS, DECLARED_NAME_LEN, MAX_DECLARED, NAME_LEN};
use axolotl_kcore::cap::CSpace;
use axolotl_kcore::queue::{Links, Queue, RunQueues, MAX_TASKS};
use axolotl_kcore::TaskId;
use core::cell::UnsafeCell;

pub const MAX_ENDPOINTS: usize = 32;
pub const MAX_NOTIFICATIONS: usize = 32;
pub const MAX_MEMORY: usize = 32;
pub const MAX_MODULES: usize = 24;
pub const MAX_IO_RANGES: usize = 4;
pub use axolotl_abi::MAX_SESSIONS;
pub const MAX_FAULTS: usize = 32;
/// PCI functions the kernel records at boot.
pub const MAX_PCI: usize = 32;
/// The timer's rate (PIT channel 0): one tick is 10 ms.
pub const TICK_HZ: u32 = 100;
/// Milliseconds in `ticks` timer ticks.
pub const fn ticks_to_ms(ticks: u64) -> u64 {
    ticks * 1000 / TICK_HZ as u64
}
/// Milliseconds to timer ticks (rounded down).
pub const fn ms_to_ticks(ms: u64) -> u64 {
    ms * TICK_HZ as u64 / 1000
}
/// Timer ticks a task runs before a task of equal priority gets the CPU.
pub const TIMESLICE_TICKS: u32 = 2;

/// What a blocked task waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    Nothing,
    /// In an endpoint's send or receive queue.
    Endpoint(u16),
    /// For the reply of the server task with this index.
    Reply(u16),
    Notification(u16),
    /// For the task with this index to stop.
    Task(u16),
}

/// A message on its way: what `send` or `call` was asked to deliver.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    /// The message descriptor, encoded ([`MsgInfo::encode`]) as the sender passed it: one word
    /// to store on the IPC fastpath. See [`Pending::info`].
    pub info: u64,
    pub badge: u64,
    pub ep: u16,
    /// The session the message goes through, if any.
    pub session: Option<u16>,
    pub is_call: bool,
}

impl Pending {
    /// The message descriptor. It was validated before it was stored, so decoding cannot fail;
    /// if it ever did, an empty message goes instead of a panic.
    pub fn info(&self) -> MsgInfo {
        MsgInfo::decode(self.info).unwrap_or(MsgInfo::new(0))
    }
}

/// A task control block.
pub struct Tcb {
    /// User registers; the trap entry writes them here directly (see `arch::trap`).
    pub ctx: TrapFrame,
    pub state: TaskState,
    pub id: TaskId,
    pub name: [u8; NAME_LEN],
    /// Set with [`Tcb::set_priority`], which keeps `outranked_by` in step.
    pub priority: u8,
    /// The priorities above this task's, as a run-queue mask (`queue::above`).
    pub outranked_by: u8,
    pub restarts: u32,
    pub exit_code: u64,
    pub syscalls: u64,
    pub ticks: u64,
    /// TSC ticks charged to this task while accounting was on (`Kernel::charge`), all
    /// incarnations.
    pub cpu_tsc: u64,
    /// TSC ticks charged while accounting was on to this task and to the servers serving its
    /// calls (`Kernel::client_of`), all incarnations.
    pub billed_tsc: u64,
    /// Not scheduled until resumed (`task_pause`): when it becomes ready it is left off the
    /// run queues, and no call or reply hands it the CPU.
    pub paused: bool,
    pub slice_left: u32,
    pub space: Option<AddressSpace>,
    /// Physical frame of the IPC buffer.
    pub ipc_buffer: u64,
    /// Index of the boot module the task was loaded from (its pristine image, and symbols for
    /// fault reports).
    pub module: usize,
    /// The frame of the task's boot-info page; it outlives incarnations.
    pub boot_info: u64,
    pub blocked: Blocked,
    /// The message of a blocked sender or caller (validated when it was sent), kept until it is
    /// delivered, and after that too: if the server faults, a call is delivered again from here.
    pub pending: Pending,
    /// Slot a capability may be received into during the current receive.
    pub recv_slot: Option<u8>,
    /// The implicit reply capability: the caller this task must answer, and the call's token.
    pub reply_to: Option<(TaskId, u64)>,
    /// Token of this task's own outstanding call.
    pub call_token: u64,
    pub bound_notification: Option<u16>,
    pub io_ranges: [(u16, u16); MAX_IO_RANGES],
    pub io_count: usize,
    /// SSR pages this task may hold as a client, and holds now.
    pub ssr_quota: u16,
    pub ssr_used: u16,
    /// Physical address of the page-table entry of this task's SSR window (0: none).
    pub ssr_pte: u64,
    /// The session whose SSR is mapped in the window right now.
    pub ssr_mapped: Option<u16>,
    /// The current call was already delivered again once after a server fault.
    pub retried: bool,
    /// Faults go to the supervisor; callers are suspended instead of failed.
    pub supervised: bool,
    /// This is the supervisor itself.
    pub supervisor: bool,
    /// Timer ticks this task has run since its last syscall (hang detection).
    pub spin_ticks: u64,
    /// Tick at which this task received the request it must answer now (`reply_to`).
    pub request_tick: u64,
    /// Calls this incarnation answered.
    pub answered: u64,
    /// For a task in `Restarting`: the tick at which the new incarnation starts.
    pub restart_at: u64,
    /// TSC at the last fault, while the next incarnation has not yet reached its first `recv`.
    pub fault_tsc: Option<u64>,
    /// TSC ticks the last recovery took (fault to the next incarnation's first `recv`).
    pub recovery_tsc: u64,
}

impl Tcb {
    pub fn set_priority(&mut self, prio: u8) {
        self.priority = prio;
        self.outranked_by = axolotl_kcore::queue::above(prio);
    }

    pub const EMPTY: Tcb = Tcb {
        ctx: user_frame(0, 0, 0),
        state: TaskState::Free,
        id: TaskId { index: 0, generation: 0 },
        name: [0; NAME_LEN],
        priority: 0,
        outranked_by: axolotl_kcore::queue::above(0),
        restarts: 0,
        exit_code: 0,
        syscalls: 0,
        ticks: 0,
        cpu_tsc: 0,
        billed_tsc: 0,
        paused: false,
        slice_left: TIMESLICE_TICKS,
        space: None,
        ipc_buffer: 0,
        module: 0,
        boot_info: 0,
        blocked: Blocked::Nothing,
        pending: Pending { info: 0, badge: 0, ep: 0, session: None, is_call: false },
        recv_slot: None,
        reply_to: None,
        call_token: 0,
        bound_notification: None,
        io_ranges: [(0, 0); MAX_IO_RANGES],
        io_count: 0,
        ssr_quota: 0,
        ssr_used: 0,
        ssr_pte: 0,
        ssr_mapped: None,
        retried: false,
        supervised: false,
        supervisor: false,
        spin_ticks: 0,
        request_tick: 0,
        answered: 0,
        restart_at: 0,
        fault_tsc: None,
        recovery_tsc: 0,
    };

    pub fn name(&self) -> &str {
        axolotl_abi::str_from_padded(&self.name)
    }

    pub fn space(&self) -> &AddressSpace {
        self.space.as_ref().expect("a live task has an address space")
    }
}

pub struct Endpoint {
    pub live: bool,
    /// Its server is halted (crash loop): calls fail at once with `ServerFailed`.
    pub halted: bool,
    /// Its server is being audited (`audit`): calls take the general path, where the audit
    /// sees each request delivered.
    pub audited: bool,
    pub name: [u8; NAME_LEN],
    pub senders: Queue,
    pub receivers: Queue,
}

pub struct Notification {
    pub live: bool,
    pub bits: u64,
    /// The task bound to it (woken from `recv` on any endpoint).
    pub bound: Option<u16>,
}

pub struct MemoryObject {
    pub live: bool,
    /// A frame holding the physical addresses of the object's pages.
    pub page_list: u64,
    pub pages: u16,
    /// Which task has it mapped, and where (one mapping at a time).
    pub mapped: Option<(u16, u64)>,
    /// For a DMA region (the manifest's `dma`): its pages are physically contiguous from this
    /// address, and it is scrubbed when the task it was given to stops (see `pci`).
    pub dma: Option<(u64, u16)>,
}

/// A PCI function found at boot, and the task it was given to (the manifest's `pci`).
#[derive(Clone, Copy)]
pub struct PciDevice {
    pub f: x86::pci::Function,
    pub owner: Option<u16>,
}

/// A client's session with a server endpoint, and its Server State Region. It belongs to
/// neither task's address space: it outlives every incarnation of the server.
pub struct Session {
    pub live: bool,
    pub endpoint: u16,
    pub client: TaskId,
    /// The SSR page.
    pub frame: u64,
    pub badge: u64,
}

/// A new version of a server within its rollback window: what to go back to if it fails.
#[derive(Clone, Copy, Debug)]
pub struct Update {
    /// The module the old version ran from.
    pub old_module: usize,
    /// The requests the new version answers before the update is kept (counted from its
    /// incarnation's start: `Task::answered`).
    pub window: fault::update::Window,
    /// A frame listing `(session index, copy frame)` pairs, `count` of them: every client SSR
    /// of the server's endpoints as it was at the update.
    pub snapshots: u64,
    pub count: usize,
    /// The TSC at the update.
    pub since: u64,
}

#[derive(Clone, Copy)]
pub struct Module {
    pub name: [u8; NAME_LEN],
    pub start: u64,
    pub len: u64,
    /// The version its image declares (`userlib::version!`), 0 if none.
    pub version: u32,
    /// Loaded by `task_update` into frames of the kernel's (freed when no task runs it any
    /// more), not a boot module.
    pub updated: bool,
}

impl Module {
    pub fn name(&self) -> &str {
        axolotl_abi::str_from_padded(&self.name)
    }

    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY: modules lie in RAM reserved at boot and never freed or written.
        unsafe { core::slice::from_raw_parts(self.start as *const u8, self.len as usize) }
    }
}

/// Fault records not yet taken by the supervisor: a ring that drops the oldest when full.
pub struct FaultLog {
    records: [FaultRecord; MAX_FAULTS],
    head: usize,
    len: usize,
    /// Records dropped since boot because the ring was full.
    pub dropped: u64,
}

impl FaultLog {
    pub const fn new() -> Self {
        const EMPTY: FaultRecord = FaultRecord {
            index: 0,
            generation: 0,
            kind: 0,
            vector: 0,
            error: 0,
            rip: 0,
            addr: 0,
            tick: 0,
            tsc: 0,
            answered: 0,
            suspended: 0,
            failed: 0,
        };
        FaultLog { records: [EMPTY; MAX_FAULTS], head: 0, len: 0, dropped: 0 }
    }

    pub fn push(&mut self, record: FaultRecord) {
        if self.len == MAX_FAULTS {
            self.head = (self.head + 1) % MAX_FAULTS;
            self.len -= 1;
            self.dropped += 1;
        }
        self.records[(self.head + self.len) % MAX_FAULTS] = record;
        self.len += 1;
    }

    /// The oldest record, left in place.
    pub fn front(&self) -> Option<&FaultRecord> {
        (self.len > 0).then(|| &self.records[self.head])
    }

    pub fn pop(&mut self) -> Option<FaultRecord> {
        let r = *self.front()?;
        self.head = (self.head + 1) % MAX_FAULTS;
        self.len -= 1;
        Some(r)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A range a task declared as server-global state (`declare`); `len` 0: none.
#[derive(Clone, Copy)]
pub struct Declared {
    pub addr: u64,
    pub len: u64,
    pub name: [u8; DECLARED_NAME_LEN],
}

impl Declared {
    pub const NONE: Declared = Declared { addr: 0, len: 0, name: [0; DECLARED_NAME_LEN] };
}

/// Pages of private memory one audit can cover (3 frames each: snapshot, baseline, tags).
pub const MAX_AUDIT_PAGES: usize = 64;
/// Spilled ranges one audit records (more are counted).
pub const MAX_SPILLS: usize = 48;
/// Requests of one client in a row the audit tells apart (later ones share the last tag).
pub const RUN_LEN: usize = 250;

/// One page of the audited server's private memory, and the audit's frames for it.
#[derive(Clone, Copy)]
pub struct AuditPage {
    pub vaddr: u64,
    /// The frame behind it (fixed for the incarnation: image and stack pages never move).
    pub frame: u64,
    /// Physical address of its page-table entry (valid while the audited incarnation lives).
    pub pte: u64,
    /// The page as it was when the current request was delivered.
    pub snap: u64,
    /// The page as it was when the current client's run of requests began.
    pub base: u64,
    /// Per byte: which request of the run last changed it (`1..=RUN_LEN`), or 0.
    pub tags: u64,
    /// A request of the current run changed a byte of it.
    pub touched: bool,
    pub stack: bool,
    /// Spill was found here: hidden from the user (U cleared) during other clients' requests.
    pub watched: bool,
    /// Hidden right now.
    pub hidden: bool,
}

impl AuditPage {
    pub const NONE: AuditPage = AuditPage {
        vaddr: 0,
        frame: 0,
        pte: 0,
        snap: 0,
        base: 0,
        tags: 0,
        touched: false,
        stack: false,
        watched: false,
        hidden: false,
    };
}

/// A request the audit saw: its client's badge and task, and its number (from 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditRequest {
    pub badge: u64,
    pub client: u16,
    pub seq: u32,
}

/// A spilled range: what caused it first, how often a switch found it, who read it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spill {
    pub addr: u64,
    pub len: u32,
    pub by: AuditRequest,
    pub count: u32,
    pub read_by: Option<AuditRequest>,
}

/// The state-spill audit of one server (`audit.rs` has the operations).
pub struct Audit {
    pub active: bool,
    pub target: TaskId,
    pub pages: [AuditPage; MAX_AUDIT_PAGES],
    pub page_count: usize,
    /// Pages the last audit covered (`page_count` goes to 0 when its frames are freed).
    pub pages_audited: u32,
    /// The current client's run of requests (tags index it from 1).
    pub run: [AuditRequest; RUN_LEN],
    pub run_len: usize,
    /// The request being served since the last delivery (`None`: notification work, or none).
    pub current: Option<AuditRequest>,
    pub requests: u32,
    pub switches: u32,
    pub clients: [u64; 16],
    pub client_count: usize,
    pub spills: [Spill; MAX_SPILLS],
    pub spill_count: usize,
    pub dropped: u32,
    /// Bytes of each declared range that changed across clients.
    pub declared_bytes: [u32; MAX_DECLARED],
    /// A hidden page the target touched is shown for one instruction (single step).
    pub stepping: bool,
    /// Watch traps this request (bounded: past the bound, the pages stay shown).
    pub traps: u32,
    pub ended: u32,
}

impl Audit {
    pub const IDLE: Audit = Audit {
        active: false,
        target: TaskId { index: 0, generation: 0 },
        pages: [AuditPage::NONE; MAX_AUDIT_PAGES],
        page_count: 0,
        pages_audited: 0,
        run: [AuditRequest { badge: 0, client: 0, seq: 0 }; RUN_LEN],
        run_len: 0,
        current: None,
        requests: 0,
        switches: 0,
        clients: [0; 16],
        client_count: 0,
        spills: [Spill {
            addr: 0,
            len: 0,
            by: AuditRequest { badge: 0, client: 0, seq: 0 },
            count: 0,
            read_by: None,
        }; MAX_SPILLS],
        spill_count: 0,
        dropped: 0,
        declared_bytes: [0; MAX_DECLARED],
        stepping: false,
        traps: 0,
        ended: 0,
    };
}

/// Set in a paused caller's `call_token` (tokens count up from 0 and never reach it): see
/// `Kernel::set_paused`. Whoever compares a token with a reply's masks it off, but the IPC
/// fastpath.
pub const PAUSED_TOKEN: u64 = 1 << 63;

/// A quiet period: interrupt lines closed but `keep`; `saved` is the mask the others return to
/// (drivers' acknowledgements meanwhile are recorded in it, not applied).
#[derive(Clone, Copy)]
pub struct Quiet {
    pub keep: u16,
    pub saved: x86::pic::Mask,
}

pub struct Kernel {
    pub tasks: [Tcb; MAX_TASKS],
    pub cspaces: [CSpace; MAX_TASKS],
    pub links: Links,
    pub run: RunQueues,
    pub endpoints: [Endpoint; MAX_ENDPOINTS],
    pub notifications: [Notification; MAX_NOTIFICATIONS],
    /// The notification each IRQ line signals.
    pub irqs: [Option<u16>; 16],
    pub memory: [MemoryObject; MAX_MEMORY],
    pub sessions: [Session; MAX_SESSIONS],
    pub modules: [Module; MAX_MODULES],
    /// Each task's update within its rollback window (`task_update`). Kept out of the TCB:
    /// 48 bytes more there cost `mk.null_call` 6 instructions (measured), in the code around
    /// the switch.
    pub updates: [Option<Update>; MAX_TASKS],
    pub module_count: usize,
    pub frames: Frames,
    pub next_cap_id: u64,
    pub next_token: u64,
    pub ticks: u64,
    /// Whether switches charge CPU time (`Kernel::charge`; the `accounting` syscall).
    pub accounting: bool,
    /// The task that turned accounting on: it goes off when that task stops.
    pub accounting_by: usize,
    /// While a benchmark keeps the machine quiet (`accounting` with `quiet`): the lines it
    /// left open, and the mask the other lines go back to (`crate::traps::set_quiet`).
    pub quiet: Option<Quiet>,
    /// TSC ticks charged to no task while accounting was on: the CPU halted with nothing ready,
    /// interrupts, choosing whom to run after them.
    pub idle_tsc: u64,
    pub boot_tsc: u64,
    /// TSC ticks per millisecond, measured at boot; tasks read it from their boot info.
    pub tsc_per_ms: u64,
    pub revoke_scratch: [u64; MAX_TASKS * CAP_SLOTS],
    /// The supervisor's notification, once it called `supervise`.
    pub supervisor: Option<u16>,
    /// Faults not yet taken by the supervisor.
    pub faults: FaultLog,
    /// PCI functions found at boot (`pci`).
    pub pci: [Option<PciDevice>; MAX_PCI],
    /// A frame holding `jmp $`, mapped into a task by the `hang` injection.
    pub hang_frame: u64,
    /// The state-spill audit (`audit`): at most one server at a time.
    pub audit: Audit,
    /// What each task declared as server-global state (`declare`), this incarnation.
    pub declared: [[Declared; MAX_DECLARED]; MAX_TASKS],
    /// The task that starved behind higher priorities (`RunQueues::tick`) and runs ahead of
    /// them whenever it is ready until tick `boost_end`, or `NO_TASK`.
    pub boosted: usize,
    pub boost_end: u64,
}

impl Kernel {
    pub const fn new() -> Self {
        Kernel {
            tasks: [const { Tcb::EMPTY }; MAX_TASKS],
            cspaces: [const { CSpace::new() }; MAX_TASKS],
            links: Links::new(),
            run: RunQueues::new(),
            endpoints: [const {
                Endpoint {
                    live: false,
                    halted: false,
                    audited: false,
                    name: [0; NAME_LEN],
                    senders: Queue::new(),
                    receivers: Queue::new(),
                }
            }; MAX_ENDPOINTS],
            notifications: [const { Notification { live: false, bits: 0, bound: None } }; MAX_NOTIFICATIONS],
            irqs: [None; 16],
            memory: [const { MemoryObject { live: false, page_list: 0, pages: 0, mapped: None, dma: None } };
                MAX_MEMORY],
            sessions: [const {
                Session {
                    live: false,
                    endpoint: 0,
                    client: TaskId { index: 0, generation: 0 },
                    frame: 0,
                    badge: 0,
                }
            }; MAX_SESSIONS],
            modules: [Module { name: [0; NAME_LEN], start: 0, len: 0, version: 0, updated: false };
                MAX_MODULES],
            updates: [None; MAX_TASKS],
            module_count: 0,
            frames: Frames::new(),
            next_cap_id: 1,
            next_token: 1,
            ticks: 0,
            accounting: false,
            accounting_by: 0,
            quiet: None,
            idle_tsc: 0,
            boot_tsc: 0,
            tsc_per_ms: 0,
            revoke_scratch: [0; MAX_TASKS * CAP_SLOTS],
            supervisor: None,
            faults: FaultLog::new(),
            pci: [None; MAX_PCI],
            hang_frame: 0,
            audit: Audit::IDLE,
            declared: [[Declared::NONE; MAX_DECLARED]; MAX_TASKS],
            boosted: crate::arch::cpu::NO_TASK,
            boost_end: 0,
        }
    }

    pub fn new_cap_id(&mut self) -> u64 {
        let id = self.next_cap_id;
        self.next_cap_id += 1;
        id
    }

    pub fn new_token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    /// Index of the live task with this id, or `None` if it is gone or was replaced.
    pub fn resolve(&self, id: TaskId) -> Option<usize> {
        let t = self.tasks.get(id.index as usize)?;
        (t.state != TaskState::Free && t.id == id).then_some(id.index as usize)
    }

    /// Make `t` ready and queue it.
    pub fn make_ready(&mut self, t: usize) {
        self.tasks[t].state = TaskState::Ready;
        self.tasks[t].blocked = Blocked::Nothing;
        if self.tasks[t].paused {
            return; // queued when resumed
        }
        let prio = self.tasks[t].priority;
        self.run.enqueue(&mut self.links, t, prio);
    }

    /// Complete a blocked task's syscall with an error and make it ready.
    pub fn fail_blocked(&mut self, t: usize, err: axolotl_abi::Error) {
        self.tasks[t].ctx.rax = err as u64;
        self.tasks[t].retried = false;
        self.make_ready(t);
    }

    /// The endpoints task `t` serves (holds with the receive right), at most `N`.
    pub fn served_endpoints<const N: usize>(&self, t: usize) -> heapless::Vec<u16, N> {
        self.cspaces[t]
            .iter()
            .filter_map(|(_, c)| match c.object {
                axolotl_kcore::cap::Object::Endpoint(e) if c.rights.contains(axolotl_abi::Rights::READ) => {
                    Some(e)
                }
                _ => None,
            })
            .take(N)
            .collect()
    }

    /// The task that serves endpoint `ep` (holds it with the receive right), unless it is held
    /// after a crash loop.
    pub fn server_of(&self, ep: u16) -> Option<usize> {
        (0..self.tasks.len()).find(|&t| {
            self.tasks[t].state != TaskState::Halted
                && self.tasks[t].state != TaskState::Free
                && self.cspaces[t].iter().any(|(_, c)| {
                    c.object == axolotl_kcore::cap::Object::Endpoint(ep)
                        && c.rights.contains(axolotl_abi::Rights::READ)
                })
        })
    }

    pub fn module_of(&self, t: usize) -> Option<&Module> {
        self.modules[..self.module_count].get(self.tasks[t].module)
    }
}

/// The kernel state. Taken on every kernel entry ([`KernelCell::enter`]), given up before
/// returning to user mode or waiting idle.
pub static KERNEL: KernelCell = KernelCell(UnsafeCell::new(Kernel::new()), HeldFlag::new());

/// The kernel state's cell on a uniprocessor kernel (a lock, here, only cost its `cmpxchg` and
/// release on every entry). Exclusive access rests on how the kernel is entered:
///
/// - one CPU runs the kernel ([`MAX_CPUS`](crate::arch::cpu::MAX_CPUS) is 1: checked below);
/// - it runs with interrupts off (`syscall` clears IF through FMASK, interrupt gates clear it),
///   and turns them on only in `cpu::idle_wait`, which `traps::next_context` calls with no
///   guard alive;
/// - an exception taken in ring 0 is a kernel bug and panics without entering (`traps::
///   trap_from_kernel`); the only interrupt taken in ring 0 is one that ends that idle wait.
///
/// So at most one [`KernelGuard`] exists at a time, if every [`enter`](KernelCell::enter) is at
/// a kernel entry point, as its contract says. Debug builds check it as well.
pub struct KernelCell(UnsafeCell<Kernel>, HeldFlag);

const _: () = assert!(crate::arch::cpu::MAX_CPUS == 1, "KernelCell relies on one CPU: use a lock");

// SAFETY: one CPU, and its entries never overlap (see `KernelCell`): the state is never reached
// from two contexts at once.
unsafe impl Sync for KernelCell {}

impl KernelCell {
    /// Take the kernel state for this kernel entry.
    ///
    /// # Safety
    /// Only at a kernel entry point (a trap from user mode, the interrupt that ends the idle
    /// wait, boot), or after the guard taken there was dropped: never while a guard is alive.
    #[inline(always)]
    pub unsafe fn enter(&'static self) -> KernelGuard {
        self.1.take();
        // SAFETY: per the contract no other guard, hence no other reference, exists.
        KernelGuard(unsafe { &mut *self.0.get() })
    }
}

/// The kernel state, taken for one kernel entry ([`KernelCell::enter`]).
pub struct KernelGuard(&'static mut Kernel);

impl core::ops::Deref for KernelGuard {
    type Target = Kernel;
    #[inline(always)]
    fn deref(&self) -> &Kernel {
        self.0
    }
}

impl core::ops::DerefMut for KernelGuard {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Kernel {
        self.0
    }
}

impl Drop for KernelGuard {
    #[inline(always)]
    fn drop(&mut self) {
        KERNEL.1.give_back();
    }
}

/// Debug builds: whether a guard is alive, to stop on an overlapping entry.
#[cfg(debug_assertions)]
struct HeldFlag(core::cell::Cell<bool>);

#[cfg(debug_assertions)]
impl HeldFlag {
    const fn new() -> Self {
        HeldFlag(core::cell::Cell::new(false))
    }

    fn take(&self) {
        assert!(!self.0.replace(true), "the kernel was entered while a guard was alive");
    }

    fn give_back(&self) {
        self.0.set(false);
    }
}

/// Release builds: nothing (see [`KernelCell`] for why nothing is needed).
#[cfg(not(debug_assertions))]
struct HeldFlag;

#[cfg(not(debug_assertions))]
impl HeldFlag {
    const fn new() -> Self {
        HeldFlag
    }

    #[inline(always)]
    fn take(&self) {}

    #[inline(always)]
    fn give_back(&self) {}
}
