//! The 16550 UART, as QEMU's COM1 presents it: 115200 baud, 8 data bits, no parity, one stop
//! bit, FIFOs on. One driver for the microkernel's log, the libos kernel and the ring-3 console
//! server, over [`PortIo`].
//!
//! ```text
//!  base+0 data (DLAB=0) / divisor low (DLAB=1)   base+3 line control (bit 7: DLAB)
//!  base+1 interrupt enable / divisor high        base+4 modem control (OUT2 routes the IRQ)
//!  base+2 FIFO control                           base+5 line status (bit 0: data ready,
//!                                                                    bit 5: room to send)
//! ```

use crate::port::PortIo;

/// COM1's base port.
pub const COM1: u16 = 0x3f8;

/// Polls of the line status a byte may wait for room before it is dropped: a wedged UART must
/// not hang a kernel (or the console server).
const SEND_POLLS: u32 = 100_000;

/// How the port is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Interrupt on received data (IRQ 4 for COM1, routed through OUT2).
    pub rx_interrupt: bool,
    /// Raise the receive interrupt at the first byte instead of at 14: for a console whose
    /// interrupt is its only way of noticing input.
    pub rx_every_byte: bool,
}

/// The UART at port `BASE` (a constant: the kernels print every report through it, a byte at
/// a time, and a fixed port keeps each byte's path as short as a hand-written driver's).
pub struct Uart<P: PortIo, const BASE: u16> {
    ports: P,
}

impl<P: PortIo, const BASE: u16> Uart<P, BASE> {
    pub const fn new(ports: P) -> Self {
        Uart { ports }
    }

    /// Program 115200 8N1 with FIFOs, and the receive interrupt as `config` says.
    pub fn init(&self, config: Config) {
        let p = &self.ports;
        p.outb(BASE + 1, 0x00); // no interrupts while programming
        p.outb(BASE + 3, 0x80); // DLAB: the divisor follows
        p.outb(BASE, 0x01); // 115200 / 1
        p.outb(BASE + 1, 0x00);
        p.outb(BASE + 3, 0x03); // 8N1, DLAB off
                                // FIFOs on; clear the transmit FIFO only: bytes received before this (typed while the
                                // machine booted) stay for the console to read.
        p.outb(BASE + 2, if config.rx_every_byte { 0x05 } else { 0xc5 });
        p.outb(BASE + 4, 0x0b); // DTR, RTS, OUT2
        if config.rx_interrupt {
            p.outb(BASE + 1, 0x01);
        }
    }

    /// Send one byte, waiting (boundedly) for room.
    pub fn put(&self, b: u8) {
        for _ in 0..SEND_POLLS {
            if self.ports.inb(BASE + 5) & 0x20 != 0 {
                break;
            }
        }
        self.ports.outb(BASE, b);
    }

    /// Send `bytes`, each `\n` as `\r\n` (what a terminal on the serial line expects).
    pub fn write(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    /// Turn the received-data interrupt on or off. A reader with nowhere to put input turns it
    /// off and leaves bytes in the UART, so the line backs up instead of losing them; turning it
    /// back on with bytes waiting raises the interrupt at once.
    pub fn set_rx_interrupt(&self, on: bool) {
        self.ports.outb(BASE + 1, u8::from(on));
    }

    /// The scratch register: one byte kept by the device, not by whoever drives it, so it
    /// outlives a restarted driver.
    pub fn scratch(&self) -> u8 {
        self.ports.inb(BASE + 7)
    }

    pub fn set_scratch(&self, v: u8) {
        self.ports.outb(BASE + 7, v);
    }

    /// A received byte, if one is waiting.
    pub fn try_get(&self) -> Option<u8> {
        (self.ports.inb(BASE + 5) & 1 != 0).then(|| self.ports.inb(BASE))
    }
}

impl<P: PortIo, const BASE: u16> core::fmt::Write for Uart<P, BASE> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::fake::Ports;

    #[test]
    fn init_programs_115200_8n1_and_the_interrupt_only_when_asked() {
        let quiet = Uart::<_, COM1>::new(Ports::new(|_, _| 0));
        quiet.init(Config { rx_interrupt: false, rx_every_byte: false });
        let w = quiet.ports.writes.borrow().clone();
        assert_eq!(w[1..3], [(COM1 + 3, 0x80), (COM1, 1)], "divisor 1: 115200 baud");
        assert!(w.contains(&(COM1 + 3, 0x03)) && w.contains(&(COM1 + 2, 0xc5)), "received bytes are kept");
        assert_eq!(w.last(), Some(&(COM1 + 4, 0x0b)), "no interrupt enabled");
        let console = Uart::<_, COM1>::new(Ports::new(|_, _| 0));
        console.init(Config { rx_interrupt: true, rx_every_byte: true });
        let w = console.ports.writes.borrow().clone();
        assert!(w.contains(&(COM1 + 2, 0x05)));
        assert_eq!(w.last(), Some(&(COM1 + 1, 0x01)), "receive interrupt on");
    }

    #[test]
    fn newlines_go_out_as_crlf_once_there_is_room() {
        // Line status: busy for the first two polls, then room.
        let u = Uart::<_, COM1>::new(Ports::new(|port, n| if port == COM1 + 5 && n < 2 { 0 } else { 0x20 }));
        u.write(b"a\n");
        let w = u.ports.writes.borrow().clone();
        assert_eq!(w, [(COM1, b'a'), (COM1, b'\r'), (COM1, b'\n')]);
        assert_eq!(u.ports.reads(), 5, "waited two polls for the first byte");
    }

    #[test]
    fn a_wedged_uart_drops_bytes_instead_of_hanging() {
        let u = Uart::<_, COM1>::new(Ports::new(|_, _| 0));
        u.put(b'x');
        assert_eq!(u.ports.reads(), SEND_POLLS as usize);
        assert_eq!(*u.ports.writes.borrow(), [(COM1, b'x')]);
    }

    #[test]
    fn input_is_read_only_when_data_is_ready() {
        let u = Uart::<_, COM1>::new(Ports::new(
            |port, n| if port == COM1 + 5 { u8::from(n == 0) } else { b'k' },
        ));
        assert_eq!(u.try_get(), Some(b'k'));
        assert_eq!(u.try_get(), None);
    }

    #[test]
    fn the_receive_interrupt_is_switched_alone() {
        let u = Uart::<_, COM1>::new(Ports::new(|_, _| 0));
        u.set_rx_interrupt(false);
        u.set_rx_interrupt(true);
        assert_eq!(*u.ports.writes.borrow(), [(COM1 + 1, 0), (COM1 + 1, 1)], "only IER is written");
    }
}
