//! The libos side of `campaign NAME COUNT [SEED]`: the `campaign` crate runs it; this plugs in
//! the console cell, the fs and timer cells, and the kernel's fault injector.

use crate::clients::{Clock, Files};
use crate::Wiring;
use cell_console::Console;
use cell_fs::Fs;
use cell_timer::Timer;
use core::fmt::Write;
use libos_kernel::{find_task, task_info, wait_ready, InjectKind, Privilege, TaskState, MAX_TASKS};

/// Run a campaign of `count` faults against task `name`; `interrupted` says whether Ctrl-C
/// was typed.
pub fn run(
    con: &Console,
    w: &Wiring,
    privilege: &Privilege,
    interrupted: &mut dyn FnMut() -> bool,
    (name, count, seed): (&str, u32, u64),
) -> campaign::Ended {
    campaign::run(&mut Shell { con, w, privilege, interrupted }, name, count, seed)
}

struct Shell<'a> {
    con: &'a Console,
    w: &'a Wiring,
    privilege: &'a Privilege,
    interrupted: &'a mut dyn FnMut() -> bool,
}

impl campaign::Console for Shell<'_> {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        let _ = writeln!(&*self.con, "{}", line);
    }
}

impl<'a> campaign::Shell for Shell<'a> {
    type Target = Target<'a>;
    type Files = Files;
    type Clock = Clock;

    fn target(&mut self, name: &str) -> Option<Target<'a>> {
        find_task(name).map(|index| Target { con: self.con, privilege: self.privilege, index })
    }

    fn files(&mut self) -> Option<Files> {
        Fs::connect(self.w.fs).ok().map(Files)
    }

    fn clock(&mut self) -> Option<Clock> {
        Some(Clock(Timer(self.w.timer)))
    }

    fn interrupted(&mut self) -> bool {
        (self.interrupted)()
    }
}

struct Target<'a> {
    con: &'a Console,
    privilege: &'a Privilege,
    index: usize,
}

impl campaign::Target for Target<'_> {
    type Kind = InjectKind;
    const KINDS: &'static [InjectKind] = &InjectKind::ALL;

    fn kind_name(kind: InjectKind) -> &'static str {
        kind.name()
    }

    /// The kernel prints its fault report straight to the serial line: what the campaign printed
    /// so far must be out first, or the report lands in the middle of a line.
    fn inject(&mut self, kind: InjectKind, seed: u64) -> Option<u64> {
        self.con.flush();
        libos_kernel::inject(self.privilege, self.index, kind, seed).ok()
    }

    fn status(&mut self) -> campaign::Status {
        task_info(self.index).map_or_else(Default::default, |t| campaign::Status {
            restarts: t.restarts,
            down: t.state.stopped(),
        })
    }

    fn wait_running(&mut self) -> bool {
        wait_ready(self.index).is_some()
            || !matches!(
                task_info(self.index).map(|t| t.state),
                Some(TaskState::Halted | TaskState::Dead) | None
            )
    }

    fn restarts_of_others(&mut self) -> u32 {
        (0..MAX_TASKS).filter(|&i| i != self.index).filter_map(task_info).map(|t| t.restarts).sum()
    }
}
