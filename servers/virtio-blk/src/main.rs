//! The disk driver: QEMU's virtio-blk device, driven by the unmodified `virtio-drivers` crate,
//! served as a block store (`block-api`, endpoint `disk`) exactly as the RAM disk serves one.
//!
//! What the manifest gives it, and what each is for:
//!
//! ```text
//!  pci disk 1af4:1042,1af4:1001   Pci: configuration space through the kernel's guard, and the
//!                                 BARs to map (pci_map, uncached); Interrupt + Notification:
//!                                 the device's INTx line, masked from firing until acknowledged
//!  dma queues 32                  Memory: 32 physically contiguous pages for the virtqueue and
//!                                 the bounce buffers (its physical address comes with mem_map)
//!  serve disk                     the block-store endpoint fs calls
//! ```
//!
//! It keeps no state a restart could lose: every request is answered only once the device has
//! done it, so a request in flight when the driver dies was never answered; the kernel delivers
//! it again to the next incarnation, which resets the device (`BlockDriver::start`) and issues
//! it again. Block reads and writes are idempotent, so doing one twice is harmless.
//!
//! Without a device (QEMU started without a disk) the capabilities are absent; the driver says
//! so once and answers every request `NoDevice`, and fs uses the RAM disk.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use block_api::{BlockError, Request, Response, BLOCK_SIZE};
use userlib::abi::{BootInfo, Error, MAP_BASE, PAGE_SIZE};
use userlib::cap::{Cap, Endpoint, Interrupt, Memory, Notification, Pci};
use userlib::msg;
use virtio_glue::blk::{self, BlockDriver};
use virtio_glue::config::ConfigPort;
use virtio_glue::dma::Region;
use virtio_glue::hal::{Platform, Resources, Window};

/// Where the DMA region is mapped, and where BAR `n` is: `BARS + n * BAR_SPAN` (a BAR the
/// kernel maps is at most 64 MiB).
const DMA_AT: u64 = MAP_BASE;
const BARS: u64 = MAP_BASE + 0x1000_0000;
const BAR_SPAN: u64 = 0x400_0000;

/// The HAL's DMA region and device windows (installed at start).
struct Mk;
static RESOURCES: spin::Mutex<Resources> = spin::Mutex::new(Resources::new());

impl Platform for Mk {
    fn resources() -> &'static spin::Mutex<Resources> {
        &RESOURCES
    }
}

/// Configuration space through `pci_read`/`pci_write`.
#[derive(Clone, Copy)]
struct Config(Cap<Pci>);

impl ConfigPort for Config {
    fn read(&self, offset: u8) -> u32 {
        self.0.read(offset).unwrap_or(u32::MAX)
    }

    fn write(&self, offset: u8, value: u32) {
        if let Err(e) = self.0.write(offset, value) {
            log::warn!("virtio-blk: the kernel refused a config write at {offset:#x}: {e}");
        }
    }
}

/// The device's interrupt: sleep on its notification, unmask it with `irq_ack`.
struct Irq {
    line: Cap<Interrupt>,
    note: Cap<Notification>,
}

impl blk::Interrupt for Irq {
    fn wait(&mut self) {
        let _ = self.note.wait();
    }

    fn ack(&mut self) {
        let _ = self.line.ack();
    }
}

/// One request, answered; `out` holds a block read.
fn handle<'o>(
    d: &mut BlockDriver<Mk>,
    irq: &mut Irq,
    req: Result<Request<'_>, msg::CallError>,
    out: &'o mut [u8; BLOCK_SIZE],
) -> Response<'o> {
    let blocks = d.blocks().min(u32::MAX as u64) as u32;
    // A request the device failed means this driver and its device no longer agree (a queue
    // index bent, a completion lost): answering an error would leave them so. It stops
    // instead; the kernel delivers the request to the next incarnation, which resets the device
    // and tries once more. A request that fails that one too is answered `ServerFailed`.
    let io = |r: Result<(), blk::DriverError>| match r {
        Ok(()) => Response::Done,
        Err(e) => panic!("virtio-blk: {e}; stopping so that a new incarnation resets the device"),
    };
    match req {
        Err(_) => Response::Error(BlockError::Malformed),
        Ok(Request::Info) => Response::Info { blocks },
        Ok(Request::Read { block }) if block < blocks => match d.read(block as u64, out, irq) {
            Ok(()) => Response::Data(&out[..]),
            Err(e) => io(Err(e)),
        },
        Ok(Request::Write { block, data }) if block < blocks => match <&[u8; BLOCK_SIZE]>::try_from(data) {
            Ok(data) => io(d.write(block as u64, data, irq)),
            Err(_) => Response::Error(BlockError::BadLength),
        },
        Ok(Request::Read { .. } | Request::Write { .. }) => Response::Error(BlockError::OutOfRange),
        Ok(Request::Flush) => io(d.flush()),
    }
}

// No client state in SSRs: any version reads what there is.
userlib::version!("virtio-blk", 1, []);
userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    // The crate says what it found at every start; a restarted incarnation keeps to warnings.
    console_api::init_log(if boot.generation == 0 { log::LevelFilter::Info } else { log::LevelFilter::Warn });
    let ep = Cap::<Endpoint>::from_boot(boot, "disk").ok_or(Error::EmptySlot)?;
    let Some(pci) = Cap::<Pci>::from_boot(boot, "disk") else {
        if boot.generation == 0 {
            log::info!("virtio-blk: no disk attached (no free PCI device 1af4:1042 or 1af4:1001)");
        }
        return block_api::serve(ep, |_| block_api::reply(&Response::Error(BlockError::NoDevice)));
    };
    let line = Cap::<Interrupt>::from_boot(boot, "disk").ok_or(Error::EmptySlot)?;
    let note = Cap::<Notification>::from_boot(boot, "disk").ok_or(Error::EmptySlot)?;
    let dma = Cap::<Memory>::from_boot(boot, "queues").ok_or(Error::EmptySlot)?.map(DMA_AT, true)?;
    {
        let mut r = RESOURCES.lock();
        let pages = dma.bytes.len() / PAGE_SIZE as usize;
        r.install_dma(Region { virt: DMA_AT as usize, phys: dma.phys, pages });
        for bar in 0..6u8 {
            // Only memory BARs map; the others answer InvalidArgument and are not needed.
            if let Ok(w) = pci.map_bar(bar, BARS + bar as u64 * BAR_SPAN) {
                r.install_window(Window { phys: w.phys, virt: w.vaddr as usize, size: w.size });
            }
        }
    }
    let mut driver = match BlockDriver::<Mk>::start(Config(pci)) {
        Ok(d) => d,
        Err(e) => {
            log::error!("virtio-blk: cannot start the device: {e}");
            return Err(Error::InvalidArgument);
        }
    };
    let mut irq = Irq { line, note };
    // The line stays masked until the first acknowledgement.
    blk::Interrupt::ack(&mut irq);
    if boot.generation == 0 {
        log::info!(
            "virtio-blk: disk of {} blocks ({} MiB){}",
            driver.blocks(),
            (driver.blocks() * BLOCK_SIZE as u64) >> 20,
            if driver.readonly() { ", read-only" } else { "" }
        );
    }
    // Server-global by design: the device's queues as this driver last left them (indices,
    // descriptors in use), which the next incarnation resets with the device.
    userlib::declare(&driver, "virtqueue state")?;
    block_api::serve(ep, |req| {
        // A block read is made here, below the receive point: not kept for the next client.
        let mut block = [0u8; BLOCK_SIZE];
        block_api::reply(&handle(&mut driver, &mut irq, req, &mut block))
    })
}
