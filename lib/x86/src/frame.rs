//! The trap frame: what every entry into either kernel saves, in the order the entry stubs and
//! the CPU build it on a stack (or, on the microkernel, in the task's control block).
//!
//! ```text
//!   high  ss rsp rflags cs rip      <- pushed by the CPU (or stored by a `syscall` entry)
//!         error vector              <- error code (or 0) and vector number
//!   low   rax rbx ... r14 r15       <- pushed by the stub; r15 at the lowest address
//! ```
//! The CPU aligns the stack to 16 bytes before pushing, and the frame's 176 bytes keep that
//! alignment, so a frame always starts on a 16-byte boundary.

use core::fmt;

#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
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

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 176);

/// Assembler macros `push_gprs` and `pop_gprs`, for an entry stub's `global_asm!` (put this
/// first in its `concat!`): push the 15 general registers so that, with the error and vector
/// words the stub pushed before, the stack holds a [`TrapFrame`]; pop them again.
#[macro_export]
macro_rules! gpr_macros {
    () => {
        "
    .macro push_gprs
    .irp reg, rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15
    push %\\reg
    .endr
    .endm
    .macro pop_gprs
    .irp reg, r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax
    pop %\\reg
    .endr
    .endm
"
    };
}

/// Trap flag in rflags: single-step.
pub const RFLAGS_TF: u64 = 1 << 8;
/// Interrupt flag in rflags.
pub const RFLAGS_IF: u64 = 1 << 9;

/// The registers by number, as fault injection and reports number them.
pub const REG_NAMES: [&str; 18] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
    "r15", "rip", "rflags",
];

impl TrapFrame {
    /// Register `i` in [`REG_NAMES`] order (rflags past the end).
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

    /// Register `i` in [`REG_NAMES`] order.
    pub fn reg(&self, i: usize) -> u64 {
        *self.clone().reg_mut(i)
    }

    /// The register dump of a fault report, a line each (print each with the report's prefix):
    /// four general registers a row, then rflags.
    pub fn dump(&self) -> impl Iterator<Item = DumpLine<'_>> {
        (0..5).map(move |row| DumpLine { frame: self, row })
    }
}

/// One line of [`TrapFrame::dump`].
pub struct DumpLine<'a> {
    frame: &'a TrapFrame,
    row: usize,
}

impl fmt::Display for DumpLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.row == 4 {
            return write!(f, "rflags {:#x}", self.frame.rflags);
        }
        for (i, name) in REG_NAMES.iter().enumerate().skip(self.row * 4).take(4) {
            let sep = if i % 4 == 3 { "" } else { "  " };
            write!(f, "{name:>3} {:#018x}{sep}", self.frame.reg(i))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    #[test]
    fn registers_by_number_match_their_names() {
        let mut f = TrapFrame::default();
        for i in 0..18 {
            *f.reg_mut(i) = i as u64 + 1;
        }
        assert_eq!((f.rax, f.rsp, f.r8, f.r15, f.rip, f.rflags), (1, 8, 9, 16, 17, 18));
        assert_eq!(f.reg(7), 8);
    }

    #[test]
    fn the_dump_has_four_registers_a_row_then_rflags() {
        let f = TrapFrame { rax: 0x10, r15: 0xff, rflags: 0x202, ..TrapFrame::default() };
        let lines: Vec<String> = f.dump().map(|l| l.to_string()).collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("rax 0x0000000000000010  rbx 0x0000000000000000"), "{}", lines[0]);
        assert!(lines[3].ends_with("r15 0x00000000000000ff"), "{}", lines[3]);
        assert_eq!(lines[4], "rflags 0x202");
    }
}
