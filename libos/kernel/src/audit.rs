//! The state-spill audit on the libos: which lasting changes does one client's request leave in
//! a cell task's own memory? (StateSpy's question; the microkernel asks it of a server's pages.)
//!
//! A cell has no statics (`forbid(unsafe_code)`, no `static mut`: the compiler sees to it), so
//! what a request can leave behind lies in three places, all audited:
//!
//! ```text
//!  closure   what the task's closure captured: kept by the task table across incarnations
//!            (the libos's counterpart of a server's data and bss); named by the closure's type.
//!            Read-only once the system runs (`mem::recipes`): a write there faults, so no
//!            request can leave anything in it; audited all the same
//!  heap      the task's heap arena (its allocations and the allocator's bitmap)
//!  stack     the task's stack above the point where it waits for work (the frames of its
//!            serving loop); below it is the scratch of the request just served
//! ```
//!
//! ```text
//!  audit start ── a snapshot and a baseline of every audited byte (in the kernel heap)
//!  request r of client A taken (the task waits for work: its memory is at rest)
//!     ──► bytes that differ from the snapshot were changed by the request served before:
//!         tag them with it; the snapshot becomes the memory
//!     ──► A is not the client of the run before (a switch): every tagged byte still unlike
//!         the baseline is spill, unless the task declared it (`declare`); record each range
//!         with the request that tagged it; the baseline becomes the memory
//!  audit stop ── the records, the buffers freed
//! ```
//! Followed but never tagged (their bytes change with every request and are no one's state):
//! the stack below the floor, the task's stack pointer where it waits (the scratch of the
//! request just served, and the kernel's frames); the messages (the inbox a request and its
//! token are copied into, and the buffer the last answer went from, as the microkernel leaves
//! its IPC buffer out); the heap's free granules (what a freed allocation left there).
//!
//! Not audited: what the closure reaches through a pointer it captured (an `Arc`'s contents,
//! `MappedPages` such as the RAM disk's blocks: the service's data, or parts every version of
//! a cell shares). Reads are not watched: in one address space there is no page to hide from
//! one task alone.

use crate::state::{Audit, Kernel, Record, Region, Report, Task, TaskId};
use alloc::vec::Vec;

/// Spilled bytes this close together, tagged by one request, are one range.
const GAP: usize = 8;
/// Most requests an audit follows (each byte's tag is a request number).
pub(crate) const MAX_REQUESTS: u32 = u16::MAX as u32 - 1;

/// Why an audit could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditError {
    NoSuchTask,
    /// The task asking, or one not running.
    NotAuditable,
    /// Another audit runs.
    Busy,
    /// The kernel heap has no room for the audit's copies.
    OutOfMemory,
}

/// Declare `value`, which the calling task keeps across requests on purpose (a cache it
/// rebuilds when restarted, a statistics counter, a buffer every request overwrites), as
/// server-global state named `what`: the audit reports changes there as declared, not as spill.
/// For this incarnation (the next one declares again); a task declares at most
/// `MAX_DECLARED` (8) ranges, and further ones are ignored.
pub fn declare<T: ?Sized>(what: &'static str, value: &T) {
    let (addr, len) = (value as *const T as *const u8 as u64, core::mem::size_of_val(value));
    crate::state::KERNEL.with(|k| {
        let _ = k.cur().declared.push((addr, len, what));
    });
}

/// Start auditing task `index` (the caller, holding the privilege, runs in another task).
pub(crate) fn start(k: &mut Kernel, index: usize) -> Result<(), AuditError> {
    if k.audit.is_some() {
        return Err(AuditError::Busy);
    }
    if index == k.current || index == crate::state::IDLE {
        return Err(AuditError::NotAuditable);
    }
    let t = k.task(index).ok_or(AuditError::NoSuchTask)?;
    if t.state.stopped() || t.mem().is_none() {
        return Err(AuditError::NotAuditable);
    }
    let regions = regions(t);
    let target = TaskId { index, generation: t.generation };
    let closure = t.entry_name;
    let total: usize = regions.iter().map(|r| r.2).sum();
    // About 5 bytes of the kernel heap per audited byte (a megabyte for a cell's 192 KiB):
    // refused, not a kernel panic, when the heap has not that much.
    let buffers = crate::mem::heap::in_core(|| -> Option<_> {
        let mut snapshot = Vec::new();
        snapshot.try_reserve_exact(total).ok()?;
        for &(_, start, len) in &regions {
            // SAFETY: the regions are the task's closure (kept by the table), heap arena and
            // stack (mapped while it lives; readable by every task), and the kernel is locked.
            snapshot.extend_from_slice(unsafe { core::slice::from_raw_parts(start as *const u8, len) });
        }
        let mut baseline = Vec::new();
        baseline.try_reserve_exact(total).ok()?;
        baseline.extend_from_slice(&snapshot);
        let mut tags = Vec::new();
        tags.try_reserve_exact(total).ok()?;
        tags.resize(total, 0);
        let mut crossed = Vec::new();
        crossed.try_reserve_exact(total).ok()?;
        crossed.resize(total, false);
        let mut clients_of = Vec::new();
        clients_of.try_reserve_exact(256).ok()?;
        clients_of.push(0);
        Some((snapshot, baseline, tags, crossed, clients_of))
    });
    let (snapshot, baseline, tags, crossed, clients_of) = buffers.ok_or(AuditError::OutOfMemory)?;
    let report = Report { bytes: regions.map(|r| r.2), closure, ..Report::default() };
    k.audit = Some(Audit {
        target,
        regions,
        snapshot,
        baseline,
        tags,
        crossed,
        clients_of,
        current: None,
        outbox: (0, 0),
        seen: heapless::Vec::new(),
        report,
    });
    Ok(())
}

/// End the audit: its report (`None`: none ran).
pub(crate) fn stop(k: &mut Kernel) -> Option<Report> {
    let a = k.audit.take()?;
    let mut report = a.report.clone();
    let t = k.tasks[a.target.index].as_ref().filter(|t| t.generation == a.target.generation);
    match t {
        Some(t) => report.declared = t.declared.clone(),
        None => report.target_gone = true,
    }
    for &(addr, len, _) in &report.declared {
        let changed =
            (addr..addr + len as u64).filter(|&b| index(&a, b).is_some_and(|i| a.crossed[i])).count();
        let _ = report.declared_changed.push(changed);
    }
    crate::mem::heap::in_core(|| drop(a));
    Some(report)
}

/// The task's closure, heap arena and stack.
fn regions(t: &Task) -> [(Region, u64, usize); 3] {
    let closure = (t.entry as *const _ as *const u8 as u64, core::mem::size_of_val(t.entry));
    let [(s0, s1), (h0, h1)] = t.data_ranges();
    [
        (Region::Closure, closure.0, closure.1),
        (Region::Heap, h0, (h1 - h0) as usize),
        (Region::Stack, s0, (s1 - s0) as usize),
    ]
}

/// Task `me`, waiting for work with its stack pointer at `floor`, takes a request of `client`:
/// close the period of the request before (see the module's comment). Called with the kernel
/// locked, before the request is copied into the task's memory.
#[inline(always)]
pub(crate) fn taken(k: &mut Kernel, me: usize, client: usize, floor: u64, inbox: (u64, usize)) {
    // The common case, no audit, costs a test where the request is taken.
    if k.audit.is_some() {
        close_period(k, me, client, floor, inbox);
    }
}

#[inline(never)]
fn close_period(k: &mut Kernel, me: usize, client: usize, floor: u64, inbox: (u64, usize)) {
    let Some(a) = k.audit.as_mut() else { return };
    if a.target.index != me {
        return;
    }
    let generation = k.tasks[me].as_ref().map(|t| t.generation);
    if generation != Some(a.target.generation) || a.report.target_gone {
        a.report.target_gone = true;
        return;
    }
    if a.report.requests >= MAX_REQUESTS {
        return;
    }
    let declared = k.tasks[me].as_ref().map(|t| t.declared.clone()).unwrap_or_default();
    let a = k.audit.as_mut().expect("checked above");
    let served = a.report.requests as u16;
    // Followed, never tagged: the stack below the floor (the scratch of the request just served,
    // and the kernel's frames), and the messages (the buffer the next request is copied into,
    // and the one the last answer went from: the microkernel leaves its IPC buffer out so).
    let stack_start = a.regions[2].1;
    let mut scratch: heapless::Vec<(u64, usize), 64> = heapless::Vec::new();
    let _ = scratch.extend_from_slice(&[
        (stack_start, floor.saturating_sub(stack_start) as usize),
        inbox,
        a.outbox,
    ]);
    // Free heap granules: what a freed allocation left there is no one's (a run past the list's
    // room is audited as if allocated).
    if let Some(m) = k.tasks[me].as_ref().and_then(|t| t.mem()) {
        let base = m.heap.base();
        m.heap.free_runs(|at, len| {
            let _ = scratch.push((base + at as u64, len));
        });
    }
    let a = k.audit.as_mut().expect("checked above");
    let mut at = 0;
    for &(_, start, len) in &a.regions {
        // SAFETY: as in `start`: the task's own regions, alive (same generation), read with
        // the kernel locked while the task itself runs this (it is `me`, in the kernel).
        let now = unsafe { core::slice::from_raw_parts(start as *const u8, len) };
        let (snap, base, tags) =
            (&mut a.snapshot[at..at + len], &mut a.baseline[at..at + len], &mut a.tags[at..at + len]);
        for i in changed(snap, now) {
            tags[i] = served;
        }
        snap.copy_from_slice(now);
        for &(s, l) in &scratch {
            let (from, to) = (s.max(start), (s + l as u64).min(start + len as u64));
            if from < to {
                let r = (from - start) as usize..(to - start) as usize;
                base[r.clone()].copy_from_slice(&now[r.clone()]);
                tags[r].fill(0);
            }
        }
        at += len;
    }
    let switch = a.current.is_some_and(|c| c != client);
    if switch {
        a.report.switches += 1;
        record_spill(a, &declared);
    }
    if a.current.is_none() || switch {
        a.baseline.copy_from_slice(&a.snapshot);
        a.tags.fill(0);
    }
    a.current = Some(client);
    if !a.seen.contains(&client) && a.seen.push(client).is_ok() {
        a.report.clients += 1;
    }
    a.report.requests += 1;
    // A request whose client finds no room is attributed to no one (`usize::MAX`, shown as the
    // device): never a kernel panic for want of heap.
    crate::mem::heap::in_core(|| {
        if a.clients_of.try_reserve(1).is_ok() {
            a.clients_of.push(client as u32);
        }
    });
}

/// Task `me` answers from `len` bytes at `resp`: that buffer is a message, not state (see
/// [`taken`]).
#[inline(always)]
pub(crate) fn replied(k: &mut Kernel, me: usize, resp: u64, len: usize) {
    if let Some(a) = k.audit.as_mut().filter(|a| a.target.index == me) {
        a.outbox = (resp, len);
    }
}

/// The offsets where `now` differs from `was` (a word at a time where they agree).
fn changed<'a>(was: &'a [u8], now: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    was.chunks(8).zip(now.chunks(8)).enumerate().filter(|(_, (w, n))| w != n).flat_map(|(c, (w, n))| {
        w.iter().zip(n.iter()).enumerate().filter(|(_, (x, y))| x != y).map(move |(i, _)| c * 8 + i)
    })
}

/// At a switch: each run of tagged bytes (by one request, gaps of at most [`GAP`]) still unlike
/// the baseline becomes a record.
fn record_spill(a: &mut Audit, declared: &[(u64, usize, &'static str)]) {
    let mut at = 0;
    for &(region, start, len) in &a.regions {
        let mut i = 0;
        while i < len {
            let tag = a.tags[at + i];
            if tag == 0 || a.snapshot[at + i] == a.baseline[at + i] {
                i += 1;
                continue;
            }
            let b = start + i as u64;
            if declared.iter().any(|d| (d.0..d.0 + d.1 as u64).contains(&b)) {
                a.crossed[at + i] = true;
                i += 1;
                continue;
            }
            let first = i;
            let mut last = i;
            let mut j = i + 1;
            let undeclared = |b: u64| !declared.iter().any(|d| (d.0..d.0 + d.1 as u64).contains(&b));
            while j < len && j <= last + GAP {
                if a.tags[at + j] == tag
                    && a.snapshot[at + j] != a.baseline[at + j]
                    && undeclared(start + j as u64)
                {
                    last = j;
                }
                j += 1;
            }
            let addr = start + first as u64;
            let size = last - first + 1;
            let client = a.clients_of.get(tag as usize).map_or(usize::MAX, |&c| c as usize);
            let r = Record { region, addr, offset: first, len: size, request: tag as u32, client, times: 1 };
            add(&mut a.report, r);
            i = last + 1;
        }
        at += len;
    }
}

/// Where byte `addr` is in the audit's buffers.
fn index(a: &Audit, addr: u64) -> Option<usize> {
    let mut at = 0;
    for &(_, start, len) in &a.regions {
        if (start..start + len as u64).contains(&addr) {
            return Some(at + (addr - start) as usize);
        }
        at += len;
    }
    None
}

/// Add `r`, or count it again if its range was recorded before.
fn add(report: &mut Report, r: Record) {
    let same = |o: &&mut Record| (o.region, o.offset, o.len) == (r.region, r.offset, r.len);
    if let Some(o) = report.records.iter_mut().find(same) {
        o.times += 1;
    } else if report.records.push(r).is_err() {
        report.dropped += 1;
    }
}
