//! The microkernel side of `campaign NAME COUNT [SEED]`: the `campaign` crate runs it; this
//! plugs in the console, the fs and timer servers over IPC, and fault injection through the
//! shell's Task capability.

use crate::clients::{Clock, Files};
use console_api::println;
use fs_api::Fs;
use timer_api::Timer;
use userlib::abi::{InjectKind, TaskState};
use userlib::cap::{cap_delete, Cap, Endpoint, Task};

/// Where the campaign's sessions live while it runs.
const FS_SLOT: u8 = 43;
const TIMER_SLOT: u8 = 44;
/// Tasks the kernel's table can hold.
const TASKS: usize = 32;

/// Run a campaign of `count` faults against task `name`. Returns false if it could not run.
pub fn run(
    tasks: Cap<Task>,
    fs: Option<Cap<Endpoint>>,
    timer: Option<Cap<Endpoint>>,
    name: &str,
    count: u32,
    seed: u64,
) -> bool {
    let ran = campaign::run(&mut Shell { tasks, fs, timer }, name, count, seed);
    let _ = (cap_delete(FS_SLOT), cap_delete(TIMER_SLOT));
    ran
}

struct Shell {
    tasks: Cap<Task>,
    fs: Option<Cap<Endpoint>>,
    timer: Option<Cap<Endpoint>>,
}

impl campaign::Console for Shell {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        println!("{}", line);
    }
}

impl campaign::Shell for Shell {
    type Target = Target;
    type Files = Files;
    type Clock = Clock;

    fn target(&mut self, name: &str) -> Option<Target> {
        self.tasks.find(name).map(|index| Target { tasks: self.tasks, index })
    }

    fn files(&mut self) -> Option<Files> {
        self.fs.and_then(|ep| Fs::connect(ep, FS_SLOT).ok()).map(Files)
    }

    fn clock(&mut self) -> Option<Clock> {
        self.timer.and_then(|ep| Timer::connect(ep, TIMER_SLOT).ok()).map(Clock)
    }
}

struct Target {
    tasks: Cap<Task>,
    index: usize,
}

impl campaign::Target for Target {
    type Kind = InjectKind;
    const KINDS: &'static [InjectKind] = &InjectKind::ALL;

    fn kind_name(kind: InjectKind) -> &'static str {
        kind.name()
    }

    fn inject(&mut self, kind: InjectKind, seed: u64) -> Option<u64> {
        self.tasks.inject(self.index, kind, seed).ok()
    }

    fn status(&mut self) -> campaign::Status {
        let info = self.tasks.info(self.index).ok();
        info.map_or_else(Default::default, |t| campaign::Status {
            restarts: t.restarts,
            down: t.state().is_some_and(TaskState::is_stopped),
        })
    }

    /// Restarts happen on timer ticks: yield until then (a bounded wait, in case none comes).
    fn wait_running(&mut self) -> bool {
        for _ in 0..5_000_000u32 {
            match self.tasks.info(self.index).ok().and_then(|t| t.state()) {
                Some(TaskState::Halted) | None => return false,
                Some(s) if !s.is_stopped() => return true,
                _ => userlib::sys::yield_now(),
            }
        }
        false
    }

    fn restarts_of_others(&mut self) -> u32 {
        let others = (0..TASKS).filter(|&i| i != self.index);
        others.filter_map(|i| self.tasks.info(i).ok()).map(|t| t.restarts).sum()
    }
}
