//! Fault injection from outside a task, for the reincarnation experiments.
//!
//! The injector holds a Task capability with the write right; the target contains no hooks.
//! Each kind changes the target's saved state (registers, memory, instruction pointer, a
//! client's SSR) so the fault shows when the target next runs, exactly as a hardware or
//! software fault would (a rip made non-canonical faults at once, see `fault_if_unfetchable`). A seeded generator picks register, bit and address, so a campaign
//! with the same seed injects the same faults.

use crate::fault;
use crate::state::Kernel;
use axolotl_abi::{Error, FaultKind, InjectKind, TaskState, SSR_SIZE, USER_STACK_SIZE, USER_STACK_TOP};
use axolotl_kcore::elf;

/// Where the `hang` injection maps its `jmp $` page.
const HANG_PAGE: u64 = 0x8000_7000;

struct Rng(u64);

impl Rng {
    /// Scramble the seed first (splitmix64's finalizer): xorshift's first outputs barely
    /// depend on a seed's high bits, and seeds that differ only there must choose differently.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ z >> 30).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ z >> 27).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ z >> 31) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A flipped bit can make the saved rip non-canonical. Fetching there is the next thing the
/// task would do, and it would raise #GP; the kernel must never return to such an address
/// (`sysretq` and `iretq` would fault in ring 0), so the #GP is charged to the task now. This
/// is the only place a non-canonical rip can come from, which lets the IPC fastpath resume
/// tasks without checking.
fn fault_if_unfetchable(k: &mut Kernel, t: usize) {
    if !crate::sched::is_canonical(k.tasks[t].ctx.rip) {
        k.tasks[t].ctx.raise_gp();
        fault::user_fault(k, t, 0);
    }
}

/// Inject `kind` into task `t`; returns what was hit (register and bit, address, session...).
pub fn inject(k: &mut Kernel, t: usize, kind: InjectKind, seed: u64) -> Result<u64, Error> {
    let mut rng = Rng::new(seed);
    match k.tasks[t].state {
        TaskState::Free => return Err(Error::Dead),
        TaskState::Restarting if kind == InjectKind::Kill => {
            // Killing an incarnation that has not started yet still counts as its failure.
            k.tasks[t].state = TaskState::Faulted;
            fault::task_failed(k, t, FaultKind::Killed, 0, 0, 0);
            return Ok(0);
        }
        s if s.is_stopped() || s == TaskState::Dormant => return Err(Error::AlreadyDone),
        _ => {}
    }
    match kind {
        InjectKind::Kill => {
            crate::kprintln!(
                "KILL {} (task {}, gen {}) on request",
                k.tasks[t].name(),
                t,
                k.tasks[t].id.generation
            );
            fault::task_failed(k, t, FaultKind::Killed, 0, 0, 0);
            Ok(0)
        }
        InjectKind::RegFlip => {
            let c = &mut k.tasks[t].ctx;
            let regs: [&mut u64; 18] = [
                &mut c.rax,
                &mut c.rbx,
                &mut c.rcx,
                &mut c.rdx,
                &mut c.rsi,
                &mut c.rdi,
                &mut c.rbp,
                &mut c.rsp,
                &mut c.r8,
                &mut c.r9,
                &mut c.r10,
                &mut c.r11,
                &mut c.r12,
                &mut c.r13,
                &mut c.r14,
                &mut c.r15,
                &mut c.rip,
                &mut c.rflags,
            ];
            let (r, bit) = (rng.below(18) as usize, rng.below(64));
            // Flipping privileged flags (IOPL, VM, ...) would be refused by iretq in the kernel,
            // not be a fault of the task: rflags flips stay in the arithmetic flags.
            let bit = if r == 17 { [0, 2, 4, 6, 7, 10, 11][bit as usize % 7] } else { bit };
            *regs[r] ^= 1 << bit;
            fault_if_unfetchable(k, t);
            Ok((r as u64) << 8 | bit)
        }
        InjectKind::MemFlip | InjectKind::MemWord => {
            let addr = random_data_address(k, t, &mut rng)?;
            let space = k.tasks[t].space();
            let mut word = [0u8; 8];
            space.copy_from_user(addr, &mut word)?;
            let value = if kind == InjectKind::MemFlip {
                u64::from_le_bytes(word) ^ 1 << rng.below(64)
            } else {
                rng.next()
            };
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
            if !space.is_mapped(&mut k.frames, HANG_PAGE) {
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
                (None, None) => random_session_of(k, t, &mut rng).ok_or(Error::Dead)?,
            };
            // Somewhere in the first 512 bytes, where servers keep header and state, or in the
            // same span from the middle of the page on, where they keep a backup copy.
            let half = if rng.below(2) == 1 { SSR_SIZE / 2 } else { 0 };
            let offset = half + (rng.below(512.min(SSR_SIZE as u64 / 2) / 8) * 8) as usize;
            let frame = k.sessions[s].frame;
            let value = rng.next();
            // SAFETY: a live session's frame is a kernel-owned page, identity mapped; the offset
            // is 8-aligned and inside the page.
            unsafe { ((frame as usize + offset) as *mut u64).write_volatile(value) };
            Ok((s as u64) << 16 | offset as u64)
        }
    }
}

/// A random mapped address in the task's writable image segments or its stack.
fn random_data_address(k: &mut Kernel, t: usize, rng: &mut Rng) -> Result<u64, Error> {
    let module = k.modules[k.tasks[t].module];
    let plan = elf::plan(module.bytes()).map_err(|_| Error::Dead)?;
    let mut ranges: heapless::Vec<(u64, u64), 9> = heapless::Vec::new();
    for s in plan.segments.iter().filter(|s| s.writable) {
        let _ = ranges.push((s.vaddr, s.vaddr + s.mem_size));
    }
    let _ = ranges.push((USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP));
    let total: u64 = ranges.iter().map(|(a, b)| b - a).sum();
    let mut pick = rng.below(total / 8) * 8;
    for (a, b) in ranges {
        if pick < b - a {
            return Ok((a + pick) & !7);
        }
        pick -= b - a;
    }
    Err(Error::Dead)
}

/// A random live session of an endpoint task `t` serves.
fn random_session_of(k: &Kernel, t: usize, rng: &mut Rng) -> Option<usize> {
    let served = k.served_endpoints::<8>(t);
    let live: heapless::Vec<usize, 64> = (0..k.sessions.len())
        .filter(|&s| k.sessions[s].live && served.contains(&k.sessions[s].endpoint))
        .collect();
    (!live.is_empty()).then(|| live[rng.below(live.len() as u64) as usize])
}
