//! x86-64 specifics: boot entry, descriptor tables, trap and syscall entry, interrupt controller,
//! per-CPU data. All inline assembly of the kernel lives in this folder.

mod boot;
pub mod cpu;
pub mod gdt;
pub mod pic;
pub mod trap;
