//! Synchronous IPC in the L4/seL4 manner, and notifications.
//!
//! ```text
//!  client                         kernel                          server
//!  call(ep, msg) ───────────────► receiver waiting on ep? ──yes──► wakes with msg + badge;
//!    (blocks: Calling)            no: client queues on ep          holds the implicit reply
//!                                                                  (caller id + call token)
//!  wakes with reply ◄──────────── token still matches? ◄────────── reply_recv(ep, reply)
//! ```
//!
//! A message is a label, up to four words in registers and up to [`IPC_BUFFER_SIZE`] bytes copied
//! between the tasks' IPC buffers, optionally with one capability. Every call gets a fresh token,
//! so a reply capability answers exactly the call it was made for: a stale reply (the caller died,
//! was restarted, or was answered already) gets `Dead` instead of reaching the wrong task.

use crate::sched::Done;
use crate::state::{Blocked, Kernel, Pending, Tcb, PAUSED_TOKEN};
use axolotl_abi::{Error, MsgInfo, Rights, TaskState, IPC_BUFFER_SIZE, LABEL_NOTIFICATION};
use axolotl_kcore::TaskId;

impl Tcb {
    /// Give `to` a message from this task: `len` payload bytes (within the IPC buffer size)
    /// copied between the IPC buffers, this task's four message words, and `info` and `badge`
    /// in `to`'s registers (`rax` = 0: the receive succeeded).
    #[inline(always)]
    pub fn send_message(&self, to: &mut Tcb, len: usize, info: u64, badge: u64) {
        self.send_message_but_words(to, len, info, badge);
        let (f, t) = (&self.ctx, &mut to.ctx);
        [t.rdx, t.r10, t.r8, t.r9] = [f.rdx, f.r10, f.r8, f.r9];
    }

    /// [`send_message`](Self::send_message) without the four message words: the IPC fastpath
    /// leaves them in this task's frame, and the exit stub loads them from there into `to`'s
    /// registers (`arch::trap::sysret_ipc`).
    #[inline(always)]
    pub fn send_message_but_words(&self, to: &mut Tcb, len: usize, info: u64, badge: u64) {
        if len > 0 {
            // SAFETY: both are IPC-buffer frames owned by their (distinct, live) tasks, identity
            // mapped; the callers bound `len` by the buffer size.
            unsafe {
                core::ptr::copy_nonoverlapping(self.ipc_buffer as *const u8, to.ipc_buffer as *mut u8, len)
            };
        }
        let t = &mut to.ctx;
        t.rax = 0;
        t.rdi = badge;
        t.rsi = info;
    }
}

impl Kernel {
    /// Copy a message from `from` to `to` and write it into `to`'s registers. A message sent
    /// through a session maps that session's SSR into the receiver's window.
    fn deliver(&mut self, from: usize, to: usize, info: MsgInfo, badge: u64, session: Option<u16>) {
        if let Some(s) = session {
            self.map_ssr(to, s);
        }
        let len = (info.len as usize).min(IPC_BUFFER_SIZE);
        let mut delivered =
            MsgInfo { redelivered: info.redelivered, ..MsgInfo::with_len(info.label, len as u16) };
        if let (Some(src), Some(dst)) = (info.cap, self.tasks[to].recv_slot) {
            if self.transfer_cap(from, src, to, dst, info.move_cap).is_ok() {
                delivered.cap = Some(dst);
            }
        }
        // A task is never both the running sender and a waiting receiver: the two differ.
        if let Ok([f, t]) = self.tasks.get_disjoint_mut([from, to]) {
            f.send_message(t, len, delivered.encode(), badge);
        }
    }

    fn transfer_cap(
        &mut self,
        from: usize,
        src: u8,
        to: usize,
        dst: u8,
        move_cap: bool,
    ) -> Result<(), Error> {
        self.cspaces[to].check_free(dst as u64)?;
        let cap = if move_cap {
            self.cspaces[from].take(src as u64)?
        } else {
            let id = self.new_cap_id();
            self.cspaces[from].get(src as u64)?.derive(Rights::ALL, 0, id)?
        };
        self.cspaces[to].insert(dst as u64, cap)
    }

    /// `caller` now waits for `server`'s reply.
    fn link_call(&mut self, caller: usize, server: usize) {
        if let Some((old, _)) = self.tasks[server].reply_to.take() {
            // The server took a new call without answering or saving the old one: that caller
            // would wait forever, so it gets an error now.
            if let Some(o) = self.resolve(old) {
                if self.tasks[o].state == TaskState::Calling
                    && self.tasks[o].blocked == Blocked::Reply(server as u16)
                {
                    self.fail_blocked(o, Error::ServerFailed);
                }
            }
        }
        let token = self.new_token();
        let c = &mut self.tasks[caller];
        // A paused caller whose call was queued (a server restarted under it) is taken now.
        c.call_token = if c.paused { token | PAUSED_TOKEN } else { token };
        c.state = TaskState::Calling;
        c.blocked = Blocked::Reply(server as u16);
        self.tasks[server].reply_to = Some((self.tasks[caller].id, token));
        self.tasks[server].request_tick = self.ticks;
        // A server taking a queued call in `recv` runs on: from now on, for the caller.
        self.settle();
    }

    /// Send (or call, when `is_call`) on endpoint `ep`, maybe through a session. The message was
    /// validated by the caller.
    pub fn send(
        &mut self,
        cur: usize,
        ep: u16,
        info: MsgInfo,
        badge: u64,
        is_call: bool,
        session: Option<u16>,
    ) -> Done {
        // Remember the call in full: if the server faults, it is delivered again from here.
        self.tasks[cur].pending = Pending { info: info.encode(), badge, ep, session, is_call };
        if let Some(r) = self.endpoints[ep as usize].receivers.pop_front(&mut self.links) {
            self.audit_request(r, cur, badge);
            self.deliver(cur, r, info, badge, session);
            if is_call {
                // The caller blocks: hand the CPU straight to the server (no run-queue trip).
                self.link_call(cur, r);
                return Done::Handoff(r);
            }
            self.make_ready(r);
            return Done::Value(0, 0);
        }
        let t = &mut self.tasks[cur];
        t.state = TaskState::Sending;
        t.blocked = Blocked::Endpoint(ep);
        self.endpoints[ep as usize].senders.push_back(&mut self.links, cur);
        Done::Blocked
    }

    /// Receive on endpoint `ep`; a capability may arrive in `recv_slot`. Whatever request the
    /// task served before is over, so its SSR window is emptied first.
    pub fn recv(&mut self, cur: usize, ep: u16, recv_slot: Option<u8>) -> Done {
        self.unmap_ssr(cur);
        if let Some(at) = self.tasks[cur].fault_tsc.take() {
            let kept = self.sessions.iter().filter(|s| s.live && s.endpoint == ep).count();
            let took = x86::cpu::rdtsc().saturating_sub(at);
            self.tasks[cur].recovery_tsc = took;
            let t = &self.tasks[cur];
            // After an update the shell that asked reports the time (`TaskInfo::recovery_tsc`):
            // a figure printed here would change the instructions `mk.update` counts with its
            // number of digits.
            if self.updates[cur].is_none() {
                crate::kprintln!(
                    "{} gen {} ready: {} TSC ticks from its predecessor's fault to its first recv; {} sessions kept",
                    t.name(),
                    t.id.generation,
                    took,
                    kept
                );
            }
        }
        if let Some(n) = self.tasks[cur].bound_notification {
            if self.notifications[n as usize].bits != 0 {
                self.deliver_notification(cur, n);
                return Done::Delivered;
            }
        }
        self.tasks[cur].recv_slot = recv_slot;
        if let Some(s) = self.endpoints[ep as usize].senders.pop_front(&mut self.links) {
            let p = self.tasks[s].pending;
            // A call put back for the next incarnation says so to the server.
            let info = MsgInfo { redelivered: self.tasks[s].retried, ..p.info() };
            self.audit_request(cur, s, p.badge);
            self.deliver(s, cur, info, p.badge, p.session);
            if p.is_call {
                self.link_call(s, cur);
            } else {
                self.tasks[s].ctx.rax = 0;
                self.make_ready(s);
            }
            return Done::Delivered;
        }
        let t = &mut self.tasks[cur];
        t.state = TaskState::Receiving;
        t.blocked = Blocked::Endpoint(ep);
        self.endpoints[ep as usize].receivers.push_back(&mut self.links, cur);
        Done::Blocked
    }

    /// The index of the task that made the call (`caller`, `token`), if it still waits for
    /// the answer.
    pub fn awaits_answer(&self, caller: TaskId, token: u64) -> Option<usize> {
        self.resolve(caller).filter(|&c| {
            self.tasks[c].state == TaskState::Calling && self.tasks[c].call_token & !PAUSED_TOKEN == token
        })
    }

    /// Answer the call identified by (`caller`, `token`) with a message from `from`.
    pub fn answer(&mut self, from: usize, caller: TaskId, token: u64, info: MsgInfo) -> Result<(), Error> {
        let c = self.answer_unqueued(from, caller, token, info)?;
        self.make_ready(c);
        Ok(())
    }

    /// Like [`answer`](Self::answer), but leave the caller ready *without* queueing it; the
    /// caller of this function must queue it or hand the CPU to it ([`Done::Handoff`]).
    /// Returns it.
    pub fn answer_unqueued(
        &mut self,
        from: usize,
        caller: TaskId,
        token: u64,
        info: MsgInfo,
    ) -> Result<usize, Error> {
        let c = self.awaits_answer(caller, token).ok_or(Error::Dead)?;
        self.tasks[c].recv_slot = None;
        self.tasks[c].retried = false;
        self.tasks[from].answered += 1;
        self.deliver(from, c, info, 0, None);
        self.tasks[c].state = TaskState::Ready;
        self.tasks[c].blocked = Blocked::Nothing;
        Ok(c)
    }

    fn deliver_notification(&mut self, t: usize, n: u16) {
        self.audit_notification(t);
        let bits = core::mem::take(&mut self.notifications[n as usize].bits);
        let c = &mut self.tasks[t].ctx;
        c.rax = 0;
        c.rdi = 0;
        c.rsi = MsgInfo::new(LABEL_NOTIFICATION).encode();
        c.rdx = bits;
    }

    /// Set `bits` on notification `n` and wake a waiter or the bound receiver.
    pub fn signal(&mut self, n: u16, bits: u64) {
        self.notifications[n as usize].bits |= bits;
        if let Some(w) = (0..self.tasks.len()).find(|&t| {
            self.tasks[t].state == TaskState::Waiting && self.tasks[t].blocked == Blocked::Notification(n)
        }) {
            let bits = core::mem::take(&mut self.notifications[n as usize].bits);
            self.tasks[w].ctx.rax = 0;
            self.tasks[w].ctx.rdi = bits;
            self.make_ready(w);
            return;
        }
        if let Some(b) = self.notifications[n as usize].bound {
            let b = b as usize;
            if let (TaskState::Receiving, Blocked::Endpoint(ep)) =
                (self.tasks[b].state, self.tasks[b].blocked)
            {
                self.endpoints[ep as usize].receivers.remove(&mut self.links, b);
                self.deliver_notification(b, n);
                self.make_ready(b);
            }
        }
    }

    /// Wait on notification `n`.
    pub fn wait(&mut self, cur: usize, n: u16) -> Done {
        let bits = core::mem::take(&mut self.notifications[n as usize].bits);
        if bits != 0 {
            return Done::Value(bits, 0);
        }
        self.tasks[cur].state = TaskState::Waiting;
        self.tasks[cur].blocked = Blocked::Notification(n);
        Done::Blocked
    }
}
