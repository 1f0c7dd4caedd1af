//! The interrupt controller and the timer, as this kernel sets them up: the PIT at [`TICK_HZ`]
//! (a tick is a millisecond), and the lines of the timer, the cascade and COM1 open; a driven
//! device's line is opened and closed by [`arm`] (see `device`).

use super::cpu::PORTS;
use core::sync::atomic::{AtomicU16, Ordering};
use x86::pic::Mask;

pub const TICK_HZ: u32 = 1000;
/// The lines open while the system runs.
pub const RUNNING: Mask = Mask::all_but(&[0, 2, 4]);

/// Remap the PICs, open the timer, cascade and COM1, start the PIT.
pub fn init() {
    x86::pic::init(&PORTS, RUNNING);
    x86::pit::start_tick(&PORTS, TICK_HZ);
}

/// Device lines open now (bit n: line n), besides [`RUNNING`]'s.
static ARMED: AtomicU16 = AtomicU16::new(0);

/// Load `mask`, with the device lines armed now left open whatever it says: a driver waiting
/// for its device must still hear it while preemption is off (`control::without_preemption`).
pub fn set_mask(mask: Mask) {
    let armed = ARMED.load(Ordering::Relaxed);
    let cascade = if armed & 0xff00 != 0 { 1 << 2 } else { 0 };
    x86::pic::set_mask(&PORTS, Mask(mask.0 & !(armed | cascade)));
}

/// Open (`true`) or mask a device's line. Called with interrupts masked.
pub fn arm(line: u8, open: bool) {
    if open {
        ARMED.fetch_or(1 << line, Ordering::Relaxed);
        if line >= 8 {
            x86::pic::mask(&PORTS, 2, false);
        }
    } else {
        ARMED.fetch_and(!(1 << line), Ordering::Relaxed);
    }
    x86::pic::mask(&PORTS, line, !open);
}

pub fn is_spurious(line: u8) -> bool {
    x86::pic::is_spurious(&PORTS, line)
}

pub fn eoi(line: u8) {
    x86::pic::eoi(&PORTS, line)
}

/// Is `line` a device line open now?
pub fn armed(line: u8) -> bool {
    ARMED.load(Ordering::Relaxed) & 1 << line != 0
}
