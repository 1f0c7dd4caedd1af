//! The supervision watchdog, run on every timer tick: start the delayed restarts that are due
//! (a crash loop's back-off), and catch hung tasks with the shared hang predicate
//! (`fault::recovery::Hang`): a supervised task that runs 1 s without a syscall, or a server
//! that holds a request 2 s without answering it while it waits for no other server.

use crate::state::{ticks_to_ms, Blocked, Kernel};
use axolotl_abi::{FaultKind, TaskState};
use fault::recovery::Hang;

/// One timer tick's supervision; `running` is the task the tick interrupted (or `NO_TASK`).
pub fn tick(k: &mut Kernel, running: usize) {
    crate::lifecycle::keep_updates(k);
    for t in 0..k.tasks.len() {
        if k.tasks[t].state == TaskState::Restarting && k.ticks >= k.tasks[t].restart_at {
            let _ = crate::lifecycle::restart_task(k, t, 0);
        }
    }
    for t in 0..k.tasks.len() {
        let task = &k.tasks[t];
        if !task.supervised || task.state.is_stopped() || task.reply_to.is_none() {
            continue;
        }
        // Waiting for another server leaves the blame with that server: one that has taken
        // its call, or one it is queued for while that server is busy or being restarted (a
        // crash loop's back-off is the failing server's delay, not its client's). Any other way
        // of not answering (running, queued on an endpoint nobody serves — even its own —,
        // waiting on a notification) is this server's hang.
        let waiting_on_server = match (task.state, task.blocked) {
            (TaskState::Calling | TaskState::Receiving, _) => true,
            (TaskState::Sending, Blocked::Endpoint(e)) => k.server_of(e).is_some_and(|s| s != t),
            _ => false,
        };
        let held = ticks_to_ms(k.ticks.saturating_sub(task.request_tick));
        if let Some(hang) = Hang::request(held, waiting_on_server) {
            report(k, t, hang);
        }
    }
    if running < k.tasks.len() && k.tasks[running].state == TaskState::Ready {
        let task = &mut k.tasks[running];
        task.spin_ticks += 1;
        if task.supervised || task.supervisor {
            if let Some(hang) = Hang::spinning(ticks_to_ms(task.spin_ticks)) {
                report(k, running, hang);
            }
        }
    }
}

fn report(k: &mut Kernel, t: usize, hang: Hang) {
    let task = &k.tasks[t];
    crate::kprintln!(
        "HANG in {} (task {}, gen {}): {}, at rip {:#x}",
        task.name(),
        t,
        task.id.generation,
        hang,
        task.ctx.rip
    );
    crate::lifecycle::task_failed(k, t, FaultKind::Hang, 0, 0, 0);
}
