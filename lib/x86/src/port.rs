//! Port I/O behind a trait. The 16550 and the PIT are driven through [`PortIo`], so the same
//! driver runs in ring 0 ([`Direct`]), in a ring-3 server whose kernel opened the ports in its
//! I/O bitmap (the server implements the trait over its own `in`/`out`), and against a fake on
//! the host in the tests.

/// Byte-wide access to I/O ports.
pub trait PortIo {
    fn inb(&self, port: u16) -> u8;
    fn outb(&self, port: u16, value: u8);
}

/// The `in` and `out` instructions, for code allowed to use them on the ports it names.
#[derive(Clone, Copy)]
pub struct Direct(());

impl Direct {
    /// # Safety
    /// The caller may touch every port it will pass: it runs in ring 0 and owns the devices
    /// behind them (or its kernel opened them to it), and no other driver drives them meanwhile.
    pub const unsafe fn new() -> Direct {
        Direct(())
    }
}

impl PortIo for Direct {
    #[inline]
    fn inb(&self, port: u16) -> u8 {
        let v: u8;
        // SAFETY: `Direct::new`'s contract: this code may read the port; `in` touches no memory.
        unsafe {
            core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack, preserves_flags))
        }
        v
    }

    #[inline]
    fn outb(&self, port: u16, value: u8) {
        // SAFETY: `Direct::new`'s contract: this code may write the port; `out` touches no memory.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
        }
    }
}

/// A fake port space for host tests: records every write, answers reads from a function of
/// the port and of how many reads came before.
#[cfg(test)]
pub(crate) mod fake {
    use super::PortIo;
    use core::cell::{Cell, RefCell};
    use std::vec::Vec;

    pub struct Ports {
        pub writes: RefCell<Vec<(u16, u8)>>,
        read: fn(u16, usize) -> u8,
        reads: Cell<usize>,
    }

    impl Ports {
        pub fn new(read: fn(u16, usize) -> u8) -> Ports {
            Ports { writes: RefCell::new(Vec::new()), read, reads: Cell::new(0) }
        }

        pub fn reads(&self) -> usize {
            self.reads.get()
        }
    }

    impl PortIo for Ports {
        fn inb(&self, port: u16) -> u8 {
            let n = self.reads.get();
            self.reads.set(n + 1);
            (self.read)(port, n)
        }
        fn outb(&self, port: u16, value: u8) {
            self.writes.borrow_mut().push((port, value));
        }
    }
}
