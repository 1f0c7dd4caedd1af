//! Sessions and their Server State Regions (SSRs), in the CuriOS manner.
//!
//! ```text
//!  client ── connect(ep) ──► kernel: new session s, one zeroed page charged to the client
//!  client ── call(session s) ──► server wakes; kernel maps s's page at SSR_WINDOW in the server
//!  server ── reply_recv / save_reply ──► kernel unmaps the window (and flushes the TLB entry)
//! ```
//!
//! The page belongs to the session, not to the server's address space: it survives the server
//! and every one of its restarts, and is freed only when the client closes the session or dies.
//! Outside a request, and during another client's request, the server cannot reach it.

use crate::paging::{clear_user_page, map_user_page, UserSlice};
use crate::state::{Kernel, Tcb};
use axolotl_abi::{session_badge, Error, Rights, SSR_SIZE, SSR_WINDOW};
use axolotl_kcore::cap::{Capability, Object};

impl Tcb {
    /// Map session `s`'s SSR page (`frame`) into this task's window.
    #[inline]
    pub fn map_ssr(&mut self, s: u16, frame: u64) {
        if self.ssr_pte == 0 || self.ssr_mapped == Some(s) {
            return;
        }
        // SAFETY: `ssr_pte` is the window entry of this task's live address space (set at load);
        // `frame` is the session's page, allocated for it (`connect`).
        unsafe { map_user_page(self.ssr_pte, SSR_WINDOW, frame) };
        self.ssr_mapped = Some(s);
    }

    /// Empty this task's SSR window.
    #[inline]
    pub fn unmap_ssr(&mut self) {
        if self.ssr_mapped.take().is_some() && self.ssr_pte != 0 {
            // SAFETY: as in `map_ssr`.
            unsafe { clear_user_page(self.ssr_pte, SSR_WINDOW) };
        }
    }
}

impl Kernel {
    /// Map session `s`'s SSR into task `t`'s window.
    #[inline]
    pub fn map_ssr(&mut self, t: usize, s: u16) {
        let frame = self.sessions[s as usize].frame;
        self.tasks[t].map_ssr(s, frame);
    }

    /// Empty task `t`'s SSR window.
    #[inline]
    pub fn unmap_ssr(&mut self, t: usize) {
        self.tasks[t].unmap_ssr();
    }

    /// Open a session of task `cur` on endpoint `ep` (reached through the capability with id
    /// `via`), with its Session capability in slot `dst`. Returns the session's badge.
    pub fn connect(&mut self, cur: usize, ep: u16, via: u64, dst: u64) -> Result<u64, Error> {
        self.cspaces[cur].check_free(dst)?;
        let task = &self.tasks[cur];
        if task.ssr_used >= task.ssr_quota {
            return Err(Error::QuotaExceeded);
        }
        let s = self.sessions.iter().position(|s| !s.live).ok_or(Error::OutOfResources)?;
        let frame = self.frames.alloc_zeroed()?;
        let badge = session_badge(s as u16, cur as u16);
        let id = self.new_cap_id();
        let cap =
            Capability { object: Object::Session(s as u16), rights: Rights::WRITE, badge, id, parent: via };
        if let Err(e) = self.cspaces[cur].insert(dst, cap) {
            self.frames.free(frame);
            return Err(e);
        }
        let session = &mut self.sessions[s];
        session.live = true;
        session.endpoint = ep;
        session.client = self.tasks[cur].id;
        session.frame = frame;
        session.badge = badge;
        self.tasks[cur].ssr_used += 1;
        Ok(badge)
    }

    /// Close session `s`: unmap it wherever it is mapped, free its page, refund the quota.
    pub fn close_session(&mut self, s: u16) {
        for t in 0..self.tasks.len() {
            if self.tasks[t].ssr_mapped == Some(s) {
                self.unmap_ssr(t);
            }
        }
        let session = &mut self.sessions[s as usize];
        if !session.live {
            return;
        }
        session.live = false;
        let (frame, client) = (session.frame, session.client);
        self.frames.free(frame);
        if let Some(c) = self.resolve(client) {
            self.tasks[c].ssr_used = self.tasks[c].ssr_used.saturating_sub(1);
        }
    }

    /// Close every session of client task `t` and drop its Session capabilities.
    pub fn close_sessions_of(&mut self, t: usize) {
        let id = self.tasks[t].id;
        for s in 0..self.sessions.len() {
            if self.sessions[s].live && self.sessions[s].client == id {
                self.close_session(s as u16);
            }
        }
        self.cspaces[t].remove_where(|c| matches!(c.object, Object::Session(_)), |_| {});
        self.tasks[t].ssr_used = 0;
    }

    /// Copy live session `s`'s SSR (as much as fits) into range `out` of task `cur`. Returns
    /// the session's badge.
    pub fn ssr_read(&mut self, cur: usize, s: usize, out: UserSlice) -> Result<u64, Error> {
        let s = &self.sessions[s];
        // SAFETY: a live session's frame is a kernel-owned page, identity mapped.
        let bytes = unsafe { core::slice::from_raw_parts(s.frame as *const u8, SSR_SIZE) };
        self.tasks[cur].space().write_user(out, bytes)?;
        Ok(s.badge)
    }
}
