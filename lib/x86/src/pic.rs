//! The legacy 8259 interrupt controller pair. IRQs 0–15 are remapped to vectors
//! [`IRQ_BASE`]..`IRQ_BASE + 16`, clear of the CPU's exceptions.

use crate::port::PortIo;

pub const IRQ_BASE: u8 = 32;
const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;
const EOI: u8 = 0x20;
const READ_ISR: u8 = 0x0b;

/// The lines that are masked (bit set), IRQ 0 in bit 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mask(pub u16);

impl Mask {
    /// Every line masked but `lines` (the cascade, IRQ 2, is unmasked whenever a line of the
    /// second controller is).
    pub const fn all_but(lines: &[u8]) -> Mask {
        let mut open = 0u16;
        let mut i = 0;
        while i < lines.len() {
            open |= 1 << lines[i];
            i += 1;
        }
        Mask::all_but_bits(open)
    }

    /// Every line masked but those whose bits are set in `open` (and the cascade, if one of
    /// them is on the second controller).
    pub const fn all_but_bits(open: u16) -> Mask {
        Mask(!Mask::with_cascade(open))
    }

    /// `open` with the cascade's bit set if it holds a line of the second controller.
    pub const fn with_cascade(open: u16) -> u16 {
        if open & 0xff00 != 0 {
            open | 1 << 2
        } else {
            open
        }
    }
}

/// Remap both controllers to [`IRQ_BASE`], cascade the second on IRQ 2, apply `mask`.
pub fn init(p: &impl PortIo, mask: Mask) {
    p.outb(PIC1_CMD, 0x11); // initialise, a fourth word follows
    p.outb(PIC2_CMD, 0x11);
    p.outb(PIC1_DATA, IRQ_BASE);
    p.outb(PIC2_DATA, IRQ_BASE + 8);
    p.outb(PIC1_DATA, 4); // the second controller hangs on line 2
    p.outb(PIC2_DATA, 2); // ... and is told so
    p.outb(PIC1_DATA, 1); // 8086 mode
    p.outb(PIC2_DATA, 1);
    set_mask(p, mask);
}

/// Load a whole mask.
pub fn set_mask(p: &impl PortIo, mask: Mask) {
    p.outb(PIC1_DATA, mask.0 as u8);
    p.outb(PIC2_DATA, (mask.0 >> 8) as u8);
}

/// The whole mask as it is now.
pub fn read_mask(p: &impl PortIo) -> Mask {
    Mask(p.inb(PIC1_DATA) as u16 | (p.inb(PIC2_DATA) as u16) << 8)
}

/// Mask or unmask one line.
pub fn mask(p: &impl PortIo, line: u8, masked: bool) {
    let (port, bit) = if line < 8 { (PIC1_DATA, line) } else { (PIC2_DATA, line - 8) };
    let cur = p.inb(port);
    p.outb(port, if masked { cur | 1 << bit } else { cur & !(1 << bit) });
}

/// The PIIX's edge/level control registers (lines 0–7, 8–15).
const ELCR: [u16; 2] = [0x4d0, 0x4d1];

/// Make `line` level-triggered (a PCI interrupt stays asserted until its driver has the device
/// drop it).
pub fn set_level_triggered(p: &impl PortIo, line: u8) {
    let port = ELCR[(line / 8) as usize & 1];
    p.outb(port, p.inb(port) | 1 << (line % 8));
}

/// Whether an interrupt on `line` (7 or 15) is really in service, or was spurious: then the
/// controller that raised it must not get an end of interrupt (the primary still must, for a
/// spurious 15, since it did see the cascade).
pub fn is_spurious(p: &impl PortIo, line: u8) -> bool {
    let (cmd, bit) = if line < 8 { (PIC1_CMD, line) } else { (PIC2_CMD, line - 8) };
    p.outb(cmd, READ_ISR);
    p.inb(cmd) & (1 << bit) == 0
}

/// End of interrupt for `line`.
pub fn eoi(p: &impl PortIo, line: u8) {
    if line >= 8 {
        p.outb(PIC2_CMD, EOI);
    }
    p.outb(PIC1_CMD, EOI);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::fake::Ports;

    #[test]
    fn masks_open_the_cascade_for_second_controller_lines() {
        assert_eq!(Mask::all_but(&[0, 2]).0, !0b101);
        assert_eq!(Mask::all_but(&[0, 2, 4]).0, !0b10101);
        assert_eq!(Mask::all_but(&[8]).0, !(1 << 8 | 1 << 2));
    }

    #[test]
    fn init_remaps_then_masks() {
        let p = Ports::new(|_, _| 0);
        init(&p, Mask::all_but(&[0, 2]));
        let w = p.writes.borrow().clone();
        assert_eq!(w[2..4], [(PIC1_DATA, 32), (PIC2_DATA, 40)]);
        assert_eq!(w[w.len() - 2..], [(PIC1_DATA, !0b101u16 as u8), (PIC2_DATA, 0xff)]);
    }

    #[test]
    fn eoi_and_masks_reach_the_right_controller() {
        let p = Ports::new(|_, _| 0b1000_0000);
        eoi(&p, 9);
        eoi(&p, 3);
        mask(&p, 12, true);
        assert_eq!(
            *p.writes.borrow(),
            [(PIC2_CMD, EOI), (PIC1_CMD, EOI), (PIC1_CMD, EOI), (PIC2_DATA, 0b1001_0000)]
        );
        assert!(!is_spurious(&p, 7), "bit 7 in service");
        assert!(is_spurious(&Ports::new(|_, _| 0), 15));
    }
}
