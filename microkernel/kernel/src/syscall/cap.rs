//! The capability syscalls: `cap_copy`, `cap_delete`, `cap_revoke`, `cap_info`, and the
//! session ones, `connect` (a session and its SSR) and `ssr_read` (another session's SSR,
//! through an SsrView capability).

use super::{Args, Syscall};
use crate::object::{finalise, needs_finalise};
use crate::paging::UserSlice;
use crate::sched::Done;
use crate::state::Kernel;
use axolotl_abi::{CapType, Error, Rights, SSR_SIZE};
use axolotl_kcore::cap::{self, Capability, Object};

/// `cap_copy(src, dst, rights, badge)`: a child capability with fewer rights (and, for an
/// unbadged endpoint, a badge).
pub struct CapCopy {
    dst: u64,
    child: Capability,
}

impl Syscall for CapCopy {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let src = k.cspaces[cur].get(a[0])?;
        k.cspaces[cur].check_free(a[1])?;
        // Its id is given when it is made, in `invoke`.
        let child = src.derive(Rights::from_bits_truncate(a[2]), a[3], 0)?;
        Ok(CapCopy { dst: a[1], child })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let child = Capability { id: k.new_cap_id(), ..self.child };
        k.cspaces[cur].insert(self.dst, child)?;
        Ok(Done::Value(0, 0))
    }
}

/// `cap_delete(slot)`.
pub struct CapDelete(u64);

impl Syscall for CapDelete {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        k.cspaces[cur].get(a[0])?;
        Ok(CapDelete(a[0]))
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let gone = cap::delete(&mut k.cspaces, cur, self.0)?;
        finalise(k, cur, &gone);
        Ok(Done::Value(0, 0))
    }
}

/// `cap_revoke(slot)`: delete everything derived from the capability, in every task.
pub struct CapRevoke(u64);

impl Syscall for CapRevoke {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        Ok(CapRevoke(k.cspaces[cur].get(a[0])?.id))
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        let mut undo: heapless::Vec<(usize, Capability), 64> = heapless::Vec::new();
        let mut overflow = false;
        let n = cap::revoke(&mut k.cspaces, self.0, &mut k.revoke_scratch, |t, c| {
            if needs_finalise(&c.object) && undo.push((t, c)).is_err() {
                overflow = true;
            }
        });
        for (t, c) in &undo {
            finalise(k, *t, c);
        }
        if overflow {
            crate::kprintln!("revoke: more than 64 port/memory/session capabilities; some stay enabled");
        }
        Ok(Done::Value(n as u64, 0))
    }
}

/// `cap_info(slot)`: its type, and its rights with the badge above them.
pub struct CapInfo(u64, u64);

impl Syscall for CapInfo {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let c = k.cspaces[cur].get(a[0])?;
        Ok(CapInfo(c.object.cap_type() as u64, c.rights.bits() as u64 | c.badge << 8))
    }

    fn invoke(self, _k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        Ok(Done::Value(self.0, self.1))
    }
}

/// `connect(ep, slot)`: a session with the server behind the endpoint, its SSR charged to the
/// caller's quota.
pub struct Connect {
    ep: u16,
    via: u64,
    dst: u64,
}

impl Syscall for Connect {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let c = k.cspaces[cur].lookup(a[0], CapType::Endpoint, Rights::WRITE)?;
        let (Object::Endpoint(ep), via) = (c.object, c.id) else { return Err(Error::WrongType) };
        k.cspaces[cur].check_free(a[1])?;
        let task = &k.tasks[cur];
        if task.ssr_used >= task.ssr_quota {
            return Err(Error::QuotaExceeded);
        }
        if k.sessions.iter().all(|s| s.live) {
            return Err(Error::OutOfResources);
        }
        Ok(Connect { ep, via, dst: a[1] })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let badge = k.connect(cur, self.ep, self.via, self.dst)?;
        Ok(Done::Value(badge, 0))
    }
}

/// `ssr_read(view, index, out, len)`: copy session `index`'s SSR of the view's endpoint.
pub struct SsrRead {
    session: usize,
    out: UserSlice,
}

impl Syscall for SsrRead {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let Object::SsrView(ep) = k.cspaces[cur].lookup(a[0], CapType::SsrView, Rights::READ)?.object else {
            return Err(Error::WrongType);
        };
        if a[3] > SSR_SIZE as u64 {
            return Err(Error::TooLong);
        }
        let index = usize::try_from(a[1]).map_err(|_| Error::InvalidArgument)?;
        let s = k.sessions.get(index).ok_or(Error::InvalidArgument)?;
        if !s.live || s.endpoint != ep {
            return Err(Error::Dead);
        }
        let out = k.tasks[cur].space().user_slice(a[2], a[3], true)?;
        Ok(SsrRead { session: index, out })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let badge = k.ssr_read(cur, self.session, self.out)?;
        Ok(Done::Value(badge, 0))
    }
}
