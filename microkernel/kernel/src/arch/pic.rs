//! The legacy 8259 interrupt controllers and the 8254 timer (PIT).
//!
//! IRQs 0–15 are remapped to vectors 32–47. IRQ 0 (PIT, [`TICK_HZ`]) drives preemption; every
//! other line is masked until a driver holds its Interrupt capability, and masked again while
//! the driver handles an interrupt, until it acknowledges with `irq_ack`. Channel 2 of the PIT
//! measures the TSC's rate once at boot ([`measure_tsc_per_ms`]).

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

/// PIT channel 2's gate (bit 0), speaker (bit 1) and output (bit 5) live in this port.
const PORT_B: u16 = 0x61;
/// How long the TSC is measured against the PIT.
const MEASURE_MS: u32 = 10;
/// TSC ticks after which the PIT is taken to be missing: 10 ms is 10^8 ticks even at 10 GHz,
/// and this is some 40 times that, about a second and a half at the usual rates.
const GIVE_UP_TICKS: u64 = 1 << 32;

/// TSC ticks per millisecond, counted over [`MEASURE_MS`] of PIT channel 2 (speaker off), the
/// way firmware and other kernels calibrate: count down once in mode 0 and watch its output go
/// high. `None` if it never does (no PIT) within [`GIVE_UP_TICKS`] of the TSC.
pub fn measure_tsc_per_ms() -> Option<u64> {
    let count = PIT_HZ * MEASURE_MS / 1000;
    let b = inb(PORT_B) & !0x03;
    outb(PORT_B, b); // gate low: hold the counter
    outb(0x43, 0xb0); // channel 2, low then high byte, mode 0, binary
    outb(0x42, count as u8);
    outb(0x42, (count >> 8) as u8);
    let t0 = super::cpu::rdtsc();
    outb(PORT_B, b | 0x01); // gate high: count
    let t1 = loop {
        let now = super::cpu::rdtsc();
        if inb(PORT_B) & 0x20 != 0 {
            break now;
        }
        if now - t0 > GIVE_UP_TICKS {
            outb(PORT_B, b);
            return None;
        }
    };
    outb(PORT_B, b);
    Some(((t1 - t0) / MEASURE_MS as u64).max(1))
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
