//! What happens when a task faults, panics or exits: a report a person can act on, and a clean
//! stop that releases what the task held and fails nobody silently.
//!
//! ```text
//! [kernel] FAULT in hostile (task 3, gen 0): page fault (#PF), error 0x7 (user write, protection)
//! [kernel]   rip 0x40001234 <hostile::main+0x34>  address 0x100000
//! [kernel]   rax 0x0000000000000000 rbx ...
//! [kernel]   action: hostile stopped (faulted); 0 waiting callers failed
//! ```

use crate::arch::trap::Context;
use crate::state::{Blocked, Kernel};
use crate::state::{HANG_TICKS, REQUEST_TICKS};
use axolotl_abi::{Error, FaultKind, FaultRecord, TaskState, PAGE_SIZE, USER_STACK_SIZE, USER_STACK_TOP};
use axolotl_kcore::cap::{Capability, Object};
use core::fmt;

const EXCEPTIONS: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "non-maskable interrupt",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "bound range exceeded (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor segment overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack-segment fault (#SS)",
    "general protection (#GP)",
    "page fault (#PF)",
    "reserved vector 15",
    "x87 floating point (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD floating point (#XM)",
    "virtualization (#VE)",
    "control protection (#CP)",
    "reserved vector 22",
    "reserved vector 23",
    "reserved vector 24",
    "reserved vector 25",
    "reserved vector 26",
    "reserved vector 27",
    "hypervisor injection (#HV)",
    "VMM communication (#VC)",
    "security exception (#SX)",
    "reserved vector 31",
];

pub fn exception_name(vector: u64) -> &'static str {
    EXCEPTIONS.get(vector as usize).copied().unwrap_or("unknown vector")
}

/// A page-fault error code in words (nothing for other exceptions).
struct PfError(Option<u64>);

impl fmt::Display for PfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(e) = self.0 else { return Ok(()) };
        let who = if e & 4 != 0 { "user" } else { "kernel" };
        let what = if e & 16 != 0 {
            "instruction fetch"
        } else if e & 2 != 0 {
            "write"
        } else {
            "read"
        };
        let why = if e & 1 != 0 { "protection violation" } else { "page not present" };
        write!(f, " ({who} {what}, {why})")
    }
}

/// `<symbol+0xoff>` for an address in the task's image, if its ELF has symbols.
struct Symbol<'a>(Option<(&'a str, u64)>);

impl fmt::Display for Symbol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((name, off)) => write!(f, "<{:#}+{off:#x}>", rustc_demangle::demangle(name)),
            None => f.write_str("<no symbol>"),
        }
    }
}

pub fn print_registers(c: &Context) {
    let regs = [
        ("rax", c.rax),
        ("rbx", c.rbx),
        ("rcx", c.rcx),
        ("rdx", c.rdx),
        ("rsi", c.rsi),
        ("rdi", c.rdi),
        ("rbp", c.rbp),
        ("rsp", c.rsp),
        ("r8", c.r8),
        ("r9", c.r9),
        ("r10", c.r10),
        ("r11", c.r11),
        ("r12", c.r12),
        ("r13", c.r13),
        ("r14", c.r14),
        ("r15", c.r15),
    ];
    for row in regs.chunks(4) {
        crate::kprintln!(
            "  {:>3} {:#018x}  {:>3} {:#018x}  {:>3} {:#018x}  {:>3} {:#018x}",
            row[0].0,
            row[0].1,
            row[1].0,
            row[1].1,
            row[2].0,
            row[2].1,
            row[3].0,
            row[3].1
        );
    }
    crate::kprintln!("  rflags {:#x}", c.rflags);
}

/// A CPU exception in user task `t`: report it and stop the task.
pub fn user_fault(k: &mut Kernel, t: usize, cr2: u64) {
    let c = k.tasks[t].ctx;
    let guard = USER_STACK_TOP - USER_STACK_SIZE - PAGE_SIZE;
    let kind = match c.vector {
        14 if (guard..guard + PAGE_SIZE).contains(&cr2) => "stack overflow (hit the guard page)",
        v => exception_name(v),
    };
    let task = &k.tasks[t];
    crate::kprintln!(
        "FAULT in {} (task {}, gen {}): {}, error {:#x}{}",
        task.name(),
        t,
        task.id.generation,
        kind,
        c.error,
        PfError((c.vector == 14).then_some(c.error))
    );
    let sym = Symbol(k.module_of(t).and_then(|m| axolotl_kcore::elf::symbolize(m.bytes(), c.rip)));
    if c.vector == 14 {
        crate::kprintln!("  rip {:#x} {}  address {:#x}", c.rip, sym, cr2);
    } else if !crate::sched::is_canonical(c.rip) {
        crate::kprintln!("  rip {:#x} <not a canonical address: nothing can be fetched there>", c.rip);
    } else {
        crate::kprintln!("  rip {:#x} {}", c.rip, sym);
    }
    print_registers(&c);
    task_failed(k, t, FaultKind::Exception, c.vector, c.error, if c.vector == 14 { cr2 } else { 0 });
}

/// A task's panic handler ended it with `EXIT_PANIC` and this message.
pub fn report_panic(k: &Kernel, t: usize, msg: &str) {
    let task = &k.tasks[t];
    crate::kprintln!("FAULT in {} (task {}, gen {}): panicked: {}", task.name(), t, task.id.generation, msg);
}

/// What stopping a task did to the callers waiting for its replies.
#[derive(Clone, Copy, Default)]
pub struct Callers {
    /// Put back at the front of their endpoint's queue, to be delivered again.
    pub suspended: u32,
    /// Failed with `ServerFailed`.
    pub failed: u32,
}

/// Stop task `t`: take it out of every queue, deal with the callers waiting for its reply,
/// wake tasks waiting for it to stop, close its sessions as a client, free its address space.
///
/// With `suspend`, a caller whose request `t` had received is put back at the front of the
/// endpoint's queue to be delivered again to the next incarnation — unless that request had
/// already been delivered again once, in which case only that caller fails. Without `suspend`,
/// every such caller fails with `ServerFailed`.
pub fn stop_task(k: &mut Kernel, t: usize, state: TaskState, code: u64, suspend: bool) -> Callers {
    if let Blocked::Endpoint(e) = k.tasks[t].blocked {
        let ep = &mut k.endpoints[e as usize];
        ep.senders.remove(&mut k.links, t);
        ep.receivers.remove(&mut k.links, t);
    }
    let prio = k.tasks[t].priority;
    k.run.remove(&mut k.links, t, prio);
    let mut callers = Callers::default();
    for j in 0..k.tasks.len() {
        let other = &k.tasks[j];
        if other.state == TaskState::Calling && other.blocked == Blocked::Reply(t as u16) {
            if suspend && !other.retried {
                let ep = other.pending.ep;
                let c = &mut k.tasks[j];
                c.retried = true;
                c.state = TaskState::Sending;
                c.blocked = Blocked::Endpoint(ep);
                k.endpoints[ep as usize].senders.push_front(&mut k.links, j);
                callers.suspended += 1;
            } else {
                k.fail_blocked(j, Error::ServerFailed);
                callers.failed += 1;
            }
        } else if other.state == TaskState::Joining && other.blocked == Blocked::Task(t as u16) {
            k.tasks[j].ctx.rax = 0;
            k.tasks[j].ctx.rdi = code;
            k.tasks[j].ctx.rsi = state as u64;
            k.make_ready(j);
        }
    }
    if let Some(n) = k.tasks[t].bound_notification.take() {
        k.notifications[n as usize].bound = None;
    }
    for m in k.memory.iter_mut() {
        if m.mapped.is_some_and(|(owner, _)| owner as usize == t) {
            m.mapped = None;
        }
    }
    k.unmap_ssr(t);
    k.close_sessions_of(t);
    k.leave_cpu(t);
    let task = &mut k.tasks[t];
    task.ssr_pte = 0;
    task.io_count = 0;
    task.state = state;
    task.exit_code = code;
    task.blocked = Blocked::Nothing;
    task.reply_to = None;
    task.ipc_buffer = 0;
    if let Some(space) = task.space.take() {
        space.destroy(&mut k.frames);
    }
    callers
}

/// A supervised (or any) task stopped abnormally: stop it, and if it is supervised and a
/// supervisor listens, suspend its callers and hand the fault to the supervisor. The
/// supervisor itself is restarted by the kernel directly: nobody else could.
pub fn task_failed(k: &mut Kernel, t: usize, kind: FaultKind, vector: u64, error: u64, addr: u64) {
    let (rip, generation, answered) = (k.tasks[t].ctx.rip, k.tasks[t].id.generation, k.tasks[t].answered);
    let supervised = k.tasks[t].supervised && k.supervisor.is_some();
    let code = if kind == FaultKind::Exception { vector } else { 0x100 + kind as u64 };
    let callers = stop_task(k, t, TaskState::Faulted, code, supervised);
    let name = k.tasks[t].name;
    let name = axolotl_abi::str_from_padded(&name);
    if k.tasks[t].supervisor {
        crate::kprintln!("  action: the supervisor itself failed; the kernel restarts it");
        let _ = restart_task(k, t, 0);
        return;
    }
    if !supervised {
        crate::kprintln!(
            "  action: {} stopped ({}); {} waiting caller(s) failed with ServerFailed",
            name,
            kind.name(),
            callers.failed
        );
        return;
    }
    crate::kprintln!(
        "  action: {} stopped ({}); {} caller(s) suspended, {} failed; reported to the supervisor",
        name,
        kind.name(),
        callers.suspended,
        callers.failed
    );
    k.tasks[t].fault_tsc = Some(crate::arch::cpu::rdtsc());
    let record = FaultRecord {
        index: t as u32,
        generation,
        kind: kind as u32,
        vector: vector as u32,
        error,
        rip,
        addr,
        tick: k.ticks,
        tsc: crate::arch::cpu::rdtsc(),
        answered,
        suspended: callers.suspended,
        failed: callers.failed,
    };
    if k.fault_count == k.faults.len() {
        k.fault_head = (k.fault_head + 1) % k.faults.len();
        k.fault_count -= 1;
        k.faults_dropped += 1;
    }
    let slot = (k.fault_head + k.fault_count) % k.faults.len();
    k.faults[slot] = record;
    k.fault_count += 1;
    if let Some(n) = k.supervisor {
        k.signal(n, 1);
    }
}

/// The oldest fault record not yet taken.
pub fn next_fault(k: &mut Kernel) -> Option<FaultRecord> {
    if k.fault_count == 0 {
        return None;
    }
    let r = k.faults[k.fault_head];
    k.fault_head = (k.fault_head + 1) % k.faults.len();
    k.fault_count -= 1;
    Some(r)
}

/// Stop task `t` for good after a crash loop: its endpoints answer every call with
/// `ServerFailed` until someone restarts it by hand.
pub fn hold_task(k: &mut Kernel, t: usize) {
    if !k.tasks[t].state.is_stopped() {
        stop_task(k, t, TaskState::Faulted, 0, false);
    }
    k.tasks[t].state = TaskState::Halted;
    k.tasks[t].fault_tsc = None;
    let served = k.served_endpoints::<8>(t);
    let mut failed = 0;
    for &e in &served {
        k.endpoints[e as usize].halted = true;
        while let Some(c) = k.endpoints[e as usize].senders.pop_front(&mut k.links) {
            k.fail_blocked(c, Error::ServerFailed);
            failed += 1;
        }
    }
    crate::kprintln!(
        "{} (task {}) halted: {} queued caller(s) failed with ServerFailed",
        k.tasks[t].name(),
        t,
        failed
    );
}

/// Undo what a deleted capability had enabled in task `t`.
pub fn undo_cap(k: &mut Kernel, t: usize, cap: &Capability) {
    match cap.object {
        Object::IoPort { base, len } => {
            let task = &mut k.tasks[t];
            if let Some(i) = task.io_ranges[..task.io_count].iter().position(|&r| r == (base, len)) {
                task.io_ranges.copy_within(i + 1..task.io_count, i);
                task.io_count -= 1;
                if crate::arch::cpu::this().io_owner.get() == t {
                    crate::arch::gdt::set_io_ports(base, len, false);
                }
            }
        }
        Object::Memory(m) => {
            let obj = &mut k.memory[m as usize];
            if let Some((owner, vaddr)) = obj.mapped.filter(|&(owner, _)| owner as usize == t) {
                let pages = obj.pages as u64;
                obj.mapped = None;
                unmap_pages(k, owner as usize, vaddr, pages);
            }
        }
        Object::Session(s) => k.close_session(s),
        _ => {}
    }
}

/// Unmap `pages` pages at `vaddr` from task `t` (frames of memory objects are not freed).
pub fn unmap_pages(k: &mut Kernel, t: usize, vaddr: u64, pages: u64) {
    if let Some(space) = k.tasks[t].space.as_ref() {
        for p in 0..pages {
            space.unmap(&mut k.frames, vaddr + p * PAGE_SIZE);
        }
    }
}

/// Replace task `t` with a new incarnation from its pristine image, now or after `delay`
/// timer ticks: stop it if it still runs, drop its stale reply capabilities, rebuild its address
/// space, bump its generation and restart count, and make it ready. Its other capabilities, and
/// so its endpoints, stay: clients keep calling the same endpoint. Returns the new generation.
pub fn restart_task(k: &mut Kernel, t: usize, delay: u64) -> Result<u32, crate::loader::LoadError> {
    if !k.tasks[t].state.is_stopped() {
        let callers = stop_task(k, t, TaskState::Exited, 0, k.tasks[t].supervised && k.supervisor.is_some());
        crate::kprintln!(
            "{} (task {}) stopped for restart; {} caller(s) suspended, {} failed",
            k.tasks[t].name(),
            t,
            callers.suspended,
            callers.failed
        );
        k.tasks[t].fault_tsc = Some(crate::arch::cpu::rdtsc());
    }
    if delay > 0 {
        k.tasks[t].state = TaskState::Restarting;
        k.tasks[t].restart_at = k.ticks + delay;
        return Ok(k.tasks[t].id.generation + 1);
    }
    k.cspaces[t].remove_where(|c| matches!(c.object, Object::Reply { .. }), |_| {});
    k.tasks[t].id.generation += 1;
    k.tasks[t].restarts += 1;
    if let Err(e) = crate::loader::build_image(k, t) {
        crate::kprintln!("cannot restart {} (task {}): {}", k.tasks[t].name(), t, e);
        k.tasks[t].state = TaskState::Faulted;
        return Err(e);
    }
    for e in k.served_endpoints::<8>(t) {
        k.endpoints[e as usize].halted = false;
    }
    let task = &mut k.tasks[t];
    task.exit_code = 0;
    task.slice_left = crate::state::TIMESLICE_TICKS;
    task.recv_slot = None;
    task.pending.session = None;
    task.spin_ticks = 0;
    task.answered = 0;
    let generation = task.id.generation;
    crate::kprintln!("restarted {} (task {}) as generation {}", task.name(), t, generation);
    k.make_ready(t);
    Ok(generation)
}

/// Timer work for supervision: start delayed restarts that are due, and catch hung tasks.
pub fn supervise_tick(k: &mut Kernel, running: usize) {
    for t in 0..k.tasks.len() {
        if k.tasks[t].state == TaskState::Restarting && k.ticks >= k.tasks[t].restart_at {
            let _ = restart_task(k, t, 0);
        }
    }
    for t in 0..k.tasks.len() {
        let task = &k.tasks[t];
        let overdue = task.reply_to.is_some() && k.ticks.saturating_sub(task.request_tick) > REQUEST_TICKS;
        // Waiting for another server that has taken its call leaves the blame with that
        // server; any other way of not answering (running, queued on an endpoint nobody
        // serves — even its own —, waiting on a notification) is this server's hang.
        let blocked_on_server = matches!(task.state, TaskState::Calling | TaskState::Receiving);
        if overdue && task.supervised && !blocked_on_server && !task.state.is_stopped() {
            crate::kprintln!(
                "HANG in {} (task {}, gen {}): a request unanswered for {} timer ticks, at rip {:#x}",
                task.name(),
                t,
                task.id.generation,
                k.ticks - task.request_tick,
                task.ctx.rip
            );
            task_failed(k, t, FaultKind::Hang, 0, 0, 0);
        }
    }
    if running < k.tasks.len() && k.tasks[running].state == TaskState::Ready {
        let task = &mut k.tasks[running];
        task.spin_ticks += 1;
        if task.spin_ticks > HANG_TICKS && (task.supervised || task.supervisor) {
            let task = &k.tasks[running];
            crate::kprintln!(
                "HANG in {} (task {}, gen {}): {} timer ticks without a syscall, at rip {:#x}",
                task.name(),
                running,
                task.id.generation,
                task.spin_ticks,
                task.ctx.rip
            );
            task_failed(k, running, FaultKind::Hang, 0, 0, 0);
        }
    }
}
