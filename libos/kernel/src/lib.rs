//! The libos kernel: the only crate of the intralingual personality that contains `unsafe`.
//!
//! Everything runs in ring 0 in one address space. The kernel boots the machine, owns the page
//! tables, frames and heaps, runs tasks, carries messages between them and recovers from their
//! faults; cells (`libos/cells/*`) are ordinary safe Rust crates that use the API re-exported
//! here, and nothing else: every module is private.
//!
//! ```text
//!  modules, each using only those below it
//!  init                   boot, the token, the image's wiring (`entry!`), start
//!  control                privileged operations, behind `Privilege`
//!  trap                   the dispatcher every trap goes through; the panic handler
//!  input                  the console's input hook (COM1 bytes into a mailbox)
//!  lifecycle              spawn, fail, restart (now, after a back-off, held), kill, watchdog
//!  device                 PCI functions for driver cells: guard, DMA, BARs, INTx, quiesce
//!  inject  kept  chan     arming and striking faults; client-kept state; endpoints, mailboxes
//!  sched                  pick, switch, block, yield, sleep, ticks
//!  report                 fault reports, kernel panics, the Ctrl-T dump
//!  state                  the task table's data (`KERNEL`)
//!  mem  symbols  serial   frames, paging, MappedPages, heaps; the ELF symbol table; COM1 output
//!  sync  arch             critical sections; GDT/TSS, IDT and trap entry, PIC and PIT setup
//!                         (the rest of the x86 layer, boot trampoline included, is `lib/x86`)
//! ```
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
// The libos's only unsafe crate (its cells forbid unsafe code): memory, traps and tasks.
#![allow(unsafe_code)]

extern crate alloc;

mod arch;
mod audit;
mod chan;
mod control;
mod device;
mod init;
mod inject;
mod input;
mod kept;
mod lifecycle;
mod mem;
mod report;
mod sched;
mod serial;
mod state;
mod symbols;
mod sync;
mod trap;

// Tasks and what `ps` and `mem` show of them.
pub use lifecycle::{
    spawn, spawn_staged, stage, staged, wait_ready, ControlError, SpawnError, UpdateError, Updated,
};
pub use mem::recipes::sealed;
pub use mem::{usage as mem_usage, Usage as MemUsage};
pub use state::Version;
pub use state::{find_task, task_info, State as TaskState, TaskId, TaskInfo, MAX_TASKS};
// Channels, and state a client keeps for a server.
pub use chan::{mailbox, CheckedEndpoint, Endpoint, Full, Inbox, Receiver, ReplyError, Sender, Token};
pub use kept::{others as kept_by_others, Kept};
pub use state::CallError;
// Memory a cell owns by value, and the devices handed to cells.
pub use device::{Device, DeviceError, Region as DeviceRegion, MAX_DMA_PAGES};
pub use input::attach_input;
pub use mem::mapped::MapError;
pub use mem::MappedPages;
pub use serial::Serial;
// Time and scheduling.
pub use init::{booted, entry_tsc};
pub use sched::{idle_time, rdtsc, sleep_until, ticks, yield_now};
// The privilege token and what it opens; fault injection's vocabulary.
pub use audit::{declare, AuditError};
pub use control::{
    audit_requests, audit_start, audit_stop, inject, kill, pause, power_off, restart, set_quiet, update,
    without_preemption, Privilege,
};
pub use fault::InjectKind;
pub use inject::{armed, InjectError};
pub use state::{Record as AuditRecord, Region as AuditRegion, Report as AuditReport};
