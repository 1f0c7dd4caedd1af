//! A task's life after a fault: stopping it (releasing what it held, deciding what becomes of
//! the callers it was serving), recording the fault for the supervisor, holding a crash loop,
//! and starting the next incarnation. Detection and reports are in `report` and `watchdog`;
//! the decisions of what to do after a fault are the reincarnation server's.
//!
//! ```text
//!  report / watchdog / inject / exit ──► task_failed ──► stop_task ──► callers: suspended
//!                                             │                        (delivered again) or
//!                                             │                        failed (ServerFailed)
//!                                             └─► fault record ──► supervisor ──► restart_task
//!                                                                             └─► hold_task
//! ```

use crate::arch::cpu;
use crate::sched::Done;
use crate::state::{Blocked, Kernel, Module, Update, MAX_MODULES, PAUSED_TOKEN};
use axolotl_abi::{Error, FaultKind, FaultRecord, TaskState, PAGE_SIZE, SSR_BACKUP_OFFSET, SSR_MAGIC};
use axolotl_kcore::cap::Object;
use fault::recovery::Redelivery;

/// What stopping a task did to the callers waiting for its replies.
#[derive(Clone, Copy, Default)]
pub struct Callers {
    /// Put back at the front of their endpoint's queue, to be delivered again.
    pub suspended: u32,
    /// Failed with `ServerFailed`.
    pub failed: u32,
}

/// Stop task `t`: take it out of every queue, deal with the callers waiting for its reply,
/// wake tasks waiting for it to stop, close its sessions as a client, free its address space.
///
/// With `restarting` (it is supervised and a supervisor listens), a caller whose request `t`
/// had received is put back at the front of the endpoint's queue to be delivered again to the
/// next incarnation — unless that request had already been delivered again once, in which case
/// only that caller fails (`fault::recovery::Redelivery`). Otherwise every such caller fails.
pub fn stop_task(k: &mut Kernel, t: usize, state: TaskState, code: u64, restarting: bool) -> Callers {
    k.audit_task_stopped(t);
    if let Blocked::Endpoint(e) = k.tasks[t].blocked {
        let ep = &mut k.endpoints[e as usize];
        ep.senders.remove(&mut k.links, t);
        ep.receivers.remove(&mut k.links, t);
    }
    let prio = k.tasks[t].priority;
    k.run.remove(&mut k.links, t, prio);
    // Its devices stop their DMA before anything of the task's is released.
    crate::pci::quiesce(k, t);
    // Accounting it turned on ends with it (a benchmark that crashed must not leave every
    // switch paying for it).
    if k.accounting && k.accounting_by == t {
        k.set_accounting(false, t);
    }
    let mut callers = Callers::default();
    for j in 0..k.tasks.len() {
        let other = &k.tasks[j];
        if other.state == TaskState::Calling && other.blocked == Blocked::Reply(t as u16) {
            match Redelivery::decide(restarting, other.retried) {
                Redelivery::Again => {
                    let ep = other.pending.ep;
                    let c = &mut k.tasks[j];
                    c.retried = true;
                    c.state = TaskState::Sending;
                    c.blocked = Blocked::Endpoint(ep);
                    k.endpoints[ep as usize].senders.push_front(&mut k.links, j);
                    callers.suspended += 1;
                }
                Redelivery::Fail => {
                    k.fail_blocked(j, Error::ServerFailed);
                    callers.failed += 1;
                }
            }
        } else if other.state == TaskState::Joining && other.blocked == Blocked::Task(t as u16) {
            k.tasks[j].ctx.rax = 0;
            k.tasks[j].ctx.rdi = code;
            k.tasks[j].ctx.rsi = state as u64;
            k.make_ready(j);
        }
    }
    if let Some(n) = k.tasks[t].bound_notification.take() {
        k.notifications[n as usize].bound = None;
    }
    crate::object::forget_mappings_of(k, t);
    k.unmap_ssr(t);
    k.close_sessions_of(t);
    k.leave_cpu(t);
    let task = &mut k.tasks[t];
    task.ssr_pte = 0;
    task.io_count = 0;
    task.state = state;
    task.exit_code = code;
    task.blocked = Blocked::Nothing;
    task.reply_to = None;
    task.ipc_buffer = 0;
    if let Some(space) = task.space.take() {
        space.destroy(&mut k.frames);
    }
    callers
}

/// Whether `t`'s callers wait for a next incarnation when it stops: it is supervised and a
/// supervisor listens.
fn restarting(k: &Kernel, t: usize) -> bool {
    k.tasks[t].supervised && k.supervisor.is_some()
}

/// Task `t` stopped abnormally (`kind`; for an exception, `vector`, `error` and the faulting
/// address): stop it, and if it is supervised and a supervisor listens, suspend its callers
/// and hand the fault to the supervisor. The supervisor itself is restarted by the kernel
/// directly: nobody else could.
pub fn task_failed(k: &mut Kernel, t: usize, kind: FaultKind, vector: u64, error: u64, addr: u64) {
    let (rip, generation, answered) = (k.tasks[t].ctx.rip, k.tasks[t].id.generation, k.tasks[t].answered);
    let supervised = restarting(k, t);
    let code = if kind == FaultKind::Exception { vector } else { 0x100 + kind as u64 };
    let callers = stop_task(k, t, TaskState::Faulted, code, supervised);
    if let Some(update) = k.updates[t].take() {
        roll_back(k, t, update, kind, callers);
        return;
    }
    let name = k.tasks[t].name;
    let name = axolotl_abi::str_from_padded(&name);
    if k.tasks[t].supervisor {
        crate::kprintln!("  action: the supervisor itself failed; the kernel restarts it");
        let _ = restart_task(k, t, 0);
        return;
    }
    if !supervised {
        crate::kprintln!(
            "  action: {} stopped ({}); {} waiting caller(s) failed with ServerFailed",
            name,
            kind.name(),
            callers.failed
        );
        return;
    }
    crate::kprintln!(
        "  action: {} stopped ({}); {} caller(s) suspended, {} failed; reported to the supervisor",
        name,
        kind.name(),
        callers.suspended,
        callers.failed
    );
    let now = x86::cpu::rdtsc();
    k.tasks[t].fault_tsc = Some(now);
    k.faults.push(FaultRecord {
        index: t as u32,
        generation,
        kind: kind as u32,
        vector: vector as u32,
        error,
        rip,
        addr,
        tick: k.ticks,
        tsc: now,
        answered,
        suspended: callers.suspended,
        failed: callers.failed,
    });
    if let Some(n) = k.supervisor {
        k.signal(n, 1);
    }
}

/// Stop task `t` for good after a crash loop: its endpoints answer every call with
/// `ServerFailed` until someone restarts it by hand.
pub fn hold_task(k: &mut Kernel, t: usize) {
    if !k.tasks[t].state.is_stopped() {
        stop_task(k, t, TaskState::Faulted, 0, false);
    }
    k.tasks[t].state = TaskState::Halted;
    k.tasks[t].fault_tsc = None;
    let served = k.served_endpoints::<8>(t);
    let mut failed = 0;
    for &e in &served {
        k.endpoints[e as usize].halted = true;
        while let Some(c) = k.endpoints[e as usize].senders.pop_front(&mut k.links) {
            k.fail_blocked(c, Error::ServerFailed);
            failed += 1;
        }
    }
    crate::kprintln!(
        "{} (task {}) halted: {} queued caller(s) failed with ServerFailed",
        k.tasks[t].name(),
        t,
        failed
    );
}

/// Replace task `t` with a new incarnation from its pristine image, now or after `delay`
/// timer ticks: stop it if it still runs, drop its stale reply capabilities, rebuild its address
/// space, bump its generation and restart count, and make it ready. Its other capabilities, and
/// so its endpoints, stay: clients keep calling the same endpoint. Returns the new generation.
pub fn restart_task(k: &mut Kernel, t: usize, delay: u64) -> Result<u32, crate::loader::LoadError> {
    if !k.tasks[t].state.is_stopped() {
        let callers = stop_task(k, t, TaskState::Exited, 0, restarting(k, t));
        crate::kprintln!(
            "{} (task {}) stopped for restart; {} caller(s) suspended, {} failed",
            k.tasks[t].name(),
            t,
            callers.suspended,
            callers.failed
        );
        k.tasks[t].fault_tsc = Some(x86::cpu::rdtsc());
    }
    if delay > 0 {
        k.tasks[t].state = TaskState::Restarting;
        k.tasks[t].restart_at = k.ticks + delay;
        return Ok(k.tasks[t].id.generation + 1);
    }
    k.cspaces[t].remove_where(|c| matches!(c.object, Object::Reply { .. }), |_| {});
    k.tasks[t].id.generation += 1;
    k.cspaces[t].follow_own_generation(k.tasks[t].id);
    k.tasks[t].restarts += 1;
    if let Err(e) = crate::loader::build_image(k, t) {
        crate::kprintln!("cannot restart {} (task {}): {}", k.tasks[t].name(), t, e);
        k.tasks[t].state = TaskState::Faulted;
        return Err(e);
    }
    for e in k.served_endpoints::<8>(t) {
        k.endpoints[e as usize].halted = false;
    }
    let task = &mut k.tasks[t];
    task.exit_code = 0;
    task.slice_left = crate::state::TIMESLICE_TICKS;
    task.recv_slot = None;
    task.pending.session = None;
    task.spin_ticks = 0;
    task.answered = 0;
    let generation = task.id.generation;
    crate::kprintln!("restarted {} (task {}) as generation {}", task.name(), t, generation);
    k.make_ready(t);
    Ok(generation)
}

/// Why an update was refused, before anything changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not waiting for a request (serving one, paused, stopped) or already within an
    /// update's window (see [`may_update`]).
    Busy,
    /// The image is another server's.
    OtherServer,
    /// The image does not read the layout of client `session`'s state (`kind`, `version`).
    Incompatible { session: u16, kind: u16, version: u16 },
    /// Not an image the loader takes, or no version declared.
    BadImage,
    /// No memory for the image or the snapshots.
    NoMemory,
}

/// Replace supervised server `t`, waiting in `recv`, with the ELF image of `len` bytes in the
/// run of frames at `base` (which becomes its module; freed if refused): check first that the
/// image declares itself a version of `t` that reads every client state of `t`'s endpoints,
/// then copy each of those SSRs aside (for a rollback), and restart `t` from the new module.
/// For `window` requests the update may roll back ([`roll_back`]); then it is kept
/// ([`keep_updates`]). Returns the new generation.
pub fn update_task(k: &mut Kernel, t: usize, base: u64, len: usize, window: u32) -> Result<u32, Refused> {
    // A window passed since the last tick is over now (with every interrupt line closed, as
    // a benchmark has them, no tick would come to say so).
    keep_updates(k);
    let pages = len.div_ceil(PAGE_SIZE as usize);
    let r = try_update(k, t, base, len, window);
    if r.is_err() {
        free_run(k, base, pages);
    }
    r
}

/// Whether `t` can be updated now: it waits for a request (not serving one, not paused, not
/// stopped) and no update of it is within its window (one whose window has passed counts as
/// kept, though [`keep_updates`] may not have run since). Checked before the image is copied,
/// so a caller retrying while the server is busy costs no copy.
pub fn may_update(k: &Kernel, t: usize) -> bool {
    let task = &k.tasks[t];
    let in_window = k.updates[t].is_some_and(|u| !u.window.passed(task.answered));
    task.state == TaskState::Receiving && task.reply_to.is_none() && !task.paused && !in_window
}

fn try_update(k: &mut Kernel, t: usize, base: u64, len: usize, window: u32) -> Result<u32, Refused> {
    // SAFETY: the caller filled `len` bytes of its run of frames at `base`, identity mapped,
    // and nothing writes them while this slice lives (the module's frames are never written).
    let elf = unsafe { core::slice::from_raw_parts(base as *const u8, len) };
    if !may_update(k, t) {
        return Err(Refused::Busy);
    }
    let name = k.tasks[t].name;
    axolotl_kcore::elf::plan(elf).map_err(|_| Refused::BadImage)?;
    let v = axolotl_kcore::elf::server_version(elf).ok_or(Refused::BadImage)?;
    if v.server() != k.tasks[t].name() {
        return Err(Refused::OtherServer);
    }
    let served = k.served_endpoints::<8>(t);
    let ours = |s: &crate::state::Session| s.live && served.contains(&s.endpoint);
    for (i, s) in k.sessions.iter().enumerate().filter(|(_, s)| ours(s)) {
        for at in [0, SSR_BACKUP_OFFSET] {
            let (magic, kind, version) = ssr_header(s.frame, at);
            if magic == SSR_MAGIC && !v.reads(kind, version) {
                return Err(Refused::Incompatible { session: i as u16, kind, version });
            }
        }
    }
    let slot = (0..MAX_MODULES)
        .find(|&m| m >= k.module_count || (k.modules[m].updated && k.modules[m].len == 0))
        .ok_or(Refused::NoMemory)?;
    // Every client's state as it is now, for a rollback.
    let list = k.frames.alloc_zeroed().map_err(|_| Refused::NoMemory)?;
    let mut count = 0;
    for i in 0..k.sessions.len() {
        if !ours(&k.sessions[i]) {
            continue;
        }
        let Ok(copy) = k.frames.alloc_zeroed() else {
            drop_snapshots(k, list, count);
            return Err(Refused::NoMemory);
        };
        // SAFETY: both are frames of the kernel's, identity mapped, a page each; the list
        // holds at most MAX_SESSIONS pairs of 16 bytes in its page.
        unsafe {
            core::ptr::copy_nonoverlapping(
                k.sessions[i].frame as *const u8,
                copy as *mut u8,
                PAGE_SIZE as usize,
            );
            (list as *mut [u64; 2]).add(count).write([i as u64, copy]);
        }
        count += 1;
    }
    if slot == k.module_count {
        k.module_count += 1;
    }
    k.modules[slot] = Module { name, start: base, len: len as u64, version: v.version, updated: true };
    let old = k.tasks[t].module;
    let from = k.modules[old].version;
    k.tasks[t].module = slot;
    let since = x86::cpu::rdtsc();
    let window = fault::update::Window { base: 0, requests: window };
    let update = Update { old_module: old, window, snapshots: list, count, since };
    match restart_task(k, t, 0) {
        Ok(generation) => {
            // An update is not a failure: the restart count stays.
            k.tasks[t].restarts -= 1;
            k.tasks[t].fault_tsc = Some(since);
            k.updates[t] = Some(update);
            let server = k.tasks[t].name();
            let (to, window) = (v.version, window.requests);
            let line =
                fault::update::Updated { server, task: t, from, to, generation, states: count, window };
            crate::kprintln!("{}", line);
            Ok(generation)
        }
        Err(_) => {
            // The new image would not load (out of frames): the old version comes back (and
            // the new module's frames are freed there: no task runs it).
            roll_back(k, t, update, FaultKind::Exited, Callers::default());
            Ok(k.tasks[t].id.generation)
        }
    }
}

/// The kind, layout version and magic of the SSR header at offset `at` of SSR page `frame`.
fn ssr_header(frame: u64, at: usize) -> (u32, u16, u16) {
    // SAFETY: an SSR page is a frame of the kernel's, identity mapped, and `at` is 0 or the
    // backup's offset, half a page in: the header's first 8 bytes lie inside it. The client's
    // and server's writes are not concurrent with the kernel's (one CPU, the kernel entered with interrupts off).
    unsafe {
        let p = (frame as usize + at) as *const u8;
        (
            p.cast::<u32>().read_unaligned(),
            p.add(4).cast::<u16>().read_unaligned(),
            p.add(6).cast::<u16>().read_unaligned(),
        )
    }
}

/// The new version of `t` failed within its update's window (`kind`; it is stopped, its
/// callers suspended): start the old version again, to which the suspended request is
/// delivered again. Each client SSR the old version could not read any more (the new version
/// migrated it to its own layout, or left it broken) is put back as it was at the update; one
/// still in a layout the old version reads keeps what the new version's answers left in it
/// (an old version that declares no layouts gets every SSR back as it was).
fn roll_back(k: &mut Kernel, t: usize, u: Update, kind: FaultKind, callers: Callers) {
    let old_reads = axolotl_kcore::elf::server_version(k.modules[u.old_module].bytes());
    let mut restored = 0;
    for i in 0..u.count {
        // SAFETY: the list and copies are the frames `update_task` filled.
        let [s, copy] = unsafe { (u.snapshots as *const [u64; 2]).add(i).read() };
        let s = &k.sessions[s as usize];
        // A session its client closed meanwhile has no page to restore (and its index may
        // name a newer session): its frame is not read.
        if !s.live {
            continue;
        }
        let (magic, kind, version) = ssr_header(s.frame, 0);
        let readable = magic == SSR_MAGIC && old_reads.is_some_and(|v| v.reads(kind, version));
        if !readable {
            // SAFETY: a live session's page and the copy are whole frames of the kernel's.
            unsafe {
                core::ptr::copy_nonoverlapping(copy as *const u8, s.frame as *mut u8, PAGE_SIZE as usize)
            };
            restored += 1;
        }
    }
    drop_snapshots(k, u.snapshots, u.count);
    let failed = k.tasks[t].module;
    let version = k.modules[failed].version;
    k.tasks[t].module = u.old_module;
    retire_module(k, failed);
    let took = x86::cpu::rdtsc().saturating_sub(u.since);
    match restart_task(k, t, 0) {
        Ok(generation) => crate::kprintln!(
            "{}",
            fault::update::RolledBack {
                server: k.tasks[t].name(),
                task: t,
                failed: version,
                kind,
                tsc: took,
                back_to: k.modules[u.old_module].version,
                generation,
                restored,
                states: u.count,
                redeliver: callers.suspended,
            }
        ),
        Err(e) => crate::kprintln!(
            "{} (task {}): the rollback cannot start the old version: {}",
            k.tasks[t].name(),
            t,
            e
        ),
    }
}

/// Keep the updates whose new version has answered its window's requests: the snapshots and
/// the old module (if no boot module) are freed. Run on every timer tick.
pub fn keep_updates(k: &mut Kernel) {
    for t in 0..k.tasks.len() {
        let Some(u) = k.updates[t] else { continue };
        if !u.window.passed(k.tasks[t].answered) {
            continue;
        }
        k.updates[t] = None;
        drop_snapshots(k, u.snapshots, u.count);
        retire_module(k, u.old_module);
        let (version, answered) = (k.modules[k.tasks[t].module].version, k.tasks[t].answered);
        crate::kprintln!(
            "{}",
            fault::update::KeptVersion { server: k.tasks[t].name(), task: t, version, answered }
        );
    }
}

/// The requests still to answer before `t`'s update is kept (0: none in progress).
pub fn window_left(k: &Kernel, t: usize) -> u32 {
    k.updates[t].map_or(0, |u| u.window.left(k.tasks[t].answered))
}

/// Free the frames of module `m` if `task_update` loaded it and no task runs it.
fn retire_module(k: &mut Kernel, m: usize) {
    let module = k.modules[m];
    if !module.updated
        || module.len == 0
        || k.tasks.iter().any(|t| t.state != TaskState::Free && t.module == m)
    {
        return;
    }
    free_run(k, module.start, (module.len as usize).div_ceil(PAGE_SIZE as usize));
    k.modules[m].len = 0;
}

fn free_run(k: &mut Kernel, base: u64, pages: usize) {
    for p in 0..pages as u64 {
        k.frames.free(base + p * PAGE_SIZE);
    }
}

/// Free a snapshot list and its `count` copies.
fn drop_snapshots(k: &mut Kernel, list: u64, count: usize) {
    for i in 0..count {
        // SAFETY: as in `roll_back`.
        let [_, copy] = unsafe { (list as *const [u64; 2]).add(i).read() };
        k.frames.free(copy);
    }
    k.frames.free(list);
}

/// Pause or resume task `t` (not the running one). Paused, a ready task leaves its run
/// queue; a server waiting in `recv` leaves its endpoint's receivers (callers queue
/// instead, and it takes the first when resumed); a caller's token carries
/// [`PAUSED_TOKEN`] (the IPC fastpath's check that the caller still waits then fails,
/// and the slow path answers it without running it). So the fastpath needs no test of
/// its own. Resumed, each comes back.
pub fn set_paused(k: &mut Kernel, t: usize, on: bool) {
    if k.tasks[t].paused == on {
        return;
    }
    k.tasks[t].paused = on;
    let prio = k.tasks[t].priority;
    let (state, blocked) = (k.tasks[t].state, k.tasks[t].blocked);
    match (state, blocked) {
        (TaskState::Ready, _) if on => {
            k.run.remove(&mut k.links, t, prio);
        }
        (TaskState::Ready, _) if !k.links.is_queued(t) && cpu::this().current.get() != t => {
            k.run.enqueue(&mut k.links, t, prio);
        }
        (TaskState::Receiving, Blocked::Endpoint(ep)) if on => {
            k.endpoints[ep as usize].receivers.remove(&mut k.links, t);
        }
        (TaskState::Receiving, Blocked::Endpoint(ep)) => {
            let slot = k.tasks[t].recv_slot;
            if let Done::Delivered = k.recv(t, ep, slot) {
                k.make_ready(t);
            }
        }
        (TaskState::Calling, _) if on => k.tasks[t].call_token |= PAUSED_TOKEN,
        (TaskState::Calling, _) => k.tasks[t].call_token &= !PAUSED_TOKEN,
        _ => {}
    }
}
