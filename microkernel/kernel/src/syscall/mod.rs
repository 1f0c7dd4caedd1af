//! Syscalls: every one is decoded into a typed argument value before anything changes, then
//! invoked (seL4's decode/invoke split).
//!
//! ```text
//!  rax, rdi rsi rdx r10 r8 r9 ──► Sysno ──► S::decode(&Kernel, ..) ──► S ──► s.invoke(&mut Kernel, ..)
//!                                            resolves capabilities,          acts; fails only
//!                                            checks rights, every argument,  where acting finds
//!                                            user buffers — no side effects  memory exhausted
//! ```
//! `decode` takes the kernel by shared reference, so the compiler itself enforces that a
//! syscall refused for a bad argument changed nothing. Nothing a task passes can make the
//! kernel panic. The dispatcher below is a table: one line per syscall.

mod audit;
mod cap;
mod hw;
mod ipc;
mod supervise;
mod task;

use crate::sched::Done;
use crate::state::Kernel;
use axolotl_abi::{CapType, Error, Rights, Sysno};
use axolotl_kcore::cap::Object;
use axolotl_kcore::queue::MAX_TASKS;

/// The six argument registers: `rdi rsi rdx r10 r8 r9`.
pub type Args = [u64; 6];

/// One syscall: its arguments, decoded and checked, and what it does with them.
trait Syscall: Sized {
    /// Resolve and check every argument; change nothing.
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error>;
    /// Act on the decoded arguments.
    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error>;
}

#[inline(always)]
fn run<S: Syscall>(k: &mut Kernel, cur: usize, a: &Args) -> Result<Done, Error> {
    S::decode(k, cur, a)?.invoke(k, cur)
}

/// Handle the syscall the running task `cur` just made: dispatch it, write its result into the
/// task's registers, and apply what it asks of the scheduler.
pub fn handle(k: &mut Kernel, cur: usize) {
    let c = &k.tasks[cur].ctx;
    let (nr, a) = (c.rax, [c.rdi, c.rsi, c.rdx, c.r10, c.r8, c.r9]);
    k.tasks[cur].syscalls += 1;
    k.tasks[cur].spin_ticks = 0;
    k.audit_syscall(cur);
    let result = match Sysno::from_raw(nr) {
        Some(s) => dispatch(k, cur, s, &a),
        None => Err(Error::InvalidSyscall),
    };
    let c = &mut k.tasks[cur].ctx;
    match result {
        Ok(Done::Value(v0, v1)) => {
            c.rax = 0;
            c.rdi = v0;
            c.rsi = v1;
        }
        Ok(Done::Delivered | Done::Blocked) => {}
        Ok(Done::Handoff(t)) => k.switch_to(t),
        Err(e) => c.rax = e as u64,
    }
}

fn dispatch(k: &mut Kernel, cur: usize, sys: Sysno, a: &Args) -> Result<Done, Error> {
    match sys {
        Sysno::Call => run::<ipc::Call>(k, cur, a),
        Sysno::ReplyRecv => run::<ipc::ReplyRecv>(k, cur, a),
        Sysno::Send => run::<ipc::Send>(k, cur, a),
        Sysno::Recv => run::<ipc::Recv>(k, cur, a),
        Sysno::SaveReply => run::<ipc::SaveReply>(k, cur, a),
        Sysno::Signal => run::<ipc::Signal>(k, cur, a),
        Sysno::Wait => run::<ipc::Wait>(k, cur, a),
        Sysno::BindNotification => run::<ipc::BindNotification>(k, cur, a),
        Sysno::IrqAck => run::<hw::IrqAck>(k, cur, a),
        Sysno::IoPortEnable => run::<hw::IoPortEnable>(k, cur, a),
        Sysno::CapCopy => run::<cap::CapCopy>(k, cur, a),
        Sysno::CapDelete => run::<cap::CapDelete>(k, cur, a),
        Sysno::CapRevoke => run::<cap::CapRevoke>(k, cur, a),
        Sysno::CapInfo => run::<cap::CapInfo>(k, cur, a),
        Sysno::MemMap => run::<hw::MemMap>(k, cur, a),
        Sysno::MemUnmap => run::<hw::MemUnmap>(k, cur, a),
        Sysno::TaskInfo => run::<task::TaskInfo>(k, cur, a),
        Sysno::TaskStart => run::<task::TaskStart>(k, cur, a),
        Sysno::TaskWait => run::<task::TaskWait>(k, cur, a),
        Sysno::Yield => run::<task::Yield>(k, cur, a),
        Sysno::Exit => run::<task::Exit>(k, cur, a),
        Sysno::Connect => run::<cap::Connect>(k, cur, a),
        Sysno::SsrRead => run::<cap::SsrRead>(k, cur, a),
        Sysno::TaskRestart => run::<task::TaskRestart>(k, cur, a),
        Sysno::Supervise => run::<supervise::Supervise>(k, cur, a),
        Sysno::FaultNext => run::<supervise::FaultNext>(k, cur, a),
        Sysno::Inject => run::<task::Inject>(k, cur, a),
        Sysno::Log => run::<supervise::Log>(k, cur, a),
        Sysno::TaskHold => run::<task::TaskHold>(k, cur, a),
        Sysno::TaskPause => run::<task::TaskPause>(k, cur, a),
        Sysno::TaskUpdate => run::<task::TaskUpdate>(k, cur, a),
        Sysno::PciRead => run::<hw::PciRead>(k, cur, a),
        Sysno::PciWrite => run::<hw::PciWrite>(k, cur, a),
        Sysno::PciMap => run::<hw::PciMap>(k, cur, a),
        Sysno::Accounting => run::<task::Accounting>(k, cur, a),
        Sysno::Audit => run::<audit::Audit>(k, cur, a),
        Sysno::Declare => run::<audit::Declare>(k, cur, a),
    }
}

// Decoding helpers: each resolves one capability argument, checking its type and rights.

fn endpoint(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<(u16, u64), Error> {
    let c = k.cspaces[cur].lookup(slot, CapType::Endpoint, rights)?;
    match c.object {
        Object::Endpoint(e) => Ok((e, c.badge)),
        _ => Err(Error::WrongType),
    }
}

fn notification(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<u16, Error> {
    match k.cspaces[cur].lookup(slot, CapType::Notification, rights)?.object {
        Object::Notification(n) => Ok(n),
        _ => Err(Error::WrongType),
    }
}

fn memory(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<usize, Error> {
    match k.cspaces[cur].lookup(slot, CapType::Memory, rights)?.object {
        Object::Memory(m) => Ok(m as usize),
        _ => Err(Error::WrongType),
    }
}

/// The task index a Task capability lets `cur` act on.
fn task_target(k: &Kernel, cur: usize, slot: u64, index: u64, rights: Rights) -> Result<usize, Error> {
    let c = k.cspaces[cur].lookup(slot, CapType::Task, rights)?;
    let index = usize::try_from(index).ok().filter(|&i| i < MAX_TASKS).ok_or(Error::InvalidArgument)?;
    match c.object {
        Object::Task(None) => Ok(index),
        Object::Task(Some(id)) if id.index as usize == index => {
            k.resolve(id).ok_or(Error::Dead)?;
            Ok(index)
        }
        _ => Err(Error::NoRights),
    }
}

/// A task other than the caller, for the operations a task may not do to itself.
fn other_task(k: &Kernel, cur: usize, slot: u64, index: u64, rights: Rights) -> Result<usize, Error> {
    let t = task_target(k, cur, slot, index, rights)?;
    if t == cur {
        return Err(Error::WouldDeadlock);
    }
    Ok(t)
}

/// A yes/no argument: 0 or 1, anything else `InvalidArgument`.
fn flag(arg: u64) -> Result<bool, Error> {
    match arg {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::InvalidArgument),
    }
}

/// Check that `slot` holds a Task capability over all tasks: the supervisor's credential.
fn supervisor_cap(k: &Kernel, cur: usize, slot: u64) -> Result<(), Error> {
    match k.cspaces[cur].lookup(slot, CapType::Task, Rights::READ.union(Rights::WRITE))?.object {
        Object::Task(None) => Ok(()),
        _ => Err(Error::NoRights),
    }
}
