//! The state-spill audit's syscalls: `audit` (the shell's: start, stop, read the report) and
//! `declare` (a server's: this range of my memory is server-global state, meant to change).

use super::{other_task, task_target, Args, Syscall};
use crate::paging::UserSlice;
use crate::sched::Done;
use crate::state::{Declared, Kernel};
use axolotl_abi::{
    AuditOp, AuditRecord, AuditSummary, Error, Rights, TaskState, DECLARED_NAME_LEN, USER_BASE,
    USER_STACK_TOP,
};

/// `audit(task, index, op, n, out)`.
pub enum Audit {
    Start(usize),
    Stop,
    Summary(UserSlice),
    Record(usize, UserSlice),
}

impl Syscall for Audit {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let op = AuditOp::from_raw(a[2]).ok_or(Error::InvalidArgument)?;
        let last = k.audit.target.index as usize;
        let space = k.tasks[cur].space();
        match op {
            AuditOp::Start => {
                let t = other_task(k, cur, a[0], a[1], Rights::WRITE)?;
                match k.tasks[t].state {
                    TaskState::Free => return Err(Error::Dead),
                    s if s.is_stopped() || s == TaskState::Dormant => return Err(Error::Dead),
                    _ => {}
                }
                if k.served_endpoints::<1>(t).is_empty() {
                    return Err(Error::NotAServer);
                }
                if k.audit.active {
                    return Err(Error::Busy);
                }
                Ok(Audit::Start(t))
            }
            AuditOp::Stop => {
                let t = task_target(k, cur, a[0], a[1], Rights::WRITE)?;
                if !k.audit.active {
                    return Err(Error::AlreadyDone);
                }
                if t != last {
                    return Err(Error::InvalidArgument);
                }
                Ok(Audit::Stop)
            }
            AuditOp::Summary => {
                if task_target(k, cur, a[0], a[1], Rights::READ)? != last {
                    return Err(Error::InvalidArgument);
                }
                Ok(Audit::Summary(space.user_slice(a[4], size_of::<AuditSummary>() as u64, true)?))
            }
            AuditOp::Record => {
                if task_target(k, cur, a[0], a[1], Rights::READ)? != last {
                    return Err(Error::InvalidArgument);
                }
                let n = usize::try_from(a[3]).map_err(|_| Error::InvalidArgument)?;
                Ok(Audit::Record(n, space.user_slice(a[4], size_of::<AuditRecord>() as u64, true)?))
            }
        }
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        match self {
            Audit::Start(t) => k.audit_start(t).map(|pages| Done::Value(pages, 0)),
            Audit::Stop => k.audit_stop().map(|()| Done::Value(0, 0)),
            Audit::Summary(out) => {
                let s = k.audit_summary();
                k.tasks[cur].space().write_user(out, bytemuck::bytes_of(&s))?;
                Ok(Done::Value(0, 0))
            }
            Audit::Record(n, out) => {
                let r = k.audit_entry(n).ok_or(Error::Dead)?;
                k.tasks[cur].space().write_user(out, bytemuck::bytes_of(&r))?;
                Ok(Done::Value(0, 0))
            }
        }
    }
}

/// `declare(addr, len, name, name_len)`.
pub struct Declare(Declared);

impl Syscall for Declare {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let (addr, len) = (a[0], a[1]);
        if len == 0 {
            return Err(Error::InvalidArgument);
        }
        let end = addr.checked_add(len).ok_or(Error::BadAddress)?;
        // Its own image's writable pages or its stack: nothing above the stack (IPC buffer,
        // SSR window, memory objects) is private memory.
        if addr < USER_BASE || end > USER_STACK_TOP {
            return Err(Error::BadAddress);
        }
        let space = k.tasks[cur].space();
        space.check(addr, len, true)?;
        if a[3] > DECLARED_NAME_LEN as u64 {
            return Err(Error::TooLong);
        }
        let mut name = [0u8; DECLARED_NAME_LEN];
        space.copy_from_user(a[2], &mut name[..a[3] as usize])?;
        core::str::from_utf8(&name[..a[3] as usize]).map_err(|_| Error::InvalidArgument)?;
        if k.declared[cur].iter().all(|d| d.len > 0) {
            return Err(Error::OutOfResources);
        }
        Ok(Declare(Declared { addr, len, name }))
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let slot = k.declared[cur].iter_mut().find(|d| d.len == 0).ok_or(Error::OutOfResources)?;
        *slot = self.0;
        Ok(Done::Value(0, 0))
    }
}
