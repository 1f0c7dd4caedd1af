//! The kernel's own output: polled writes to COM1, used for the boot banner, task reports and
//! panics. The console server drives the same UART (with the same `x86::uart` driver) for
//! everybody else; the kernel only writes whole lines with interrupts disabled, so its reports
//! never tear a user line in half.

use crate::arch::cpu::PORTS;
use core::fmt::Write;
use x86::port::Direct;
use x86::uart::{Config, Uart, COM1};

static UART: Uart<Direct, COM1> = Uart::new(PORTS);
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Program COM1 (the console server later enables its receive interrupt).
pub fn init() {
    UART.init(Config { rx_interrupt: false, rx_every_byte: false });
}

struct Com1;

impl Write for Com1 {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        UART.write(s.as_bytes());
        Ok(())
    }
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
