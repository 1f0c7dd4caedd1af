//! The legacy 8259 interrupt controllers and the 8254 timer (PIT) at [`TICK_HZ`].

use super::cpu::{inb, outb};

pub const IRQ_BASE: u8 = 32;
pub const TICK_HZ: u32 = 1000;
const PIT_HZ: u32 = 1_193_182;

/// Remap IRQs to 32..48, unmask the timer (0), the cascade (2) and COM1 (4), start the PIT.
pub fn init() {
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, IRQ_BASE);
    outb(0xa1, IRQ_BASE + 8);
    outb(0x21, 4);
    outb(0xa1, 2);
    outb(0x21, 1);
    outb(0xa1, 1);
    outb(0x21, !0b10101);
    outb(0xa1, 0xff);
    let divisor = PIT_HZ / TICK_HZ;
    outb(0x43, 0x34);
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

/// Whether `line` (7 or 15) is really in service, or was spurious.
pub fn is_spurious(line: u8) -> bool {
    let (cmd, bit) = if line < 8 { (0x20, line) } else { (0xa0, line - 8) };
    outb(cmd, 0x0b);
    inb(cmd) & (1 << bit) == 0
}

pub fn eoi(line: u8) {
    if line >= 8 {
        outb(0xa0, 0x20);
    }
    outb(0x20, 0x20);
}
