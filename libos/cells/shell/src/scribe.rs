//! The libos's scribe task: `campaign::scribe`, the background client the microkernel runs too,
//! with its own fs session (which it holds itself, as every libos client does) and timer.

use crate::clients::{Clock, Files};
use cell_console::Console;
use cell_fs::Fs;
use cell_timer::Timer;
use core::fmt::Write;

/// Lines go to the console cell.
struct Out<'a>(&'a Console);

impl campaign::Console for Out<'_> {
    fn println(&mut self, line: core::fmt::Arguments<'_>) {
        let _ = writeln!(self.0, "{}", line);
    }
}

/// Spawn the scribe, supervised (a fault restarts it with a fresh session). Priority 5, the
/// shell's and the servers': the libos scheduler has strict priorities and round robin within
/// one, so a lower priority would starve it whenever the shell computes (a campaign); at the
/// same one it takes its turn, a step of a few fs calls every 300 ms.
pub fn start(console: Console, fs: cell_fs::Ep, timer: cell_timer::Ep) -> Option<()> {
    libos_kernel::spawn("scribe", 5, true, move || {
        let mut out = Out(&console);
        let Ok(files) = Fs::connect(fs) else {
            campaign::Console::println(&mut out, format_args!("\n[scribe] ERROR: no fs session"));
            return;
        };
        campaign::scribe::run(Files(files), Clock(Timer(timer)), &mut out)
    })
    .ok()
    .map(|_| ())
}
