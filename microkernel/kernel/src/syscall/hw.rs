//! The syscalls that give a driver its hardware: `irq_ack`, `ioport_enable`, `mem_map` and
//! `mem_unmap`, and for a PCI device (see `pci`) `pci_read`, `pci_write` and `pci_map`.

use super::{memory, Args, Syscall};
use crate::paging;
use crate::sched::Done;
use crate::state::Kernel;
use axolotl_abi::{CapType, Error, Rights, MAP_BASE, PAGE_SIZE, USER_END};
use axolotl_kcore::cap::Object;

/// `irq_ack(irq)`: the driver handled its interrupt; unmask the line again.
pub struct IrqAck(u8);

impl Syscall for IrqAck {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        match k.cspaces[cur].lookup(a[0], CapType::Interrupt, Rights::NONE)?.object {
            Object::Interrupt(line) => Ok(IrqAck(line)),
            _ => Err(Error::WrongType),
        }
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        k.open_line(self.0);
        Ok(Done::Value(0, 0))
    }
}

/// `ioport_enable(ioport)`: open the capability's ports to this task's `in` and `out`.
pub struct IoPortEnable {
    base: u16,
    len: u16,
}

impl Syscall for IoPortEnable {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let (base, len) = match k.cspaces[cur].lookup(a[0], CapType::IoPort, Rights::NONE)?.object {
            Object::IoPort { base, len } => (base, len),
            _ => return Err(Error::WrongType),
        };
        let t = &k.tasks[cur];
        if t.io_ranges[..t.io_count].contains(&(base, len)) {
            return Err(Error::AlreadyDone);
        }
        if t.io_count == t.io_ranges.len() {
            return Err(Error::OutOfResources);
        }
        Ok(IoPortEnable { base, len })
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let t = &mut k.tasks[cur];
        t.io_ranges[t.io_count] = (self.base, self.len);
        t.io_count += 1;
        // The task is running: open the ports in this CPU's bitmap now.
        crate::arch::gdt::set_io_ports(self.base, self.len, true);
        crate::arch::cpu::this().set_io_owner(cur);
        Ok(Done::Value(0, 0))
    }
}

/// `mem_map(mem, vaddr, rights)`: map a memory object into this task.
pub struct MemMap {
    m: usize,
    vaddr: u64,
    pages: u64,
    flags: u64,
}

impl Syscall for MemMap {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let rights = Rights::from_bits_truncate(a[2]);
        let m = memory(k, cur, a[0], rights.union(Rights::READ))?;
        let vaddr = a[1];
        let pages = k.memory[m].pages as u64;
        window(vaddr, pages)?;
        if k.memory[m].mapped.is_some() {
            return Err(Error::AlreadyDone);
        }
        unmapped(k, cur, vaddr, pages)?;
        let flags = paging::NX | if rights.contains(Rights::WRITE) { paging::W } else { 0 };
        Ok(MemMap { m, vaddr, pages, flags })
    }

    /// Mapping may still find the frames for page tables exhausted (see `map_run`).
    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let m = self.m;
        map_run(k, cur, self.vaddr, self.pages, self.flags, |k, p| crate::object::memory_page(k, m, p))?;
        k.memory[self.m].mapped = Some((cur as u16, self.vaddr));
        let phys = k.memory[self.m].dma.map_or(0, |(base, _)| base);
        Ok(Done::Value(self.pages, phys))
    }
}

/// `mem_unmap(mem)`: unmap a memory object this task has mapped.
pub struct MemUnmap {
    m: usize,
    vaddr: u64,
}

impl Syscall for MemUnmap {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let m = memory(k, cur, a[0], Rights::NONE)?;
        match k.memory[m].mapped {
            Some((t, vaddr)) if t as usize == cur => Ok(MemUnmap { m, vaddr }),
            _ => Err(Error::InvalidArgument),
        }
    }

    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let pages = k.memory[self.m].pages as u64;
        k.memory[self.m].mapped = None;
        crate::object::unmap_pages(k, cur, self.vaddr, pages);
        Ok(Done::Value(0, 0))
    }
}

/// The device index a Pci capability names, with `rights`.
fn pci(k: &Kernel, cur: usize, slot: u64, rights: Rights) -> Result<u8, Error> {
    match k.cspaces[cur].lookup(slot, CapType::Pci, rights)?.object {
        Object::Pci(i) => Ok(i),
        _ => Err(Error::WrongType),
    }
}

/// A configuration-space offset: a dword of the 256-byte space.
fn config_offset(raw: u64) -> Result<u8, Error> {
    u8::try_from(raw).ok().filter(|o| o % 4 == 0).ok_or(Error::InvalidArgument)
}

/// `pci_read(pci, offset)`: a dword of the function's configuration space.
pub struct PciRead(u8, u8);

impl Syscall for PciRead {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        Ok(PciRead(pci(k, cur, a[0], Rights::READ)?, config_offset(a[1])?))
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        Ok(Done::Value(crate::pci::read(k, self.0, self.1)? as u64, 0))
    }
}

/// `pci_write(pci, offset, value)`: a dword written through the guard.
pub struct PciWrite {
    dev: u8,
    offset: u8,
    value: u32,
}

impl Syscall for PciWrite {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let dev = pci(k, cur, a[0], Rights::WRITE)?;
        let offset = config_offset(a[1])?;
        let value = u32::try_from(a[2]).map_err(|_| Error::InvalidArgument)?;
        crate::pci::check_write(k, dev, offset, value)?;
        Ok(PciWrite { dev, offset, value })
    }

    fn invoke(self, k: &mut Kernel, _cur: usize) -> Result<Done, Error> {
        crate::pci::write(k, self.dev, self.offset, self.value);
        Ok(Done::Value(0, 0))
    }
}

/// `pci_map(pci, bar, vaddr)`: a memory BAR, uncached, at `vaddr`.
pub struct PciMap {
    base: u64,
    size: u64,
    vaddr: u64,
}

impl Syscall for PciMap {
    fn decode(k: &Kernel, cur: usize, a: &Args) -> Result<Self, Error> {
        let dev = pci(k, cur, a[0], Rights::READ)?;
        let (base, size) = crate::pci::bar(k, dev, a[1])?;
        let vaddr = a[2];
        window(vaddr, size / PAGE_SIZE)?;
        unmapped(k, cur, vaddr, size / PAGE_SIZE)?;
        Ok(PciMap { base, size, vaddr })
    }

    /// Page tables may run out part-way (see `map_run`).
    fn invoke(self, k: &mut Kernel, cur: usize) -> Result<Done, Error> {
        let base = self.base;
        map_run(k, cur, self.vaddr, self.size / PAGE_SIZE, paging::DEVICE_FLAGS, |_, p| {
            base + p * PAGE_SIZE
        })?;
        Ok(Done::Value(self.size, self.base))
    }
}

/// `pages` pages from `vaddr` are a place a task may map something: page aligned, at or above
/// `MAP_BASE`, inside user space.
fn window(vaddr: u64, pages: u64) -> Result<(), Error> {
    let end = pages.checked_mul(PAGE_SIZE).and_then(|len| vaddr.checked_add(len)).ok_or(Error::BadAddress)?;
    if !vaddr.is_multiple_of(PAGE_SIZE) || vaddr < MAP_BASE || end > USER_END {
        return Err(Error::BadAddress);
    }
    Ok(())
}

/// None of those pages is mapped in task `cur` yet.
fn unmapped(k: &Kernel, cur: usize, vaddr: u64, pages: u64) -> Result<(), Error> {
    let space = k.tasks[cur].space();
    if (0..pages).any(|p| space.is_mapped(vaddr + p * PAGE_SIZE)) {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// Map `pages` pages at `vaddr` in task `cur`, page `p` to frame `phys(k, p)`, with `flags`.
/// Page tables may run out part-way: then what was mapped is unmapped again and the task sees
/// `OutOfResources`.
fn map_run(
    k: &mut Kernel,
    cur: usize,
    vaddr: u64,
    pages: u64,
    flags: u64,
    phys: impl Fn(&Kernel, u64) -> u64,
) -> Result<(), Error> {
    for p in 0..pages {
        let frame = phys(k, p);
        if let Err(e) = k.tasks[cur].space().map(&mut k.frames, vaddr + p * PAGE_SIZE, frame, flags) {
            crate::object::unmap_pages(k, cur, vaddr, p);
            return Err(e);
        }
    }
    Ok(())
}
