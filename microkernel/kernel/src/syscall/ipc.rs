//! The IPC syscalls: `call`, `send`, `reply_recv`, `recv`, `save_reply`, and the notification
//! ones (`signal`, `wait`, `bind_notification`). The transfer itself is `crate::ipc`'s.

use super::{endpoint, notification, Args, Syscall};
use crate::sched::Done;
use crate::state::Kernel;
use axolotl_abi::{Error, MsgInfo, Rights};
use axolotl_kcore::cap::{Capability, Object};
use axolotl_kcore::TaskId;

/// Where a `send` or `call` goes.
enum Target {
    /// A saved reply capability (send only): answer that call. `waiting` is whether its caller
    /// still waits for it; the capability is used up either way.
    Reply { slot: u64, caller: TaskId, token: u64, waiting: bool },
    /// An endpoint, maybe through a session (whose SSR the server then sees).
    Endpoint { ep: u16, badge: u64, session: Option<u16> },
}

/// `call(cap, info, mr0..3)` (`CALL`) and `send(...)`: the same message to the same kinds of
/// target, decoded alike; only a `send` may answer through a saved reply capability.
pub struct Transfer<const CALL: bool> {
    target: Target,
    info: MsgInfo,
}

pub type Call = Transfer<true>;
pub type Send = Transfer<false>;

impl<const CALL: bool> Syscall for Transfer<CALL> {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let info = MsgInfo::decode(a[1])?;
        let cap = *k.cspaces[cur].get(a[0])?;
        let target = match cap.object {
            Object::Reply { caller, token } if !CALL => {
                if !cap.rights.contains(Rights::WRITE) {
                    return Err(Error::NoRights);
                }
                if info.cap.is_some() {
                    return Err(Error::InvalidArgument);
                }
                Target::Reply { slot: a[0], caller, token, waiting: k.awaits_answer(caller, token).is_some() }
            }
            Object::Session(s) => {
                if !cap.rights.contains(Rights::WRITE) || info.cap.is_some() {
                    return Err(Error::NoRights);
                }
                let session = &k.sessions[s as usize];
                if !session.live {
                    return Err(Error::Dead);
                }
                if k.endpoints[session.endpoint as usize].halted {
                    return Err(Error::ServerFailed);
                }
                Target::Endpoint { ep: session.endpoint, badge: cap.badge, session: Some(s) }
            }
            _ => {
                let (ep, badge) = endpoint(k, cur, a[0], Rights::WRITE)?;
                if k.endpoints[ep as usize].halted {
                    return Err(Error::ServerFailed);
                }
                if let Some(slot) = info.cap {
                    if !cap.rights.contains(Rights::GRANT) {
                        return Err(Error::NoRights);
                    }
                    k.cspaces[cur].get(slot as u64)?;
                }
                Target::Endpoint { ep, badge, session: None }
            }
        };
        Ok(Transfer { target, info })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        match self.target {
            Target::Reply { slot, caller, token, waiting } => {
                k.cspaces[cur].take(slot)?;
                if !waiting {
                    return Err(Error::Dead);
                }
                k.answer(cur, caller, token, self.info)?;
                Ok(Done::Value(0, 0))
            }
            Target::Endpoint { ep, badge, session } => Ok(k.send(cur, ep, self.info, badge, CALL, session)),
        }
    }
}

/// `reply_recv(ep, info, mr0..3)`: answer the pending caller (if it still waits), then wait on
/// `ep`. Replies carry no capabilities: the info word's cap field names the slot where one sent
/// with the *next* message may land.
pub struct ReplyRecv {
    ep: u16,
    info: MsgInfo,
    recv_slot: Option<u8>,
}

impl Syscall for ReplyRecv {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let ep = endpoint(k, cur, a[0], Rights::READ)?.0;
        let mut info = MsgInfo::decode(a[1])?;
        let recv_slot = info.cap.take();
        if let Some(slot) = recv_slot {
            k.cspaces[cur].check_free(slot as u64)?;
        }
        info.move_cap = false;
        Ok(ReplyRecv { ep, info, recv_slot })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        // A caller that died meanwhile simply gets no answer, as in seL4.
        let answered = k.tasks[cur]
            .reply_to
            .take()
            .and_then(|(c, token)| k.answer_unqueued(cur, c, token, self.info).ok());
        let done = k.recv(cur, self.ep, self.recv_slot);
        Ok(match (answered, done) {
            // The server waits now: run the caller directly, as seL4's fastpath does (unless it
            // is paused: then `make_ready` leaves it off the run queues).
            (Some(c), Done::Blocked) if !k.tasks[c].paused => Done::Handoff(c),
            (Some(c), done) => {
                k.make_ready(c);
                done
            }
            (None, done) => done,
        })
    }
}

/// `recv(ep, info)`: wait for a message (or a bound notification); a capability sent with it
/// may land in the slot the info word names.
pub struct Recv {
    ep: u16,
    slot: Option<u8>,
}

impl Syscall for Recv {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let ep = endpoint(k, cur, a[0], Rights::READ)?.0;
        let info = MsgInfo::decode(a[1])?;
        if let Some(slot) = info.cap {
            k.cspaces[cur].check_free(slot as u64)?;
        }
        Ok(Recv { ep, slot: info.cap })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        Ok(k.recv(cur, self.ep, self.slot))
    }
}

/// `save_reply(slot)`: park the implicit reply capability in a slot, to answer later.
pub struct SaveReply {
    slot: u64,
    caller: TaskId,
    token: u64,
}

impl Syscall for SaveReply {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        k.cspaces[cur].check_free(a[0])?;
        let (caller, token) = k.tasks[cur].reply_to.ok_or(Error::NoReplyPending)?;
        Ok(SaveReply { slot: a[0], caller, token })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let id = k.new_cap_id();
        let reply = Capability::original(
            Object::Reply { caller: self.caller, token: self.token },
            Rights::WRITE,
            0,
            id,
        );
        k.cspaces[cur].insert(self.slot, reply)?;
        k.tasks[cur].reply_to = None;
        k.settle();
        // The request is parked: until it is answered, its client's SSR is out of reach.
        k.unmap_ssr(cur);
        Ok(Done::Value(0, 0))
    }
}

/// `signal(ntfn, bits)`.
pub struct Signal {
    n: u16,
    bits: u64,
}

impl Syscall for Signal {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let n = notification(k, cur, a[0], Rights::WRITE)?;
        if a[1] == 0 {
            return Err(Error::InvalidArgument);
        }
        Ok(Signal { n, bits: a[1] })
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        k.signal(self.n, self.bits);
        Ok(Done::Value(0, 0))
    }
}

/// `wait(ntfn)`.
pub struct Wait(u16);

impl Syscall for Wait {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        notification(k, cur, a[0], Rights::READ).map(Wait)
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        Ok(k.wait(cur, self.0))
    }
}

/// `bind_notification(ntfn)`: `recv` on any endpoint also wakes for this notification.
pub struct BindNotification(u16);

impl Syscall for BindNotification {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let n = notification(k, cur, a[0], Rights::READ)?;
        match k.notifications[n as usize].bound {
            Some(b) if b as usize != cur => Err(Error::AlreadyDone),
            _ => Ok(BindNotification(n)),
        }
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        if let Some(old) = k.tasks[cur].bound_notification.replace(self.0) {
            k.notifications[old as usize].bound = None;
        }
        k.notifications[self.0 as usize].bound = Some(cur as u16);
        Ok(Done::Value(0, 0))
    }
}
