//! A virtio-blk device as a block store that sleeps on its interrupt: each request is queued
//! with the crate's non-blocking call, the driver waits for the device's interrupt, and the
//! request is completed when the device has put it in the used ring. One request is in flight
//! at a time (the file system above sends one at a time).
//!
//! ```text
//!  read/write ──► *_blocks_nb (queue, notify) ──► until used: irq.wait ─► ack_interrupt (ISR
//!                                                              read: the line drops) ─► irq.ack
//!             ◄── complete_*_blocks (status) ◄──┘
//! ```
//! The ISR must be read before the interrupt line is unmasked again, or the level-triggered
//! line fires again at once.

use crate::config::{ConfigPort, OneFunction, THE_FUNCTION};
use crate::hal::{GlueHal, Platform};
use core::fmt;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::{Command, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, VirtioPciError};

pub const BLOCK: usize = SECTOR_SIZE;

/// How the driver sleeps until its device interrupts, and re-arms the line afterwards.
pub trait Interrupt {
    /// Block until the device's interrupt has fired (or return at once if it already has).
    fn wait(&mut self);
    /// The device's interrupt status was read: let the line interrupt again.
    fn ack(&mut self);
}

/// Why the driver could not start, or a request failed.
#[derive(Debug)]
pub enum DriverError {
    /// The PCI function is not a usable virtio device.
    Transport(VirtioPciError),
    /// The device refused or failed.
    Device(virtio_drivers::Error),
}

impl From<VirtioPciError> for DriverError {
    fn from(e: VirtioPciError) -> Self {
        DriverError::Transport(e)
    }
}

impl From<virtio_drivers::Error> for DriverError {
    fn from(e: virtio_drivers::Error) -> Self {
        DriverError::Device(e)
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Transport(e) => write!(f, "not a usable virtio device: {e}"),
            DriverError::Device(e) => write!(f, "device error: {e}"),
        }
    }
}

/// The driver of one virtio-blk device.
pub struct BlockDriver<P: Platform> {
    blk: VirtIOBlk<GlueHal<P>, PciTransport>,
}

impl<P: Platform> BlockDriver<P> {
    /// Start the device behind `port`: memory decoding and bus mastering on, then the crate
    /// resets and initialises it (so a new incarnation of the driver always starts from a
    /// device that has forgotten the last one's queues). The HAL's DMA region and the
    /// device's windows must be installed first.
    pub fn start<C: ConfigPort>(port: C) -> Result<Self, DriverError> {
        let mut root = PciRoot::new(OneFunction(port));
        root.set_command(THE_FUNCTION, Command::MEMORY_SPACE | Command::BUS_MASTER);
        let transport = PciTransport::new::<GlueHal<P>, _>(&mut root, THE_FUNCTION)?;
        Ok(BlockDriver { blk: VirtIOBlk::new(transport)? })
    }

    /// The device's size in blocks of [`BLOCK`] bytes.
    pub fn blocks(&self) -> u64 {
        self.blk.capacity()
    }

    pub fn readonly(&self) -> bool {
        self.blk.readonly()
    }

    /// Read block `n` into `buf`, sleeping on the interrupt until the device has done it.
    /// (`read` and `write` stay out of line: a test stops the driver in them through QEMU's
    /// gdb stub, by symbol.)
    #[inline(never)]
    pub fn read(
        &mut self,
        n: u64,
        buf: &mut [u8; BLOCK],
        irq: &mut impl Interrupt,
    ) -> Result<(), DriverError> {
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: `req`, `buf` and `resp` are not touched again until `complete_read_blocks`,
        // which this function reaches on every path once the request is queued (`wait_for`
        // returns only when the device has used it), with the same three buffers.
        let token = unsafe { self.blk.read_blocks_nb(n as usize, &mut req, buf, &mut resp)? };
        self.wait_for(token, irq);
        // SAFETY: the same buffers as were queued with `token`.
        unsafe { self.blk.complete_read_blocks(token, &req, buf, &mut resp)? };
        Ok(())
    }

    /// Write `buf` to block `n`; returns once the device reports the write done.
    #[inline(never)]
    pub fn write(&mut self, n: u64, buf: &[u8; BLOCK], irq: &mut impl Interrupt) -> Result<(), DriverError> {
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: as in `read`: the buffers stay untouched until `complete_write_blocks`.
        let token = unsafe { self.blk.write_blocks_nb(n as usize, &mut req, buf, &mut resp)? };
        self.wait_for(token, irq);
        // SAFETY: the same buffers as were queued with `token`.
        unsafe { self.blk.complete_write_blocks(token, &req, buf, &mut resp)? };
        Ok(())
    }

    /// Make every completed write durable. The crate offers flush only as a blocking call: it
    /// polls the used ring until the device answers (the one request that does not sleep).
    pub fn flush(&mut self) -> Result<(), DriverError> {
        Ok(self.blk.flush()?)
    }

    fn wait_for(&mut self, token: u16, irq: &mut impl Interrupt) {
        while self.blk.peek_used() != Some(token) {
            irq.wait();
            self.blk.ack_interrupt();
            irq.ack();
        }
    }
}
