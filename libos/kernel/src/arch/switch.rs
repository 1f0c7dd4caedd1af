//! The voluntary switch: a task that blocks inside the kernel hands the CPU to the next one by
//! a function call, and so saves only what a call must keep — the callee-saved registers, its
//! stack pointer and the return address — not a trap frame (Theseus's `context_switch`). The
//! trap path (interrupts, exceptions, the yield and die gates) still saves and resumes full
//! frames; the two meet here.
//!
//! ```text
//!  outgoing stack                switch stack (kernel's)            incoming stack
//!  push rbp rbx r12-r15          call libos_kernel_switch_between:  switched away by a call:
//!  save rsp  ───────────────►    open the incoming task's memory,   pop r15..rbp, ret
//!                                copy a message into it, say   ──►  left by the trap path:
//!                                where it resumes                   its frame, los_trap_return
//! ```
//! The middle runs on a stack of the kernel's own: once the incoming task's slots are open the
//! outgoing task's stack is read-only (`mem::paging::open`), and the first write to it would
//! fault. The trap path resumes a switched-away task through a frame built below its saved
//! stack pointer ([`frame_for`]), whose `iretq` lands on the pops.
//!
//! No fault injected into a cell may strike inside a switch (it would strike the other task):
//! the labels below are sized function symbols, which the injector counts as kernel code
//! (`fault::kernel_code`, checked against the built image by `cargo os build`), and the middle
//! and whatever it calls (`memcpy`, which is not the kernel's by name) run on the switch stack
//! ([`on_switch_stack`]). Nor does a single step land here in the first place: a task with a
//! fault counting its steps blocks through the trap gate (`sched::block`), and one resumed by a
//! frame at `los_switch_resume` resumes inside its critical section.
//!
//! Calling convention: System V (`extern "C"`). `rdi` is where the outgoing stack pointer is
//! stored; `libos_kernel_switch_between` (in `sched`, which planned the switch) returns the
//! incoming stack pointer or frame in `rax` and, in `rdx`, 1 for a frame. The caller-saved
//! registers are the caller's to lose, as at any call; the flags are not kept (the ABI keeps
//! only DF, which is 0 at every call, see `sync::critical`). Interrupts are masked across a
//! switch: a task switches away inside a kernel critical section and resumes inside it.

use super::gdt::{KERNEL_CS, KERNEL_DS};
use x86::TrapFrame;

extern "C" {
    fn los_switch(save: *mut u64);
    fn los_switch_resume();
    static los_switch_stack: u8;
    static los_switch_stack_top: u8;
}

/// Is `sp` on the switch stack, that is, is the middle of a switch running (whatever code it
/// runs: the libraries it calls, `memcpy` among them, are not the kernel's by name)?
pub fn on_switch_stack(sp: u64) -> bool {
    let (bottom, top) = (&raw const los_switch_stack as u64, &raw const los_switch_stack_top as u64);
    (bottom..=top).contains(&sp)
}

/// Where a switch goes, as `libos_kernel_switch_between` answers.
#[repr(C)]
pub struct Target {
    /// The incoming task's saved stack pointer, or its trap frame.
    pub at: u64,
    /// 1: `at` is a trap frame (resumed by `iretq`); 0: a stack pointer a switch saved.
    pub frame: u64,
}

/// Switch away: save this task's context at `save`, run `libos_kernel_switch_between` on the
/// switch stack, resume what it answers. Returns when this task is switched back to (or
/// resumed by the trap path).
///
/// # Safety
/// Interrupts masked and no kernel table borrowed; `save` is where this task's context is
/// recorded (valid to write now, read only once it is switched away); a switch is planned
/// (`sched::block`).
pub unsafe fn switch(save: *mut u64) {
    // SAFETY: the caller's contract; the routine keeps every callee-saved register.
    unsafe { los_switch(save) }
}

/// The trap frame that resumes a task switched away at stack pointer `sp` (for the trap path,
/// which resumes only frames): it lands on the pops of [`switch`] with interrupts masked, as the
/// task left them.
pub fn frame_for(sp: u64) -> TrapFrame {
    TrapFrame {
        rip: los_switch_resume as *const () as u64,
        cs: KERNEL_CS as u64,
        rflags: 2,
        rsp: sp,
        ss: KERNEL_DS as u64,
        ..TrapFrame::default()
    }
}

core::arch::global_asm!(
    r#"
    .section .text
    .global los_switch
    .type los_switch, @function
los_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    lea los_switch_stack_top(%rip), %rsp
    call libos_kernel_switch_between
    mov %rax, %rsp
    test %rdx, %rdx
    jnz los_trap_return
    .global los_switch_resume
    .type los_switch_resume, @function
los_switch_resume:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
    .size los_switch_resume, . - los_switch_resume
    .size los_switch, . - los_switch

    /* One CPU, and a switch runs with interrupts masked: one switch stack. */
    .section .bss
    .balign 16
    .global los_switch_stack
los_switch_stack:
    .skip 4096
    .global los_switch_stack_top
los_switch_stack_top:
"#,
    options(att_syntax)
);
