//! PCI devices for driver cells: the kernel finds every function at boot, hands each to at most
//! one cell ([`Device::take`], while the image wires the system), stands between the driver and
//! its configuration space (`x86::pci::Guard`, as on the microkernel), delivers its interrupt
//! line, and makes the device harmless when its driver's task stops.
//!
//! ```text
//!  boot:    enumerate ──► k.devices[i] = { function, BARs sized once }
//!  wiring:  Device::take(ids, pages) ──► a slot: DMA region (contiguous frames) at its start,
//!           memory BARs after it (uncached); the line level-triggered, masked
//!  driver:  first use binds the handle to its task: the slot is writable while that task
//!           runs (like its stack and heap), read-only to every other
//!           config_read/config_write ──► guard ──► 0xCF8/0xCFC
//!           wait_interrupt ◄── IRQ: line masked, EOI, waiter woken;  ack_interrupt: unmask
//!  stop:    (lifecycle::release) bus mastering off, BARs and command restored, sizing
//!           forgotten, line masked, DMA region zeroed — before the next incarnation runs
//! ```
//!
//! The DMA region is RAM in the first GiB, so its physical address is also its identity-mapped
//! address; the identity map is read-only (`protect`), and the driver writes the region through
//! its slot. There is no IOMMU: a device its driver programs wrongly can write any physical
//! address, the kernel's included (see `docs/porting-a-driver.md`, "What the missing IOMMU
//! means"); what the kernel does is stop the device's DMA the moment its driver stops.

use crate::arch::cpu::PORTS;
use crate::mem::paging::{self, NX, PCD, PWT, SLOT_BASE, SLOT_SIZE, W};
use crate::mem::PAGE;
use crate::state::{Kernel, PciDevice, State, KERNEL};
use core::sync::atomic::{AtomicU16, Ordering};
use x86::pci::{ConfigSpace, Ports, Write};

fn config() -> Ports<'static, x86::port::Direct> {
    Ports(&PORTS)
}

/// Most DMA pages a device may be given (what `virtio_glue::dma` manages).
pub const MAX_DMA_PAGES: usize = 64;

/// Device lines that fired inside a critical section (a faulted-away `cli`): masked then,
/// delivered at the next tick.
static DEFERRED: AtomicU16 = AtomicU16::new(0);

/// Why a device operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The handle is bound to another task (the first task that used it drives it).
    NotOwner,
    /// Not a register offset a driver may use, or a write the guard refuses.
    Refused,
    /// No such memory BAR, or one too large to map.
    NoBar,
    /// The device raises no interrupt the kernel can deliver.
    NoInterrupt,
}

/// Record every PCI function at boot, and say what was found.
pub(crate) fn enumerate() {
    KERNEL.with(|k| {
        x86::pci::enumerate(&config(), |f| {
            let d = PciDevice {
                f,
                taken: false,
                owner: None,
                slot: usize::MAX,
                dma: (0, 0),
                windows: [None; 6],
                line: None,
                fired: false,
                waiter: None,
            };
            let _ = k.devices.push(d);
        });
    });
    let found: heapless::Vec<x86::pci::Function, { crate::state::MAX_DEVICES }> =
        KERNEL.with(|k| k.devices.iter().map(|d| d.f).collect());
    for f in &found {
        crate::serial::kprintln!("pci {}", f);
    }
}

/// Where a DMA region or a BAR is, for the driver (`virt`, in its slot) and for the device
/// (`phys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub virt: u64,
    pub phys: u64,
    pub size: u64,
}

/// A PCI function given to a driver cell. There is one per device: [`Device::take`] hands it
/// out once, and the first task that uses it is its driver for good (every incarnation).
pub struct Device {
    index: usize,
}

impl Device {
    /// The first function with one of `ids` (vendor, device) not yet taken, with a DMA region
    /// of `dma_pages` zeroed, physically contiguous pages (at most [`MAX_DMA_PAGES`]) and every
    /// memory BAR mapped uncached; `None` if there is none (or after boot: devices are handed
    /// out while the image wires the system).
    pub fn take(ids: &[(u16, u16)], dma_pages: usize) -> Option<Device> {
        if crate::sched::started() || dma_pages == 0 || dma_pages > MAX_DMA_PAGES {
            return None;
        }
        let index = KERNEL
            .with(|k| k.devices.iter().position(|d| !d.taken && ids.contains(&(d.f.vendor, d.f.device))))?;
        let slot = crate::mem::mapped::reserve_slot()?;
        let phys = crate::mem::frames::alloc_run(dma_pages)?;
        let base = SLOT_BASE + slot as u64 * SLOT_SIZE;
        for i in 0..dma_pages as u64 {
            paging::map(base + i * PAGE, phys + i * PAGE, W | NX);
        }
        let mut next = base + dma_pages as u64 * PAGE;
        let bars = KERNEL.with(|k| k.devices[index].f.bars);
        let mut windows = [None; 6];
        for (n, b) in bars.iter().enumerate() {
            let fits = next + b.size <= base + SLOT_SIZE;
            if !b.is_memory() || b.size == 0 || b.base % PAGE != 0 || b.size % PAGE != 0 || !fits {
                continue;
            }
            for off in (0..b.size).step_by(PAGE as usize) {
                paging::map(next + off, b.base + off, W | NX | PCD | PWT);
            }
            windows[n] = Some(next);
            next += b.size;
        }
        let line = KERNEL.with(|k| {
            let d = &mut k.devices[index];
            d.taken = true;
            d.slot = slot;
            d.dma = (phys, dma_pages);
            d.windows = windows;
            d.line = level_triggered(&d.f);
            d.line
        });
        if let Some(line) = line {
            crate::arch::pic::arm(line, false);
        }
        Some(Device { index })
    }

    /// Run `f` on the device record if the current task drives it, binding it at first use
    /// (by a task: never while the image wires the system).
    #[inline(never)]
    fn with<R>(&self, f: impl FnOnce(&mut Kernel, usize) -> R) -> Result<R, DeviceError> {
        let index = core::hint::black_box(self.index);
        if !crate::sched::started() {
            return Err(DeviceError::NotOwner);
        }
        KERNEL.with(|k| {
            let me = k.current;
            let d = k.devices.get_mut(index).filter(|d| d.taken).ok_or(DeviceError::NotOwner)?;
            match d.owner {
                None => {
                    d.owner = Some(me);
                    let slot = d.slot;
                    k.cur().set_device_slot(slot);
                    // Writable from now on, while this task runs.
                    crate::mem::paging::open(k.cur().slots());
                }
                Some(o) if o != me => return Err(DeviceError::NotOwner),
                Some(_) => {}
            }
            Ok(f(k, index))
        })
    }

    /// The DMA region: where the driver writes it, and the physical address the device uses.
    pub fn dma(&self) -> Result<Region, DeviceError> {
        self.with(|k, i| {
            let d = &k.devices[i];
            Region { virt: SLOT_BASE + d.slot as u64 * SLOT_SIZE, phys: d.dma.0, size: d.dma.1 as u64 * PAGE }
        })
    }

    /// Memory BAR `bar`, mapped uncached in the driver's slot.
    pub fn bar(&self, bar: usize) -> Result<Region, DeviceError> {
        self.with(|k, i| {
            let d = &k.devices[i];
            let b = d.f.bars.get(bar).ok_or(DeviceError::NoBar)?;
            let virt = d.windows.get(bar).copied().flatten().ok_or(DeviceError::NoBar)?;
            Ok(Region { virt, phys: b.base, size: b.size })
        })?
    }

    /// Read dword `offset` of the function's configuration space, through the guard.
    pub fn config_read(&self, offset: u8) -> Result<u32, DeviceError> {
        let offset = offset & 0xfc;
        self.with(|k, i| {
            let f = &k.devices[i].f;
            f.guard.read(offset, config().read(f.at, offset))
        })
    }

    /// Write dword `offset`, if the guard allows it (the BARs stay where the firmware put them;
    /// of the header only the command bits a driver needs change).
    pub fn config_write(&self, offset: u8, value: u32) -> Result<(), DeviceError> {
        let offset = offset & 0xfc;
        self.with(|k, i| {
            let f = &mut k.devices[i].f;
            match f.guard.write(offset, value, config().read(f.at, offset)) {
                Write::Refused => Err(DeviceError::Refused),
                Write::Absorbed => Ok(()),
                Write::Device(v) => {
                    config().write(f.at, offset, v);
                    Ok(())
                }
            }
        })?
    }

    /// Block until the device's line has fired since the last wait. The line is masked when it
    /// fires, and stays so until [`ack_interrupt`](Self::ack_interrupt).
    pub fn wait_interrupt(&self) -> Result<(), DeviceError> {
        let index = self.with(|k, i| k.devices[i].line.map(|_| i))?.ok_or(DeviceError::NoInterrupt)?;
        crate::sched::block_on(State::Wait, |k| {
            let me = k.current;
            let d = &mut k.devices[index];
            if d.fired {
                d.fired = false;
                d.waiter = None;
                return Some(());
            }
            d.waiter = Some(me);
            None
        });
        Ok(())
    }

    /// The device has dropped its line (for virtio: its interrupt status was read): let the
    /// line interrupt again. It starts masked: acknowledge once when the device is ready.
    pub fn ack_interrupt(&self) -> Result<(), DeviceError> {
        let line = self.with(|k, i| k.devices[i].line)?.ok_or(DeviceError::NoInterrupt)?;
        crate::sync::critical(|| crate::arch::pic::arm(line, true));
        Ok(())
    }
}

/// The legacy line of `f`, if it raises one the 8259 can deliver, made level-triggered (a PCI
/// interrupt stays asserted until the driver acknowledges the device).
/// Line 4 is COM1's, which the kernel takes for the console's input.
fn level_triggered(f: &x86::pci::Function) -> Option<u8> {
    let line = f.legacy_line().filter(|&l| l != 4)?;
    x86::pic::set_level_triggered(&PORTS, line);
    Some(line)
}

/// `line` fired: mask it (it is level-triggered and stays asserted until the driver has the
/// device drop it), end the interrupt, and wake every driver waiting on it.
pub(crate) fn interrupt(k: &mut Kernel, line: u8) {
    crate::arch::pic::arm(line, false);
    crate::arch::pic::eoi(line);
    fired(k, line);
}

fn fired(k: &mut Kernel, line: u8) {
    let mut wake: heapless::Vec<usize, { crate::state::MAX_DEVICES }> = heapless::Vec::new();
    for d in k.devices.iter_mut().filter(|d| d.owner.is_some() && d.line == Some(line)) {
        d.fired = true;
        if let Some(w) = d.waiter.take() {
            let _ = wake.push(w);
        }
    }
    for w in wake {
        k.wake(w);
    }
}

/// `line` fired inside a critical section, where the task table may be borrowed: mask it and
/// end the interrupt now, deliver it at the next tick ([`deliver_deferred`]).
pub(crate) fn defer(line: u8) {
    crate::arch::pic::arm(line, false);
    crate::arch::pic::eoi(line);
    DEFERRED.fetch_or(1 << line, Ordering::Relaxed);
}

/// Deliver the lines [`defer`] kept (from the timer tick).
pub(crate) fn deliver_deferred(k: &mut Kernel) {
    let lines = DEFERRED.swap(0, Ordering::Relaxed);
    for line in (0..16u8).filter(|l| lines & 1 << l != 0) {
        fired(k, line);
    }
}

/// Task `t` stopped: every device it drove stops its DMA (bus mastering off) and gets its BARs
/// and command register back as the firmware set them, sizing in progress forgotten, its line
/// masked with nothing pending; then its DMA region is zeroed, so the next incarnation starts
/// from zeroed memory and no request data outlives its incarnation. In that order: the device
/// must not write the region after it was scrubbed.
pub(crate) fn quiesce(k: &mut Kernel, t: usize) {
    let cfg = config();
    for d in k.devices.iter_mut().filter(|d| d.owner == Some(t)) {
        d.f.quiesce(&cfg);
        if let Some(line) = d.line {
            crate::arch::pic::arm(line, false);
        }
        d.fired = false;
        d.waiter = None;
        let (phys, pages) = d.dma;
        // SAFETY: the region is frames this device was given at `take`, never freed, identity
        // mapped below 1 GiB (read-only, hence the lifted protection); bus mastering is off
        // (above) and its driver has stopped, so nothing else writes it now.
        crate::mem::protect::unprotected(|| unsafe {
            core::ptr::write_bytes(phys as *mut u8, 0, pages * PAGE as usize)
        });
    }
}
