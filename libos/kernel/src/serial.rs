//! COM1 (16550): the kernel's own polled output, and the byte-level device the console cell
//! drives. Output only: received bytes are read by the trap dispatcher (`trap`) and handed to
//! the input hook the console cell attached (`input`).
//!
//! The kernel prints whole lines (fault reports, the boot banner) with interrupts masked; the
//! console cell writes through [`Serial`], a handle only the kernel hands out. Every byte for
//! the wire passes [`write_bytes`], so the kernel knows whether the line on the wire is
//! finished: its own lines begin on a fresh one. A report can come at any moment (a fault in
//! any cell, from a trap); without that, one that came between a shell prompt and the echo of
//! the line typed there was glued to the prompt, and the echo went to a line of its own.

use crate::arch::cpu::PORTS;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use x86::port::Direct;
use x86::uart::{Config, Uart, COM1};

/// COM1, with the same 16550 driver the microkernel and its console server use.
static UART: Uart<Direct, COM1> = Uart::new(PORTS);

/// 115200 8N1, FIFOs on, receive interrupt (IRQ 4) at every byte: the interrupt is how the
/// console cell hears of input at all.
pub fn init() {
    UART.init(Config { rx_interrupt: true, rx_every_byte: true });
}

/// The last byte on the wire ended a line (or nothing was written yet).
static AT_LINE_START: AtomicBool = AtomicBool::new(true);

/// Write `bytes` to the wire. Callers mask interrupts, so nothing else writes in between.
pub fn write_bytes(bytes: &[u8]) {
    UART.write(bytes);
    if let Some(&last) = bytes.last() {
        AT_LINE_START.store(last == b'\n', Ordering::Relaxed);
    }
}

/// A received byte, if any (called by the IRQ 4 handler).
pub fn try_read() -> Option<u8> {
    UART.try_get()
}

struct Com1;

impl Write for Com1 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Print the kernel's own lines (`args` ends with a newline), beginning on a fresh line.
pub fn print(args: core::fmt::Arguments<'_>) {
    crate::sync::critical(|| {
        if !AT_LINE_START.load(Ordering::Relaxed) {
            write_bytes(b"\n");
        }
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
