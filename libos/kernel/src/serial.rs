//! COM1 (16550): the core's own polled output, and the byte-level device the console cell drives.
//!
//! The core prints whole lines (fault reports, the boot banner) with interrupts masked; the
//! console cell writes through [`Serial`], a handle only the core can create, and reads the
//! bytes the IRQ 4 handler queued for it.

use crate::arch::cpu::{inb, outb};
use core::fmt::Write;

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

/// Print a line from the core, prefixed `[core] `.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::serial::print(format_args!("[kernel] {}\n", format_args!($($arg)*))) };
}

/// The UART as a device a cell may drive. Only the core makes one (see `boot`).
pub struct Serial(());

impl Serial {
    pub(crate) fn new() -> Self {
        Serial(())
    }

    /// Write bytes (`\n` becomes `\r\n`).
    pub fn write(&self, bytes: &[u8]) {
        crate::sync::critical(|| write_bytes(bytes));
    }
}

static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The UART device, once (for the console cell).
pub fn take() -> Option<Serial> {
    (!TAKEN.swap(true, core::sync::atomic::Ordering::Relaxed)).then(Serial::new)
}

/// Deliver every received byte, wrapped by `wrap`, into the mailbox `tx` (from IRQ 4).
pub fn attach_input<T: Copy + Send + 'static, const N: usize>(
    tx: crate::chan::Sender<T, N>,
    wrap: fn(u8) -> T,
) {
    let hook: crate::task::InputHook = crate::mem::heap::in_core(|| {
        alloc::boxed::Box::new(move |k: &mut crate::task::Kernel, b: u8| {
            let _ = tx.send_locked(k, wrap(b));
        })
    });
    crate::task::KERNEL.with(|k| k.input = Some(hook));
}
