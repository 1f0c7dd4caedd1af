//! The contract between the Axolotl microkernel and user space.
//!
//! Everything here is plain data: syscall numbers, the error enum every syscall returns, the
//! message-info word of an IPC, capability types and rights, the fixed user address layout and the
//! records the kernel writes for tasks (boot info, task info). Kernel and servers both depend on
//! this crate, so a change here is a change to the ABI.
//!
//! # Register convention of `syscall`
//!
//! ```text
//!            in                          out
//!   rax      syscall number              Error code (0 = Ok)
//!   rdi      capability slot / arg0      badge of the sender (receive side) / value
//!   rsi      MsgInfo / arg1              MsgInfo of the delivered message
//!   rdx r10  MR0 MR1 / arg2 arg3         MR0 MR1
//!   r8  r9   MR2 MR3 / arg4 arg5         MR2 MR3
//!   rcx r11  clobbered by the CPU        clobbered
//! ```
//!
//! Payloads longer than four words travel in the task's IPC buffer (a page at [`IPC_BUFFER`]); the
//! kernel copies `MsgInfo::len` bytes from the sender's buffer into the receiver's.
#![no_std]
#![forbid(unsafe_code)]

mod audit;
mod layout;
mod msg;
mod task;

pub use audit::*;
/// Fault and injection kinds cross this ABI by number; both personalities share them.
pub use fault::{FaultKind, InjectKind};
pub use layout::*;
pub use msg::*;
pub use task::*;

/// Syscall numbers, passed in `rax`.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sysno {
    /// `call(ep, info, mr0..3)`: send on an endpoint and wait for the reply, atomically.
    Call = 0,
    /// `reply_recv(ep, info, mr0..3)`: answer the pending caller (if any), then wait on `ep`.
    /// Replies carry no capability; the info word's capability slot, if set, is where one sent
    /// with the next message may land.
    ReplyRecv = 1,
    /// `send(cap, info, mr0..3)`: blocking send on an endpoint, or a one-shot answer through a
    /// saved Reply capability.
    Send = 2,
    /// `recv(ep)`: wait for a message (or a bound notification) on an endpoint.
    Recv = 3,
    /// `save_reply(slot)`: move the implicit reply capability of the last call into `slot`.
    SaveReply = 4,
    /// `signal(ntfn, bits)`: set bits on a notification.
    Signal = 5,
    /// `wait(ntfn)`: wait until a notification has bits set; returns and clears them in `rdi`.
    Wait = 6,
    /// `bind_notification(ntfn)`: let `recv` on any endpoint also wake for this notification.
    BindNotification = 7,
    /// `irq_ack(irq)`: the driver has handled its interrupt; unmask the line again.
    IrqAck = 8,
    /// `ioport_enable(ioport)`: open the capability's port range to `in`/`out` from this task.
    IoPortEnable = 9,
    /// `cap_copy(src, dst, rights, badge)`: derive a child capability with fewer rights and,
    /// for an unbadged endpoint, a badge.
    CapCopy = 10,
    /// `cap_delete(slot)`: empty a slot.
    CapDelete = 11,
    /// `cap_revoke(slot)`: delete every capability derived from the one in `slot`, in every task.
    CapRevoke = 12,
    /// `cap_info(slot)`: the capability type in `rdi` and its rights in `rsi`.
    CapInfo = 13,
    /// `mem_map(mem, vaddr, rights)`: map a memory object at `vaddr`; returns its pages in `rdi`
    /// and, for a DMA region (physically contiguous), its physical address in `rsi` (else 0).
    MemMap = 14,
    /// `mem_unmap(mem)`: unmap a memory object from this task.
    MemUnmap = 15,
    /// `task_info(task, index, out, count_frames)`: fill a [`TaskInfo`] at user address `out`;
    /// with `count_frames` 1 also its `frames`, which walks the task's page tables (0: left 0;
    /// anything else is `InvalidArgument`).
    TaskInfo = 16,
    /// `task_start(task, index)`: start a task the manifest loaded dormant.
    TaskStart = 17,
    /// `task_wait(task, index)`: block until that task has exited or faulted.
    TaskWait = 18,
    /// `yield()`: give the rest of the time slice to another task of the same priority.
    Yield = 19,
    /// `exit(code, msg, len)`: end this task; a non-empty message is printed in the kernel's report.
    Exit = 20,
    /// `connect(ep, slot)`: open a session with the server behind `ep`; its Server State Region
    /// (one page, charged to the caller's quota) is created and a Session capability lands in
    /// `slot`. Returns the session's badge in `rdi`.
    Connect = 21,
    /// `ssr_read(view, index, out, len)`: copy up to `len` bytes of session `index`'s SSR to
    /// `out`, through an SsrView capability over the endpoint. Returns the session's badge.
    SsrRead = 22,
    /// `task_restart(task, index, delay_ms)`: stop the task if it runs, then start a new
    /// incarnation from its pristine boot image with the same capabilities (generation + 1,
    /// restarts + 1), now or after `delay_ms` milliseconds (at most 10 s: how a supervisor
    /// backs off). Returns the new generation.
    TaskRestart = 23,
    /// `supervise(task_all, ntfn)`: become the supervisor: the kernel records every fault of a
    /// supervised task (see the manifest's `supervised`) and signals `ntfn`.
    Supervise = 24,
    /// `fault_next(task_all, out)`: take the oldest recorded fault as a [`FaultRecord`] at
    /// `out`; `Dead` when there is none.
    FaultNext = 25,
    /// `inject(task, index, kind, seed)`: inject a fault ([`InjectKind`]) into a task, from
    /// outside it. Returns a description word in `rdi` (the register, address or offset hit).
    Inject = 26,
    /// `log(task_all, ptr, len)`: print a line on the kernel's log (for the supervisor, which
    /// must not depend on the console server it may have to restart).
    Log = 27,
    /// `task_hold(task, index)`: stop a task for good (a crash loop); its waiting and queued
    /// callers get `ServerFailed`.
    TaskHold = 28,
    /// `pci_read(pci, offset)`: the dword at `offset` (aligned, below 256) of the function's
    /// configuration space, in `rdi`, as the kernel's guard shows it (`x86::pci::Guard`).
    PciRead = 29,
    /// `pci_write(pci, offset, value)`: write a dword of the function's configuration space,
    /// through the guard: BARs may only be sized, the header only changes in the command bits
    /// a driver needs; `InvalidArgument` for the rest, and nothing changes.
    PciWrite = 30,
    /// `pci_map(pci, bar, vaddr)`: map memory BAR `bar` uncached at `vaddr` (page aligned,
    /// at or above `MAP_BASE`); returns its size in bytes in `rdi` and its physical address
    /// in `rsi`. Device memory: never RAM, never freed, and no syscall will copy to or from it.
    PciMap = 31,
    /// `accounting(task_all, on, quiet, keep)`: turn the kernel's CPU accounting on (1) or off
    /// (0), with a
    /// Task capability over all tasks (read and write). While on, each switch charges the TSC
    /// ticks since the last one to the task that ran (`TaskInfo::cpu_tsc`) or to idle, which is
    /// returned in `rdi`. Off by default (it costs a dozen instructions per switch), and off
    /// again when the task that turned it on stops. Under QEMU
    /// `-icount` with `sleep=off` an idle CPU's clock jumps to the next timer; a benchmark that
    /// waits for a device leaves out idle and other tasks' time to count what its work retired.
    /// With `quiet` = 1 (and accounting on) the kernel also masks every interrupt line, its own
    /// timer included, but those of the Interrupt capabilities task `keep` holds, until it is
    /// called with `quiet` = 2 or accounting goes off (`quiet` = 0 leaves this as it is): then
    /// a benchmark that waits for one device is woken by that device alone, and runs
    /// unpreempted, as on the libos.
    Accounting = 32,
    /// `task_pause(task, index, on)`: pause (1) or resume (0) another task. A paused task is
    /// not scheduled: whatever it waits for still happens (a reply, a notification, a
    /// restart), and it runs again when resumed. Pausing a paused task, or resuming a running
    /// one, changes nothing. `TaskInfo::flags` shows [`TASK_PAUSED`].
    TaskPause = 33,
    /// `task_update(task, index, memory, len, window)`: replace a supervised server with the
    /// version whose ELF image is the first `len` bytes of the Memory object, behind the same
    /// endpoints, capabilities and sessions, if the server is waiting for a request
    /// (otherwise [`Error::Busy`], nothing changed). The image must declare itself (see
    /// [`ServerVersion`]) as a version of this server that reads the layout of every client
    /// state it would find (otherwise [`Error::Incompatible`] or [`Error::BadImage`], nothing
    /// changed). Until it has answered `window` requests (1 to 1000) the update may roll back:
    /// if the new version fails (faults, hangs, panics, exits), the kernel restores every SSR of
    /// its clients to what it held at the update, starts the old version again, and delivers
    /// the failed request to it. Returns the new generation.
    TaskUpdate = 34,
    /// `audit(task, index, op, n, out)`: the state-spill audit of a server ([`AuditOp`]):
    /// start it (frames for its snapshots taken now), stop it (frames freed), or read its
    /// summary ([`AuditSummary`]) or record `n` ([`AuditRecord`]) to `out`. See `audit.rs`.
    Audit = 35,
    /// `declare(addr, len, name, name_len)`: declare `[addr, addr + len)` of the caller's own
    /// writable memory (its image's data and bss, or its stack) as server-global state that
    /// is meant to change across clients' requests; an audit reports it as declared, not as
    /// spill. At most [`MAX_DECLARED`] per incarnation (`userlib::declare!`).
    Declare = 36,
}

/// `TaskInfo::flags`: the task is paused (`task_pause`).
pub const TASK_PAUSED: u8 = 1;
/// `TaskInfo::flags`: the task is a new version within its update's rollback window.
pub const TASK_UPDATING: u8 = 2;

/// Number of syscalls; every number at or above it is [`Error::InvalidSyscall`].
pub const SYSCALL_COUNT: u64 = 37;

/// The ELF section where a server declares its version ([`ServerVersion`], placed there by
/// `userlib::version!`).
pub const VERSION_SECTION: &str = ".axolotl.version";
/// [`ServerVersion::magic`]: "AXVR".
pub const VERSION_MAGIC: u32 = u32::from_le_bytes(*b"AXVR");
/// Most client-state layouts one version may declare it reads.
pub const MAX_LAYOUTS: usize = 6;

/// What a server image says of itself, for `task_update`: which server it is, its version, and
/// the layouts of client state (SSR kind and layout version, `ssr::Layout`) it can read.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ServerVersion {
    pub magic: u32,
    pub version: u32,
    /// The task's name, NUL-padded: an update is refused for any other task.
    pub server: [u8; NAME_LEN],
    /// Entries of `reads` in use.
    pub count: u32,
    /// `kind << 16 | layout version`, one per layout it reads.
    pub reads: [u32; MAX_LAYOUTS],
}

impl ServerVersion {
    /// A declaration (for `userlib::version!`): server `name`, `version`, reading the
    /// `(kind, layout version)` pairs of `reads` (at most [`MAX_LAYOUTS`]; a name longer than
    /// [`NAME_LEN`] or more layouts fail to compile where it is evaluated as a constant).
    pub const fn new(name: &str, version: u32, reads: &[(u16, u16)]) -> ServerVersion {
        let mut server = [0u8; NAME_LEN];
        let bytes = name.as_bytes();
        assert!(bytes.len() <= NAME_LEN, "a server name is at most NAME_LEN bytes");
        let mut i = 0;
        while i < bytes.len() {
            server[i] = bytes[i];
            i += 1;
        }
        assert!(reads.len() <= MAX_LAYOUTS, "at most MAX_LAYOUTS layouts");
        let mut list = [0u32; MAX_LAYOUTS];
        let mut j = 0;
        while j < reads.len() {
            list[j] = (reads[j].0 as u32) << 16 | reads[j].1 as u32;
            j += 1;
        }
        ServerVersion { magic: VERSION_MAGIC, version, server, count: reads.len() as u32, reads: list }
    }

    /// Whether this version reads client state of `kind` in layout `version`.
    pub fn reads(&self, kind: u16, version: u16) -> bool {
        let want = (kind as u32) << 16 | version as u32;
        self.reads[..(self.count as usize).min(MAX_LAYOUTS)].contains(&want)
    }

    pub fn server(&self) -> &str {
        str_from_padded(&self.server)
    }
}

impl Sysno {
    /// Decode `rax`; `None` for a number that is not a syscall.
    pub fn from_raw(raw: u64) -> Option<Self> {
        use Sysno::*;
        const ALL: [Sysno; SYSCALL_COUNT as usize] = [
            Call,
            ReplyRecv,
            Send,
            Recv,
            SaveReply,
            Signal,
            Wait,
            BindNotification,
            IrqAck,
            IoPortEnable,
            CapCopy,
            CapDelete,
            CapRevoke,
            CapInfo,
            MemMap,
            MemUnmap,
            TaskInfo,
            TaskStart,
            TaskWait,
            Yield,
            Exit,
            Connect,
            SsrRead,
            TaskRestart,
            Supervise,
            FaultNext,
            Inject,
            Log,
            TaskHold,
            PciRead,
            PciWrite,
            PciMap,
            Accounting,
            TaskPause,
            TaskUpdate,
            Audit,
            Declare,
        ];
        ALL.get(usize::try_from(raw).ok()?).copied()
    }

    /// The name used in documentation and in the kernel's reports.
    pub fn name(self) -> &'static str {
        use Sysno::*;
        match self {
            Call => "call",
            ReplyRecv => "reply_recv",
            Send => "send",
            Recv => "recv",
            SaveReply => "save_reply",
            Signal => "signal",
            Wait => "wait",
            BindNotification => "bind_notification",
            IrqAck => "irq_ack",
            IoPortEnable => "ioport_enable",
            CapCopy => "cap_copy",
            CapDelete => "cap_delete",
            CapRevoke => "cap_revoke",
            CapInfo => "cap_info",
            MemMap => "mem_map",
            MemUnmap => "mem_unmap",
            TaskInfo => "task_info",
            TaskStart => "task_start",
            TaskWait => "task_wait",
            Yield => "yield",
            Exit => "exit",
            Connect => "connect",
            SsrRead => "ssr_read",
            TaskRestart => "task_restart",
            Supervise => "supervise",
            FaultNext => "fault_next",
            Inject => "inject",
            Log => "log",
            TaskHold => "task_hold",
            PciRead => "pci_read",
            PciWrite => "pci_write",
            PciMap => "pci_map",
            Accounting => "accounting",
            TaskPause => "task_pause",
            TaskUpdate => "task_update",
            Audit => "audit",
            Declare => "declare",
        }
    }
}

/// Every way a syscall can fail, returned in `rax`. One variant per cause.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// `rax` named no syscall.
    InvalidSyscall = 1,
    /// The slot number is outside the capability table.
    InvalidSlot = 2,
    /// The slot is empty.
    EmptySlot = 3,
    /// The capability is of another type than the syscall needs.
    WrongType = 4,
    /// The capability lacks a right the operation needs.
    NoRights = 5,
    /// The destination slot is occupied.
    SlotOccupied = 6,
    /// A user pointer does not lie in memory the caller may access that way.
    BadAddress = 7,
    /// A length exceeds what the operation allows.
    TooLong = 8,
    /// An argument is out of its range (a flag, an alignment, an index).
    InvalidArgument = 9,
    /// The task, reply or object named is gone (stale generation, answered reply).
    Dead = 10,
    /// A kernel table or the frame pool is full.
    OutOfResources = 11,
    /// There is nothing to answer: no caller waits for this task's reply.
    NoReplyPending = 12,
    /// The operation is already done (a started task, an enabled port range, a mapped object).
    AlreadyDone = 13,
    /// The target does not allow the operation now (e.g. waiting on oneself).
    WouldDeadlock = 14,
    /// The server the call went to faulted or exited before it replied.
    ServerFailed = 15,
    /// The caller's quota of Server State Region pages is used up.
    QuotaExceeded = 16,
    /// A fault to inject has nothing to hit in the target (no client session to corrupt, no
    /// writable memory).
    NothingToHit = 17,
    /// The server is serving a request (or paused): it can be updated only while it waits.
    Busy = 18,
    /// The new version does not read the layout of a client state the server holds, or is a
    /// version of another server.
    Incompatible = 19,
    /// Not a loadable server image, or one that does not declare its version.
    BadImage = 20,
    /// The task serves no endpoint: there is no request of a client to audit.
    NotAServer = 21,
}

impl Error {
    /// Every error, in the order of its code (1 first).
    const ALL: [Error; 21] = {
        use Error::*;
        [
            InvalidSyscall,
            InvalidSlot,
            EmptySlot,
            WrongType,
            NoRights,
            SlotOccupied,
            BadAddress,
            TooLong,
            InvalidArgument,
            Dead,
            OutOfResources,
            NoReplyPending,
            AlreadyDone,
            WouldDeadlock,
            ServerFailed,
            QuotaExceeded,
            NothingToHit,
            Busy,
            Incompatible,
            BadImage,
            NotAServer,
        ]
    };

    /// Decode `rax`; `None` means Ok. An unknown code maps to `InvalidArgument`.
    pub fn from_raw(raw: u64) -> Option<Self> {
        let i = raw.checked_sub(1)?;
        Some(*usize::try_from(i).ok().and_then(|i| Self::ALL.get(i)).unwrap_or(&Error::InvalidArgument))
    }

    /// A short human description, used by the shell and in reports.
    pub fn describe(self) -> &'static str {
        const TEXT: [&str; 21] = [
            "no such syscall",
            "capability slot out of range",
            "capability slot is empty",
            "capability has the wrong type",
            "capability lacks the needed right",
            "destination slot is occupied",
            "bad user address",
            "length too large",
            "invalid argument",
            "object is dead or stale",
            "kernel resources exhausted",
            "no reply pending",
            "already done",
            "would deadlock",
            "server failed before replying",
            "state-region quota exhausted",
            "nothing to hit",
            "the server is busy serving a request",
            "the new version cannot read the clients' state, or is not this server's",
            "not a server image with a version",
            "the task serves no endpoint",
        ];
        TEXT[self as usize - 1]
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// The kinds of capability a slot can hold.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapType {
    Endpoint = 1,
    Reply = 2,
    Notification = 3,
    Task = 4,
    Memory = 5,
    Interrupt = 6,
    IoPort = 7,
    /// A client's session with a server: call through it, and the server sees the session's SSR.
    Session = 8,
    /// Read access to every SSR of one endpoint, for servers that need all clients' state.
    SsrView = 9,
    /// One PCI function: its configuration space (guarded) and its memory BARs.
    Pci = 10,
}

impl CapType {
    pub fn from_raw(raw: u8) -> Option<Self> {
        use CapType::*;
        Some(match raw {
            1 => Endpoint,
            2 => Reply,
            3 => Notification,
            4 => Task,
            5 => Memory,
            6 => Interrupt,
            7 => IoPort,
            8 => Session,
            9 => SsrView,
            10 => Pci,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use CapType::*;
        match self {
            Endpoint => "endpoint",
            Reply => "reply",
            Notification => "notification",
            Task => "task",
            Memory => "memory",
            Interrupt => "interrupt",
            IoPort => "ioport",
            Session => "session",
            SsrView => "ssr-view",
            Pci => "pci",
        }
    }
}

/// Access rights of a capability, in the seL4 manner.
///
/// | type         | READ              | WRITE                 | GRANT                   |
/// |--------------|-------------------|-----------------------|-------------------------|
/// | Endpoint     | receive           | send / call           | transfer caps with msgs |
/// | Notification | wait              | signal                | —                       |
/// | Task         | task_info         | task_start, task_wait | —                       |
/// | Memory       | map readable      | map writable          | —                       |
/// | Session      | —                 | call                  | —                       |
/// | SsrView      | ssr_read          | —                     | —                       |
/// | Pci          | pci_read, pci_map | pci_write             | —                       |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    pub const READ: Rights = Rights(1);
    pub const WRITE: Rights = Rights(2);
    pub const GRANT: Rights = Rights(4);
    pub const ALL: Rights = Rights(7);

    /// Keep only the defined bits of a raw value.
    pub const fn from_bits_truncate(raw: u64) -> Rights {
        Rights((raw & 7) as u8)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
    pub const fn intersect(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }
}

/// Badges of calls made through a session have this bit set; see [`session_badge`].
pub const SESSION_BADGE: u64 = 1 << 63;

/// The badge a server sees for session `index` of the client task `client`.
pub const fn session_badge(index: u16, client: u16) -> u64 {
    SESSION_BADGE | (client as u64) << 16 | index as u64
}

/// The session index of a session badge.
pub const fn badge_session(badge: u64) -> Option<u16> {
    if badge & SESSION_BADGE != 0 {
        Some(badge as u16)
    } else {
        None
    }
}

/// The client task index of a session badge.
pub const fn badge_client(badge: u64) -> u16 {
    (badge >> 16) as u16
}

/// Exit code of a task whose panic handler ended it; the kernel treats it as a fault.
pub const EXIT_PANIC: u64 = 101;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syscall_number_round_trips() {
        for raw in 0..SYSCALL_COUNT {
            let s = Sysno::from_raw(raw).expect("number below SYSCALL_COUNT");
            assert_eq!(s as u64, raw, "{}", s.name());
        }
        assert_eq!(Sysno::from_raw(SYSCALL_COUNT), None);
        assert_eq!(Sysno::from_raw(u64::MAX), None);
    }

    #[test]
    fn error_codes_round_trip() {
        assert_eq!(Error::from_raw(0), None);
        for raw in 1..=17 {
            let e = Error::from_raw(raw).unwrap();
            assert_eq!(e as u64, raw);
        }
        assert_eq!(Error::from_raw(999), Some(Error::InvalidArgument));
    }

    #[test]
    fn session_badges_round_trip() {
        let b = session_badge(5, 9);
        assert_eq!(badge_session(b), Some(5));
        assert_eq!(badge_client(b), 9);
        assert_eq!(badge_session(3), None, "plain endpoint badges are not sessions");
    }

    #[test]
    fn rights_are_a_lattice() {
        let rw = Rights::READ.union(Rights::WRITE);
        assert!(rw.contains(Rights::READ));
        assert!(!rw.contains(Rights::GRANT));
        assert_eq!(rw.intersect(Rights::WRITE), Rights::WRITE);
        assert_eq!(Rights::from_bits_truncate(0xff), Rights::ALL);
    }

    #[test]
    fn cap_types_round_trip() {
        for raw in 0..=255u8 {
            if let Some(t) = CapType::from_raw(raw) {
                assert_eq!(t as u8, raw);
                assert!(!t.name().is_empty());
            }
        }
        assert_eq!(CapType::from_raw(0), None);
    }
}
