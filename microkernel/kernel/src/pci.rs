//! PCI devices for user-space drivers: the kernel finds every function at boot, gives each to
//! at most one driver (the manifest's `pci` line), stands between the driver and its
//! configuration space (`x86::pci::Guard`), and makes a stopped driver's device harmless.
//!
//! ```text
//!  boot:     enumerate ──► k.pci[i] = { function, BARs sized once, owner: none }
//!  manifest: pci disk 1af4:1042,1af4:1001 ──► first free match: owner = task,
//!            capabilities Pci(i), Interrupt(line), Notification; its line set level-triggered
//!  driver:   pci_read / pci_write ──► guard ──► 0xCF8/0xCFC      pci_map ──► BAR, uncached
//!  stop:     bus mastering off (no more DMA), DMA regions zeroed, BARs and command restored
//! ```
//!
//! There is no IOMMU: a device the driver programs can read and write any physical address
//! (a corrupted descriptor is enough). What the kernel does about it: the device's DMA is
//! switched off the moment its driver stops, before anything the device could still write is
//! reused or cleared; DMA regions are never freed (a late write lands in the driver's own
//! region, not in memory someone else was given); and the kernel never copies through device
//! memory. A driver that is wrong while it runs can still make its device write anywhere:
//! that is the trust a driver without an IOMMU is given, stated in `docs/porting-a-driver.md`.

use crate::arch::cpu::PORTS;
use crate::state::{Kernel, PciDevice, MAX_PCI};
use axolotl_abi::{Error, PAGE_SIZE};
use x86::pci::{ConfigSpace, Ports, Write};

fn config() -> Ports<'static, x86::port::Direct> {
    Ports(&PORTS)
}

/// Record every PCI function at boot, and say what was found.
pub fn enumerate(k: &mut Kernel) {
    let mut n = 0;
    x86::pci::enumerate(&config(), |f| {
        if n < MAX_PCI {
            k.pci[n] = Some(PciDevice { f, owner: None });
            n += 1;
        }
    });
    for d in k.pci.iter().flatten() {
        crate::kprintln!("pci {}", d.f);
    }
}

/// The first function with one of `ids` not yet given to a task: now task `t`'s.
pub fn claim(k: &mut Kernel, t: usize, ids: &[(u16, u16)]) -> Option<u8> {
    let i = k
        .pci
        .iter()
        .position(|d| d.is_some_and(|d| d.owner.is_none() && ids.contains(&(d.f.vendor, d.f.device))))?;
    let d = k.pci[i].as_mut()?;
    d.owner = Some(t as u16);
    Some(i as u8)
}

/// The legacy interrupt line of device `i`, if it raises one the 8259 can deliver. The line is
/// made level-triggered (a PCI interrupt stays asserted until the driver acknowledges the
/// device), through the PIIX's edge/level control registers.
pub fn interrupt_line(k: &Kernel, i: u8) -> Option<u8> {
    let line = k.pci[i as usize].as_ref()?.f.legacy_line()?;
    x86::pic::set_level_triggered(&PORTS, line);
    Some(line)
}

/// Device `i` as the capability in a driver's slot names it, if it is still that task's.
fn device(k: &Kernel, i: u8) -> Result<&PciDevice, Error> {
    k.pci.get(i as usize).and_then(|d| d.as_ref()).ok_or(Error::Dead)
}

/// A driver's read of dword `offset`, through the guard.
pub fn read(k: &Kernel, i: u8, offset: u8) -> Result<u32, Error> {
    let d = device(k, i)?;
    Ok(d.f.guard.read(offset, config().read(d.f.at, offset)))
}

/// Check a driver's write without doing it: the guard's verdict, for the decode step.
pub fn check_write(k: &Kernel, i: u8, offset: u8, value: u32) -> Result<Write, Error> {
    let d = device(k, i)?;
    let mut guard = d.f.guard;
    match guard.write(offset, value, config().read(d.f.at, offset)) {
        Write::Refused => Err(Error::InvalidArgument),
        w => Ok(w),
    }
}

/// Do a write `check_write` allowed.
pub fn write(k: &mut Kernel, i: u8, offset: u8, value: u32) {
    let Some(d) = k.pci.get_mut(i as usize).and_then(|d| d.as_mut()) else { return };
    let current = config().read(d.f.at, offset);
    if let Write::Device(v) = d.f.guard.write(offset, value, current) {
        config().write(d.f.at, offset, v);
    }
}

/// Memory BAR `bar` of device `i`: its physical address and size, if a driver may map it
/// (page aligned, whole pages, at most 64 MiB).
pub fn bar(k: &Kernel, i: u8, bar: u64) -> Result<(u64, u64), Error> {
    let d = device(k, i)?;
    let b = d.f.bars.get(bar as usize).ok_or(Error::InvalidArgument)?;
    if !b.is_memory() || b.size == 0 {
        return Err(Error::InvalidArgument);
    }
    if !b.base.is_multiple_of(PAGE_SIZE) || !b.size.is_multiple_of(PAGE_SIZE) || b.size > 64 << 20 {
        return Err(Error::InvalidArgument);
    }
    Ok((b.base, b.size))
}

/// Task `t` stopped: every device it drove stops its DMA (bus mastering off) and gets its BARs
/// and command register back as the firmware set them, sizing in progress forgotten; then
/// every DMA region given to `t` is zeroed, so the next incarnation starts from what
/// `dma_alloc` promises and no request data outlives its incarnation. In that order: the
/// device must not write a region after it was scrubbed.
pub fn quiesce(k: &mut Kernel, t: usize) {
    let cfg = config();
    for d in k.pci.iter_mut().flatten().filter(|d| d.owner == Some(t as u16)) {
        d.f.quiesce(&cfg);
    }
    for m in k.memory.iter().filter(|m| m.live) {
        if let Some((base, _)) = m.dma.filter(|&(_, owner)| owner as usize == t) {
            // SAFETY: a DMA region is RAM below 1 GiB (identity mapped), allocated at boot for
            // this task and never freed; its device's bus mastering is off (above), and its
            // task has stopped, so nothing else writes it now.
            unsafe { core::ptr::write_bytes(base as *mut u8, 0, m.pages as usize * PAGE_SIZE as usize) };
        }
    }
}
