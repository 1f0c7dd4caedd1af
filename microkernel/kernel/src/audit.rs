//! The state-spill audit (StateSpy's question, asked by the kernel): which lasting changes does
//! one client's request leave in a server's own memory?
//!
//! ```text
//!  audit start ── frames: per audited page a snapshot, a baseline and a tag page
//!  request r of client A delivered ──► close the period before it: bytes that differ from the
//!     (the server waits at recv:       snapshot were changed by the request just served: tag
//!      its memory is at rest)          them with it; the snapshot becomes the page
//!                                  ──► A is not the client of the run before it (a switch):
//!                                      every tagged byte still unlike the run's baseline is
//!                                      spill, unless the server declared it; record it with
//!                                      the request that tagged it; the baseline becomes the page
//!  requests of another client      ──► pages holding spill are hidden from the server (user bit
//!                                      off): its first touch of one is a page fault here; a
//!                                      read of a spilled range is noted, then the page is shown
//!                                      for one instruction (single step) and hidden again
//!  audit stop ── pages shown, frames freed; the records stay until the next audit
//! ```
//!
//! Audited: the writable pages of the server's image (data, bss: servers have no other heap)
//! and its stack above the stack pointer it waits with (below it is scratch of the request
//! just served). Not audited: SSRs (the clients' own state, mapped only during their
//! requests), the IPC buffer (the message itself), memory objects (a RAM disk's blocks, DMA
//! rings: the service's data, not its private memory).
//!
//! Stack pages are not watched for reads: every request reads and writes them, and a syscall
//! could not take a pointer into a hidden page. A slow-path syscall by the server shows every
//! page for the rest of the request, for the same reason.

use crate::paging::set_user_bit;
use crate::state::{AuditRequest, Kernel, Spill, MAX_AUDIT_PAGES, MAX_SPILLS, RUN_LEN};
use axolotl_abi::{
    AuditRecord, AuditSummary, Error, AUDIT_NAME_LEN, AUDIT_TARGET_GONE, PAGE_SIZE, READ_NO, READ_UNWATCHED,
    READ_YES, RECORD_DECLARED, RECORD_SPILL, USER_STACK_SIZE, USER_STACK_TOP,
};
use core::fmt::Write;

const PAGE: usize = PAGE_SIZE as usize;
/// The trap flag: one instruction, then #DB.
const TF: u64 = 1 << 8;
/// Watch traps one request may cost; past them its pages stay shown (a request that sweeps a
/// watched page byte by byte must not take a fault per byte for ever).
const MAX_TRAPS: u32 = 2048;
/// Spilled bytes this close together, caused by one request, are one range.
const GAP: usize = 8;

/// A frame of the audit's or of the audited task, as bytes.
///
/// # Safety
/// `frame` must be a RAM frame below 1 GiB (identity mapped) that nothing else references
/// mutably while the slice lives.
unsafe fn page<'a>(frame: u64) -> &'a mut [u8; PAGE] {
    // SAFETY: per the contract.
    unsafe { &mut *(frame as *mut [u8; PAGE]) }
}

impl Kernel {
    /// Whether the audit runs on task `t` (its live incarnation).
    fn audits(&self, t: usize) -> bool {
        self.audit.active
            && self.audit.target.index as usize == t
            && self.resolve(self.audit.target) == Some(t)
    }

    /// Start auditing server `t` (checked by the syscall: live, serving, not the caller).
    /// Returns the pages audited.
    pub fn audit_start(&mut self, t: usize) -> Result<u64, Error> {
        if self.audit.active {
            return Err(Error::Busy);
        }
        let module = self.module_of(t).ok_or(Error::Dead)?;
        let plan = axolotl_kcore::elf::plan(module.bytes()).map_err(|_| Error::BadImage)?;
        let mut vaddrs: heapless::Vec<(u64, bool), MAX_AUDIT_PAGES> = heapless::Vec::new();
        for seg in plan.segments.iter().filter(|s| s.writable) {
            let (start, end) = seg.pages();
            for v in (start..end).step_by(PAGE) {
                vaddrs.push((v, false)).map_err(|_| Error::TooLong)?;
            }
        }
        for v in (USER_STACK_TOP - USER_STACK_SIZE..USER_STACK_TOP).step_by(PAGE) {
            vaddrs.push((v, true)).map_err(|_| Error::TooLong)?;
        }
        let space = self.tasks[t].space.as_ref().ok_or(Error::Dead)?;
        let mut n = 0;
        for &(vaddr, stack) in &vaddrs {
            let Some((pte, frame)) = space.user_page(vaddr) else { continue };
            let p = &mut self.audit.pages[n];
            *p = crate::state::AuditPage::NONE;
            (p.vaddr, p.frame, p.pte, p.stack) = (vaddr, frame, pte, stack);
            n += 1;
        }
        for i in 0..n {
            if let Err(e) = self.audit_frames(i) {
                self.audit.page_count = i;
                self.audit_free();
                return Err(e);
            }
        }
        let a = &mut self.audit;
        a.page_count = n;
        a.pages_audited = n as u32;
        a.target = self.tasks[t].id;
        a.run_len = 0;
        a.current = None;
        a.requests = 0;
        a.switches = 0;
        a.client_count = 0;
        a.spill_count = 0;
        a.dropped = 0;
        a.declared_bytes = [0; axolotl_abi::MAX_DECLARED];
        a.stepping = false;
        a.traps = 0;
        a.ended = 0;
        a.active = true;
        for e in self.served_endpoints::<8>(t) {
            self.endpoints[e as usize].audited = true;
        }
        Ok(n as u64)
    }

    /// Snapshot, baseline (both the page as it is now) and tags (zero) of audited page `i`.
    fn audit_frames(&mut self, i: usize) -> Result<(), Error> {
        let frame = self.audit.pages[i].frame;
        // SAFETY: a frame of the audited task's image or stack, only read here.
        let now: &[u8] = unsafe { page(frame) };
        let snap = self.frames.alloc_filled(0, now)?;
        let base = match self.frames.alloc_filled(0, now) {
            Ok(f) => f,
            Err(e) => {
                self.frames.free(snap);
                return Err(e);
            }
        };
        let tags = match self.frames.alloc_zeroed() {
            Ok(f) => f,
            Err(e) => {
                self.frames.free(snap);
                self.frames.free(base);
                return Err(e);
            }
        };
        let p = &mut self.audit.pages[i];
        (p.snap, p.base, p.tags) = (snap, base, tags);
        Ok(())
    }

    /// Free the frames of the first `page_count` pages.
    fn audit_free(&mut self) {
        for i in 0..self.audit.page_count {
            let p = self.audit.pages[i];
            for f in [p.snap, p.base, p.tags] {
                self.frames.free(f);
            }
        }
        self.audit.page_count = 0;
    }

    /// End the audit: pages shown again (if its task still lives), frames freed, the
    /// endpoints back on the fastpath. The records stay.
    pub fn audit_stop(&mut self) -> Result<(), Error> {
        if !self.audit.active {
            return Err(Error::AlreadyDone);
        }
        let t = self.audit.target.index as usize;
        if self.audits(t) {
            self.audit_show(t);
        }
        self.audit_free();
        self.audit.active = false;
        for e in self.endpoints.iter_mut() {
            e.audited = false;
        }
        Ok(())
    }

    /// Task `t` stops (its address space is about to go): an audit of it ends here.
    pub fn audit_task_stopped(&mut self, t: usize) {
        if self.audits(t) {
            self.audit_show(t);
            self.audit.ended = AUDIT_TARGET_GONE;
            let _ = self.audit_stop();
        }
    }

    /// A request from `caller` (badge `badge`) is delivered to `server`, which waited for it.
    pub fn audit_request(&mut self, server: usize, caller: usize, badge: u64) {
        if !self.audits(server) {
            return;
        }
        self.audit_show(server);
        self.audit_close(self.tasks[server].ctx.rsp);
        let a = &mut self.audit;
        a.requests += 1;
        let req = AuditRequest { badge, client: caller as u16, seq: a.requests };
        if !a.clients[..a.client_count].contains(&badge) && a.client_count < a.clients.len() {
            a.clients[a.client_count] = badge;
            a.client_count += 1;
        }
        if a.run_len > 0 && a.run[0].badge != badge {
            self.audit_switch();
        }
        let a = &mut self.audit;
        let at = a.run_len.min(RUN_LEN - 1);
        a.run[at] = req;
        a.run_len = at + 1;
        a.current = Some(req);
        a.traps = 0;
        self.audit_hide();
    }

    /// A notification is delivered to `server`: what it does next is nobody's request.
    pub fn audit_notification(&mut self, server: usize) {
        if !self.audits(server) {
            return;
        }
        self.audit_show(server);
        self.audit_close(self.tasks[server].ctx.rsp);
        self.audit.current = None;
    }

    /// The audited task makes a syscall on the general path: its pointers must reach its pages,
    /// so they are shown for the rest of the request.
    pub fn audit_syscall(&mut self, t: usize) {
        if self.audit.active && self.audit.target.index as usize == t {
            self.audit_show(t);
        }
    }

    /// Tag what changed since the last delivery with the request served meanwhile (none:
    /// notification work, which only moves the baseline of bytes no request of the run
    /// changed). `rsp`: where the server waits; stack bytes below it are scratch.
    fn audit_close(&mut self, rsp: u64) {
        let a = &mut self.audit;
        let tag = a.current.map(|_| a.run_len as u8);
        for p in a.pages[..a.page_count].iter_mut() {
            let lo = if p.stack { rsp.saturating_sub(p.vaddr).min(PAGE as u64) as usize } else { 0 };
            // SAFETY: four distinct frames: the audited task's page (it is not running: it
            // waits for this delivery) and the audit's three, which nothing else references.
            let (mem, snap, base, tags) =
                unsafe { (page(p.frame), page(p.snap), page(p.base), page(p.tags)) };
            // Scratch below the stack pointer: never spill, and the baseline follows it.
            tags[..lo].fill(0);
            base[..lo].copy_from_slice(&mem[..lo]);
            snap[..lo].copy_from_slice(&mem[..lo]);
            for w in (lo..PAGE).step_by(8) {
                let end = (w + 8).min(PAGE);
                if mem[w..end] == snap[w..end] {
                    continue;
                }
                for i in w..end {
                    if mem[i] == snap[i] {
                        continue;
                    }
                    match tag {
                        Some(t) => {
                            tags[i] = t;
                            p.touched = true;
                        }
                        None if tags[i] == 0 => base[i] = mem[i],
                        None => {}
                    }
                    snap[i] = mem[i];
                }
            }
        }
    }

    /// A request of another client arrives: record what the run before it left changed.
    fn audit_switch(&mut self) {
        let t = self.audit.target.index as usize;
        let declared = self.declared[t];
        self.audit.switches += 1;
        for pi in 0..self.audit.page_count {
            let p = self.audit.pages[pi];
            if !p.touched {
                continue;
            }
            // SAFETY: as in `audit_close`: the task waits, the audit's frames are its own.
            let (mem, base, tags) = unsafe { (page(p.frame), page(p.base), page(p.tags)) };
            // A range being formed: start, end (exclusive), tag.
            let mut open: Option<(usize, usize, u8)> = None;
            for i in 0..PAGE {
                let tag = tags[i];
                if tag == 0 || mem[i] == base[i] {
                    continue;
                }
                let addr = p.vaddr + i as u64;
                if let Some(d) =
                    declared.iter().position(|d| d.len > 0 && (d.addr..d.addr + d.len).contains(&addr))
                {
                    self.audit.declared_bytes[d] += 1;
                    continue;
                }
                open = match open {
                    Some((s, e, g)) if g == tag && i <= e + GAP => Some((s, i + 1, g)),
                    Some(range) => {
                        self.audit_record(p.vaddr, range);
                        Some((i, i + 1, tag))
                    }
                    None => Some((i, i + 1, tag)),
                };
            }
            if let Some(range) = open {
                self.audit_record(p.vaddr, range);
            }
            base.copy_from_slice(&mem[..]);
            tags.fill(0);
            self.audit.pages[pi].touched = false;
        }
        self.audit.run_len = 0;
    }

    /// Record spilled range `(start, end, tag)` of the page at `vaddr`, or count it again if
    /// it overlaps one recorded already.
    fn audit_record(&mut self, vaddr: u64, (start, end, tag): (usize, usize, u8)) {
        let a = &mut self.audit;
        let (lo, hi) = (vaddr + start as u64, vaddr + end as u64);
        let by = a.run[(tag as usize).clamp(1, RUN_LEN) - 1];
        let overlaps = |s: &Spill, lo: u64, hi: u64| s.addr < hi && lo < s.addr + s.len as u64;
        if let Some(i) = a.spills[..a.spill_count].iter().position(|s| overlaps(s, lo, hi)) {
            let (mut lo, mut hi) =
                (lo.min(a.spills[i].addr), hi.max(a.spills[i].addr + a.spills[i].len as u64));
            a.spills[i].count += 1;
            // The range may now reach records after it: fold them in (the first cause stays).
            let mut j = i + 1;
            while j < a.spill_count {
                if overlaps(&a.spills[j], lo, hi) {
                    lo = lo.min(a.spills[j].addr);
                    hi = hi.max(a.spills[j].addr + a.spills[j].len as u64);
                    a.spills[i].read_by = a.spills[i].read_by.or(a.spills[j].read_by);
                    a.spills.copy_within(j + 1..a.spill_count, j);
                    a.spill_count -= 1;
                } else {
                    j += 1;
                }
            }
            (a.spills[i].addr, a.spills[i].len) = (lo, (hi - lo) as u32);
        } else if a.spill_count < MAX_SPILLS {
            a.spills[a.spill_count] = Spill { addr: lo, len: (hi - lo) as u32, by, count: 1, read_by: None };
            a.spill_count += 1;
        } else {
            a.dropped += 1;
        }
        if let Some(p) = a.pages[..a.page_count].iter_mut().find(|p| p.vaddr == vaddr && !p.stack) {
            p.watched = true;
        }
    }

    /// Hide the watched pages that hold spill of another client than the current request's.
    fn audit_hide(&mut self) {
        let a = &mut self.audit;
        let Some(now) = a.current else { return };
        if a.traps >= MAX_TRAPS {
            return;
        }
        for p in a.pages[..a.page_count].iter_mut().filter(|p| p.watched && !p.hidden) {
            let foreign = a.spills[..a.spill_count].iter().any(|s| {
                s.by.badge != now.badge && s.addr < p.vaddr + PAGE_SIZE && p.vaddr < s.addr + s.len as u64
            });
            if foreign {
                // SAFETY: the entry is the audited task's (`audits(t)` held on the way here),
                // taken from its live address space.
                unsafe { set_user_bit(p.pte, p.vaddr, false) };
                p.hidden = true;
            }
        }
    }

    /// Show every hidden page, and end a single step.
    fn audit_show(&mut self, t: usize) {
        for p in self.audit.pages[..self.audit.page_count].iter_mut().filter(|p| p.hidden) {
            // SAFETY: as in `audit_hide`.
            unsafe { set_user_bit(p.pte, p.vaddr, true) };
            p.hidden = false;
        }
        if core::mem::take(&mut self.audit.stepping) {
            self.tasks[t].ctx.rflags &= !TF;
        }
    }

    /// A page fault of task `t` at `addr`: if it touched a page the audit hid, note a read of
    /// spill, show the page for one instruction, and say it was handled.
    pub fn audit_page_fault(&mut self, t: usize, addr: u64) -> bool {
        if !self.audits(t) {
            return false;
        }
        let error = self.tasks[t].ctx.error;
        let vaddr = addr & !(PAGE_SIZE - 1);
        let a = &mut self.audit;
        let Some(p) = a.pages[..a.page_count].iter_mut().find(|p| p.hidden && p.vaddr == vaddr) else {
            return false;
        };
        // SAFETY: as in `audit_hide`.
        unsafe { set_user_bit(p.pte, p.vaddr, true) };
        p.hidden = false;
        let write = error & 2 != 0;
        if let (Some(now), false) = (a.current, write) {
            // The access is at most 8 bytes from `addr` (wider ones are rare in servers).
            for s in a.spills[..a.spill_count].iter_mut() {
                if s.read_by.is_none()
                    && s.by.badge != now.badge
                    && s.addr < addr + 8
                    && addr < s.addr + s.len as u64
                {
                    s.read_by = Some(now);
                }
            }
        }
        a.traps += 1;
        if a.traps < MAX_TRAPS {
            a.stepping = true;
            self.tasks[t].ctx.rflags |= TF;
        }
        true
    }

    /// A debug trap of task `t`: the end of the audit's single step, if it was one.
    pub fn audit_debug_trap(&mut self, t: usize) -> bool {
        if !self.audits(t) || !self.audit.stepping {
            return false;
        }
        self.audit.stepping = false;
        self.tasks[t].ctx.rflags &= !TF;
        self.audit_hide();
        true
    }

    pub fn audit_summary(&self) -> AuditSummary {
        let a = &self.audit;
        let t = a.target.index as usize;
        let declared = self.declared.get(t).map_or(0, |d| d.iter().filter(|d| d.len > 0).count());
        AuditSummary {
            requests: a.requests,
            clients: a.client_count as u32,
            switches: a.switches,
            pages: a.pages_audited,
            spills: a.spill_count as u32,
            spill_bytes: a.spills[..a.spill_count].iter().map(|s| s.len).sum(),
            dropped: a.dropped,
            declared: declared as u32,
            declared_bytes: a.declared_bytes.iter().sum(),
            active: a.active as u32,
            ended: a.ended,
            _pad: 0,
        }
    }

    /// Record `n` of the last audit: its spills, then the target's declared ranges.
    pub fn audit_entry(&self, n: usize) -> Option<AuditRecord> {
        let a = &self.audit;
        let t = a.target.index as usize;
        let mut r = AuditRecord::default();
        if let Some(s) = a.spills[..a.spill_count].get(n) {
            r.kind = RECORD_SPILL;
            r.addr = s.addr;
            r.len = s.len;
            r.badge = s.by.badge;
            r.client = s.by.client as u32;
            r.request = s.by.seq;
            r.count = s.count;
            let stack = s.addr >= USER_STACK_TOP - USER_STACK_SIZE;
            r.read = match s.read_by {
                _ if stack => READ_UNWATCHED,
                Some(_) => READ_YES,
                None => READ_NO,
            };
            if let Some(by) = s.read_by {
                (r.reader_badge, r.reader_client, r.reader_request) = (by.badge, by.client as u32, by.seq);
            }
            let mut name = Name::default();
            if stack {
                r.name_kind = 2;
                r.offset = USER_STACK_TOP - s.addr;
                let _ = write!(name, "stack");
            } else if let Some((sym, off)) =
                self.module_of(t).and_then(|m| axolotl_kcore::elf::symbolize(m.bytes(), s.addr))
            {
                r.name_kind = 1;
                r.offset = off;
                let _ = write!(name, "{:#}", rustc_demangle::demangle(sym));
            }
            r.name = name.0;
            return Some(r);
        }
        let d = self.declared.get(t)?.iter().enumerate().filter(|(_, d)| d.len > 0).nth(n - a.spill_count)?;
        r.kind = RECORD_DECLARED;
        r.name_kind = 3;
        r.addr = d.1.addr;
        r.len = d.1.len as u32;
        r.count = a.declared_bytes[d.0];
        r.name[..d.1.name.len()].copy_from_slice(&d.1.name);
        Some(r)
    }
}

/// A record's name: cut at the last whole character that fits.
struct Name([u8; AUDIT_NAME_LEN], usize);

impl Default for Name {
    fn default() -> Self {
        Name([0; AUDIT_NAME_LEN], 0)
    }
}

impl Write for Name {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            let mut buf = [0u8; 4];
            let b = c.encode_utf8(&mut buf).as_bytes();
            if self.1 + b.len() > AUDIT_NAME_LEN {
                return Ok(());
            }
            self.0[self.1..self.1 + b.len()].copy_from_slice(b);
            self.1 += b.len();
        }
        Ok(())
    }
}
