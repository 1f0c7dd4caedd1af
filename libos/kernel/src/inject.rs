//! Fault injection from outside a cell: arming a fault in a task, and striking when its moment
//! comes. Cells contain no hooks. (`control::inject` is the privileged entry; a `kill` goes to
//! `lifecycle` instead, since it acts at once.)
//!
//! `memflip`/`memword` change a random word of the task's own stack or heap now. `regflip`,
//! `skip` and `hang` must strike while the task runs: the kernel sets the trap flag when the
//! task is next switched in and counts a seeded number of its instructions (single-step traps);
//! at zero — in the cell's own code, never in kernel code the cell is running (a kernel entry
//! point, a critical section, a task switch) — it flips a bit of a saved register, steps the
//! instruction pointer over one instruction (length from `lde`), or sends it into a spin loop.
//! `ssr` corrupts a word of a client-held state value of that server. The seeded choices
//! (register and bit, word of memory, new value) are `fault::inject`'s, the microkernel's too.

use crate::arch::trap::{TrapFrame, RFLAGS_IF, RFLAGS_TF};
use crate::mem::protect::unprotected;
use crate::state::{Kernel, Pending, IDLE, KERNEL};
use algo::rng::Rng;
use fault::inject::{new_word, pick_word, RegFlip};
use fault::InjectKind;

/// The most instructions an armed fault waits before it strikes (drawn from 1 to this).
const MAX_COUNTDOWN: u64 = 4000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    NoSuchTask,
    /// The task is not running (dead, halted, or waiting to restart).
    NotRunning,
    /// Nothing to hit (no client-held state for this server).
    NoTarget,
    /// Faults are injected into other tasks, not the injector.
    IsCurrent,
}

/// The name of a task whose injected regflip, skip or hang has not struck yet (it strikes the
/// next time that task runs), if any. Work that masks the timer must not run it into a hang.
pub fn armed() -> Option<&'static str> {
    KERNEL.with(|k| k.tasks.iter().flatten().find(|t| t.pending.is_some()).map(|t| t.name))
}

/// Inject `kind` (anything but a kill) into task `index` with `seed`; returns what it hit
/// (register << 8 | bit for regflip, the countdown for skip and hang, the address for memory
/// kinds, entry << 16 | offset for ssr).
pub(crate) fn arm(k: &mut Kernel, index: usize, kind: InjectKind, seed: u64) -> Result<u64, InjectError> {
    let mut rng = Rng(seed);
    if index == k.current {
        return Err(InjectError::IsCurrent);
    }
    if index == IDLE {
        return Err(InjectError::NoSuchTask);
    }
    let t = k.task(index).ok_or(InjectError::NoSuchTask)?;
    if t.state.stopped() || t.mem().is_none() {
        return Err(InjectError::NotRunning);
    }
    match kind {
        InjectKind::RegFlip | InjectKind::Skip | InjectKind::Hang => {
            let flip = RegFlip::pick(&mut rng);
            let countdown = 1 + rng.below(MAX_COUNTDOWN) as u32;
            t.pending = Some(Pending { kind, countdown, flip });
            Ok(if kind == InjectKind::RegFlip { flip.describe() } else { countdown as u64 })
        }
        InjectKind::MemFlip | InjectKind::MemWord => {
            let addr = pick_word(&mut rng, &t.data_ranges()).ok_or(InjectError::NoTarget)?;
            // SAFETY: `addr` is 8-aligned inside the task's own mapped stack or heap pages,
            // which it owns and which stay mapped: it is not running.
            let old = unsafe { (addr as *const u64).read_volatile() };
            let value = new_word(kind, old, &mut rng);
            // SAFETY: as above; another task's memory, so written with protection lifted.
            unprotected(|| unsafe { (addr as *mut u64).write_volatile(value) });
            Ok(addr)
        }
        InjectKind::Ssr => {
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
                // its owner dies); the word lies inside it, in its owner's heap (another task's:
                // written with protection lifted).
                unprotected(|| unsafe { ((e.addr + offset) as *mut u64).write_unaligned(value) });
            }
            Ok((h as u64) << 16 | offset)
        }
        InjectKind::Kill => Err(InjectError::NoTarget),
    }
}

/// A single-step trap in the current task.
pub(crate) fn single_step(k: &mut Kernel, f: &mut TrapFrame) {
    let t = k.cur();
    let Some(p) = t.pending.as_mut() else {
        f.rflags &= !RFLAGS_TF;
        return;
    };
    p.countdown = p.countdown.saturating_sub(1);
    if p.countdown > 0 || in_kernel(f) {
        return;
    }
    let p = t.pending.take().expect("checked");
    f.rflags &= !RFLAGS_TF;
    match p.kind {
        InjectKind::RegFlip => {
            *f.reg_mut(p.flip.reg) ^= 1 << p.flip.bit;
            f.rflags &= !RFLAGS_TF;
        }
        InjectKind::Skip => {
            let mut code = [0u8; 15];
            // SAFETY: rip points into the image's text (the only executable memory), which is
            // mapped; 15 bytes past any instruction start stay inside it or the rodata after it.
            unsafe { core::ptr::copy_nonoverlapping(f.rip as *const u8, code.as_mut_ptr(), code.len()) };
            f.rip += lde::X64.ld(&code).max(1) as u64;
        }
        InjectKind::Hang => {
            f.rip = hang_loop as *const () as u64;
            f.rflags |= RFLAGS_IF;
        }
        _ => {}
    }
}

/// Is the task running kernel code, where an injected fault must not strike: inside a critical
/// section, in the kernel's own code (its functions and assembly, `fault::kernel_code`), or on
/// the switch stack (the middle of a switch, and whatever it calls).
fn in_kernel(f: &TrapFrame) -> bool {
    crate::sync::depth() > 0 || crate::symbols::in_core(f.rip) || crate::arch::switch::on_switch_stack(f.rsp)
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
