//! The x86-64 layer, written once for both kernels, the console server, the shell and the
//! reincarnation server.
//!
//! ```text
//!  boot        the Multiboot2 header and the 32-bit → 64-bit trampoline (a macro each kernel
//!              expands once, so no other binary links it)
//!  frame       the trap frame every entry saves, its registers by number, the register dump
//!  exception   exception names, the page-fault error code in words, canonical addresses
//!  idt         interrupt gates
//!  port        port I/O behind a trait (`PortIo`), so drivers run in ring 0, in ring 3 through
//!              the I/O bitmap, and against a fake on the host
//!  uart        the 16550 serial port        pic   the 8259 pair     pit   the 8254, TSC rate
//!  cpu         the single instructions the kernels need (ring 0)
//!  qemu        QEMU's isa-debug-exit device
//!  pci         configuration space (ports 0xCF8/0xCFC), enumeration, BARs, a driver's guard
//! ```
//! Each kernel keeps only what really differs: its entry stubs, its GDT and TSS, its paging.
#![no_std]
// The unsafe layer: single privileged instructions, port I/O, the IDT load, each fenced and
// explained where it is.
#![allow(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod boot;
pub mod cpu;
pub mod exception;
pub mod frame;
pub mod idt;
pub mod paging;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod port;
pub mod qemu;
pub mod uart;

pub use frame::TrapFrame;
pub use port::PortIo;
