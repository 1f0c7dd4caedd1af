//! Trap entry and exit: the IDT and the entry stubs.
//!
//! Every way into the kernel (exception, IRQ, `int 0x81` yield, `int 0x82` die) goes through one
//! stub that completes a [`TrapFrame`] (the shared `x86` layout) on the stack the gate names and
//! calls `libos_kernel_trap(frame)` in `crate::trap`, which returns the frame to resume: the same
//! one, or another task's. A task the trap path switches away from keeps a full frame on its own
//! stack, and a switch is "return someone else's" (a task that switched away by a call, see
//! `switch`, is given a frame that resumes it).
//!
//! ```text
//!   high  ss rsp rflags cs rip      <- pushed by the CPU (ring 0 to ring 0 in long mode)
//!         error vector              <- error code (or 0) and vector number
//!   low   rax rbx ... r14 r15       <- pushed by the stub; r15 at the lowest address
//!
//!   gate               stack               its frame
//!   exceptions, die    IST1 (#DF: IST2)    resumed at once, or the task is killed
//!   IRQs 32-47, yield  IST3                resumed at once, or moved onto the task's stack
//!                                          (`trap::keep`) when the task is switched away
//! ```
//! No gate runs on the task's own stack: once a switch opens the incoming task's memory, the
//! outgoing task's stack is read-only (`mem::paging::open`), and the rest of the trap path must
//! not write there.
//! Ring 0 to ring 0, the CPU switches stacks only through the IST. Without it a hardware
//! interrupt would be pushed on the interrupted task's `rsp`: bent by a fault, that push faults
//! and the interrupt is lost after the PIC marked it in service, which stops every interrupt
//! for good (campaigns `fs` and `timer`, seed 31337). The stubs clobber nothing the
//! interrupted code can see (all general registers are restored). Their labels are sized
//! function symbols, so the fault injector counts every byte of them as kernel code
//! (`fault::kernel_code`).

use super::gdt::KERNEL_CS;
pub use x86::frame::{RFLAGS_IF, RFLAGS_TF};
use x86::idt::{Gate, StaticIdt};
pub use x86::TrapFrame;

pub const VEC_YIELD: u64 = 0x81;
pub const VEC_DIE: u64 = 0x82;

static IDT: StaticIdt = StaticIdt::new();

extern "C" {
    static los_isr_table: [u64; 48];
    fn los_isr_yield();
    fn los_isr_die();
}

/// Install the gates and load the IDT. Every CPU exception runs on IST1 (a task's stack may be
/// what failed), a double fault on IST2, `die` on IST1 (it frees the stack it came from), the
/// hardware interrupts on IST3 (a task's stack pointer may be bent: see the module's comment).
pub fn init() {
    let gate = |addr: u64, ist: u8| Gate::interrupt(addr, KERNEL_CS, ist);
    // SAFETY: single-threaded boot, once, before interrupts are enabled; the gates point at the
    // stubs of the assembly below and of `trap_stubs!`.
    unsafe {
        IDT.init(|idt| {
            for (v, &addr) in los_isr_table.iter().enumerate() {
                let ist = match v as u64 {
                    x86::exception::DOUBLE_FAULT => 2,
                    0..=31 => 1,
                    _ => 3,
                };
                idt[v] = gate(addr, ist);
            }
            idt[VEC_YIELD as usize] = gate(los_isr_yield as *const () as u64, 3);
            idt[VEC_DIE as usize] = gate(los_isr_die as *const () as u64, 1);
        })
    };
}

/// Start running `frame` (a task's first frame); never returns.
///
/// # Safety
/// `frame` must be a valid frame on a mapped stack, as built by `lifecycle`.
pub unsafe fn enter(frame: *const TrapFrame) -> ! {
    // SAFETY: the caller's contract is the asm's contract.
    unsafe { core::arch::asm!("mov rsp, {}", "jmp los_trap_return", in(reg) frame, options(noreturn)) }
}

core::arch::global_asm!(
    concat!(
        x86::gpr_macros!(),
        r#"
    .section .text
    .type los_trap_common, @function
los_trap_common:
    push_gprs
    cld
    mov %rsp, %rdi
    call libos_kernel_trap
    mov %rax, %rsp
    .global los_trap_return
    .type los_trap_return, @function
los_trap_return:
    pop_gprs
    add $16, %rsp
    iretq
    .size los_trap_return, . - los_trap_return
    .size los_trap_common, . - los_trap_common

    /* The kernel's own gates: yield (0x81) and die (0x82). */
    .balign 16
    .global los_isr_yield
    .type los_isr_yield, @function
los_isr_yield:
    push $0
    push $0x81
    jmp los_trap_common
    .size los_isr_yield, . - los_isr_yield
    .balign 16
    .global los_isr_die
    .type los_isr_die, @function
los_isr_die:
    push $0
    push $0x82
    jmp los_trap_common
    .size los_isr_die, . - los_isr_die
"#
    ),
    options(att_syntax)
);

// The stubs of vectors 0-47, each making the error and vector words and jumping to
// `los_trap_common` above, and their table for the IDT.
x86::trap_stubs!(common = "los_trap_common", table = "los_isr_table");
