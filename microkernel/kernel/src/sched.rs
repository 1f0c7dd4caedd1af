//! Choosing the next task and making it the running one.
//!
//! The running task is `Ready` but not queued. After every kernel entry the top layer
//! (`traps`) asks [`Kernel::choose`], which keeps the running task unless it blocked, stopped,
//! or a higher-priority task became ready; the timer tick rotates tasks of equal priority, and
//! gives a task that starved behind higher priorities one slice of time ahead of them
//! (`RunQueues::tick`; the `boosted` task).
//!
//! No operation below the top layer switches tasks itself: it reports what it did and whom it
//! woke as a [`Done`] (Hubris's `NextTask`), and the syscall dispatcher applies that hint once.

use crate::arch::cpu::{self, NO_TASK};
use crate::arch::gdt;
use crate::arch::trap::{frame_end, TrapFrame};
use crate::state::{Blocked, Kernel, TIMESLICE_TICKS};
use axolotl_abi::TaskState;

/// What a syscall did for its caller, and what it asks of the scheduler.
#[must_use]
pub enum Done {
    /// Completed now: `rax` = 0 and these values in `rdi`, `rsi`.
    Value(u64, u64),
    /// Completed now; a message was already written into the caller's registers.
    Delivered,
    /// The caller blocked; whoever wakes it writes its registers. The scheduler picks who runs.
    Blocked,
    /// The caller blocked handing work (a call) or an answer (a reply) to this ready task: run
    /// it next, without a trip through the run queue, unless a higher-priority task is ready
    /// (L4's direct switch).
    Handoff(usize),
}

impl Kernel {
    /// Pick the task to run next on this CPU, without switching yet.
    pub fn choose(&mut self) -> Option<usize> {
        let cur = cpu::this().current.get();
        let running =
            cur != NO_TASK && self.tasks[cur].state == TaskState::Ready && !self.links.is_queued(cur);
        if let Some(b) = self.boost_ready(cur) {
            if running && cur != b {
                self.run.enqueue(&mut self.links, cur, self.tasks[cur].priority);
            }
            return Some(b);
        }
        if running {
            let prio = self.tasks[cur].priority;
            if self.run.top_priority().is_none_or(|top| top <= prio) {
                return Some(cur);
            }
            self.run.enqueue(&mut self.links, cur, prio);
        }
        self.run.pick(&mut self.links)
    }

    /// The boosted task if its window is open and it is ready, taken off its run queue.
    fn boost_ready(&mut self, cur: usize) -> Option<usize> {
        let b = self.boosted;
        if b == NO_TASK || self.tasks[b].state != TaskState::Ready {
            return None;
        }
        if self.links.is_queued(b) {
            self.run.remove(&mut self.links, b, self.tasks[b].priority);
        } else if b != cur {
            return None;
        }
        Some(b)
    }

    /// Make `t` the running task of this CPU: its saved frame becomes the trap target, its
    /// address space and I/O ports are loaded.
    #[inline(always)]
    pub fn activate(&mut self, t: usize) -> *const TrapFrame {
        let me = cpu::this();
        // `charge(t)`, with the per-CPU block already at hand.
        if self.accounting {
            self.charge_to(me, t);
        }
        me.current.set(t);
        let task = &self.tasks[t];
        me.cur_ctx_end.set(frame_end(&task.ctx));
        gdt::set_rsp0(frame_end(&task.ctx));
        task.space().load();
        let owner = me.io_owner();
        // Most tasks hold no ports: then, with no owner open, there is nothing to change.
        if (owner != NO_TASK || task.io_count > 0) && owner != t {
            if owner != NO_TASK {
                let old = &self.tasks[owner];
                for &(base, len) in &old.io_ranges[..old.io_count] {
                    gdt::set_io_ports(base, len, false);
                }
            }
            for &(base, len) in &task.io_ranges[..task.io_count] {
                gdt::set_io_ports(base, len, true);
            }
            me.set_io_owner(if task.io_count > 0 { t } else { NO_TASK });
        }
        &task.ctx
    }

    /// [`activate`](Self::activate) for the IPC fastpath, which switches from the running task
    /// to another (`t` is not the running task): with no accounting on, no ports open and none
    /// held by `t` (the common case, one test), only the frame, stack and space change, and
    /// the space without comparing it with the current one.
    #[inline(always)]
    pub fn activate_other(&mut self, t: usize) -> *const TrapFrame {
        let me = cpu::this();
        let task = &self.tasks[t];
        if me.switch_work() as usize | task.io_count != 0 {
            return self.activate_cold(t);
        }
        me.current.set(t);
        me.cur_ctx_end.set(frame_end(&task.ctx));
        gdt::set_rsp0(frame_end(&task.ctx));
        task.space().load_other();
        &task.ctx
    }

    #[cold]
    #[inline(never)]
    fn activate_cold(&mut self, t: usize) -> *const TrapFrame {
        self.activate(t)
    }

    /// Apply a [`Done::Handoff`]: make ready task `t` the running task of this CPU without
    /// queueing it, because the task running now has just blocked handing it work or an
    /// answer. `choose` still lets a higher-priority ready task go first.
    pub fn switch_to(&mut self, t: usize) {
        self.tasks[t].state = TaskState::Ready;
        self.tasks[t].blocked = Blocked::Nothing;
        self.charge(t);
    }

    /// Make `next` (a task, or `NO_TASK` for idle) this CPU's current task; with accounting on,
    /// charge the TSC ticks since the last change to the one it replaces. Each task's `cpu_tsc`
    /// is then what it ran and the kernel's work for it, and its `billed_tsc` that and what
    /// servers ran serving its calls (`client_of`); the rest (idle, and the interrupts,
    /// whoever they came upon: `charge_interrupt`) is `idle_tsc`. The `current` of each CPU
    /// changes only here.
    #[inline(always)]
    pub fn charge(&mut self, next: usize) {
        let me = cpu::this();
        if self.accounting {
            self.charge_to(me, next);
        }
        me.current.set(next);
    }

    /// Close the running task's bill now, and open the next for whom it works for from now
    /// (`client_of`): a task that takes or gives up a caller's implicit reply without a switch
    /// (a queued call taken in `recv`, a reply saved) calls this after the change. (Whom a task
    /// works for is decided when it starts running, so a server that answers and switches to
    /// its caller in one step, as the IPC fastpath does, needs no call.)
    #[inline(always)]
    pub fn settle(&mut self) {
        if self.accounting {
            let me = cpu::this();
            self.charge_to(me, me.charged.get());
        }
    }

    /// An interrupt came: what the kernel does for it, until it picks the task to resume, is
    /// charged to no task (it is not the work of the one it came upon).
    pub fn charge_interrupt(&mut self) {
        if self.accounting {
            self.charge_to(cpu::this(), NO_TASK);
        }
    }

    // Out of line: accounting is off but while a benchmark asks, and each switch then only
    // tests the flag.
    #[cold]
    #[inline(never)]
    fn charge_to(&mut self, me: &cpu::PerCpu, next: usize) {
        let now = x86::cpu::rdtsc();
        let ran = now.wrapping_sub(me.since.get());
        match self.tasks.get_mut(me.charged.get()) {
            Some(task) => task.cpu_tsc += ran,
            None => self.idle_tsc += ran,
        }
        if let Some(client) = self.tasks.get_mut(me.billed.get()) {
            client.billed_tsc += ran;
        }
        me.since.set(now);
        me.charged.set(next);
        me.billed.set(self.client_of(next));
    }

    /// Whose work task `t` is doing: while it holds a caller's implicit reply (it serves that
    /// call), the caller's, and so on up the chain of calls (the shell's call to fs, fs's to
    /// the disk driver: the driver works for the shell); otherwise its own. Idle (`NO_TASK`)
    /// works for no one. The chain is bounded by the task count: a task waits on one call at a
    /// time, so it has no cycle, but the bound keeps a broken invariant from becoming a hang.
    fn client_of(&self, mut t: usize) -> usize {
        if t >= self.tasks.len() {
            return NO_TASK;
        }
        for _ in 0..self.tasks.len() {
            match self.tasks[t].reply_to.and_then(|(caller, _)| self.resolve(caller)) {
                Some(c) => t = c,
                None => break,
            }
        }
        t
    }

    /// Turn CPU accounting on or off for task `by` (the `accounting` syscall). Turned on, it
    /// starts from now, and lasts until turned off or until `by` stops.
    pub fn set_accounting(&mut self, on: bool, by: usize) {
        if on && !self.accounting {
            let me = cpu::this();
            me.since.set(x86::cpu::rdtsc());
            me.charged.set(me.current.get());
            me.billed.set(self.client_of(me.current.get()));
        }
        self.accounting = on;
        cpu::this().set_switch_work(cpu::SWITCH_ACCOUNTING, on);
        self.accounting_by = by;
        if !on {
            self.set_quiet(None);
        }
    }

    /// The scheduler's part of a timer tick: account it to the running task, rotate
    /// equal-priority tasks when its slice is used up, and open a boost window for a task that
    /// starved behind higher priorities: for one slice of time it runs ahead of them whenever
    /// it is ready, its own calls and their replies included (`choose`).
    pub fn account_tick(&mut self) {
        if self.boosted != NO_TASK && self.ticks >= self.boost_end {
            self.boosted = NO_TASK;
        }
        let cur = cpu::this().current.get();
        if cur == NO_TASK || self.tasks[cur].state != TaskState::Ready {
            return;
        }
        let task = &mut self.tasks[cur];
        task.ticks += 1;
        task.slice_left = task.slice_left.saturating_sub(1);
        let prio = task.priority;
        if task.slice_left == 0 {
            task.slice_left = TIMESLICE_TICKS;
            if self.run.top_priority().is_some_and(|top| top >= prio) {
                self.run.enqueue(&mut self.links, cur, prio);
                return;
            }
        }
        if self.boosted != NO_TASK {
            return;
        }
        if let Some(starved) = self.run.tick(prio) {
            self.boosted = starved;
            self.boost_end = self.ticks + TIMESLICE_TICKS as u64;
        }
    }

    /// Forget the running task of this CPU if it is `t` (it stopped): its address space is
    /// about to go, so the kernel's own is loaded instead, and its ports are closed.
    pub fn leave_cpu(&mut self, t: usize) {
        let me = cpu::this();
        if me.current.get() == t {
            self.charge(NO_TASK);
            crate::paging::load_kernel_space();
        }
        if me.io_owner() == t {
            let task = &self.tasks[t];
            for &(base, len) in &task.io_ranges[..task.io_count] {
                gdt::set_io_ports(base, len, false);
            }
            me.set_io_owner(NO_TASK);
        }
    }
}

impl Kernel {
    /// Close every interrupt line but `keep` (and the cascade, if a kept line needs it), the
    /// timer's included, or (`None`) end that: the closed lines go back to how their drivers
    /// left them. See `Sysno::Accounting`.
    pub fn set_quiet(&mut self, keep: Option<u16>) {
        if let Some(q) = self.quiet.take() {
            let now = x86::pic::read_mask(&cpu::PORTS).0;
            x86::pic::set_mask(&cpu::PORTS, x86::pic::Mask(q.saved.0 & !q.keep | now & q.keep));
        }
        if let Some(keep) = keep {
            let keep = x86::pic::Mask::with_cascade(keep);
            let saved = x86::pic::read_mask(&cpu::PORTS);
            x86::pic::set_mask(&cpu::PORTS, x86::pic::Mask(saved.0 | x86::pic::Mask::all_but_bits(keep).0));
            self.quiet = Some(crate::state::Quiet { keep, saved });
        }
    }

    /// A driver acknowledged its interrupt: open `line` again, or, while the machine is kept
    /// quiet and the line is not kept open, once the quiet ends.
    pub fn open_line(&mut self, line: u8) {
        match &mut self.quiet {
            Some(q) if q.keep & 1 << line == 0 => q.saved.0 &= !(1 << line),
            _ => x86::pic::mask(&cpu::PORTS, line, false),
        }
    }
}
