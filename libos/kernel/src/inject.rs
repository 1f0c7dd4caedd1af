//! Fault injection from outside a cell: the shell names a task and a kind; the core changes the
//! task's saved state or memory. Cells contain no hooks.
//!
//! `kill` acts now. `memflip`/`memword` change a random word of the task's own stack or heap
//! now. `regflip`, `skip` and `hang` must strike while the task runs: the core sets the trap
//! flag when the task is next switched in and counts a seeded number of its instructions
//! (single-step traps); at zero — in the cell's own code, never in core code the cell is
//! running (a core entry point, a critical section) — it flips a bit of a saved
//! register, steps the instruction pointer over one instruction (length from `lde`), or sends
//! it into a spin loop. `ssr` corrupts a word of a client-held state value of that server.

use crate::arch::trap::{Frame, RFLAGS_IF, RFLAGS_TF};
use crate::task::{Kernel, State, Task, KERNEL};
use algo::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Kill,
    RegFlip,
    MemFlip,
    MemWord,
    Skip,
    Hang,
    Ssr,
}

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Kill, Kind::RegFlip, Kind::MemFlip, Kind::MemWord, Kind::Skip, Kind::Hang, Kind::Ssr];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::RegFlip => "regflip",
            Kind::MemFlip => "memflip",
            Kind::MemWord => "memword",
            Kind::Skip => "skip",
            Kind::Hang => "hang",
            Kind::Ssr => "ssr",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    NoSuchTask,
    /// The task is not running (dead or halted).
    NotRunning,
    /// Nothing to hit (no client-held state for this server).
    NoTarget,
    /// Faults are injected into other tasks, not the injector.
    IsCurrent,
}

/// A fault waiting for its moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    kind: Kind,
    countdown: u32,
    reg: usize,
    bit: u64,
}

/// The name of a task whose injected regflip, skip or hang has not struck yet (it strikes the
/// next time that task runs), if any. Work that masks the timer must not run it into a hang.
pub fn armed() -> Option<&'static str> {
    KERNEL.with(|k| k.tasks.iter().flatten().find(|t| t.pending.is_some()).map(|t| t.name))
}

/// Inject `kind` into task `index` with `seed`; returns what it hit (register << 8 | bit for
/// regflip, the address for memory kinds, entry << 16 | offset for ssr, 0 for kill).
pub fn inject(index: usize, kind: Kind, seed: u64) -> Result<u64, InjectError> {
    if kind == Kind::Kill {
        return crate::task::kill(index).map(|_| 0).map_err(|_| InjectError::NoSuchTask);
    }
    let mut rng = Rng(seed);
    KERNEL.with(|k| {
        if index == k.current {
            return Err(InjectError::IsCurrent);
        }
        if index == crate::sched::IDLE {
            return Err(InjectError::NoSuchTask);
        }
        let t = k.task(index).ok_or(InjectError::NoSuchTask)?;
        if matches!(t.state, State::Dead | State::Halted) || t.mem.is_none() {
            return Err(InjectError::NotRunning);
        }
        match kind {
            Kind::RegFlip | Kind::Skip | Kind::Hang => {
                let reg = rng.below(18) as usize;
                let bit = rng.below(64);
                // Privileged rflags bits would be refused by iretq, not be the task's fault.
                let bit = if reg == 17 { [0, 2, 4, 6, 7, 10, 11][bit as usize % 7] } else { bit };
                let countdown = 1 + rng.below(4000) as u32;
                t.pending = Some(Pending { kind, countdown, reg, bit });
                Ok(if kind == Kind::RegFlip { (reg as u64) << 8 | bit } else { countdown as u64 })
            }
            Kind::MemFlip | Kind::MemWord => {
                let ranges = crate::task::data_ranges(t);
                let total: u64 = ranges.iter().map(|(a, b)| b - a).sum();
                let mut pick = rng.below(total / 8) * 8;
                for (a, b) in ranges {
                    if pick < b - a {
                        let addr = a + pick;
                        let value = if kind == Kind::MemFlip {
                            // SAFETY: `addr` is 8-aligned inside the task's own mapped stack or
                            // heap pages, which it owns and which stay mapped: it is not running.
                            unsafe { (addr as *const u64).read_volatile() ^ 1 << rng.below(64) }
                        } else {
                            rng.next_u64()
                        };
                        // SAFETY: as above.
                        unsafe { (addr as *mut u64).write_volatile(value) };
                        return Ok(addr);
                    }
                    pick -= b - a;
                }
                Err(InjectError::NoTarget)
            }
            Kind::Ssr => {
                let name = t.name;
                let mine: heapless::Vec<usize, 64> =
                    (0..k.kept.len()).filter(|&h| k.kept[h].server == name).collect();
                if mine.is_empty() {
                    return Err(InjectError::NoTarget);
                }
                let h = mine[rng.below(mine.len() as u64) as usize];
                let e = k.kept[h];
                let offset = rng.below((e.len / 8).max(1) as u64) * 8;
                let value = rng.next_u64();
                if offset as usize + 8 <= e.len {
                    // SAFETY: the entry names a live `Kept` value (unregistered on drop and when
                    // its owner dies); the word lies inside it.
                    unsafe { ((e.addr + offset) as *mut u64).write_unaligned(value) };
                }
                Ok((h as u64) << 16 | offset)
            }
            Kind::Kill => unreachable!("handled above"),
        }
    })
}

/// The task is being switched in: if a fault is pending, single-step it.
pub(crate) fn switched_in(t: &mut Task) {
    if t.pending.is_some() {
        // SAFETY: `t.frame` is the task's saved frame on its own stack.
        unsafe { (*(t.frame as *mut Frame)).rflags |= RFLAGS_TF };
    }
}

/// A single-step trap in the current task.
pub(crate) fn single_step(k: &mut Kernel, f: &mut Frame) {
    let t = k.cur();
    let Some(p) = t.pending.as_mut() else {
        f.rflags &= !RFLAGS_TF;
        return;
    };
    p.countdown = p.countdown.saturating_sub(1);
    if p.countdown > 0 || crate::sync::depth() > 0 || crate::symbols::in_core(f.rip) {
        return;
    }
    let p = t.pending.take().expect("checked");
    f.rflags &= !RFLAGS_TF;
    match p.kind {
        Kind::RegFlip => {
            *f.reg_mut(p.reg) ^= 1 << p.bit;
            f.rflags &= !RFLAGS_TF;
        }
        Kind::Skip => {
            let mut code = [0u8; 15];
            // SAFETY: rip points into the image's text (the only executable memory), which is
            // mapped; 15 bytes past any instruction start stay inside it or the rodata after it.
            unsafe { core::ptr::copy_nonoverlapping(f.rip as *const u8, code.as_mut_ptr(), code.len()) };
            f.rip += lde::X64.ld(&code).max(1) as u64;
        }
        Kind::Hang => {
            f.rip = hang_loop as *const () as u64;
            f.rflags |= RFLAGS_IF;
        }
        _ => {}
    }
}

/// Where `hang` sends a task: spin with interrupts on (so the hang detector sees it).
///
/// No `pause` in the loop: under QEMU TCG with `-icount`, every `pause` leaves the CPU loop and
/// the virtual clock (hence the PIT) then advances only a few hundred ticks a minute, so the
/// hang would not be detected for many minutes.
extern "C" fn hang_loop() -> ! {
    let mut n = 0u64;
    loop {
        n = core::hint::black_box(n.wrapping_add(1));
    }
}
