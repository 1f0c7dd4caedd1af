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
use crate::state::{Blocked, Kernel, PAUSED_TOKEN};
use axolotl_abi::{Error, FaultKind, FaultRecord, TaskState};
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
