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
//!        run <= LOOP_LIMIT ──► restart S (gen g+1) behind the same endpoint after
//!                              BACKOFF_TICKS * 2^(run-2) ticks (at once for the first fault)
//!        run >  LOOP_LIMIT ──► crash loop: hold S; its callers get ServerFailed, all else runs
//! ```
//!
//! Its reports go to the kernel log, not to the console server, which may be the one that is
//! down. Its own fault is handled by the kernel (which restarts it directly); the fault
//! records it had not yet taken wait in the kernel for the next incarnation. What it keeps in
//! memory (the fault runs) is only policy history, rebuilt from scratch after a restart.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt::Write;
use userlib::abi::{BootInfo, Error, FaultKind, FaultRecord};
use userlib::cap::{Cap, Notification, Task};

userlib::entry!(main);

/// Consecutive faults without a single answered request that make a crash loop.
const LOOP_LIMIT: u32 = 4;
/// Back-off unit, in 10 ms timer ticks.
const BACKOFF_TICKS: u64 = 5;
const MAX_TASKS: usize = 32;

fn exception(vector: u32) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug trap",
        3 => "breakpoint",
        6 => "invalid opcode",
        8 => "double fault",
        12 => "stack-segment fault",
        13 => "general protection fault",
        14 => "page fault",
        17 => "alignment check",
        _ => "CPU exception",
    }
}

struct Supervisor {
    tasks: Cap<Task>,
    /// Faults in a row of each task whose incarnations answered nothing.
    runs: [u32; MAX_TASKS],
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
            Some(FaultKind::Exception) => write!(what, "{} at {:#x}", exception(f.vector), f.rip),
            Some(FaultKind::Exited) => write!(what, "exited (code {})", f.error as i64),
            Some(k) => write!(what, "{}", k.name()),
            None => write!(what, "unknown fault"),
        };
        let Some(run) = self.runs.get_mut(i) else { return };
        *run = if f.answered == 0 && *run > 0 { *run + 1 } else { 1 };
        let run = *run;
        if run > LOOP_LIMIT {
            self.log(format_args!(
                "{} gen {}: {}; {} faults in a row without answering a request: crash loop, holding {}",
                name, f.generation, what, run, name
            ));
            if let Err(e) = self.tasks.hold(i) {
                self.log(format_args!("cannot hold {}: {}", name, e));
            }
            return;
        }
        let delay = if run == 1 { 0 } else { BACKOFF_TICKS << (run - 2) };
        match self.tasks.restart_after(i, delay) {
            Ok(generation) => self.log(format_args!(
                "{} gen {}: {}; restarting as gen {}{}{}; {} caller(s) suspended, {} failed",
                name,
                f.generation,
                what,
                generation,
                if delay > 0 { " after " } else { "" },
                Backoff(delay),
                f.suspended,
                f.failed
            )),
            Err(e) => self.log(format_args!("cannot restart {}: {}", name, e)),
        }
    }
}

/// "N ms (fault K in a row)" for a non-zero back-off, nothing otherwise.
struct Backoff(u64);

impl core::fmt::Display for Backoff {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 > 0 {
            write!(f, "{} ms", self.0 * 10)
        } else {
            Ok(())
        }
    }
}

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    let tasks = Cap::<Task>::from_boot(boot, "all").ok_or(Error::EmptySlot)?;
    let faults = Cap::<Notification>::from_boot(boot, "faults").ok_or(Error::EmptySlot)?;
    let dropped = tasks.supervise(faults)?;
    let mut rs = Supervisor { tasks, runs: [0; MAX_TASKS] };
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
