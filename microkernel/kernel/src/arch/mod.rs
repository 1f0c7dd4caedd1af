//! What the microkernel alone does with the x86-64 CPU: its entry stubs and return paths, its
//! GDT and TSS (with the I/O bitmap), per-CPU data and the `syscall` MSRs. All its inline
//! assembly lives in this folder; the rest of the x86 layer is the shared `x86` crate.

mod boot;
pub mod cpu;
pub mod gdt;
pub mod trap;
