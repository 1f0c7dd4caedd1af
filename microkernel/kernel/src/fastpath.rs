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

use crate::state::{Blocked, Kernel, Pending};
use axolotl_abi::{Rights, Sysno, TaskState, IPC_BUFFER_SIZE};
use axolotl_kcore::cap::{Capability, Object};

/// Complete the running task `cur`'s syscall on the fastpath if its shape allows. Returns the
/// task that runs next (the receiver of the message), or `None` with nothing changed. The four
/// message words stay in `cur`'s frame: the caller resumes the receiver with
/// `arch::trap::sysret_ipc`, which loads them from there.
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
    !k.run.any_in(k.tasks[t].outranked_by)
}

#[inline(always)]
fn call(k: &mut Kernel, cur: usize, slot: u64, raw: u64) -> Option<usize> {
    let (ep, session, badge) = match *k.cspaces[cur].slot(slot)? {
        Some(Capability { object: Object::Endpoint(e), rights, badge, .. })
            if rights.contains(Rights::WRITE) =>
        {
            (e, None, badge)
        }
        Some(Capability { object: Object::Session(s), rights, badge, .. })
            if rights.contains(Rights::WRITE) && k.sessions[s as usize].live =>
        {
            (k.sessions[s as usize].endpoint, Some(s), badge)
        }
        _ => return None,
    };
    let endpoint = &k.endpoints[ep as usize];
    let server = endpoint.receivers.front()?;
    // (A waiting `server` is never the running `cur`; the disjoint borrow below checks it.)
    if endpoint.halted || endpoint.audited || k.tasks[server].reply_to.is_some() || !may_run_now(k, server) {
        return None;
    }
    let frame = session.map(|s| k.sessions[s as usize].frame);
    let [t, s] = k.tasks.get_disjoint_mut([cur, server]).ok()?;
    // Checked; from here on nothing fails.
    k.endpoints[ep as usize].receivers.pop_front(&mut k.links);
    if let (Some(session), Some(frame)) = (session, frame) {
        s.map_ssr(session, frame);
    }
    t.syscalls += 1;
    t.spin_ticks = 0;
    // Remembered in full: if the server faults, the call is delivered again from here.
    t.pending = Pending { info: raw, badge, ep, session, is_call: true };
    t.state = TaskState::Calling;
    t.blocked = Blocked::Reply(server as u16);
    t.send_message_but_words(s, (raw >> 32) as usize, raw, badge);
    // `new_token`, inlined: the TCBs are borrowed.
    t.call_token = k.next_token;
    k.next_token += 1;
    s.reply_to = Some((t.id, t.call_token));
    s.request_tick = k.ticks;
    s.state = TaskState::Ready;
    s.blocked = Blocked::Nothing;
    Some(server)
}

#[inline(always)]
fn reply_recv(k: &mut Kernel, cur: usize, slot: u64, raw: u64) -> Option<usize> {
    let ep = match k.cspaces[cur].slot(slot)? {
        Some(Capability { object: Object::Endpoint(e), rights, .. }) if rights.contains(Rights::READ) => *e,
        _ => return None,
    };
    let t = &k.tasks[cur];
    let (caller_id, token) = t.reply_to?;
    // Tokens are never reused, so a task (at this index) still calling with this token is that
    // very caller, in the same incarnation: no need to compare generations as `resolve` does.
    // (Nor to compare it with `cur`, which is running, not calling.)
    let caller = caller_id.index as usize;
    let c = k.tasks.get(caller)?;
    let waiting = c.state == TaskState::Calling && c.call_token == token;
    let notified = t.bound_notification.is_some_and(|n| k.notifications[n as usize].bits != 0);
    if !waiting
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
    t.send_message_but_words(c, (raw >> 32) as usize, raw, 0);
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
