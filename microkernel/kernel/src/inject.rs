//! Fault injection from outside a task, for the reincarnation experiments.
//!
//! The injector holds a Task capability with the write right; the target contains no hooks.
//! Each kind changes the target's saved state (registers, memory, instruction pointer, a
//! client's SSR) so the fault shows when the target next runs, exactly as a hardware or
//! software fault would (a rip made non-canonical faults at once, see
//! `report::fault_if_unfetchable`: the only way such a rip can appear, which lets the IPC
//! fastpath resume tasks without checking). The seeded generator and the choices of register,
//! bit and word are the libos injector's too (`algo::rng`, `fault::inject`), so a seed means
//! the same on both personalities.

use crate::lifecycle::task_failed;
use crate::report::fault_if_unfetchable;
use crate::state::Kernel;
use algo::rng::Rng;
use axolotl_abi::{Error, FaultKind, InjectKind, TaskState, SSR_SIZE, USER_STACK_SIZE, USER_STACK_TOP};
use axolotl_kcore::elf;
use fault::inject::{new_word, pick_word, RegFlip};

/// Where the `hang` injection maps its `jmp $` page.
const HANG_PAGE: u64 = 0x8000_7000;

/// Inject `kind` into task `t` (running, or a kill of one restarting; the syscall checked);
/// returns what was hit (register and bit, address, session...).
pub fn inject(k: &mut Kernel, t: usize, kind: InjectKind, seed: u64) -> Result<u64, Error> {
    let mut rng = Rng(seed);
    if k.tasks[t].state == TaskState::Restarting {
        // Only a kill gets here (the syscall's decode refuses the rest): killing an
        // incarnation that has not started yet still counts as its failure.
        k.tasks[t].state = TaskState::Faulted;
        task_failed(k, t, FaultKind::Killed, 0, 0, 0);
        return Ok(0);
    }
    match kind {
        InjectKind::Kill => {
            crate::kprintln!(
                "KILL {} (task {}, gen {}) on request",
                k.tasks[t].name(),
                t,
                k.tasks[t].id.generation
            );
            task_failed(k, t, FaultKind::Killed, 0, 0, 0);
            Ok(0)
        }
        InjectKind::RegFlip => {
            let flip = RegFlip::pick(&mut rng);
            *k.tasks[t].ctx.reg_mut(flip.reg) ^= 1 << flip.bit;
            fault_if_unfetchable(k, t);
            Ok(flip.describe())
        }
        InjectKind::MemFlip | InjectKind::MemWord => {
            let addr = random_data_address(k, t, &mut rng)?;
            let space = k.tasks[t].space();
            let mut word = [0u8; 8];
            space.copy_from_user(addr, &mut word)?;
            let value = new_word(kind, u64::from_le_bytes(word), &mut rng);
            space.copy_to_user(addr, &value.to_le_bytes())?;
            Ok(addr)
        }
        InjectKind::Skip => {
            let rip = k.tasks[t].ctx.rip;
            let mut code = [0u8; 15];
            // The instruction may end near the end of the mapped code: read what is there.
            let mut n = code.len();
            while n > 0 && k.tasks[t].space().copy_from_user(rip, &mut code[..n]).is_err() {
                n -= 1;
            }
            let len = lde::X64.ld(&code[..n]) as u64;
            if len == 0 {
                return Err(Error::InvalidArgument);
            }
            k.tasks[t].ctx.rip += len;
            fault_if_unfetchable(k, t);
            Ok(rip)
        }
        InjectKind::Hang => {
            let frame = k.hang_frame;
            if frame == 0 {
                return Err(Error::OutOfResources);
            }
            let space = k.tasks[t].space.as_ref().ok_or(Error::Dead)?;
            if !space.is_mapped(HANG_PAGE) {
                space.map(&mut k.frames, HANG_PAGE, frame, 0)?;
            }
            k.tasks[t].ctx.rip = HANG_PAGE;
            Ok(HANG_PAGE)
        }
        InjectKind::Ssr => {
            // A session badge as the seed names the session to corrupt (bits 32..62, unused by
            // badges, then only vary the word chosen); otherwise the session being served right
            // now, or a random one of the task's endpoints.
            let named = axolotl_abi::badge_session(seed).map(|s| s as usize);
            let badge = seed & (axolotl_abi::SESSION_BADGE | 0xFFFF_FFFF);
            let s = match (named, k.tasks[t].ssr_mapped) {
                (Some(s), _) if k.sessions.get(s).is_some_and(|x| x.live && x.badge == badge) => s,
                (Some(_), _) => return Err(Error::Dead),
                (None, Some(s)) => s as usize,
                (None, None) => random_session_of(k, t, &mut rng).ok_or(Error::NothingToHit)?,
            };
            // Somewhere in the first 512 bytes, where servers keep header and state, or in the
            // same span from the middle of the page on, where they keep a backup copy.
            let half = if rng.below(2) == 1 { SSR_SIZE / 2 } else { 0 };
            let offset = half + (rng.below(512.min(SSR_SIZE as u64 / 2) / 8) * 8) as usize;
            let frame = k.sessions[s].frame;
            let value = rng.next_u64();
            // SAFETY: a live session's frame is a kernel-owned page, identity mapped; the offset
            // is 8-aligned and inside the page.
            unsafe { ((frame as usize + offset) as *mut u64).write_volatile(value) };
            Ok((s as u64) << 16 | offset as u64)
        }
    }
}

/// A random word of the task's writable image segments or its stack.
fn random_data_address(k: &mut Kernel, t: usize, rng: &mut Rng) -> Result<u64, Error> {
    let module = k.modules[k.tasks[t].module];
    let plan = elf::plan(module.bytes()).map_err(|_| Error::Dead)?;
    let mut ranges: heapless::Vec<(u64, u64), 9> = heapless::Vec::new();
    for s in plan.segments.iter().filter(|s| s.writable) {
        let _ = ranges.push((s.vaddr & !7, (s.vaddr + s.mem_size) & !7));
    }
    let _ = ranges.push((USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP));
    pick_word(rng, &ranges).ok_or(Error::NothingToHit)
}

/// A random live session of an endpoint task `t` serves.
fn random_session_of(k: &Kernel, t: usize, rng: &mut Rng) -> Option<usize> {
    let served = k.served_endpoints::<8>(t);
    let live: heapless::Vec<usize, 64> = (0..k.sessions.len())
        .filter(|&s| k.sessions[s].live && served.contains(&k.sessions[s].endpoint))
        .collect();
    (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
}
