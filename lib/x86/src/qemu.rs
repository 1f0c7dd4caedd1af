//! QEMU's `isa-debug-exit` device: writing a byte to its port ends QEMU with status
//! `(byte << 1) | 1`, which is how a test run learns how the guest ended.

/// The device's port (QEMU's `-device isa-debug-exit,iobase=0xf4`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Written on a clean power-off (QEMU exits with 33).
pub const DEBUG_EXIT_POWEROFF: u8 = 0x10;
/// Written when a kernel panics (QEMU exits with 35).
pub const DEBUG_EXIT_PANIC: u8 = 0x11;
