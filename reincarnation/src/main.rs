//! The reincarnation server: keeps the system's servers alive.
//!
//! The kernel records every fault of a task the manifest marks `supervised` — CPU exceptions,
//! panics, exits, hangs (a task that runs 1 s of CPU time without a syscall) and kills — stops
//! the task, suspends the callers whose requests it held (they will be delivered again), and
//! signals this server. For each fault it decides:
//!
//! ```text
//!  fault of S gen g ──► S answered a request since its last restart? ── yes ──► run = 1
//!                                                                      no  ──► run += 1
//!        run <= 4 ──► restart S (gen g+1) behind the same endpoint: at once for the first
//!                     fault, then after 50, 100, 200 ms
//!        run  = 5 ──► crash loop: hold S; its callers get ServerFailed, all else runs
//! ```
//! That rule is `fault::recovery::CrashLoop`, which the libos kernel follows too.
//!
//! Its reports go to the kernel log, not to the console server, which may be the one that is
//! down. Its own fault is handled by the kernel (which restarts it directly); the fault
//! records it had not yet taken wait in the kernel for the next incarnation. What it keeps in
//! memory (the fault runs) is only policy history, rebuilt from scratch after a restart.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt::Write;
use fault::recovery::{CrashLoop, Decision, Verdict};
use userlib::abi::{BootInfo, Error, FaultKind, FaultRecord};
use userlib::cap::{Cap, Notification, Task};

const MAX_TASKS: usize = 32;

struct Supervisor {
    tasks: Cap<Task>,
    /// Each task's recent faults: the policy history, rebuilt from nothing after a restart.
    loops: [CrashLoop; MAX_TASKS],
}

impl Supervisor {
    fn log(&self, args: core::fmt::Arguments<'_>) {
        let mut line: heapless::String<160> = heapless::String::new();
        let _ = line.write_fmt(args);
        let _ = self.tasks.log(&line);
    }

    fn handle(&mut self, f: &FaultRecord) {
        let i = f.index as usize;
        let info = self.tasks.info(i);
        let name = info.as_ref().map(|t| t.name()).unwrap_or("?");
        let mut what: heapless::String<64> = heapless::String::new();
        let _ = match FaultKind::from_raw(f.kind) {
            Some(FaultKind::Exception) => {
                write!(what, "{} at {:#x}", x86::exception::name(f.vector as u64), f.rip)
            }
            Some(FaultKind::Exited) => write!(what, "exited (code {})", f.error as i64),
            Some(k) => write!(what, "{}", k.name()),
            None => write!(what, "unknown fault"),
        };
        let Some(history) = self.loops.get_mut(i) else { return };
        let verdict = history.fault(f.answered > 0);
        let decision = Decision {
            server: name,
            generation: f.generation,
            what: what.as_str(),
            verdict,
            suspended: f.suspended,
            failed: f.failed,
        };
        match verdict {
            Verdict::Hold { .. } => {
                self.log(format_args!("{}", decision));
                if let Err(e) = self.tasks.hold(i) {
                    self.log(format_args!("cannot hold {}: {}", name, e));
                }
            }
            Verdict::Restart { delay_ms, .. } => match self.tasks.restart_after(i, delay_ms) {
                Ok(_) => self.log(format_args!("{}", decision)),
                Err(e) => self.log(format_args!("cannot restart {}: {}", name, e)),
            },
        }
    }
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let tasks = Cap::<Task>::from_boot(boot, "all").ok_or(Error::EmptySlot)?;
    let faults = Cap::<Notification>::from_boot(boot, "faults").ok_or(Error::EmptySlot)?;
    let dropped = tasks.supervise(faults)?;
    let mut rs = Supervisor { tasks, loops: [CrashLoop::new(); MAX_TASKS] };
    if boot.generation == 0 {
        rs.log(format_args!("supervising; faults of supervised tasks come here"));
    } else {
        rs.log(format_args!(
            "generation {} supervising again ({} fault records were lost)",
            boot.generation, dropped
        ));
    }
    loop {
        while let Some(f) = rs.tasks.next_fault() {
            rs.handle(&f);
        }
        faults.wait()?;
    }
}
