//! The disk driver cell: QEMU's virtio-blk device, driven by the unmodified `virtio-drivers`
//! crate (through `virtio-glue`, as the microkernel's `servers/virtio-blk` does), serving
//! plain blocks at their block numbers — the disk holds exactly the microkernel's format, so a
//! file written on one personality is read on the other. Also the client the file system uses
//! ([`Blocks`]), which checks what the driver answers (see "End-to-end" below).
//!
//! ```text
//!  fs ── Blocks (read-back, tags of this boot) ── Request ──► virtio-blk task
//!                                                              │ BlockDriver (virtio-glue)
//!   kernel Device handle (taken once by the image) ◄───────────┤  config: guard
//!                                                              │  DMA region, BARs: its slot
//!                                                              └  wait_interrupt / ack
//! ```
//!
//! It keeps no state a restart could lose: a request is answered only once the device has done
//! it, so one in flight when the driver dies was never answered; the kernel quiesces the device
//! (bus mastering off, BARs and command restored, DMA region zeroed), delivers the request
//! again to the next incarnation, which resets the device (`BlockDriver::start`) and does it
//! again. Block reads and writes are idempotent. A request the device fails means driver and
//! device no longer agree: the driver stops (panics) rather than answer, as on the microkernel.
//!
//! Without a device (QEMU started without a disk) the task still runs and answers every request
//! `NoDevice`; the file system then uses the RAM disk.
//!
//! **The one static.** `virtio_drivers::Hal` has no `self`, so the HAL's state is a static
//! (`virtio_glue::hal::Platform`), the only one in a cell. In this address space it outlives
//! the incarnation that locked it: one killed inside a HAL call (a bounce copy) leaves its
//! lock held. Each new incarnation therefore takes the state over before its first HAL call
//! (`virtio_glue::hal::Shared::take_over`): its predecessor is dead, so whatever lock it held
//! is released and the state starts afresh. (Eight locks, one taken per incarnation, ran out
//! after 37 restarts in a 1,000-fault campaign: the driver then crash-looped and was held.)
//!
//! **End-to-end.** The RAM disk keeps two tagged copies of every block; a real disk holds the
//! microkernel's format, one plain copy. What [`Blocks`] checks instead:
//! - every write is read back and compared: a write the driver dropped, or put elsewhere, is
//!   caught for the block meant (and retried, then an error);
//! - it keeps a tag of every block of the file system's span it wrote or read this boot, in
//!   pages the fs task's closure owns (they survive fs restarts): a later read that does not
//!   match is read again, then an error — so a block a misplaced write damaged, a read answered
//!   with another block or bent contents, never comes back as data once the block was seen.
//!
//! What it does not detect: a block's first read this boot is believed as the device gives it
//! (damage from before the boot, or done to a block not yet seen, is taken for data); a
//! misplaced write shows only when its victim is read; nothing checks blocks past the span.
#![no_std]
#![forbid(unsafe_code)]

use bytemuck::CheckedBitPattern;
use cell_console::Console;
use core::fmt::Write as _;
use fs_core::{Block, BLOCK_SIZE};
use libos_kernel::{CheckedEndpoint, Device, MappedPages};
use virtio_glue::blk::{self, BlockDriver};
use virtio_glue::config::ConfigPort;
use virtio_glue::dma::Region;
use virtio_glue::hal::{Platform, Resources, Shared, Window};

/// The PCI ids of a virtio block device (modern, transitional).
pub const IDS: [(u16, u16); 2] = [(0x1af4, 0x1042), (0x1af4, 0x1001)];
/// DMA pages for the virtqueue and the bounce buffers (as the microkernel's manifest gives).
pub const DMA_PAGES: usize = 32;
/// The task's (and endpoint's) name.
pub const NAME: &str = "virtio-blk";

const _: () = assert!(BLOCK_SIZE == blk::BLOCK);

// Messages are plain values copied between tasks. Checked on receipt (`CheckedEndpoint`).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, CheckedBitPattern)]
#[repr(u32)]
pub enum Request {
    Info,
    Read {
        block: u32,
    },
    Write {
        block: u32,
        data: Block,
    },
    /// Make every completed write durable.
    Flush,
}

#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, CheckedBitPattern)]
#[repr(u32)]
pub enum Response {
    Info {
        blocks: u32,
    },
    Data(Block),
    Done,
    OutOfRange,
    /// No disk is attached.
    NoDevice,
}

pub type Ep = CheckedEndpoint<Request, Response>;

/// The HAL's state: the one static of this cell (the crate's `Hal` has no `self`). It
/// outlives incarnations; each new one takes it over (`Shared::take_over`), since one killed in
/// a HAL call leaves its lock held.
static HAL: Shared = Shared::new();

/// The libos as `virtio-glue` sees it.
struct Los;

impl Platform for Los {
    fn resources() -> &'static spin::Mutex<Resources> {
        HAL.lock()
    }
}

/// Install the device's DMA region and windows, taking the HAL's state over; false if the
/// device has no DMA region for this task.
fn install(dev: &Device) -> bool {
    let Ok(dma) = dev.dma() else { return false };
    let mut r = HAL.take_over();
    let pages = (dma.size / virtio_glue::dma::PAGE as u64) as usize;
    r.install_dma(Region { virt: dma.virt as usize, phys: dma.phys, pages });
    for bar in 0..6 {
        if let Ok(w) = dev.bar(bar) {
            r.install_window(Window { phys: w.phys, virt: w.virt as usize, size: w.size });
        }
    }
    true
}

/// Configuration space through the kernel's guard.
#[derive(Clone, Copy)]
struct Config<'d>(&'d Device);

impl ConfigPort for Config<'_> {
    fn read(&self, offset: u8) -> u32 {
        self.0.config_read(offset).unwrap_or(u32::MAX)
    }

    /// A write the guard refuses changed nothing; the crate has no error to pass it on with.
    fn write(&self, offset: u8, value: u32) {
        let _ = self.0.config_write(offset, value);
    }
}

/// The device's line: the kernel masks it when it fires and wakes us; `ack` unmasks it.
struct Irq<'d>(&'d Device);

impl blk::Interrupt for Irq<'_> {
    fn wait(&mut self) {
        // No line to wait on: poll, letting others run.
        if self.0.wait_interrupt().is_err() {
            libos_kernel::yield_now();
        }
    }

    fn ack(&mut self) {
        let _ = self.0.ack_interrupt();
    }
}

/// Is this the task's first incarnation (it says what it found only then)?
fn first() -> bool {
    libos_kernel::find_task(NAME).and_then(libos_kernel::task_info).is_none_or(|t| t.generation == 0)
}

fn log(console: &Console, line: core::fmt::Arguments<'_>) {
    let mut out = console;
    let _ = writeln!(out, "[{NAME}] {line}");
}

/// One request, answered. A request the device failed stops the driver instead (see the
/// crate's doc): the next incarnation resets the device and is given the request again.
fn handle(d: &mut BlockDriver<Los>, irq: &mut Irq<'_>, req: Request) -> Response {
    let blocks = d.blocks().min(u32::MAX as u64) as u32;
    let io = |r: Result<(), blk::DriverError>| {
        if let Err(e) = r {
            panic!("virtio-blk: {e}; stopping so that a new incarnation resets the device");
        }
    };
    match req {
        Request::Info => Response::Info { blocks },
        Request::Read { block } if block < blocks => {
            let mut data = [0u8; BLOCK_SIZE];
            io(d.read(block as u64, &mut data, irq));
            Response::Data(data)
        }
        Request::Write { block, data } if block < blocks => {
            io(d.write(block as u64, &data, irq));
            Response::Done
        }
        Request::Read { .. } | Request::Write { .. } => Response::OutOfRange,
        Request::Flush => {
            io(d.flush());
            Response::Done
        }
    }
}

/// Drive `dev` and serve `ep` (never returns).
fn drive(dev: &Device, ep: Ep, console: &Console) -> ! {
    if !install(dev) {
        panic!("virtio-blk: the device is another task's");
    }
    let mut driver = match BlockDriver::<Los>::start(Config(dev)) {
        Ok(d) => d,
        Err(e) => panic!("virtio-blk: cannot start the device: {e}"),
    };
    let mut irq = Irq(dev);
    // The line stays masked until the first acknowledgement.
    blk::Interrupt::ack(&mut irq);
    if first() {
        log(
            console,
            format_args!(
                "disk of {} blocks ({} MiB){}",
                driver.blocks(),
                (driver.blocks() * BLOCK_SIZE as u64) >> 20,
                if driver.readonly() { ", read-only" } else { "" }
            ),
        );
    }
    // Requests are read where the kernel put them, and answered below this frame: it keeps
    // nothing of one request for the next (`audit virtio-blk` checks) but the driver, whose
    // queue's positions move with every request: the device's state, not a client's.
    libos_kernel::declare("virtqueue state", &driver);
    let mut inbox = libos_kernel::Inbox::new();
    loop {
        ep.receive(&mut inbox);
        answer(&ep, &mut driver, &mut irq, &mut inbox);
    }
}

/// Answer the request in `inbox` with the device.
#[inline(never)]
fn answer(
    ep: &Ep,
    driver: &mut BlockDriver<Los>,
    irq: &mut Irq<'_>,
    inbox: &mut libos_kernel::Inbox<Request>,
) {
    let Some((token, req)) = inbox.take() else { return };
    let resp = handle(driver, irq, *req);
    let _ = ep.reply(token, resp);
}

/// Spawn the driver over `device` (`None`: no disk attached; it answers `NoDevice`); returns
/// its endpoint.
pub fn start(device: Option<Device>, console: Console) -> Option<Ep> {
    let ep = Ep::create(NAME)?;
    libos_kernel::spawn(NAME, 5, true, move || match &device {
        Some(dev) => drive(dev, ep, &console),
        None => {
            if first() {
                log(&console, format_args!("no disk attached (no PCI device 1af4:1042 or 1af4:1001)"));
            }
            loop {
                let (token, _) = ep.recv();
                let _ = ep.reply(token, Response::NoDevice);
            }
        }
    })
    .ok()?;
    Some(ep)
}

/// Blocks whose tags [`Tags`] keeps: the most a file system spans (`fs_core`'s limit).
pub const TRACKED: u32 = BLOCK_SIZE as u32 * 8;
const PAGE: usize = 4096;
/// Tries of one read or write whose answer does not check.
const ATTEMPTS: u32 = 3;

/// The tag of every tracked block written or read this boot (0: not seen yet), in pages the
/// client's task closure owns, so they outlive its incarnations (see "End-to-end").
pub struct Tags(MappedPages);

impl Tags {
    pub fn new() -> Option<Tags> {
        MappedPages::alloc((TRACKED as usize * 8).div_ceil(PAGE), false).ok().map(Tags)
    }

    fn get(&self, block: u32) -> Option<u64> {
        let mut b = [0u8; 8];
        (block < TRACKED && self.0.read(block as usize * 8, &mut b)).then(|| u64::from_le_bytes(b))
    }

    fn set(&self, block: u32, tag: u64) {
        if block < TRACKED {
            self.0.write(block as usize * 8, &tag.to_le_bytes());
        }
    }
}

/// The tag of `data` as block `block` (never 0, which means "not seen").
fn tag(block: u32, data: &Block) -> u64 {
    algo::mirror::tag(block, 0, data) | 1
}

/// What the driver says about the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Disk {
        blocks: u32,
    },
    NoDevice,
    /// It did not answer (it failed, or is held after a crash loop).
    NoAnswer,
}

/// A client of the disk cell, for `fs_core::Disk`: every write read back, every read of a
/// block seen this boot checked against its tag (see "End-to-end").
#[derive(Clone, Copy)]
pub struct Blocks<'t> {
    pub ep: Ep,
    pub tags: &'t Tags,
}

impl Blocks<'_> {
    /// Is a disk there?
    pub fn probe(&self) -> Probe {
        match self.ep.call(&Request::Info) {
            Ok(Response::Info { blocks }) => Probe::Disk { blocks },
            Ok(Response::NoDevice) => Probe::NoDevice,
            _ => Probe::NoAnswer,
        }
    }

    /// Block `block`, read as [`fs_core::BlockDevice::read`] reads it, with what vouches for it
    /// from now on (`algo::mirror::Vouched`: what the fs cell keeps in its cache, and checks
    /// piece by piece). Its marks are the fs cell's own, taken after the read's check; so they
    /// are taken in a pass that computes the block's tag again, and the block is kept only if
    /// that tag is this boot's: a fault between the two (a bent block number, bent bytes) would
    /// otherwise be vouched for, and believed at every later hit.
    pub fn read_vouched(&self, block: u32) -> Option<algo::mirror::Vouched<BLOCK_SIZE>> {
        let mut out = [0u8; BLOCK_SIZE];
        if !fs_core::BlockDevice::read(self, block, &mut out) {
            return None;
        }
        // `tag` is the mirror's tag of copy 0, never 0.
        algo::mirror::Vouched::checked(block, 0, out, |t| Some(t | 1) == self.tags.get(block))
    }

    fn get(&self, block: u32) -> Option<Block> {
        match self.ep.call(&Request::Read { block }) {
            Ok(Response::Data(data)) => Some(data),
            _ => None,
        }
    }
}

impl fs_core::BlockDevice for Blocks<'_> {
    fn blocks(&self) -> Option<u32> {
        (0..ATTEMPTS).find_map(|_| match self.probe() {
            Probe::Disk { blocks } => Some(blocks),
            _ => None,
        })
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        for _ in 0..ATTEMPTS {
            let Some(data) = self.get(block) else { continue };
            let t = tag(block, &data);
            match self.tags.get(block) {
                Some(known) if known != 0 && known != t => continue,
                Some(0) => self.tags.set(block, t),
                _ => {}
            }
            *out = data;
            return true;
        }
        false
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        for _ in 0..ATTEMPTS {
            if !matches!(self.ep.call(&Request::Write { block, data: *data }), Ok(Response::Done)) {
                continue;
            }
            if self.get(block).is_some_and(|back| back == *data) {
                self.tags.set(block, tag(block, data));
                return true;
            }
        }
        false
    }

    fn flush(&self) -> bool {
        matches!(self.ep.call(&Request::Flush), Ok(Response::Done))
    }
}
