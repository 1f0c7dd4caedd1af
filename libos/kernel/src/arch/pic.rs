//! The interrupt controller and the timer, as this kernel sets them up: the PIT at [`TICK_HZ`]
//! (a tick is a millisecond), and the lines of the timer, the cascade and COM1 open.

use super::cpu::PORTS;
use x86::pic::Mask;

pub const TICK_HZ: u32 = 1000;
/// The lines open while the system runs.
pub const RUNNING: Mask = Mask::all_but(&[0, 2, 4]);

/// Remap the PICs, open the timer, cascade and COM1, start the PIT.
pub fn init() {
    x86::pic::init(&PORTS, RUNNING);
    x86::pit::start_tick(&PORTS, TICK_HZ);
}

/// Mask every line (`RUNNING` opens them again).
pub fn set_mask(mask: Mask) {
    x86::pic::set_mask(&PORTS, mask);
}

pub fn is_spurious(line: u8) -> bool {
    x86::pic::is_spurious(&PORTS, line)
}

pub fn eoi(line: u8) {
    x86::pic::eoi(&PORTS, line)
}
