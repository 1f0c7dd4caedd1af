//! COM1 (16550): the kernel's own polled output, and the byte-level device the console cell
//! drives. Output only: received bytes are read by the trap dispatcher (`trap`) and handed to
//! the input hook the console cell attached (`input`).
//!
//! The kernel prints whole lines (fault reports, the boot banner) with interrupts masked; the
//! console cell writes through [`Serial`], a handle only the kernel hands out.

use crate::arch::cpu::{inb, outb};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

const COM1: u16 = 0x3f8;

/// 115200 8N1, FIFOs on, receive interrupt enabled (IRQ 4 through OUT2) at the first byte.
pub fn init() {
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x80);
    outb(COM1, 0x01);
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);
    outb(COM1 + 2, 0x07); // FIFOs on, receive interrupt at every byte
    outb(COM1 + 4, 0x0b);
    outb(COM1 + 1, 0x01);
}

fn put(b: u8) {
    // Bounded wait: a wedged UART must not hang the core.
    for _ in 0..100_000 {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(COM1, b);
}

pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

/// A received byte, if any (called by the IRQ 4 handler).
pub fn try_read() -> Option<u8> {
    (inb(COM1 + 5) & 1 != 0).then(|| inb(COM1))
}

struct Com1;

impl Write for Com1 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

pub fn print(args: core::fmt::Arguments<'_>) {
    crate::sync::critical(|| {
        let _ = Com1.write_fmt(args);
    });
}

/// Print a line from the kernel, prefixed `[kernel] ` (`crate::serial::kprintln!`).
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::serial::print(format_args!("[kernel] {}\n", format_args!($($arg)*))) };
}
pub(crate) use kprintln;

/// The UART as a device a cell may drive. There is one: [`Serial::take`] hands it out once
/// (to the console cell), so only one task ever writes to it through this handle.
pub struct Serial(());

static TAKEN: AtomicBool = AtomicBool::new(false);

impl Serial {
    /// The UART device, the first time; `None` after that.
    pub fn take() -> Option<Serial> {
        (!TAKEN.swap(true, Ordering::Relaxed)).then_some(Serial(()))
    }

    /// Write bytes (`\n` becomes `\r\n`).
    pub fn write(&self, bytes: &[u8]) {
        crate::sync::critical(|| write_bytes(bytes));
    }
}
