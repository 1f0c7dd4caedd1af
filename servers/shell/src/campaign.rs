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

/// The servers a campaign uses, and how it hears of Ctrl-C.
pub struct Wiring<'a> {
    pub tasks: Cap<Task>,
    pub fs: Option<Cap<Endpoint>>,
    pub timer: Option<Cap<Endpoint>>,
    pub interrupted: &'a mut dyn FnMut() -> bool,
}

/// Run a campaign of `count` faults against task `name`.
pub fn run(w: Wiring<'_>, name: &str, count: u32, seed: u64) -> campaign::Ended {
    let ended = campaign::run(&mut Shell(w), name, count, seed);
    let _ = (cap_delete(FS_SLOT), cap_delete(TIMER_SLOT));
    ended
}

struct Shell<'a>(Wiring<'a>);

impl campaign::Console for Shell<'_> {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        println!("{}", line);
    }
}

impl campaign::Shell for Shell<'_> {
    type Target = Target;
    type Files = Files;
    type Clock = Clock;

    fn target(&mut self, name: &str) -> Option<Target> {
        self.0.tasks.find(name).map(|index| Target { tasks: self.0.tasks, index })
    }

    fn files(&mut self) -> Option<Files> {
        self.0.fs.and_then(|ep| Fs::connect(ep, FS_SLOT).ok()).map(Files)
    }

    fn clock(&mut self) -> Option<Clock> {
        self.0.timer.and_then(|ep| Timer::connect(ep, TIMER_SLOT).ok()).map(Clock)
    }

    fn interrupted(&mut self) -> bool {
        (self.0.interrupted)()
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
