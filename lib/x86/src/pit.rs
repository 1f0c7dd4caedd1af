//! The 8254 programmable interval timer: channel 0 as the periodic tick (IRQ 0), channel 2 to
//! measure the time-stamp counter's rate once at boot.

use crate::port::PortIo;

/// The PIT's input clock.
pub const PIT_HZ: u32 = 1_193_182;
/// PIT channel 2's gate (bit 0), speaker (bit 1) and output (bit 5) live in this port.
const PORT_B: u16 = 0x61;
/// How long the TSC is measured against the PIT.
const MEASURE_MS: u32 = 10;
/// TSC ticks after which the PIT is taken to be missing: 10 ms is 10^8 ticks even at 10 GHz,
/// and this is some 40 times that, about a second and a half at the usual rates.
const GIVE_UP_TICKS: u64 = 1 << 32;

/// Start channel 0 interrupting `hz` times a second (rate generator).
pub fn start_tick(p: &impl PortIo, hz: u32) {
    let divisor = PIT_HZ / hz;
    p.outb(0x43, 0x34); // channel 0, low then high byte, mode 2
    p.outb(0x40, divisor as u8);
    p.outb(0x40, (divisor >> 8) as u8);
}

/// TSC ticks per millisecond, counted over [`MEASURE_MS`] of PIT channel 2 (speaker off), the
/// way firmware and other kernels calibrate: count down once in mode 0 and watch its output go
/// high. `None` if it never does (no PIT) within [`GIVE_UP_TICKS`] of the TSC.
pub fn measure_tsc_per_ms(p: &impl PortIo, mut tsc: impl FnMut() -> u64) -> Option<u64> {
    let count = PIT_HZ * MEASURE_MS / 1000;
    let b = p.inb(PORT_B) & !0x03;
    p.outb(PORT_B, b); // gate low: hold the counter
    p.outb(0x43, 0xb0); // channel 2, low then high byte, mode 0, binary
    p.outb(0x42, count as u8);
    p.outb(0x42, (count >> 8) as u8);
    let t0 = tsc();
    p.outb(PORT_B, b | 0x01); // gate high: count
    let t1 = loop {
        let now = tsc();
        if p.inb(PORT_B) & 0x20 != 0 {
            break now;
        }
        if now - t0 > GIVE_UP_TICKS {
            p.outb(PORT_B, b);
            return None;
        }
    };
    p.outb(PORT_B, b);
    Some(((t1 - t0) / MEASURE_MS as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::fake::Ports;

    #[test]
    fn the_tsc_rate_is_what_passed_while_channel_2_counted_down() {
        // The output goes high on the 6th read of port B (the first read is the setup's).
        let p = Ports::new(|port, n| if port == PORT_B && n >= 5 { 0x20 } else { 0 });
        let mut t = 0u64;
        let rate = measure_tsc_per_ms(&p, || {
            t += 2_000_000;
            t
        });
        assert_eq!(rate, Some(5 * 2_000_000 / 10), "five TSC reads of 2,000,000 apart in 10 ms");
        assert!(p.writes.borrow().contains(&(0x42, (PIT_HZ * 10 / 1000) as u8)));
    }

    #[test]
    fn no_pit_gives_up_instead_of_hanging() {
        let p = Ports::new(|_, _| 0);
        let mut t = 0u64;
        let rate = measure_tsc_per_ms(&p, || {
            t += 1 << 28;
            t
        });
        assert_eq!(rate, None);
        assert_eq!(p.writes.borrow().last(), Some(&(PORT_B, 0)), "the gate is closed again");
    }

    #[test]
    fn the_tick_divides_the_pit_clock() {
        let p = Ports::new(|_, _| 0);
        start_tick(&p, 100);
        assert_eq!(
            *p.writes.borrow(),
            [(0x43, 0x34), (0x40, (11931 & 0xff) as u8), (0x40, (11931 >> 8) as u8)]
        );
    }
}
