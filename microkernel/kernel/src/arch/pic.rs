//! The legacy 8259 interrupt controllers and the 8254 timer (PIT).
//!
//! IRQs 0–15 are remapped to vectors 32–47. IRQ 0 (PIT, [`TICK_HZ`]) drives preemption; every
//! other line is masked until a driver holds its Interrupt capability, and masked again while
//! the driver handles an interrupt, until it acknowledges with `irq_ack`.

use super::cpu::{inb, outb};

pub const IRQ_BASE: u8 = 32;
pub const TICK_HZ: u32 = 100;
const PIT_HZ: u32 = 1_193_182;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;

/// Remap, mask every line but the timer and the cascade, start the timer.
pub fn init() {
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_BASE);
    outb(PIC2_DATA, IRQ_BASE + 8);
    outb(PIC1_DATA, 4);
    outb(PIC2_DATA, 2);
    outb(PIC1_DATA, 1);
    outb(PIC2_DATA, 1);
    outb(PIC1_DATA, !0b101);
    outb(PIC2_DATA, 0xff);
    let divisor = PIT_HZ / TICK_HZ;
    outb(0x43, 0x34);
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

pub fn mask(line: u8, masked: bool) {
    let (port, bit) = if line < 8 { (PIC1_DATA, line) } else { (PIC2_DATA, line - 8) };
    let cur = inb(port);
    outb(port, if masked { cur | 1 << bit } else { cur & !(1 << bit) });
}

/// Whether `line` (7 or 15) is really in service, or was a spurious interrupt.
pub fn is_spurious(line: u8) -> bool {
    let (cmd, bit) = if line < 8 { (PIC1_CMD, line) } else { (PIC2_CMD, line - 8) };
    outb(cmd, 0x0b);
    inb(cmd) & (1 << bit) == 0
}

pub fn eoi(line: u8) {
    if line >= 8 {
        outb(PIC2_CMD, 0x20);
    }
    outb(PIC1_CMD, 0x20);
}
