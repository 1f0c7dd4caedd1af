//! What the libos kernel alone does with the x86-64 CPU: its GDT and TSS with the interrupt
//! stacks, its IDT and trap entry, its timer rate and open IRQ lines, its yield and die gates, the voluntary switch.
//! The rest is the shared `x86` crate.

pub mod cpu;
pub mod gdt;
pub mod pic;
pub mod switch;
pub mod trap;
