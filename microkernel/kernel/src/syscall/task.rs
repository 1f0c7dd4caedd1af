//! The task syscalls: `task_info`, `task_start`, `task_wait`, `yield`, `exit`, `accounting`, and
//! the ones a supervisor or the shell uses on other tasks: `task_restart`, `task_hold`, `inject`.

use super::{other_task, task_target, Args, Syscall};
use crate::paging::UserSlice;
use crate::sched::Done;
use crate::state::{ms_to_ticks, Blocked, Kernel};
use axolotl_abi::{Error, FaultKind, InjectKind, Rights, TaskState, EXIT_PANIC};
use axolotl_kcore::cap::Object;

/// `task_info(task, index, out, count_frames)`: a `TaskInfo` at user address `out`, its
/// `frames` counted if asked.
pub struct TaskInfo {
    t: usize,
    out: UserSlice,
    count_frames: bool,
}

impl Syscall for TaskInfo {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = task_target(k, cur, a[0], a[1], Rights::READ)?;
        let out = k.tasks[cur].space().user_slice(a[2], size_of::<axolotl_abi::TaskInfo>() as u64, true)?;
        let count_frames = super::flag(a[3])?;
        Ok(TaskInfo { t, out, count_frames })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let task = &k.tasks[self.t];
        let info = axolotl_abi::TaskInfo {
            name: task.name,
            index: self.t as u32,
            generation: task.id.generation,
            restarts: task.restarts,
            state: task.state as u8,
            priority: task.priority,
            flags: if task.paused { axolotl_abi::TASK_PAUSED } else { 0 }
                | if k.updates[self.t].is_some() { axolotl_abi::TASK_UPDATING } else { 0 },
            _pad: 0,
            exit_code: task.exit_code,
            syscalls: task.syscalls,
            ticks: task.ticks,
            recovery_tsc: task.recovery_tsc,
            cpu_tsc: task.cpu_tsc,
            billed_tsc: task.billed_tsc,
            version: k.module_of(self.t).map_or(0, |m| m.version),
            window_left: crate::lifecycle::window_left(k, self.t),
            frames: match &task.space {
                Some(s) if self.count_frames => s.owned_frames() as u32,
                _ => 0,
            },
            free_frames: k.frames.free_count() as u32,
        };
        k.tasks[cur].space().write_user(self.out, bytemuck::bytes_of(&info))?;
        Ok(Done::Value(0, 0))
    }
}

/// `accounting(task_all, on, quiet, keep)`: CPU accounting on or off, maybe with every
/// interrupt line closed but task `keep`'s; the TSC ticks charged to idle.
pub struct Accounting {
    on: bool,
    /// Quiet from now with these lines left open (`Some(Some)`), or not (`Some(None)`), or as
    /// it was (`None`).
    quiet: Option<Option<u16>>,
}

impl Syscall for Accounting {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        super::supervisor_cap(k, cur, a[0])?;
        let on = super::flag(a[1])?;
        let quiet = match a[2] {
            0 => None,
            2 => Some(None),
            1 if on => {
                let keep = k.tasks.get(a[3] as usize).ok_or(Error::InvalidArgument)?;
                if keep.state == TaskState::Free {
                    return Err(Error::Dead);
                }
                let lines = k.cspaces[a[3] as usize].iter().filter_map(|(_, c)| match c.object {
                    Object::Interrupt(line) => Some(1u16 << line),
                    _ => None,
                });
                Some(Some(lines.fold(0, |a, b| a | b)))
            }
            _ => return Err(Error::InvalidArgument),
        };
        Ok(Accounting { on, quiet })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        k.set_accounting(self.on, cur);
        if let Some(quiet) = self.quiet {
            k.set_quiet(quiet);
        }
        Ok(Done::Value(k.idle_tsc, 0))
    }
}

/// `task_start(task, index)`: start a task the manifest loaded dormant.
pub struct TaskStart(usize);

impl Syscall for TaskStart {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = task_target(k, cur, a[0], a[1], Rights::WRITE)?;
        match k.tasks[t].state {
            TaskState::Dormant => Ok(TaskStart(t)),
            TaskState::Free => Err(Error::Dead),
            _ => Err(Error::AlreadyDone),
        }
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        k.make_ready(self.0);
        Ok(Done::Value(0, 0))
    }
}

/// `task_wait(task, index)`: block until that task has stopped; its exit code and state.
pub struct TaskWait(usize);

impl Syscall for TaskWait {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = other_task(k, cur, a[0], a[1], Rights::READ)?;
        if k.tasks[t].state == TaskState::Free {
            return Err(Error::Dead);
        }
        Ok(TaskWait(t))
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let target = &k.tasks[self.0];
        if target.state.is_stopped() {
            return Ok(Done::Value(target.exit_code, target.state as u64));
        }
        k.tasks[cur].state = TaskState::Joining;
        k.tasks[cur].blocked = Blocked::Task(self.0 as u16);
        Ok(Done::Blocked)
    }
}

/// `yield()`: let a ready task of the same priority run first.
pub struct Yield;

impl Syscall for Yield {
    fn decode(_k: &Kernel, _cur: usize, _a: &Args) -> Result<Self, Error> {
        Ok(Yield)
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let prio = k.tasks[cur].priority;
        if k.run.top_priority().is_some_and(|top| top >= prio) {
            k.run.enqueue(&mut k.links, cur, prio);
        }
        Ok(Done::Value(0, 0))
    }
}

/// `exit(code, msg, len)`: end this task, with a message for the report; `EXIT_PANIC` is how a
/// task's panic handler reports the panic.
pub struct Exit {
    code: u64,
    /// The message, or `None` if its address is bad: that does not keep a task from exiting,
    /// the report says so instead.
    msg: Option<UserSlice>,
}

impl Syscall for Exit {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let msg = k.tasks[cur].space().user_slice(a[1], a[2].min(200), false).ok();
        Ok(Exit { code: a[0], msg })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let mut buf = [0u8; 200];
        let msg = match self.msg {
            Some(m) => match k.tasks[cur].space().read_user(m, &mut buf) {
                Ok(()) => core::str::from_utf8(&buf[..m.len()]).unwrap_or("(message is not UTF-8)"),
                Err(_) => "(message at a bad address)",
            },
            None => "(message at a bad address)",
        };
        if self.code == EXIT_PANIC {
            crate::report::panicked(k, cur, msg);
            return Ok(Done::Blocked);
        }
        if self.code != 0 || !msg.is_empty() {
            crate::kprintln!(
                "{} exited with code {}{}{}",
                k.tasks[cur].name(),
                self.code as i64,
                if msg.is_empty() { "" } else { ": " },
                msg
            );
        }
        if k.tasks[cur].supervised {
            crate::lifecycle::task_failed(k, cur, FaultKind::Exited, 0, self.code, 0);
        } else {
            crate::lifecycle::stop_task(k, cur, TaskState::Exited, self.code, false);
        }
        Ok(Done::Blocked)
    }
}

/// `task_restart(task, index, delay_ms)`: a new incarnation, now or after `delay_ms` (at most
/// 10 s: how the supervisor backs off).
pub struct TaskRestart {
    t: usize,
    /// In timer ticks.
    delay: u64,
}

impl Syscall for TaskRestart {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = other_task(k, cur, a[0], a[1], Rights::WRITE)?;
        match k.tasks[t].state {
            TaskState::Free => Err(Error::Dead),
            TaskState::Dormant => Err(Error::AlreadyDone),
            _ => Ok(TaskRestart { t, delay: ms_to_ticks(a[2].min(10_000)) }),
        }
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        let generation = crate::lifecycle::restart_task(k, self.t, self.delay).map_err(|e| match e {
            crate::loader::LoadError::Kernel(e) => e,
            _ => Error::Dead,
        })?;
        Ok(Done::Value(generation as u64, 0))
    }
}

/// `task_hold(task, index)`: stop a task for good after a crash loop.
pub struct TaskHold(usize);

impl Syscall for TaskHold {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = other_task(k, cur, a[0], a[1], Rights::WRITE)?;
        if matches!(k.tasks[t].state, TaskState::Free | TaskState::Dormant) {
            return Err(Error::Dead);
        }
        Ok(TaskHold(t))
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        crate::lifecycle::hold_task(k, self.0);
        Ok(Done::Value(0, 0))
    }
}

/// `task_pause(task, index, on)`: stop scheduling another task, or start again.
pub struct TaskPause {
    t: usize,
    on: bool,
}

impl Syscall for TaskPause {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = other_task(k, cur, a[0], a[1], Rights::WRITE)?;
        let on = super::flag(a[2])?;
        if k.tasks[t].state == TaskState::Free {
            return Err(Error::Dead);
        }
        Ok(TaskPause { t, on })
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        crate::lifecycle::set_paused(k, self.t, self.on);
        Ok(Done::Value(0, 0))
    }
}

/// `inject(task, index, kind, seed)`: a fault from outside the task.
pub struct Inject {
    t: usize,
    kind: InjectKind,
    seed: u64,
}

impl Syscall for Inject {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = other_task(k, cur, a[0], a[1], Rights::WRITE)?;
        let kind = InjectKind::from_raw(a[2]).ok_or(Error::InvalidArgument)?;
        match k.tasks[t].state {
            TaskState::Free => Err(Error::Dead),
            // Killing an incarnation that has not started yet still counts as its failure.
            TaskState::Restarting if kind == InjectKind::Kill => Ok(Inject { t, kind, seed: a[3] }),
            s if s.is_stopped() || s == TaskState::Dormant => Err(Error::AlreadyDone),
            _ => Ok(Inject { t, kind, seed: a[3] }),
        }
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        let what = crate::inject::inject(k, self.t, self.kind, self.seed)?;
        Ok(Done::Value(what, 0))
    }
}

/// `task_update(task, index, memory, len, window)`: a new version of a server from the ELF image
/// in a Memory object (see `Sysno::TaskUpdate`).
pub struct TaskUpdate {
    t: usize,
    memory: usize,
    len: usize,
    window: u32,
}

/// The largest image `task_update` takes.
const UPDATE_MAX: u64 = 1 << 20;
/// The longest rollback window, in requests.
const WINDOW_MAX: u64 = 1000;

impl Syscall for TaskUpdate {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let t = other_task(k, cur, a[0], a[1], Rights::WRITE)?;
        let memory = super::memory(k, cur, a[2], Rights::READ)?;
        let pages = k.memory[memory].pages as u64;
        if a[3] == 0
            || a[3] > (pages * axolotl_abi::PAGE_SIZE).min(UPDATE_MAX)
            || a[4] == 0
            || a[4] > WINDOW_MAX
        {
            return Err(Error::InvalidArgument);
        }
        if !k.tasks[t].supervised {
            // Nobody would restart it after a failure outside the window.
            return Err(Error::NoRights);
        }
        // Before the image is copied: a shell retrying while the server is busy copies nothing.
        // (`update_task` checks again; nothing runs between the two.)
        if !crate::lifecycle::may_update(k, t) {
            return Err(Error::Busy);
        }
        Ok(TaskUpdate { t, memory, len: a[3] as usize, window: a[4] as u32 })
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        use crate::lifecycle::Refused;
        let page = axolotl_abi::PAGE_SIZE as usize;
        let pages = self.len.div_ceil(page);
        // The image, copied into a run of frames of its own: the module the new version is
        // built from (and rebuilt from at each of its restarts).
        let base = k.frames.contiguous_zeroed(pages)?;
        let list = k.memory[self.memory].page_list;
        for p in 0..pages {
            let n = (self.len - p * page).min(page);
            // SAFETY: the Memory object's page list holds `pages >= p` frame addresses (checked
            // against its size in `decode`); its frames and the run are the kernel's, identity
            // mapped, and do not overlap.
            unsafe {
                let from = (list as *const u64).add(p).read();
                core::ptr::copy_nonoverlapping(from as *const u8, (base as usize + p * page) as *mut u8, n);
            }
        }
        match crate::lifecycle::update_task(k, self.t, base, self.len, self.window) {
            Ok(generation) => Ok(Done::Value(generation as u64, 0)),
            Err(Refused::Busy) => Err(Error::Busy),
            Err(Refused::Incompatible { session, kind, version }) => {
                crate::kprintln!(
                    "update of {} refused: session {} holds state of kind {:#x}, layout {}, which the new version does not read",
                    k.tasks[self.t].name(),
                    session,
                    kind,
                    version
                );
                Err(Error::Incompatible)
            }
            Err(Refused::OtherServer) => {
                crate::kprintln!(
                    "update of {} refused: the image is another server's",
                    k.tasks[self.t].name()
                );
                Err(Error::Incompatible)
            }
            Err(Refused::BadImage) => Err(Error::BadImage),
            Err(Refused::NoMemory) => Err(Error::OutOfResources),
        }
    }
}
