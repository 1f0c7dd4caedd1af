//! Choosing the next task and switching to it.
//!
//! The running task is `Ready` but not queued. After every kernel entry, [`next_context`] keeps
//! it running unless it blocked, stopped, or a higher-priority task became ready; the timer tick
//! rotates tasks of equal priority. With nothing ready the CPU idles in `hlt` with the kernel
//! lock released, so interrupts can wake a task.

use crate::arch::cpu::{self, NO_TASK};
use crate::arch::gdt;
use crate::arch::trap::Context;
use crate::state::{Kernel, KERNEL, TIMESLICE_TICKS};
use axolotl_abi::TaskState;
use spin::MutexGuard;

impl Kernel {
    /// Pick the task to run next on this CPU, without switching yet.
    fn choose(&mut self) -> Option<usize> {
        let cur = cpu::this().current.get();
        if cur != NO_TASK && self.tasks[cur].state == TaskState::Ready && !self.links.is_queued(cur) {
            let prio = self.tasks[cur].priority;
            if self.run.top_priority().is_none_or(|top| top <= prio) {
                return Some(cur);
            }
            self.run.enqueue(&mut self.links, cur, prio);
        }
        self.run.pick(&mut self.links)
    }

    /// Make `t` the running task of this CPU: its saved frame becomes the trap target, its
    /// address space and I/O ports are loaded.
    #[inline(always)]
    pub fn activate(&mut self, t: usize) -> *const Context {
        let me = cpu::this();
        let task = &self.tasks[t];
        me.current.set(t);
        me.cur_ctx_end.set(task.ctx.end());
        gdt::set_rsp0(task.ctx.end());
        task.space().load();
        let owner = me.io_owner.get();
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
            me.io_owner.set(if task.io_count > 0 { t } else { NO_TASK });
        }
        &task.ctx
    }

    /// Make ready task `t` the running task of this CPU without queueing it, because the task
    /// running now has just blocked handing it work (a call) or an answer (a reply). `choose`
    /// still lets a higher-priority ready task go first.
    pub fn switch_to(&mut self, t: usize) {
        self.tasks[t].state = TaskState::Ready;
        self.tasks[t].blocked = crate::state::Blocked::Nothing;
        cpu::this().current.set(t);
    }

    /// One timer tick: account it and rotate equal-priority tasks when the slice is used up.
    pub fn tick(&mut self) {
        self.ticks += 1;
        let cur = cpu::this().current.get();
        crate::fault::supervise_tick(self, cur);
        if cur == NO_TASK || self.tasks[cur].state != TaskState::Ready {
            return;
        }
        let task = &mut self.tasks[cur];
        task.ticks += 1;
        task.slice_left = task.slice_left.saturating_sub(1);
        if task.slice_left == 0 {
            task.slice_left = TIMESLICE_TICKS;
            let prio = task.priority;
            if self.run.top_priority().is_some_and(|top| top >= prio) {
                self.run.enqueue(&mut self.links, cur, prio);
            }
        }
    }

    /// Forget the running task of this CPU if it is `t` (it stopped).
    pub fn leave_cpu(&mut self, t: usize) {
        let me = cpu::this();
        if me.current.get() == t {
            me.current.set(NO_TASK);
            crate::paging::load_kernel_space();
        }
        if me.io_owner.get() == t {
            let task = &self.tasks[t];
            for &(base, len) in &task.io_ranges[..task.io_count] {
                gdt::set_io_ports(base, len, false);
            }
            me.io_owner.set(NO_TASK);
        }
    }
}

/// The frame to resume after a kernel entry; idles until some task is ready. Consumes the lock
/// guard: the lock is released before the caller restores the frame. That is safe because a
/// running task's frame is only ever touched by the CPU running it.
pub fn next_context(mut k: MutexGuard<'static, Kernel>) -> *const Context {
    loop {
        if let Some(t) = k.choose() {
            let rip = k.tasks[t].ctx.rip;
            if !is_canonical(rip) {
                // Returning would fault in ring 0 (sysret on Intel, iretq everywhere). A task's
                // own jumps fault at the fetch and the injector faults a rip it breaks at once
                // (`inject::fault_if_unfetchable`), so this only guards that invariant: make it
                // the #GP the fetch would have raised, charged to the task.
                k.tasks[t].ctx.raise_gp();
                crate::fault::user_fault(&mut k, t, 0);
                continue;
            }
            return k.activate(t);
        }
        cpu::this().current.set(NO_TASK);
        drop(k);
        cpu::idle_wait();
        k = KERNEL.lock();
    }
}

/// An address the CPU can fetch from: bits 63..47 all equal (user addresses are the low half).
pub fn is_canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == (1 << 17) - 1
}
