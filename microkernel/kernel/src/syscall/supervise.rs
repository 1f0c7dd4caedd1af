//! The supervisor's syscalls: `supervise` (become the supervisor), `fault_next` (take the
//! oldest fault record), `log` (a line on the kernel's log). Each needs a Task capability over
//! all tasks.

use super::{notification, supervisor_cap, Args, Syscall};
use crate::paging::UserSlice;
use crate::sched::Done;
use crate::state::Kernel;
use axolotl_abi::{Error, FaultRecord, Rights};

/// `supervise(task_all, ntfn)`: faults of supervised tasks are recorded and `ntfn` signalled.
/// Returns how many records were dropped before (the ring was full).
pub struct Supervise(u16);

impl Syscall for Supervise {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        supervisor_cap(k, cur, a[0])?;
        notification(k, cur, a[1], Rights::WRITE).map(Supervise)
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        k.supervisor = Some(self.0);
        // Faults recorded while no supervisor listened are waiting.
        if !k.faults.is_empty() {
            k.signal(self.0, 1);
        }
        Ok(Done::Value(k.faults.dropped, 0))
    }
}

/// `fault_next(task_all, out)`: the oldest fault record, at user address `out`; `Dead` when
/// there is none. Returns how many remain.
pub struct FaultNext(UserSlice);

impl Syscall for FaultNext {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        supervisor_cap(k, cur, a[0])?;
        if k.faults.is_empty() {
            return Err(Error::Dead);
        }
        k.tasks[cur].space().user_slice(a[1], size_of::<FaultRecord>() as u64, true).map(FaultNext)
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let record = k.faults.pop().ok_or(Error::Dead)?;
        k.tasks[cur].space().write_user(self.0, bytemuck::bytes_of(&record))?;
        Ok(Done::Value(k.faults.len() as u64, 0))
    }
}

/// `log(task_all, text, len)`: a line on the kernel's log, for the supervisor, which must not
/// depend on the console server it may have to restart. Text that is not UTF-8 is refused
/// before anything is printed.
pub struct Log(UserSlice);

impl Syscall for Log {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        supervisor_cap(k, cur, a[0])?;
        k.tasks[cur].space().user_slice(a[1], a[2].min(LOG_MAX as u64), false).map(Log)
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let mut buf = [0u8; LOG_MAX];
        k.tasks[cur].space().read_user(self.0, &mut buf)?;
        let text = core::str::from_utf8(&buf[..self.0.len()]).map_err(|_| Error::InvalidArgument)?;
        crate::log::print(format_args!("[{}] {}\n", k.tasks[cur].name(), text.trim_end()));
        Ok(Done::Value(0, 0))
    }
}

/// The longest line `log` prints.
const LOG_MAX: usize = 160;
