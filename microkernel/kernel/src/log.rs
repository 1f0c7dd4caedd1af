//! The kernel's own output: polled writes to COM1, used for the boot banner, task reports and
//! panics. The console server drives the same UART for everybody else; the kernel only writes
//! whole lines with interrupts disabled, so its reports never tear a user line in half.

use crate::arch::cpu::{inb, outb};
use core::fmt::Write;

const COM1: u16 = 0x3f8;

static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Program COM1 for 115200 8N1 with FIFOs (the console server later enables its interrupt).
pub fn init() {
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x80);
    outb(COM1, 0x01);
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);
    outb(COM1 + 2, 0xc7);
    outb(COM1 + 4, 0x0b);
}

struct Com1;

impl Write for Com1 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

fn put(b: u8) {
    // Bounded wait for the transmitter: a wedged UART must not hang the kernel.
    for _ in 0..100_000 {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(COM1, b);
}

pub fn print(args: core::fmt::Arguments<'_>) {
    let _guard = LOCK.lock();
    let _ = Com1.write_fmt(args);
}

/// Release the log lock even if held: only for the path that ends in a kernel panic, where
/// the holder (if any) was interrupted on this CPU and will never run again.
pub fn break_lock() {
    if LOCK.is_locked() {
        // SAFETY: see above; the kernel stops right after printing its last report.
        unsafe { LOCK.force_unlock() };
    }
}

/// Print without taking the lock: for the panic path, where the lock may be held already.
pub fn print_unlocked(args: core::fmt::Arguments<'_>) {
    let _ = Com1.write_fmt(args);
}

#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::log::print(format_args!("[kernel] {}\n", format_args!($($arg)*)))
    };
}
