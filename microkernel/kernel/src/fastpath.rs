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

use crate::state::{Blocked, Kernel, Pending, MAX_ENDPOINTS, MAX_SESSIONS};
use axolotl_abi::{Rights, Sysno, TaskState, IPC_BUFFER_SIZE};
use axolotl_kcore::cap::{Capability, Object};
use axolotl_kcore::queue::MAX_TASKS;

/// `i`, an index into a table `len` long that the kernel itself made, told to the compiler as
/// such, so that it drops the bounds checks on the straight path (two instructions each).
/// Indices from user space never come here: only those the kernel wrote into its own state
/// (each use says where from). Debug builds check anyway.
///
/// # Safety
/// `i < len`.
#[inline(always)]
unsafe fn kernel_made(i: usize, len: usize) -> usize {
    debug_assert!(i < len, "a kernel-made index out of range");
    // SAFETY: the caller's contract.
    unsafe { core::hint::assert_unchecked(i < len) };
    i
}

/// Complete the running task `cur`'s syscall on the fastpath if its shape allows. Returns the
/// task that runs next (the receiver of the message), or `None` with nothing changed. The four
/// message words stay in `cur`'s frame: the caller resumes the receiver with
/// `arch::trap::sysret_ipc`, which loads them from there.
#[inline(always)]
pub fn try_ipc(k: &mut Kernel, cur: usize) -> Option<usize> {
    // SAFETY: `cur` is the running task: `cpu.current` holds a task index (`activate` and
    // `charge` set it to tasks they index) or NO_TASK while idle, when no syscall comes.
    let cur = unsafe { kernel_made(cur, MAX_TASKS) };
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
    // One copy of the rest for each kind of capability: a call on an endpoint has no session
    // to test for again.
    match *k.cspaces[cur].slot(slot)? {
        Some(Capability { object: Object::Endpoint(e), rights, badge, .. })
            if rights.contains(Rights::WRITE) =>
        {
            call_on(k, cur, raw, e, None, badge)
        }
        Some(Capability { object: Object::Session(s), rights, badge, .. })
            if rights.contains(Rights::WRITE) =>
        {
            // SAFETY: session capabilities name sessions `connect` found free in the table.
            let session = &k.sessions[unsafe { kernel_made(s as usize, MAX_SESSIONS) }];
            if !session.live {
                return None;
            }
            call_on(k, cur, raw, session.endpoint, Some(s), badge)
        }
        _ => None,
    }
}

#[inline(always)]
fn call_on(k: &mut Kernel, cur: usize, raw: u64, ep: u16, session: Option<u16>, badge: u64) -> Option<usize> {
    // SAFETY: endpoint capabilities name endpoints the loader found free in the table, and a
    // session's endpoint is one of those (`connect`).
    let ep_index = unsafe { kernel_made(ep as usize, MAX_ENDPOINTS) };
    let endpoint = &k.endpoints[ep_index];
    let server = endpoint.receivers.front()?;
    // SAFETY: a queue holds tasks pushed with `push_back`/`push_front`, which index the
    // MAX_TASKS-long `Links` with them.
    let server = unsafe { kernel_made(server, MAX_TASKS) };
    // (A waiting `server` is never the running `cur`; the disjoint borrow below checks it.)
    if endpoint.halted || endpoint.audited || k.tasks[server].reply_to.is_some() || !may_run_now(k, server) {
        return None;
    }
    // SAFETY: session capabilities name sessions `connect` found free in the table.
    let frame = session.map(|s| k.sessions[unsafe { kernel_made(s as usize, MAX_SESSIONS) }].frame);
    let [t, s] = k.tasks.get_disjoint_mut([cur, server]).ok()?;
    // Checked; from here on nothing fails.
    k.endpoints[ep_index].receivers.pop_front(&mut k.links);
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
    // SAFETY: `reply_to` holds the caller's own `id` (`link_call` and `call` below), whose
    // index is that of its control block.
    let caller = unsafe { kernel_made(caller_id.index as usize, MAX_TASKS) };
    let c = &k.tasks[caller];
    let waiting = c.state == TaskState::Calling && c.call_token == token;
    let notified = t.bound_notification.is_some_and(|n| k.notifications[n as usize].bits != 0);
    // SAFETY: as in `call`: endpoint capabilities name endpoints the loader allocated.
    let ep_index = unsafe { kernel_made(ep as usize, MAX_ENDPOINTS) };
    // (A new incarnation's first receive, which must take `fault_tsc`, has no reply to give:
    // `stop_task` cleared `reply_to`, and only a receive sets it again.)
    if !waiting || notified || !k.endpoints[ep_index].senders.is_empty() || !may_run_now(k, caller) {
        return None;
    }
    let [t, c] = k.tasks.get_disjoint_mut([cur, caller]).ok()?;
    // Checked; from here on nothing fails. The server's SSR window is emptied ...
    t.unmap_ssr();
    k.endpoints[ep_index].receivers.push_back(&mut k.links, cur);
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
