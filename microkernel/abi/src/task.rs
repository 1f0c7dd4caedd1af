//! Records the kernel writes for user space: the boot info page and `task_info` results.

use crate::CapType;
use bytemuck::{Pod, Zeroable};

/// Longest task name, in bytes.
pub const NAME_LEN: usize = 16;
/// Longest capability name in the boot info.
pub const CAP_NAME_LEN: usize = 22;
/// Most capabilities the boot info lists.
pub const BOOT_CAPS: usize = 32;
/// First word of a valid [`BootInfo`].
pub const BOOT_INFO_MAGIC: u64 = 0x4158_4F4C_4F54_4C02; // "AXOLOTL" + layout version 2

/// What a task learns from the kernel at start: who it is and which capability sits in which slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BootInfo {
    pub magic: u64,
    pub task_index: u32,
    pub generation: u32,
    pub name: [u8; NAME_LEN],
    pub cap_count: u32,
    pub _pad: u32,
    /// The TSC when the kernel started: time since boot is counted from here.
    pub boot_tsc: u64,
    /// TSC ticks per millisecond, measured by the kernel at boot (the TSC keeps counting
    /// across restarts, so a restarted server needs no calibration of its own).
    pub tsc_per_ms: u64,
    pub caps: [BootCap; BOOT_CAPS],
}

/// One capability of the manifest, as the task sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BootCap {
    pub slot: u8,
    /// A [`CapType`] as `u8`.
    pub kind: u8,
    pub name: [u8; CAP_NAME_LEN],
}

impl BootCap {
    pub const EMPTY: BootCap = BootCap { slot: 0, kind: 0, name: [0; CAP_NAME_LEN] };

    pub fn name(&self) -> &str {
        str_from_padded(&self.name)
    }

    pub fn kind(&self) -> Option<CapType> {
        CapType::from_raw(self.kind)
    }
}

impl BootInfo {
    pub fn name(&self) -> &str {
        str_from_padded(&self.name)
    }

    /// The capabilities listed, bounded by the array even if `cap_count` lies.
    pub fn caps(&self) -> &[BootCap] {
        &self.caps[..(self.cap_count as usize).min(BOOT_CAPS)]
    }

    /// The slot of the capability the manifest gave under `name` with type `kind`.
    pub fn find(&self, kind: CapType, name: &str) -> Option<u8> {
        self.caps().iter().find(|c| c.kind() == Some(kind) && c.name() == name).map(|c| c.slot)
    }
}

/// Copy a name into a zero-padded array, cutting it at the array's length.
pub fn padded<const N: usize>(name: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = name.len().min(N);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

/// The string in a zero-padded array; invalid UTF-8 reads as `?`.
pub fn str_from_padded(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("?")
}

/// Scheduling state of a task, as `ps` shows it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Slot unused.
    Free = 0,
    /// Loaded from the manifest (`dormant` there), waiting for `task_start`.
    Dormant = 1,
    /// Running or ready to run.
    Ready = 2,
    /// Blocked sending on an endpoint.
    Sending = 3,
    /// Blocked receiving on an endpoint.
    Receiving = 4,
    /// Blocked in `call`, waiting for the reply.
    Calling = 5,
    /// Blocked in `wait` on a notification.
    Waiting = 6,
    /// Blocked in `task_wait`.
    Joining = 7,
    /// Ended through `exit`.
    Exited = 8,
    /// Stopped by a CPU exception or a panic.
    Faulted = 9,
    /// Faulted; a new incarnation starts after a back-off delay.
    Restarting = 10,
    /// Stopped for good after a crash loop; its clients get errors.
    Halted = 11,
}

impl TaskState {
    pub fn from_raw(raw: u8) -> Option<Self> {
        use TaskState::*;
        Some(match raw {
            0 => Free,
            1 => Dormant,
            2 => Ready,
            3 => Sending,
            4 => Receiving,
            5 => Calling,
            6 => Waiting,
            7 => Joining,
            8 => Exited,
            9 => Faulted,
            10 => Restarting,
            11 => Halted,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use TaskState::*;
        match self {
            Free => "free",
            Dormant => "dormant",
            Ready => "ready",
            Sending => "send",
            Receiving => "recv",
            Calling => "call",
            Waiting => "wait",
            Joining => "join",
            Exited => "exited",
            Faulted => "faulted",
            Restarting => "restart",
            Halted => "halted",
        }
    }

    /// Whether the task has stopped for good (until restarted).
    pub fn is_stopped(self) -> bool {
        matches!(self, TaskState::Exited | TaskState::Faulted | TaskState::Restarting | TaskState::Halted)
    }
}

/// What `task_info` reports about one task.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct TaskInfo {
    pub name: [u8; NAME_LEN],
    pub index: u32,
    pub generation: u32,
    pub restarts: u32,
    /// A [`TaskState`] as `u8`.
    pub state: u8,
    pub priority: u8,
    /// [`TASK_PAUSED`](crate::TASK_PAUSED) if the task is paused (`task_pause`).
    pub flags: u8,
    pub _pad: u8,
    /// Exit code, or the exception vector of a fault.
    pub exit_code: u64,
    /// Syscalls made by this task.
    pub syscalls: u64,
    /// Timer ticks this task was running.
    pub ticks: u64,
    /// TSC ticks (instructions under QEMU `-icount shift=0`) from the last fault of this task
    /// to its next incarnation's first `recv`: its last recovery time. 0 if it never recovered.
    pub recovery_tsc: u64,
    /// TSC ticks this task has run while CPU accounting was on (`Sysno::Accounting`), all
    /// incarnations, the kernel's work for it included (its syscalls, and interrupts that came
    /// while it ran).
    pub cpu_tsc: u64,
    /// `cpu_tsc` and what servers ran while serving this task's calls: a server holding its
    /// implicit reply, and servers that one calls in turn. Not what a server runs after it
    /// answers, or for a request whose reply it saved to answer later. A benchmark that calls
    /// a server reads its own `billed_tsc` to count the operation's instructions, whoever
    /// else the servers serve meanwhile.
    pub billed_tsc: u64,
    /// The version its image declares (`userlib::version!`; 0 if none).
    pub version: u32,
    /// Within an update's rollback window ([`TASK_UPDATING`](crate::TASK_UPDATING)): the
    /// requests still to answer before the update is kept.
    pub window_left: u32,
    /// The 4 KiB frames the task's address space owns: its pages (image, stacks, heap, IPC
    /// buffer, what it mapped) and its page tables, all freed when it dies. Not the frames it
    /// only borrows (an SSR mapped while a client's request runs, device memory). Counted only
    /// when `task_info` is asked to (a walk of the task's page tables, which `ps` and the
    /// loops that poll a task's state need not pay for); 0 otherwise.
    pub frames: u32,
    /// The machine's free frames when the call was made: the same for every task, so that
    /// one query shows what the tasks hold against what is left (`mem`).
    pub free_frames: u32,
}

impl TaskInfo {
    pub fn name(&self) -> &str {
        str_from_padded(&self.name)
    }
    pub fn state(&self) -> Option<TaskState> {
        TaskState::from_raw(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pad_and_cut() {
        let p: [u8; 4] = padded("ab");
        assert_eq!(p, [b'a', b'b', 0, 0]);
        let p: [u8; 4] = padded("abcdef");
        assert_eq!(str_from_padded(&p), "abcd");
        assert_eq!(str_from_padded(&[0xff, 0]), "?");
    }

    #[test]
    fn boot_info_lookup_checks_kind_and_bounds() {
        let mut caps = [BootCap::EMPTY; BOOT_CAPS];
        caps[0] = BootCap { slot: 3, kind: CapType::Endpoint as u8, name: padded("console") };
        caps[1] = BootCap { slot: 4, kind: CapType::IoPort as u8, name: padded("console") };
        let info = BootInfo {
            magic: BOOT_INFO_MAGIC,
            task_index: 1,
            generation: 0,
            name: padded("shell"),
            cap_count: 9999,
            _pad: 0,
            boot_tsc: 0,
            tsc_per_ms: 1,
            caps,
        };
        assert_eq!(info.caps().len(), BOOT_CAPS);
        assert_eq!(info.find(CapType::Endpoint, "console"), Some(3));
        assert_eq!(info.find(CapType::IoPort, "console"), Some(4));
        assert_eq!(info.find(CapType::Memory, "console"), None);
        assert_eq!(info.name(), "shell");
    }

    #[test]
    fn states_round_trip() {
        for raw in 0..=11 {
            assert_eq!(TaskState::from_raw(raw).unwrap() as u8, raw);
        }
        assert_eq!(TaskState::from_raw(12), None);
    }
}

/// One fault of a supervised task, as `fault_next` reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FaultRecord {
    pub index: u32,
    /// The generation that faulted.
    pub generation: u32,
    /// A [`crate::FaultKind`] as `u32`.
    pub kind: u32,
    /// Exception vector (for `Exception`).
    pub vector: u32,
    pub error: u64,
    pub rip: u64,
    /// Faulting address (page faults).
    pub addr: u64,
    /// Kernel timer ticks at the fault.
    pub tick: u64,
    /// TSC at the fault.
    pub tsc: u64,
    /// Requests this incarnation answered before it faulted.
    pub answered: u64,
    /// Callers suspended until the new incarnation (their requests will be delivered again).
    pub suspended: u32,
    /// Callers that got `ServerFailed` (their request had already been delivered again once).
    pub failed: u32,
}
