//! The x86-64 layer: boot entry, descriptor tables, trap stubs, interrupt controller, ports.

pub mod boot;
pub mod cpu;
pub mod gdt;
pub mod pic;
pub mod trap;
