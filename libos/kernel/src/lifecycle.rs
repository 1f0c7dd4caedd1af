//! A task's life: spawned from a closure, incarnated (stack, heap, first frame), failed,
//! restarted — at once, after a back-off, or held after a crash loop — killed and restarted by
//! hand; and the watchdog that declares a task hung.
//!
//! The task table names the closure (its restart recipe, read-only once the system runs: see
//! `mem::recipes`) and owns the task's stack ([`MappedPages`] with an unmapped guard page) and
//! its heap arena ([`TaskHeap`]). The task runs the closure *by reference*, so what the closure
//! captured outlives every incarnation. Failing drops the stack and arena — every byte the task
//! allocated goes back, no destructor needed — and a supervised task (a cell's server) is
//! started again from the same closure as the next generation. The rules are
//! `fault::recovery`'s, the microkernel's too:
//!
//! ```text
//!  fault (exception, panic, exit, hang, kill) ──► report ──► release memory, kept state,
//!      │                                                     receiver roles
//!      └─ CrashLoop::fault(answered) ─► Restart { 0 ms }   ─► next generation now
//!                                    ─► Restart { 50.. ms } ─► Restarting until the tick;
//!                                    │                         callers stay queued
//!                                    ─► Hold                ─► Halted; callers fail at once
//!  requests it was serving: Redelivery::decide ─► back to the front of the queue, or failed
//!  restart by hand: no fault; the streak starts again
//!  update by hand: to a version staged in the image (`fault::update`'s rules and words):
//!     waiting for a request ─► client states copied aside ─► next generation runs the staged
//!     closure; a fault before it answered its window's requests ─► states put back, the old
//!     closure runs again (the failed request is delivered to it)
//! ```

use crate::arch::cpu;
use crate::arch::gdt;
use crate::arch::pic::TICK_HZ;
use crate::arch::trap::{TrapFrame, RFLAGS_IF, RFLAGS_TF};
use crate::mem::heap::TaskHeap;
use crate::mem::mapped::MapError;
use crate::mem::protect::unprotected;
use crate::mem::MappedPages;
use crate::report::{self, What};
use crate::state::{
    CallPhase, Context, Detail, Fault, KeptCopy, Kernel, Staged, State, Task, TaskId, TaskMem, Update,
    Version, IDLE, KERNEL, MAX_TASKS,
};
use fault::recovery::{Decision, Hang, Verdict};
use fault::FaultKind;

const STACK_PAGES: usize = 16;
const HEAP_PAGES: usize = 32;
/// The watchdog looks for requests held unanswered every this many ticks.
const WATCH_PERIOD: u64 = 64;
const MS_PER_S: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    TableFull,
    OutOfMemory,
    /// Tasks are made while the image wires the system, before the scheduler starts. In one
    /// address space a fault can make a cell call anything (a ramdisk campaign saw a flipped
    /// register run the ramdisk's `start` again and spawn a second "ramdisk"): a task made at
    /// run time is refused, not run.
    AfterBoot,
}

impl From<MapError> for SpawnError {
    fn from(_: MapError) -> Self {
        SpawnError::OutOfMemory
    }
}

/// Why a kill or a restart by hand was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlError {
    /// No task there, or not one that is supervised (or killable: the idle task).
    NoSuchTask,
    /// The task is the one asking (use `kill` on yourself instead).
    IsCurrent,
    /// It is not running: halted, dead, or waiting out a back-off.
    NotRunning,
    OutOfMemory,
}

fn ms_to_ticks(ms: u64) -> u64 {
    (ms * TICK_HZ as u64).div_ceil(MS_PER_S)
}

fn ticks_to_ms(ticks: u64) -> u64 {
    ticks * MS_PER_S / TICK_HZ as u64
}

extern "C" fn task_start() -> ! {
    let entry = KERNEL.with(|k| k.cur().entry);
    entry();
    KERNEL.with(|k| k.cur().dying = Some(Fault::EXITED));
    cpu::die_now()
}

/// Put a new incarnation's memory and first frame in place.
fn incarnate(t: &mut Task) -> Result<(), MapError> {
    let stack = MappedPages::alloc_task(STACK_PAGES, true)?;
    let heap = TaskHeap::new(HEAP_PAGES)?;
    let top = stack.end() - 8;
    let frame_at = (top - core::mem::size_of::<TrapFrame>() as u64 - 8) & !15;
    let frame = TrapFrame {
        rip: task_start as *const () as u64,
        cs: gdt::KERNEL_CS as u64,
        rflags: RFLAGS_IF | 2,
        rsp: top,
        ss: gdt::KERNEL_DS as u64,
        ..TrapFrame::default()
    };
    // SAFETY: `frame_at` lies inside the fresh stack pages this task now owns; they are not the
    // running task's, so they are written with protection lifted.
    unprotected(|| unsafe { (frame_at as *mut TrapFrame).write(frame) });
    t.ctx = Context::Frame(frame_at);
    t.set_mem(Some(TaskMem { stack, heap }));
    t.state = State::Ready;
    t.call = None;
    t.receiving = None;
    t.pending = None;
    t.dying = None;
    t.ran_ticks = 0;
    t.depth = 0;
    t.answered = false;
    t.declared.clear();
    Ok(())
}

/// Start a task running `f`. A `supervised` task is restarted from `f` whenever it fails.
pub fn spawn(
    name: &'static str,
    prio: u8,
    supervised: bool,
    f: impl Fn() + Send + Sync + 'static,
) -> Result<TaskId, SpawnError> {
    if crate::sched::started() {
        return Err(SpawnError::AfterBoot);
    }
    let entry_name = core::any::type_name_of_val(&f);
    let entry = crate::mem::recipes::keep(f).ok_or(SpawnError::OutOfMemory)?;
    KERNEL.with(|k| {
        let index = k.tasks.iter().position(|t| t.is_none()).ok_or(SpawnError::TableFull)?;
        let mut t = Task::new(name, prio, supervised, entry);
        t.entry_name = entry_name;
        incarnate(&mut t)?;
        k.tasks[index] = Some(t);
        Ok(TaskId { index, generation: 0 })
    })
}

/// Stage a version of server `server` in the image under `name` (as `update` names it): the
/// closure its incarnations run once a task is started from it ([`spawn_staged`]) or updated to
/// it ([`update`]). Like tasks, versions are staged while the image wires the system.
pub fn stage(
    server: &'static str,
    name: &'static str,
    version: Version,
    f: impl Fn() + Send + Sync + 'static,
) -> Result<(), SpawnError> {
    if crate::sched::started() {
        return Err(SpawnError::AfterBoot);
    }
    let entry_name = core::any::type_name_of_val(&f);
    let entry = crate::mem::recipes::keep(f).ok_or(SpawnError::OutOfMemory)?;
    KERNEL.with(|k| {
        let staged = Staged { server, name, version, entry, entry_name };
        k.staged.push(staged).map_err(|_| SpawnError::TableFull)
    })
}

/// Start the supervised task `server` from its version staged as `name`.
pub fn spawn_staged(server: &'static str, name: &str, prio: u8) -> Result<TaskId, SpawnError> {
    if crate::sched::started() {
        return Err(SpawnError::AfterBoot);
    }
    KERNEL.with(|k| {
        let s =
            k.staged.iter().find(|s| s.server == server && s.name == name).ok_or(SpawnError::TableFull)?;
        let (entry, version, entry_name) = (s.entry, s.version, s.entry_name);
        let index = k.tasks.iter().position(|t| t.is_none()).ok_or(SpawnError::TableFull)?;
        let mut t = Task::new(server, prio, true, entry);
        t.entry_name = entry_name;
        t.version = Some(version);
        let _ = t.layouts.push(version.writes);
        incarnate(&mut t)?;
        k.tasks[index] = Some(t);
        Ok(TaskId { index, generation: 0 })
    })
}

/// Call `f` with the name and version of every version of `server` staged in the image.
pub fn staged(server: &str, mut f: impl FnMut(&'static str, Version)) {
    let list: heapless::Vec<(&'static str, &'static str, Version), { crate::state::MAX_STAGED }> =
        KERNEL.with(|k| k.staged.iter().map(|s| (s.server, s.name, s.version)).collect());
    for (_, name, version) in list.iter().filter(|(s, _, _)| *s == server) {
        f(name, *version);
    }
}

/// Why an update was refused (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// No task there, or not a supervised one started from a staged version.
    NoSuchTask,
    /// The task is the one asking.
    IsCurrent,
    /// The image stages no version of the task's server by that name.
    NotStaged,
    /// It is serving a request (or not waiting for one), or an earlier update of it is still
    /// within its window: try again.
    Busy,
    /// The version does not read `layout`, which client states may be in.
    Incompatible {
        layout: u32,
    },
    /// A window of no requests, or more than `fault::update::MAX_WINDOW`.
    BadWindow,
    OutOfMemory,
}

/// An update done: the versions and the new generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Updated {
    pub from: u32,
    pub to: u32,
    pub generation: u32,
}

/// Update task `index`, waiting for a request, to its server's version staged as `name`: check
/// that the version reads every layout its clients' states may be in, copy every state its
/// clients keep for it aside (for a rollback), and start the next generation from the staged
/// closure, behind the same endpoints, holding the same captured resources. Callers that
/// arrive meanwhile queue, as during a restart. Until the new version has answered `window`
/// requests, a failure of it rolls the update back ([`roll_back`]); then it is kept
/// ([`keep_updates`]). Not a fault: the restart count stays.
pub(crate) fn update(index: usize, name: &str, window: u32) -> Result<Updated, UpdateError> {
    KERNEL.with(|k| {
        keep_updates(k);
        if index == k.current {
            return Err(UpdateError::IsCurrent);
        }
        let serving = |k: &Kernel| {
            k.tasks.iter().flatten().any(|t| t.call.is_some_and(|c| c.phase == CallPhase::Served(index)))
        };
        let busy = serving(k);
        let t =
            k.task(index).filter(|t| t.supervised && t.version.is_some()).ok_or(UpdateError::NoSuchTask)?;
        let server = t.name;
        if t.state != State::Recv || busy || t.paused || t.update.is_some() {
            return Err(UpdateError::Busy);
        }
        let present = t.layouts.clone();
        let s =
            k.staged.iter().find(|s| s.server == server && s.name == name).ok_or(UpdateError::NotStaged)?;
        if let Some(layout) = fault::update::unreadable(s.version.reads, present.iter().copied()) {
            return Err(UpdateError::Incompatible { layout });
        }
        let (entry, version, entry_name) = (s.entry, s.version, s.entry_name);
        // A layout the list has no room for could not be checked by later updates.
        if !present.contains(&version.writes) && present.is_full() {
            return Err(UpdateError::OutOfMemory);
        }
        // Every client's state as it is now, in the kernel heap.
        let (copies, bytes) =
            crate::mem::heap::in_core(|| copy_kept(k, server)).ok_or(UpdateError::OutOfMemory)?;
        let now = cpu::rdtsc();
        release(k, index);
        crate::chan::server_died(k, index, true);
        let t = k.task(index).expect("checked above");
        let old_entry = core::mem::replace(&mut t.entry, entry);
        let old_entry_name = core::mem::replace(&mut t.entry_name, entry_name);
        let old_version = t.version.replace(version);
        if !t.layouts.contains(&version.writes) {
            // Room checked above.
            let _ = t.layouts.push(version.writes);
        }
        let w = fault::update::Window { base: t.served, requests: window };
        let states = copies.len();
        let u = Update {
            old_entry,
            old_entry_name,
            old_version,
            old_layouts: present,
            window: w,
            copies,
            bytes,
            since: now,
        };
        t.generation += 1;
        t.fault_tsc = now;
        if incarnate(t).is_err() {
            // No memory for the new incarnation: the old version comes back (it fails too if
            // memory is that short, and is held).
            roll_back(k, index, u, FaultKind::Exited, 0);
            return Err(UpdateError::OutOfMemory);
        }
        let (from, generation) = (old_version_number(&u), t.generation);
        t.update = Some(u);
        let line = fault::update::Updated {
            server,
            task: index,
            from,
            to: version.number,
            generation,
            states,
            window,
        };
        // Left out in quiet mode (`bench`'s `los.update`), as restarts are.
        if !k.quiet {
            crate::serial::kprintln!("{}", line);
        }
        Ok(Updated { from, to: version.number, generation })
    })
}

fn old_version_number(u: &Update) -> u32 {
    u.old_version.map_or(0, |v| v.number)
}

/// A copy of every state kept for `server` (see `kept`): where each is, and its bytes.
/// `None` if the kernel heap has no room for them (the update is refused, not a kernel panic:
/// a client may keep a large state).
fn copy_kept(k: &Kernel, server: &str) -> Option<(alloc::vec::Vec<KeptCopy>, alloc::vec::Vec<u8>)> {
    let ours = || k.kept.iter().filter(|e| e.server == server);
    let mut copies = alloc::vec::Vec::new();
    copies.try_reserve_exact(ours().count()).ok()?;
    let mut bytes = alloc::vec::Vec::new();
    bytes.try_reserve_exact(ours().map(|e| e.len).sum()).ok()?;
    for e in ours() {
        copies.push(KeptCopy { entry: *e, at: bytes.len() });
        // SAFETY: a registered entry is the live allocation of a `Kept` of `len` bytes (see
        // `kept::others`), and the kernel is locked: its holder can neither free nor write it.
        let value = unsafe { core::slice::from_raw_parts(e.addr as *const u8, e.len) };
        bytes.extend_from_slice(value);
    }
    Some((copies, bytes))
}

/// The new version of task `i` failed (`kind`) within its update's window; it is released and
/// the requests it was serving (`redeliver`) are back in its queue. Put back every client state
/// that changed since the update, as it was then (its holder still holds it: a client that
/// dropped its state meanwhile is left out), and start the old version again as the next
/// generation. A client that connected during the window keeps what the new version gave it;
/// if the old version cannot read that, the client is told `StateReset`, as for any state a
/// server cannot read.
fn roll_back(k: &mut Kernel, i: usize, u: Update, kind: FaultKind, redeliver: u32) {
    let mut restored = 0;
    for c in &u.copies {
        let e = c.entry;
        let held = k.kept.iter().any(|h| h.addr == e.addr && h.len == e.len && h.owner == e.owner);
        let then = &u.bytes[c.at..c.at + e.len];
        // SAFETY: as in `copy_kept`: a registered entry is a live `Kept` of `len` bytes.
        if !held || unsafe { core::slice::from_raw_parts(e.addr as *const u8, e.len) } == then {
            continue;
        }
        // SAFETY: as above; it lies in its holder's heap (another task's: written with
        // protection lifted), and its holder, not running, reads it only after the lock.
        unprotected(|| unsafe { core::ptr::copy_nonoverlapping(then.as_ptr(), e.addr as *mut u8, e.len) });
        restored += 1;
    }
    let t = k.task(i).expect("the task being rolled back");
    let failed = t.version.map_or(0, |v| v.number);
    t.entry = u.old_entry;
    t.entry_name = u.old_entry_name;
    t.version = u.old_version;
    t.layouts = u.old_layouts.clone();
    t.crash.reset();
    let back_to = old_version_number(&u);
    let (states, tsc) = (u.copies.len(), cpu::rdtsc().saturating_sub(u.since));
    crate::mem::heap::in_core(|| drop(u));
    let name = t.name;
    match restart_now(t) {
        Ok(()) => {
            let generation = t.generation;
            let line = fault::update::RolledBack {
                server: name,
                task: i,
                failed,
                kind,
                tsc,
                back_to,
                generation,
                restored,
                states,
                redeliver,
            };
            crate::serial::kprintln!("{}", line);
        }
        Err(_) => cannot_restart(k, i, name),
    }
}

/// Keep every update whose new version has answered its window's requests: the copies of its
/// clients' states are dropped. Run at every tick and before an update.
pub(crate) fn keep_updates(k: &mut Kernel) {
    for i in 0..MAX_TASKS {
        let Some(t) = k.task(i) else { continue };
        if !t.update.as_ref().is_some_and(|u| u.window.passed(t.served)) {
            continue;
        }
        let u = t.update.take();
        let base = u.as_ref().map_or(0, |u| u.window.base);
        crate::mem::heap::in_core(|| drop(u));
        let (version, answered) = (t.version.map_or(0, |v| v.number), t.served - base);
        let line = fault::update::KeptVersion { server: t.name, task: i, version, answered };
        if !k.quiet {
            crate::serial::kprintln!("{}", line);
        }
    }
}

/// The next incarnation, now. Its restart latency counts from `t.fault_tsc`.
fn restart_now(t: &mut Task) -> Result<(), MapError> {
    t.generation += 1;
    t.restarts += 1;
    incarnate(t)
}

/// Drop what task `i` owned and held (it is not running on its own stack now): the device it
/// drives first (its DMA stops, see `device::quiesce`), then memory, kept state records, its
/// place as an endpoint's receiver.
fn release(k: &mut Kernel, i: usize) {
    crate::device::quiesce(k, i);
    if let Some(t) = k.task(i) {
        t.set_mem(None);
        t.call = None;
        t.receiving = None;
        t.pending = None;
        t.dying = None;
    }
    k.kept.retain(|h| h.owner != i);
    for ep in k.eps.iter_mut() {
        if ep.receiver == Some(i) {
            ep.receiver = None;
        }
    }
}

/// Hold task `i` (until `restart NAME`): everyone queued on its endpoints fails now, and so
/// does every later call.
fn hold(k: &mut Kernel, i: usize) -> usize {
    if let Some(t) = k.task(i) {
        t.state = State::Halted;
    }
    crate::chan::server_halted(k, i)
}

/// The task `i` failed with `fault` (it is not running on its own stack now). Report it,
/// release what it owned, and decide: restart (now or after a back-off), hold, or stop.
pub(crate) fn fail(k: &mut Kernel, i: usize, fault: Fault, frame: Option<&TrapFrame>) {
    let quiet = k.quiet;
    let Some(t) = k.task(i) else { return };
    let (name, generation) = (t.name, t.generation);
    let guard = match (fault.detail, t.guard_page()) {
        (Detail::Exception(e), Some(page)) => page.contains(&e.addr),
        _ => false,
    };
    if !quiet || fault.kind != FaultKind::Killed {
        report::report(name, i, generation, fault, frame, guard);
        if let Detail::Exception(e) = fault.detail {
            report::wild_write(k, i, e);
        }
    }
    // The restart latency counts from here: detection done, report printed.
    let t = k.task(i).expect("still there");
    t.fault_tsc = cpu::rdtsc();
    let served = t.served;
    if let Some(u) = t.update.take_if(|u| !u.window.passed(served)) {
        release(k, i);
        let (suspended, _) = crate::chan::server_died(k, i, true);
        return roll_back(k, i, u, fault.kind, suspended as u32);
    }
    let verdict = t.supervised.then(|| t.crash.fault(t.answered));
    release(k, i);
    let restarting = matches!(verdict, Some(Verdict::Restart { .. }));
    let (suspended, failed) = crate::chan::server_died(k, i, restarting);
    // At most one caller per task: the counts fit.
    let (suspended, failed) = (suspended as u32, failed as u32);
    let what = What(fault);
    let now = k.ticks;
    let t = k.task(i).expect("still there");
    match verdict {
        None => {
            t.state = State::Dead;
            if !quiet {
                crate::serial::kprintln!("{} gen {}: {}; not supervised: stopped", name, generation, what);
            }
        }
        Some(verdict @ Verdict::Hold { .. }) => {
            hold(k, i);
            let decision = Decision { server: name, generation, what, verdict, suspended, failed };
            crate::serial::kprintln!("{}", decision);
        }
        Some(verdict @ Verdict::Restart { delay_ms, .. }) => {
            let started = if delay_ms == 0 {
                restart_now(t)
            } else {
                t.state = State::Restarting;
                t.restart_at = now + ms_to_ticks(delay_ms);
                Ok(())
            };
            match started {
                Ok(()) if !quiet => crate::serial::kprintln!(
                    "{}",
                    Decision { server: name, generation, what, verdict, suspended, failed }
                ),
                Ok(()) => {}
                Err(_) => cannot_restart(k, i, name),
            }
        }
    }
}

fn cannot_restart(k: &mut Kernel, i: usize, name: &str) {
    let failed = hold(k, i);
    crate::serial::kprintln!(
        "cannot restart {}: out of memory; holding {} ({} caller(s) failed)",
        name,
        name,
        failed
    );
}

/// Start the next incarnation of every task whose back-off ended by now (from the timer).
pub(crate) fn restart_due(k: &mut Kernel) {
    let now = k.ticks;
    for i in 0..MAX_TASKS {
        let Some(t) = k.task(i) else { continue };
        if t.state != State::Restarting || t.restart_at > now {
            continue;
        }
        let name = t.name;
        if restart_now(t).is_err() {
            cannot_restart(k, i, name);
        }
    }
}

/// Where a hung task is sent to end itself: it cannot be freed while its stack is in use.
extern "C" fn die_trampoline() -> ! {
    cpu::die_now()
}

/// One timer tick's hang checks. The running task `f` belongs to has run one tick more: a
/// supervised task spinning past `fault::recovery::SPIN_LIMIT_MS` dies when it resumes. Every
/// [`WATCH_PERIOD`] ticks, servers holding a request past `REQUEST_LIMIT_MS` are failed.
pub(crate) fn watchdog(k: &mut Kernel, f: &mut TrapFrame) {
    let now = k.ticks;
    if now.is_multiple_of(WATCH_PERIOD) {
        unanswered(k, now);
    }
    if k.current == IDLE {
        return;
    }
    let t = k.cur();
    if !t.supervised {
        return;
    }
    t.ran_ticks += 1;
    if t.dying.is_some() {
        return;
    }
    if let Some(hang) = Hang::spinning(ticks_to_ms(t.ran_ticks)) {
        // It cannot be killed on its own stack from here: make it die when resumed.
        t.dying = Some(Fault::hang(hang));
        f.rip = die_trampoline as *const () as u64;
        f.rflags &= !RFLAGS_TF;
    }
}

/// Restart servers that hold a request too long while waiting for nothing but new work or a
/// mailbox (so the reply was lost). The running task is left to the spinning check (its stack
/// is in use).
fn unanswered(k: &mut Kernel, now: u64) {
    for c in 0..k.tasks.len() {
        let Some(call) = k.tasks[c].as_ref().and_then(|t| t.call) else { continue };
        let CallPhase::Served(s) = call.phase else { continue };
        if s == k.current {
            continue;
        }
        // A paused server holds its requests because it is paused, not because it lost them.
        let Some(server) = k.tasks[s].as_ref().filter(|t| t.supervised && !t.paused) else { continue };
        // Calling another server or sleeping on the timer: the request is still in hand.
        let waiting = !matches!(server.state, State::Recv | State::Wait | State::Ready);
        if let Some(hang) = Hang::request(ticks_to_ms(now.saturating_sub(call.served_at)), waiting) {
            fail(k, s, Fault::hang(hang), None);
        }
    }
}

/// Kill task `index` now, as a fault from outside: it counts towards a crash loop. Killing the
/// current task ends it at once and does not return.
pub(crate) fn kill(index: usize) -> Result<(), ControlError> {
    let me = KERNEL.with(|k| {
        let current = k.current;
        if index == IDLE {
            return Err(ControlError::NoSuchTask);
        }
        let t = k.task(index).ok_or(ControlError::NoSuchTask)?;
        if t.state.stopped() {
            return Err(ControlError::NotRunning);
        }
        if index == current {
            t.dying = Some(Fault::KILLED);
            return Ok(true);
        }
        fail(k, index, Fault::KILLED, None);
        Ok(false)
    })?;
    if me {
        cpu::die_now();
    }
    Ok(())
}

/// Replace task `index` by a fresh incarnation now, whatever its state (it also brings back a
/// held task, or cuts a back-off short). Not a fault: its crash-loop streak starts again.
pub(crate) fn restart(index: usize) -> Result<u32, ControlError> {
    KERNEL.with(|k| {
        if index == k.current {
            return Err(ControlError::IsCurrent);
        }
        let t = k.task(index).ok_or(ControlError::NoSuchTask)?;
        if !t.supervised {
            return Err(ControlError::NoSuchTask);
        }
        t.crash.reset();
        t.fault_tsc = cpu::rdtsc();
        let name = t.name;
        if !t.state.stopped() {
            release(k, index);
            crate::chan::server_died(k, index, true);
        }
        let t = k.task(index).expect("still there");
        match restart_now(t) {
            Ok(()) => Ok(t.generation),
            Err(_) => {
                cannot_restart(k, index, name);
                Err(ControlError::OutOfMemory)
            }
        }
    })
}

/// Stop scheduling task `index` (`on`), or schedule it again. What it waits for still happens
/// (an answer, a request queued for it); it runs when resumed. Not the idle task, nor the
/// task asking (it could not resume itself).
pub(crate) fn pause(index: usize, on: bool) -> Result<(), ControlError> {
    KERNEL.with(|k| {
        if index == IDLE {
            return Err(ControlError::NoSuchTask);
        }
        if index == k.current {
            return Err(ControlError::IsCurrent);
        }
        k.task(index).ok_or(ControlError::NoSuchTask)?.paused = on;
        Ok(())
    })
}

/// Wait until task `index`'s current incarnation first waited for work (endpoint or mailbox):
/// it is ready to serve. Returns its restart latency (TSC ticks from the fault to that first
/// wait), or `None` if it is halted or dead. A task waiting out a back-off is waited for: this
/// needs the timer running.
pub fn wait_ready(index: usize) -> Option<u64> {
    loop {
        let (done, restart_at) = KERNEL.with(|k| {
            let Some(t) = k.task(index) else { return (Some(None), None) };
            match t.state {
                State::Halted | State::Dead => (Some(None), None),
                State::Restarting => (None, Some(t.restart_at)),
                s => ((t.fault_tsc == 0 && s.blocked()).then_some(t.last_latency), None),
            }
        });
        if let Some(latency) = done {
            return latency;
        }
        match restart_at {
            Some(at) => crate::sched::sleep_until(at),
            None => cpu::yield_now(),
        }
    }
}
