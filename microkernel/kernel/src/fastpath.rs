//! The IPC fastpath, after seL4's `fastpath_call` and `fastpath_reply_recv`.
//!
//! Most protected calls are the same two steps: a client `call`s a server that already waits
//! in `reply_recv`, and the server answers with `reply_recv` and waits again. For exactly those
//! shapes this module checks every precondition up front (no side effects), then does the
//! whole transfer and switches straight to the other task:
//!
//! ```text
//!  call(ep | session)              reply_recv(ep)
//!   message without capability      reply without capability, no receive slot
//!   a receiver waits on ep          the caller still waits for this very reply (token)
//!   it owes no other reply          nobody queued on ep, no notification pending
//!   it may run now (priority)       the caller may run now (priority)
//! ```
//!
//! Anything else — a capability in the message, an empty queue, a halted endpoint, a higher-
//! priority task ready, a pending notification, a new incarnation's first receive — returns
//! `None` and the general path in `syscall` handles it with the same result. The fastpath skips
//! no rule: it only skips re-deciding, per call, what the general path must decide in general.

use crate::state::{Blocked, Kernel};
use axolotl_abi::{MsgInfo, Rights, Sysno, TaskState, IPC_BUFFER_SIZE};
use axolotl_kcore::cap::Object;

/// Complete the running task `cur`'s syscall on the fastpath if its shape allows. Returns the
/// task that runs next (the receiver of the message), or `None` with nothing changed.
#[inline(always)]
pub fn try_ipc(k: &mut Kernel, cur: usize) -> Option<usize> {
    let c = &k.tasks[cur].ctx;
    let (nr, slot, raw) = (c.rax, c.rdi, c.rsi);
    // Only a label and a payload length: no capability, no flags, no reserved bits.
    if raw >> 48 != 0 || (raw >> 32) as usize > IPC_BUFFER_SIZE {
        return None;
    }
    if nr == Sysno::Call as u64 {
        call(k, cur, slot, raw)
    } else if nr == Sysno::ReplyRecv as u64 {
        reply_recv(k, cur, slot, raw)
    } else {
        None
    }
}

/// Whether `t`, made ready now, may run before every task already waiting in the run queues.
#[inline(always)]
fn may_run_now(k: &Kernel, t: usize) -> bool {
    let task = &k.tasks[t];
    k.run.top_priority().is_none_or(|top| top <= task.priority) && crate::sched::is_canonical(task.ctx.rip)
}

#[inline(always)]
fn call(k: &mut Kernel, cur: usize, slot: u64, raw: u64) -> Option<usize> {
    let cap = *k.cspaces[cur].get(slot).ok()?;
    if !cap.rights.contains(Rights::WRITE) {
        return None;
    }
    let (ep, session) = match cap.object {
        Object::Endpoint(e) => (e, None),
        Object::Session(s) if k.sessions[s as usize].live => (k.sessions[s as usize].endpoint, Some(s)),
        _ => return None,
    };
    let endpoint = &k.endpoints[ep as usize];
    let server = endpoint.receivers.front()?;
    // (A waiting `server` is never the running `cur`; the disjoint borrow below relies on it.)
    if endpoint.halted || server == cur || k.tasks[server].reply_to.is_some() || !may_run_now(k, server) {
        return None;
    }
    let frame = session.map(|s| k.sessions[s as usize].frame);
    let ticks = k.ticks;
    let [t, s] = k.tasks.get_disjoint_mut([cur, server]).ok()?;
    // Checked; from here on nothing fails.
    k.endpoints[ep as usize].receivers.pop_front(&mut k.links);
    let token = k.next_token; // `new_token`, inlined: the TCBs are borrowed
    k.next_token += 1;
    if let (Some(session), Some(frame)) = (session, frame) {
        s.map_ssr(session, frame);
    }
    t.syscalls += 1;
    t.spin_ticks = 0;
    // Remembered in full: if the server faults, the call is delivered again from here.
    t.pending = MsgInfo::with_len(raw as u32, (raw >> 32) as u16);
    t.pending_badge = cap.badge;
    t.pending_is_call = true;
    t.pending_session = session;
    t.pending_ep = ep;
    t.call_token = token;
    t.state = TaskState::Calling;
    t.blocked = Blocked::Reply(server as u16);
    t.send_message(s, (raw >> 32) as usize, raw, cap.badge);
    s.reply_to = Some((t.id, token));
    s.request_tick = ticks;
    s.state = TaskState::Ready;
    s.blocked = Blocked::Nothing;
    Some(server)
}

#[inline(always)]
fn reply_recv(k: &mut Kernel, cur: usize, slot: u64, raw: u64) -> Option<usize> {
    let cap = k.cspaces[cur].get(slot).ok()?;
    let ep = match cap.object {
        Object::Endpoint(e) if cap.rights.contains(Rights::READ) => e,
        _ => return None,
    };
    let t = &k.tasks[cur];
    let (caller_id, token) = t.reply_to?;
    let caller = k.resolve(caller_id)?;
    let waiting = k.tasks[caller].state == TaskState::Calling && k.tasks[caller].call_token == token;
    let notified = t.bound_notification.is_some_and(|n| k.notifications[n as usize].bits != 0);
    if !waiting
        || caller == cur
        || notified
        || t.fault_tsc.is_some()
        || !k.endpoints[ep as usize].senders.is_empty()
        || !may_run_now(k, caller)
    {
        return None;
    }
    let [t, c] = k.tasks.get_disjoint_mut([cur, caller]).ok()?;
    // Checked; from here on nothing fails. The server's SSR window is emptied ...
    t.unmap_ssr();
    k.endpoints[ep as usize].receivers.push_back(&mut k.links, cur);
    // ... the answer goes to the caller ...
    t.send_message(c, (raw >> 32) as usize, raw, 0);
    c.recv_slot = None;
    c.retried = false;
    c.state = TaskState::Ready;
    c.blocked = Blocked::Nothing;
    // ... and the server waits again.
    t.syscalls += 1;
    t.spin_ticks = 0;
    t.answered += 1;
    t.reply_to = None;
    t.recv_slot = None;
    t.state = TaskState::Receiving;
    t.blocked = Blocked::Endpoint(ep);
    Some(caller)
}
