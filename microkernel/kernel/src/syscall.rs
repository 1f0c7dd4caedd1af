//! Syscall decoding and dispatch.
//!
//! Each handler first *decodes*: resolves capability slots (type and rights), decodes the message
//! info and checks every argument, without changing anything. Only then does it act. So a bad
//! argument returns a typed [`Error`] and leaves all state as it was; nothing a task passes can
//! make the kernel panic. Argument registers: `rdi rsi rdx r10 r8 r9` = `a[0..6]`.

use crate::ipc::Done;
use crate::state::{Blocked, Kernel};
use crate::{fault, paging};
use axolotl_abi::{
    CapType, Error, FaultKind, InjectKind, MsgInfo, Rights, Sysno, TaskInfo, TaskState, EXIT_PANIC, MAP_BASE,
    PAGE_SIZE, USER_END,
};
use axolotl_kcore::cap::{self, Capability, Object};
use axolotl_kcore::queue::MAX_TASKS;

/// Handle the syscall the running task `cur` just made.
pub fn handle(k: &mut Kernel, cur: usize) {
    let c = &k.tasks[cur].ctx;
    let (nr, a) = (c.rax, [c.rdi, c.rsi, c.rdx, c.r10, c.r8, c.r9]);
    k.tasks[cur].syscalls += 1;
    k.tasks[cur].spin_ticks = 0;
    let result = match Sysno::from_raw(nr) {
        Some(s) => dispatch(k, cur, s, a),
        None => Err(Error::InvalidSyscall),
    };
    let c = &mut k.tasks[cur].ctx;
    match result {
        Ok(Done::Value(v0, v1)) => {
            c.rax = 0;
            c.rdi = v0;
            c.rsi = v1;
        }
        Ok(Done::Delivered | Done::Blocked) => {}
        Err(e) => c.rax = e as u64,
    }
}

fn dispatch(k: &mut Kernel, cur: usize, sys: Sysno, a: [u64; 6]) -> Result<Done, Error> {
    match sys {
        Sysno::Call | Sysno::Send => send(k, cur, a, sys == Sysno::Call),
        Sysno::ReplyRecv => {
            let ep = endpoint(k, cur, a[0], Rights::READ)?.0;
            let mut info = MsgInfo::decode(a[1])?;
            // Replies carry no capabilities: here the cap field names the slot where one sent
            // with the *next* message may land.
            let recv_slot = info.cap.take();
            if let Some(slot) = recv_slot {
                k.cspaces[cur].check_free(slot as u64)?;
            }
            info.move_cap = false;
            // A caller that died meanwhile simply gets no answer, as in seL4.
            let answered = k.tasks[cur]
                .reply_to
                .take()
                .and_then(|(c, token)| k.answer_unqueued(cur, c, token, info).ok());
            let done = k.recv(cur, ep, recv_slot);
            match (answered, &done) {
                // The server waits now: run the caller directly, as seL4's fastpath does.
                (Some(c), Done::Blocked) => k.switch_to(c),
                (Some(c), _) => k.make_ready(c),
                (None, _) => {}
            }
            Ok(done)
        }
        Sysno::Recv => {
            let ep = endpoint(k, cur, a[0], Rights::READ)?.0;
            let info = MsgInfo::decode(a[1])?;
            if let Some(slot) = info.cap {
                k.cspaces[cur].check_free(slot as u64)?;
            }
            Ok(k.recv(cur, ep, info.cap))
        }
        Sysno::SaveReply => {
            k.cspaces[cur].check_free(a[0])?;
            let (caller, token) = k.tasks[cur].reply_to.ok_or(Error::NoReplyPending)?;
            let id = k.new_cap_id();
            let reply = Capability::original(Object::Reply { caller, token }, Rights::WRITE, 0, id);
            k.cspaces[cur].insert(a[0], reply)?;
            k.tasks[cur].reply_to = None;
            // The request is parked: until it is answered, its client's SSR is out of reach.
            k.unmap_ssr(cur);
            Ok(Done::Value(0, 0))
        }
        Sysno::Signal => {
            let n = notification(k, cur, a[0], Rights::WRITE)?;
            if a[1] == 0 {
                return Err(Error::InvalidArgument);
            }
            k.signal(n, a[1]);
            Ok(Done::Value(0, 0))
        }
        Sysno::Wait => {
            let n = notification(k, cur, a[0], Rights::READ)?;
            Ok(k.wait(cur, n))
        }
        Sysno::BindNotification => {
            let n = notification(k, cur, a[0], Rights::READ)?;
            match k.notifications[n as usize].bound {
                Some(b) if b as usize != cur => return Err(Error::AlreadyDone),
                _ => {}
            }
            if let Some(old) = k.tasks[cur].bound_notification.replace(n) {
                k.notifications[old as usize].bound = None;
            }
            k.notifications[n as usize].bound = Some(cur as u16);
            Ok(Done::Value(0, 0))
        }
        Sysno::IrqAck => match k.cspaces[cur].lookup(a[0], CapType::Interrupt, Rights::NONE)?.object {
            Object::Interrupt(line) => {
                crate::arch::pic::mask(line, false);
                Ok(Done::Value(0, 0))
            }
            _ => Err(Error::WrongType),
        },
        Sysno::IoPortEnable => ioport_enable(k, cur, a[0]),
        Sysno::CapCopy => {
            let src = *k.cspaces[cur].get(a[0])?;
            k.cspaces[cur].check_free(a[1])?;
            let id = k.new_cap_id();
            let child = src.derive(Rights::from_bits_truncate(a[2]), a[3], id)?;
            k.cspaces[cur].insert(a[1], child)?;
            Ok(Done::Value(0, 0))
        }
        Sysno::CapDelete => {
            let gone = cap::delete(&mut k.cspaces, cur, a[0])?;
            fault::undo_cap(k, cur, &gone);
            Ok(Done::Value(0, 0))
        }
        Sysno::CapRevoke => {
            let root = k.cspaces[cur].get(a[0])?.id;
            let mut undo: heapless::Vec<(usize, Capability), 64> = heapless::Vec::new();
            let mut overflow = false;
            let n = cap::revoke(&mut k.cspaces, root, &mut k.revoke_scratch, |t, c| {
                let undoable =
                    matches!(c.object, Object::IoPort { .. } | Object::Memory(_) | Object::Session(_));
                if undoable && undo.push((t, c)).is_err() {
                    overflow = true;
                }
            });
            for (t, c) in &undo {
                fault::undo_cap(k, *t, c);
            }
            if overflow {
                crate::kprintln!("revoke: more than 64 port/memory/session capabilities; some stay enabled");
            }
            Ok(Done::Value(n as u64, 0))
        }
        Sysno::CapInfo => {
            let c = k.cspaces[cur].get(a[0])?;
            Ok(Done::Value(c.object.cap_type() as u64, c.rights.bits() as u64 | c.badge << 8))
        }
        Sysno::MemMap => mem_map(k, cur, a),
        Sysno::MemUnmap => {
            let m = memory(k, cur, a[0], Rights::NONE)?;
            let obj = &mut k.memory[m];
            let Some((t, vaddr)) = obj.mapped.filter(|&(t, _)| t as usize == cur) else {
                return Err(Error::InvalidArgument);
            };
            let pages = obj.pages as u64;
            obj.mapped = None;
            crate::fault::unmap_pages(k, t as usize, vaddr, pages);
            Ok(Done::Value(0, 0))
        }
        Sysno::TaskInfo => {
            let t = task_target(k, cur, a[0], a[1], Rights::READ)?;
            let info = task_info(k, t);
            // SAFETY: TaskInfo is repr(C) plain data without implicit padding.
            let bytes = unsafe { pod_bytes(&info) };
            k.tasks[cur].space().copy_to_user(a[2], bytes)?;
            Ok(Done::Value(0, 0))
        }
        Sysno::TaskStart => {
            let t = task_target(k, cur, a[0], a[1], Rights::WRITE)?;
            match k.tasks[t].state {
                TaskState::Dormant => {
                    k.make_ready(t);
                    Ok(Done::Value(0, 0))
                }
                TaskState::Free => Err(Error::Dead),
                _ => Err(Error::AlreadyDone),
            }
        }
        Sysno::TaskWait => {
            let t = task_target(k, cur, a[0], a[1], Rights::READ)?;
            let target = &k.tasks[t];
            if t == cur {
                return Err(Error::WouldDeadlock);
            }
            if target.state == TaskState::Free {
                return Err(Error::Dead);
            }
            if target.state.is_stopped() {
                return Ok(Done::Value(target.exit_code, target.state as u64));
            }
            k.tasks[cur].state = TaskState::Joining;
            k.tasks[cur].blocked = Blocked::Task(t as u16);
            Ok(Done::Blocked)
        }
        Sysno::Yield => {
            let prio = k.tasks[cur].priority;
            if k.run.top_priority().is_some_and(|top| top >= prio) {
                k.run.enqueue(&mut k.links, cur, prio);
            }
            Ok(Done::Value(0, 0))
        }
        Sysno::Connect => {
            let c = k.cspaces[cur].lookup(a[0], CapType::Endpoint, Rights::WRITE)?;
            let (Object::Endpoint(ep), via) = (c.object, c.id) else { return Err(Error::WrongType) };
            let badge = k.connect(cur, ep, via, a[1])?;
            Ok(Done::Value(badge, 0))
        }
        Sysno::SsrRead => {
            let Object::SsrView(ep) = k.cspaces[cur].lookup(a[0], CapType::SsrView, Rights::READ)?.object
            else {
                return Err(Error::WrongType);
            };
            let badge = k.ssr_read(cur, ep, a[1], a[2], a[3])?;
            Ok(Done::Value(badge, 0))
        }
        Sysno::Supervise => {
            supervisor_cap(k, cur, a[0])?;
            let n = notification(k, cur, a[1], Rights::WRITE)?;
            k.supervisor = Some(n);
            // Faults recorded while no supervisor listened are waiting.
            if k.fault_count > 0 {
                k.signal(n, 1);
            }
            Ok(Done::Value(k.faults_dropped, 0))
        }
        Sysno::FaultNext => {
            supervisor_cap(k, cur, a[0])?;
            if k.fault_count == 0 {
                return Err(Error::Dead);
            }
            let record = k.faults[k.fault_head];
            // SAFETY: FaultRecord is repr(C) plain data without implicit padding.
            k.tasks[cur].space().copy_to_user(a[1], unsafe { pod_bytes(&record) })?;
            fault::next_fault(k);
            Ok(Done::Value(k.fault_count as u64, 0))
        }
        Sysno::Inject => {
            let t = task_target(k, cur, a[0], a[1], Rights::WRITE)?;
            if t == cur {
                return Err(Error::WouldDeadlock);
            }
            let kind = InjectKind::from_raw(a[2]).ok_or(Error::InvalidArgument)?;
            let what = crate::inject::inject(k, t, kind, a[3])?;
            Ok(Done::Value(what, 0))
        }
        Sysno::Log => {
            supervisor_cap(k, cur, a[0])?;
            let mut buf = [0u8; 160];
            let n = (a[2] as usize).min(buf.len());
            k.tasks[cur].space().copy_from_user(a[1], &mut buf[..n])?;
            let text = core::str::from_utf8(&buf[..n]).map_err(|_| Error::InvalidArgument)?;
            crate::log::print(format_args!("[{}] {}\n", k.tasks[cur].name(), text.trim_end()));
            Ok(Done::Value(0, 0))
        }
        Sysno::TaskHold => {
            let t = task_target(k, cur, a[0], a[1], Rights::WRITE)?;
            if t == cur {
                return Err(Error::WouldDeadlock);
            }
            if matches!(k.tasks[t].state, TaskState::Free | TaskState::Dormant) {
                return Err(Error::Dead);
            }
            fault::hold_task(k, t);
            Ok(Done::Value(0, 0))
        }
        Sysno::TaskRestart => {
            let t = task_target(k, cur, a[0], a[1], Rights::WRITE)?;
            if t == cur {
                return Err(Error::WouldDeadlock);
            }
            match k.tasks[t].state {
                TaskState::Free => return Err(Error::Dead),
                TaskState::Dormant => return Err(Error::AlreadyDone),
                _ => {}
            }
            // A delay (in timer ticks, at most 10 s) is how the supervisor backs off.
            let delay = a[2].min(1000);
            let generation = fault::restart_task(k, t, delay).map_err(|e| match e {
                crate::loader::LoadError::Kernel(e) => e,
                _ => Error::Dead,
            })?;
            Ok(Done::Value(generation as u64, 0))
        }
        Sysno::Exit => {
            let mut buf = [0u8; 200];
            let n = (a[2] as usize).min(buf.len());
            let msg = match k.tasks[cur].space().copy_from_user(a[1], &mut buf[..n]) {
                _ if n == 0 => "",
                Ok(()) => core::str::from_utf8(&buf[..n]).unwrap_or("(message is not UTF-8)"),
                Err(_) => "(message at a bad address)",
            };
            if a[0] == EXIT_PANIC {
                fault::report_panic(k, cur, msg);
                fault::task_failed(k, cur, FaultKind::Panic, 0, 0, 0);
            } else {
                if a[0] != 0 || !msg.is_empty() {
                    crate::kprintln!(
                        "{} exited with code {}{}{}",
                        k.tasks[cur].name(),
                        a[0] as i64,
                        if msg.is_empty() { "" } else { ": " },
                        msg
                    );
                }
                if k.tasks[cur].supervised {
                    fault::task_failed(k, cur, FaultKind::Exited, 0, a[0], 0);
                } else {
                    fault::stop_task(k, cur, TaskState::Exited, a[0], false);
                }
            }
            Ok(Done::Blocked)
        }
    }
}

fn send(k: &mut Kernel, cur: usize, a: [u64; 6], is_call: bool) -> Result<Done, Error> {
    let info = MsgInfo::decode(a[1])?;
    let cap = *k.cspaces[cur].get(a[0])?;
    match cap.object {
        Object::Reply { caller, token } if !is_call => {
            if !cap.rights.contains(Rights::WRITE) {
                return Err(Error::NoRights);
            }
            if info.cap.is_some() {
                return Err(Error::InvalidArgument);
            }
            // The reply capability is used up either way: answered, or its caller is gone.
            k.cspaces[cur].take(a[0])?;
            k.answer(cur, caller, token, info)?;
            Ok(Done::Value(0, 0))
        }
        Object::Session(s) => {
            if !cap.rights.contains(Rights::WRITE) || info.cap.is_some() {
                return Err(Error::NoRights);
            }
            let session = &k.sessions[s as usize];
            if !session.live {
                return Err(Error::Dead);
            }
            let ep = session.endpoint;
            if k.endpoints[ep as usize].halted {
                return Err(Error::ServerFailed);
            }
            Ok(k.send(cur, ep, info, cap.badge, is_call, Some(s)))
        }
        _ => {
            let (ep, badge) = endpoint(k, cur, a[0], Rights::WRITE)?;
            if k.endpoints[ep as usize].halted {
                return Err(Error::ServerFailed);
            }
            if let Some(slot) = info.cap {
                if !k.cspaces[cur].get(a[0])?.rights.contains(Rights::GRANT) {
                    return Err(Error::NoRights);
                }
                k.cspaces[cur].get(slot as u64)?;
            }
            Ok(k.send(cur, ep, info, badge, is_call, None))
        }
    }
}

/// Check that `slot` holds a Task capability over all tasks: the supervisor's credential.
fn supervisor_cap(k: &Kernel, cur: usize, slot: u64) -> Result<(), Error> {
    match k.cspaces[cur].lookup(slot, CapType::Task, Rights::READ.union(Rights::WRITE))?.object {
        Object::Task(None) => Ok(()),
        _ => Err(Error::NoRights),
    }
}

fn endpoint(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<(u16, u64), Error> {
    let c = k.cspaces[cur].lookup(slot, CapType::Endpoint, rights)?;
    match c.object {
        Object::Endpoint(e) => Ok((e, c.badge)),
        _ => Err(Error::WrongType),
    }
}

fn notification(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<u16, Error> {
    match k.cspaces[cur].lookup(slot, CapType::Notification, rights)?.object {
        Object::Notification(n) => Ok(n),
        _ => Err(Error::WrongType),
    }
}

fn memory(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<usize, Error> {
    match k.cspaces[cur].lookup(slot, CapType::Memory, rights)?.object {
        Object::Memory(m) => Ok(m as usize),
        _ => Err(Error::WrongType),
    }
}

/// The task index a Task capability lets `cur` act on.
fn task_target(k: &Kernel, cur: usize, slot: u64, index: u64, rights: Rights) -> Result<usize, Error> {
    let c = k.cspaces[cur].lookup(slot, CapType::Task, rights)?;
    let index = usize::try_from(index).ok().filter(|&i| i < MAX_TASKS).ok_or(Error::InvalidArgument)?;
    match c.object {
        Object::Task(None) => Ok(index),
        Object::Task(Some(id)) if id.index as usize == index => {
            k.resolve(id).ok_or(Error::Dead)?;
            Ok(index)
        }
        _ => Err(Error::NoRights),
    }
}

fn task_info(k: &Kernel, t: usize) -> TaskInfo {
    let task = &k.tasks[t];
    TaskInfo {
        name: task.name,
        index: t as u32,
        generation: task.id.generation,
        restarts: task.restarts,
        state: task.state as u8,
        priority: task.priority,
        _pad: [0; 2],
        exit_code: task.exit_code,
        syscalls: task.syscalls,
        ticks: task.ticks,
        recovery_tsc: task.recovery_tsc,
    }
}

/// View a plain-data value as bytes.
///
/// # Safety
/// `T` must be `repr(C)` with no implicit padding (every byte initialised).
pub unsafe fn pod_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: per the contract every byte of `*v` is initialised; the slice borrows `v`.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

fn ioport_enable(k: &mut Kernel, cur: usize, slot: u64) -> Result<Done, Error> {
    let (base, len) = match k.cspaces[cur].lookup(slot, CapType::IoPort, Rights::NONE)?.object {
        Object::IoPort { base, len } => (base, len),
        _ => return Err(Error::WrongType),
    };
    let t = &mut k.tasks[cur];
    if t.io_ranges[..t.io_count].contains(&(base, len)) {
        return Err(Error::AlreadyDone);
    }
    if t.io_count == t.io_ranges.len() {
        return Err(Error::OutOfResources);
    }
    t.io_ranges[t.io_count] = (base, len);
    t.io_count += 1;
    // The task is running: open the ports in this CPU's bitmap now.
    crate::arch::gdt::set_io_ports(base, len, true);
    crate::arch::cpu::this().io_owner.set(cur);
    Ok(Done::Value(0, 0))
}

fn mem_map(k: &mut Kernel, cur: usize, a: [u64; 6]) -> Result<Done, Error> {
    let rights = Rights::from_bits_truncate(a[2]);
    let m = memory(k, cur, a[0], rights.union(Rights::READ))?;
    let vaddr = a[1];
    let pages = k.memory[m].pages as u64;
    let end = vaddr.checked_add(pages * PAGE_SIZE).ok_or(Error::BadAddress)?;
    if !vaddr.is_multiple_of(PAGE_SIZE) || vaddr < MAP_BASE || end > USER_END {
        return Err(Error::BadAddress);
    }
    if k.memory[m].mapped.is_some() {
        return Err(Error::AlreadyDone);
    }
    let task = &k.tasks[cur];
    for p in 0..pages {
        if task.space().is_mapped(&mut k.frames, vaddr + p * PAGE_SIZE) {
            return Err(Error::InvalidArgument);
        }
    }
    let flags = paging::NX | if rights.contains(Rights::WRITE) { paging::W } else { 0 };
    for p in 0..pages {
        // SAFETY: the page list frame holds `pages` physical addresses, written at creation.
        let frame = unsafe { *(k.memory[m].page_list as *const u64).add(p as usize) };
        if let Err(e) = k.tasks[cur].space().map(&mut k.frames, vaddr + p * PAGE_SIZE, frame, flags) {
            crate::fault::unmap_pages(k, cur, vaddr, p);
            return Err(e);
        }
    }
    k.memory[m].mapped = Some((cur as u16, vaddr));
    Ok(Done::Value(pages, 0))
}
