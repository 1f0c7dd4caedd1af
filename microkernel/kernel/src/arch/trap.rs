//! Trap entry and exit: the saved-register layout, the IDT, the interrupt and `syscall` entry
//! stubs, and the path back to user mode.
//!
//! A task's user registers live in its control block as a [`TrapFrame`] (the shared `x86`
//! layout). The CPU and the stubs build that frame *in place*: `TSS.rsp0` and
//! `PerCpu.cur_ctx_end` point at the end of the running task's frame, so an interrupt or
//! `syscall` from ring 3 pushes straight into it.
//! Then the stub moves to the CPU's kernel stack and calls Rust, which returns the frame to
//! resume (maybe another task's); `return_to_user` pops it and leaves with `sysretq` when the
//! frame was saved by `syscall`, with `iretq` otherwise (interrupts, exceptions, new tasks).
//!
//! ```text
//!   high  ss rsp rflags cs rip      <- pushed by the CPU (syscall_entry stores rsp rflags rip)
//!         error vector              <- error code (or 0) and vector number
//!   low   rax rbx ... r14 r15       <- pushed by the stub; r15 at the lowest address
//! ```
//! Calling convention of the Rust handlers: System V, `rdi` = pointer to the frame; they return
//! the frame to resume in `rax`. An interrupt or exception saves every general register, so the
//! stubs clobber nothing the interrupted code can see. A `syscall` frame records vector 0x80 (no
//! IDT gate uses it) and saves all but rcx and r11: `syscall` itself overwrote them with the
//! return rip and rflags, which go to the rip and rflags slots, and `sysretq` reloads them from
//! there (the syscall ABI lets a syscall clobber both). `syscall_from_user` takes no frame
//! pointer: it finds the running task's frame in its control block.
//! Exceptions taken in ring 0 (kernel bugs, or interrupts while
//! idle) stay on the current stack and go to `trap_from_kernel`.

use super::gdt::KERNEL_CS;
use x86::idt::{Gate, StaticIdt};
pub use x86::TrapFrame;

/// The vector a frame saved by `syscall` records (no IDT gate uses it).
pub const SYSCALL_VECTOR: u64 = 0x80;

/// A fresh user frame: interrupts enabled, user segments, `arg0` in rdi.
pub const fn user_frame(rip: u64, rsp: u64, arg0: u64) -> TrapFrame {
    TrapFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: arg0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error: 0,
        rip,
        cs: super::gdt::USER_CS as u64,
        rflags: 0x202,
        rsp,
        ss: super::gdt::USER_DS as u64,
    }
}

/// Charge a #GP at `f`'s rip to the task (a rip it cannot fetch from). A frame saved by
/// `syscall` holds no rcx and r11; the task would see them as `sysretq` leaves them (rip and
/// rflags), and so does the fault report.
pub fn raise_gp(f: &mut TrapFrame) {
    if f.vector == SYSCALL_VECTOR {
        f.rcx = f.rip;
        f.r11 = f.rflags;
    }
    f.vector = x86::exception::GENERAL_PROTECTION;
    f.error = 0;
}

/// Address just past the frame: the value for `rsp0` / `cur_ctx_end`.
#[inline(always)]
pub fn frame_end(f: &TrapFrame) -> u64 {
    f as *const TrapFrame as u64 + core::mem::size_of::<TrapFrame>() as u64
}

static IDT: StaticIdt = StaticIdt::new();

extern "C" {
    static isr_table: [u64; 48];
    fn syscall_entry();
    fn return_to_user_asm(ctx: *const TrapFrame) -> !;
    fn sysret_ipc_asm(ctx: *const TrapFrame, words: *const TrapFrame) -> !;
}

/// Install gates for the 32 exceptions and 16 IRQs (all ring-0 only: `int n` from user
/// space raises #GP) and load the IDT. Double fault runs on IST1.
pub fn init() {
    // SAFETY: single-threaded boot, once; the gates point at the stubs `trap_stubs!` made.
    unsafe {
        IDT.init(|idt| {
            for (v, &addr) in isr_table.iter().enumerate() {
                let ist = if v as u64 == x86::exception::DOUBLE_FAULT { 1 } else { 0 };
                idt[v] = Gate::interrupt(addr, KERNEL_CS, ist);
            }
        })
    };
}

pub fn syscall_entry_addr() -> u64 {
    syscall_entry as *const () as u64
}

/// Resume user mode with `ctx`.
///
/// # Safety
/// `ctx` must be the saved frame of a live task whose address space is loaded, and
/// `cur_ctx_end`/`rsp0` must point at its end.
#[inline(always)]
pub unsafe fn return_to_user(ctx: *const TrapFrame) -> ! {
    // SAFETY: the caller's contract is the asm's contract.
    unsafe { return_to_user_asm(ctx) }
}

/// [`return_to_user`] for the receiver of a message on the IPC fastpath (which resumes only
/// tasks blocked in a syscall): it skips the check of how the frame was saved and leaves with
/// `sysretq`, and it loads the four message words (`rdx`, `r10`, `r8`, `r9`) from the sender's
/// frame `words` instead of `ctx`, so the fastpath need not copy them into the receiver's
/// frame. The receiver's own slots for them keep stale values, which nothing reads: its next
/// kernel entry saves all of its registers again.
///
/// # Safety
/// As for [`return_to_user`], and `ctx` must have been saved by `syscall` (a frame saved
/// otherwise would lose the task's rcx and r11, and nothing else: the rip is canonical and
/// `sysretq` forces user segments). `words` must be the frame of the task that sent the message,
/// blocked (so nothing changes it before the stub reads it: on this kernel's one CPU, with
/// interrupts off, nothing runs between the fastpath and the stub).
#[inline(always)]
pub unsafe fn sysret_ipc(ctx: *const TrapFrame, words: *const TrapFrame) -> ! {
    // SAFETY: the caller's contract is the asm's contract.
    unsafe { sysret_ipc_asm(ctx, words) }
}

core::arch::global_asm!(
    concat!(
        x86::gpr_macros!(),
        r#"
    /* FRAME_reg: where the register's slot is, counted from the frame's end (where
       `cur_ctx_end` and `rsp0` point); a TrapFrame holds r15 first, rax last. */
    .set offset, -{size}
    .irp reg, r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax
    .set FRAME_\reg, offset
    .set offset, offset + 8
    .endr

    /* The end of both sysretq exits, rdi pointing at the frame: rip and rflags into rcx and
       r11 for sysretq, the user stack, and rdi itself last. */
    .macro sysret_tail
    mov {rip}+{size}(%rdi), %rcx
    mov {rflags}+{size}(%rdi), %r11
    mov {rsp}+{size}(%rdi), %rsp
    mov {rdi}+{size}(%rdi), %rdi
    swapgs
    sysretq
    .endm

    .section .text
    .global syscall_entry
    /* Saves into the running task's TrapFrame in place (`cur_ctx_end` points just past it),
       with moves, not pushes: only what a `syscall` frame needs. rcx and r11 are the task's
       rip and rflags here (the CPU put them there) and are stored as such, not again as
       registers; cs, ss and the error code are never read for a `syscall` frame (it returns
       with sysretq) and keep the user values every other entry writes. */
syscall_entry:
    swapgs
    mov %rsp, %gs:16
    mov %gs:24, %rsp
    mov %rcx, {rip}(%rsp)
    mov %r11, {rflags}(%rsp)
    mov %gs:16, %rcx
    mov %rcx, {rsp}(%rsp)
    movq ${sysvec}, {vector}(%rsp)
    .irp reg, rax, rbx, rdx, rsi, rdi, rbp, r8, r9, r10, r12, r13, r14, r15
    mov %\reg, FRAME_\reg(%rsp)
    .endr
    mov %gs:8, %rsp
    call syscall_from_user    /* never returns: it resumes a task through return_to_user */
    ud2

isr_common:
    /* An interrupt does not clear the direction flag the way `syscall` does (FMASK): a task
       may have set it (std), and compiled code assumes it clear. */
    cld
    push_gprs
    testb $3, {cs}+{size}(%rsp)
    jz 1f
    swapgs
    mov %rsp, %rdi
    mov %gs:8, %rsp
    call trap_from_user
    mov %rax, %rdi
    jmp return_to_user_asm
1:  mov %rsp, %rdi
    mov %rsp, %rbx
    and $-16, %rsp
    call trap_from_kernel
    mov %rbx, %rsp
    pop_gprs
    add $16, %rsp
    iretq

    .global return_to_user_asm
return_to_user_asm:
    cmpq ${sysvec}, {vector}+{size}(%rdi)
    jne 2f
    /* A frame saved by `syscall`: return with sysretq, which takes rip from rcx and rflags
       from r11. The rip is canonical (the scheduler makes a non-canonical one the task's own
       #GP before it gets here: sysretq would fault in ring 0 on Intel CPUs). rdi, the frame
       pointer, goes last. */
    .global sysret_to_user_asm
sysret_to_user_asm:
    .irp reg, r15, r14, r13, r12, r10, r9, r8, rbp, rsi, rdx, rbx, rax
    mov FRAME_\reg+{size}(%rdi), %\reg
    .endr
    sysret_tail
2:  mov %rdi, %rsp
    pop_gprs
    add $16, %rsp
    swapgs
    iretq

    /* `sysret_ipc`: rdi = the receiver's frame, rsi = its sender's, which holds the message
       words; rsi itself is loaded after its last use as the pointer. */
    .global sysret_ipc_asm
sysret_ipc_asm:
    .irp reg, rdx, r10, r8, r9
    mov FRAME_\reg+{size}(%rsi), %\reg
    .endr
    .irp reg, r15, r14, r13, r12, rbp, rsi, rbx, rax
    mov FRAME_\reg+{size}(%rdi), %\reg
    .endr
    sysret_tail
    "#
    ),
    // Offsets from the end of a TrapFrame (where `cur_ctx_end` points); `size` turns them into
    // offsets from its start.
    rip = const end_offset(core::mem::offset_of!(TrapFrame, rip)),
    cs = const end_offset(core::mem::offset_of!(TrapFrame, cs)),
    rflags = const end_offset(core::mem::offset_of!(TrapFrame, rflags)),
    rsp = const end_offset(core::mem::offset_of!(TrapFrame, rsp)),
    vector = const end_offset(core::mem::offset_of!(TrapFrame, vector)),
    rdi = const end_offset(core::mem::offset_of!(TrapFrame, rdi)),
    size = const core::mem::size_of::<TrapFrame>(),
    sysvec = const SYSCALL_VECTOR,
    options(att_syntax)
);

// The assembly above numbers the general registers' slots itself: r15 first, rax last, 8 bytes
// apart, as `TrapFrame` lays them out.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(TrapFrame, r15) == 0 && offset_of!(TrapFrame, r8) == 7 * 8);
    assert!(offset_of!(TrapFrame, rbp) == 8 * 8 && offset_of!(TrapFrame, rax) == 14 * 8);
};

// The stubs of vectors 0-47, each making the error and vector words and jumping to
// `isr_common` above, and their table for the IDT.
x86::trap_stubs!(common = "isr_common", table = "isr_table");

/// A field's offset counted from the end of the [`TrapFrame`] (negative).
const fn end_offset(field: usize) -> isize {
    field as isize - core::mem::size_of::<TrapFrame>() as isize
}
