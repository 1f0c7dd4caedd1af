//! Trap entry and exit: the saved-register frame, the IDT and the entry stubs.
//!
//! Every way into the core (exception, IRQ, `int 0x81` yield, `int 0x82` die) goes through one
//! stub that completes a [`Frame`] on the current stack and calls `crate::sched::trap(frame)`,
//! which returns the frame to resume: the same one, or another task's. So a task's saved
//! context is always a full frame on its own stack, and a switch is "return someone else's".
//!
//! ```text
//!   high  ss rsp rflags cs rip      <- pushed by the CPU (ring 0 to ring 0 in long mode)
//!         error vector              <- error code (or 0) and vector number
//!   low   rax rbx ... r14 r15       <- pushed by the stub; r15 at the lowest address
//! ```
//! CPU exceptions run on IST1 (#DF on IST2): their frame is never kept as a task's context —
//! the handler either resumes it at once or kills the task and resumes another one. The stubs
//! clobber nothing the interrupted code can see (all general registers are restored).

use super::gdt::KERNEL_CS;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<Frame>().is_multiple_of(16));

pub const VEC_YIELD: u64 = 0x81;
pub const VEC_DIE: u64 = 0x82;
/// Trap flag in rflags: single-step (used to place injected faults).
pub const RFLAGS_TF: u64 = 1 << 8;
pub const RFLAGS_IF: u64 = 1 << 9;

impl Frame {
    /// The 16 general registers and rip, by number (for fault injection and reports).
    pub fn reg_mut(&mut self, i: usize) -> &mut u64 {
        match i {
            0 => &mut self.rax,
            1 => &mut self.rbx,
            2 => &mut self.rcx,
            3 => &mut self.rdx,
            4 => &mut self.rsi,
            5 => &mut self.rdi,
            6 => &mut self.rbp,
            7 => &mut self.rsp,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            15 => &mut self.r15,
            16 => &mut self.rip,
            _ => &mut self.rflags,
        }
    }
}

pub const REG_NAMES: [&str; 18] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
    "r15", "rip", "rflags",
];

#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_lo: u16,
    selector: u16,
    ist: u8,
    attr: u8,
    offset_mid: u16,
    offset_hi: u32,
    _zero: u32,
}

const EMPTY_GATE: Gate =
    Gate { offset_lo: 0, selector: 0, ist: 0, attr: 0, offset_mid: 0, offset_hi: 0, _zero: 0 };

static mut IDT: [Gate; 256] = [EMPTY_GATE; 256];

extern "C" {
    static los_isr_table: [u64; 48];
    fn los_isr_yield();
    fn los_isr_die();
}

/// Install the gates and load the IDT.
pub fn init() {
    let gate = |addr: u64, ist: u8| Gate {
        offset_lo: addr as u16,
        selector: KERNEL_CS,
        ist,
        attr: 0x8e,
        offset_mid: (addr >> 16) as u16,
        offset_hi: (addr >> 32) as u32,
        _zero: 0,
    };
    // SAFETY: single-threaded boot before interrupts are enabled; the IDT is static; the stub
    // addresses come from the assembly below.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (v, &addr) in los_isr_table.iter().enumerate() {
            let ist = match v {
                8 => 2,
                0..=31 => 1,
                _ => 0,
            };
            idt[v] = gate(addr, ist);
        }
        idt[VEC_YIELD as usize] = gate(los_isr_yield as *const () as u64, 0);
        idt[VEC_DIE as usize] = gate(los_isr_die as *const () as u64, 1);
        let ptr = x86_64::structures::DescriptorTablePointer {
            limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
            base: x86_64::VirtAddr::new(idt.as_ptr() as u64),
        };
        x86_64::instructions::tables::lidt(&ptr);
    }
}

/// Start running `frame` (a task's first frame); never returns.
///
/// # Safety
/// `frame` must be a valid frame on a mapped stack, as built by `sched`.
pub unsafe fn enter(frame: *const Frame) -> ! {
    // SAFETY: the caller's contract is the asm's contract.
    unsafe { core::arch::asm!("mov rsp, {}", "jmp los_trap_return", in(reg) frame, options(noreturn)) }
}

core::arch::global_asm!(
    r#"
    .macro push_gprs
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    .endm

    .section .text
los_trap_common:
    push_gprs
    cld
    mov %rsp, %rdi
    call libos_kernel_trap
    mov %rax, %rsp
    .global los_trap_return
los_trap_return:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp
    iretq

    .macro isr_noerr n
    .balign 16
los_isr_\n:
    push $0
    push $\n
    jmp los_trap_common
    .endm
    .macro isr_err n
    .balign 16
los_isr_\n:
    push $\n
    jmp los_trap_common
    .endm

    isr_noerr 0
    isr_noerr 1
    isr_noerr 2
    isr_noerr 3
    isr_noerr 4
    isr_noerr 5
    isr_noerr 6
    isr_noerr 7
    isr_err 8
    isr_noerr 9
    isr_err 10
    isr_err 11
    isr_err 12
    isr_err 13
    isr_err 14
    isr_noerr 15
    isr_noerr 16
    isr_err 17
    isr_noerr 18
    isr_noerr 19
    isr_noerr 20
    isr_err 21
    isr_noerr 22
    isr_noerr 23
    isr_noerr 24
    isr_noerr 25
    isr_noerr 26
    isr_noerr 27
    isr_noerr 28
    isr_err 29
    isr_err 30
    isr_noerr 31
    isr_noerr 32
    isr_noerr 33
    isr_noerr 34
    isr_noerr 35
    isr_noerr 36
    isr_noerr 37
    isr_noerr 38
    isr_noerr 39
    isr_noerr 40
    isr_noerr 41
    isr_noerr 42
    isr_noerr 43
    isr_noerr 44
    isr_noerr 45
    isr_noerr 46
    isr_noerr 47
    isr_noerr 129
    isr_noerr 130
    .global los_isr_yield
    .set los_isr_yield, los_isr_129
    .global los_isr_die
    .set los_isr_die, los_isr_130

    .section .rodata
    .balign 8
    .global los_isr_table
los_isr_table:
    .quad los_isr_0, los_isr_1, los_isr_2, los_isr_3, los_isr_4, los_isr_5, los_isr_6, los_isr_7, los_isr_8, los_isr_9, los_isr_10, los_isr_11, los_isr_12, los_isr_13, los_isr_14, los_isr_15, los_isr_16, los_isr_17, los_isr_18, los_isr_19, los_isr_20, los_isr_21, los_isr_22, los_isr_23, los_isr_24, los_isr_25, los_isr_26, los_isr_27, los_isr_28, los_isr_29, los_isr_30, los_isr_31, los_isr_32, los_isr_33, los_isr_34, los_isr_35, los_isr_36, los_isr_37, los_isr_38, los_isr_39, los_isr_40, los_isr_41, los_isr_42, los_isr_43, los_isr_44, los_isr_45, los_isr_46, los_isr_47
    "#,
    options(att_syntax)
);
