//! PCI configuration space through the PC's configuration mechanism #1 (ports 0xCF8/0xCFC):
//! finding functions, reading their Base Address Registers, and the guard a kernel puts
//! between a user-space driver and its function's configuration space.
//!
//! ```text
//!  0xCF8 ◄─ 1 | bus(8) | device(5) | function(3) | register(8, dword aligned)
//!  0xCFC ◄─► the addressed dword
//!
//!  header type 0, the part this module reads:
//!   0x00 vendor | device        0x04 command | status      0x08 revision | class
//!   0x0C cache line | latency | header type | BIST
//!   0x10..0x27 BAR0..BAR5       0x2C subsystem              0x34 capabilities pointer
//!   0x3C interrupt line | interrupt pin | min grant | max latency
//! ```
//!
//! Enumeration sizes every BAR once, at boot, with decoding off (writing all ones and reading
//! back the mask), so a driver never has to: [`Guard`] answers a driver's own sizing from the
//! recorded masks without touching the device, and refuses any other BAR value. A driver killed
//! half-way through sizing therefore leaves the device as it was.

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Register offsets of the type-0 header.
pub mod reg {
    pub const ID: u8 = 0x00;
    pub const COMMAND: u8 = 0x04;
    pub const CLASS: u8 = 0x08;
    pub const HEADER: u8 = 0x0c;
    pub const BAR0: u8 = 0x10;
    /// Of a bridge (header type 1): primary, secondary and subordinate bus numbers.
    pub const BUSES: u8 = 0x18;
    pub const ROM: u8 = 0x30;
    pub const INTERRUPT: u8 = 0x3c;
    /// Where the header ends and the device-specific part (capabilities) begins.
    pub const DEVICE_SPECIFIC: u8 = 0x40;
}

/// Bits of the command register.
pub mod command {
    pub const IO_SPACE: u16 = 1 << 0;
    pub const MEMORY_SPACE: u16 = 1 << 1;
    pub const BUS_MASTER: u16 = 1 << 2;
    pub const INTX_DISABLE: u16 = 1 << 10;
    /// The bits a driver may change: decoding, DMA, its interrupt.
    pub const DRIVER_BITS: u16 = IO_SPACE | MEMORY_SPACE | BUS_MASTER | INTX_DISABLE;
}

/// 32-bit port access, which configuration space needs (a dword at a time).
pub trait PortIo32 {
    fn inl(&self, port: u16) -> u32;
    fn outl(&self, port: u16, value: u32);
}

impl PortIo32 for crate::port::Direct {
    #[inline]
    fn inl(&self, port: u16) -> u32 {
        let v: u32;
        // SAFETY: `Direct::new`'s contract: this code may read the port; `in` touches no memory.
        unsafe {
            core::arch::asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags))
        }
        v
    }

    #[inline]
    fn outl(&self, port: u16, value: u32) {
        // SAFETY: `Direct::new`'s contract: this code may write the port; `out` touches no memory.
        unsafe {
            core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
        }
    }
}

/// Where a function sits on the bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl Location {
    fn address(self, offset: u8) -> u32 {
        1 << 31
            | (self.bus as u32) << 16
            | (self.device as u32 & 31) << 11
            | (self.function as u32 & 7) << 8
            | (offset & 0xfc) as u32
    }
}

impl core::fmt::Display for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Dword access to configuration space.
pub trait ConfigSpace {
    fn read(&self, at: Location, offset: u8) -> u32;
    fn write(&self, at: Location, offset: u8, value: u32);
}

/// Configuration mechanism #1 over ports 0xCF8/0xCFC. The two accesses of one read or write
/// must not interleave with another CPU's: the caller serialises them (one kernel lock).
pub struct Ports<'a, P: PortIo32>(pub &'a P);

impl<P: PortIo32> ConfigSpace for Ports<'_, P> {
    fn read(&self, at: Location, offset: u8) -> u32 {
        self.0.outl(CONFIG_ADDRESS, at.address(offset));
        self.0.inl(CONFIG_DATA)
    }

    fn write(&self, at: Location, offset: u8, value: u32) {
        self.0.outl(CONFIG_ADDRESS, at.address(offset));
        self.0.outl(CONFIG_DATA, value);
    }
}

/// What a Base Address Register decodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BarKind {
    /// Unimplemented, or the upper half of a 64-bit BAR.
    #[default]
    None,
    Io,
    Memory32,
    Memory64,
}

/// One BAR as found at boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bar {
    pub kind: BarKind,
    pub base: u64,
    pub size: u64,
    pub prefetchable: bool,
}

impl Bar {
    pub fn is_memory(&self) -> bool {
        matches!(self.kind, BarKind::Memory32 | BarKind::Memory64)
    }
}

/// A type-0 function as enumeration found it: its identity, BARs and interrupt line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Function {
    pub at: Location,
    pub vendor: u16,
    pub device: u16,
    /// Class, subclass and programming interface.
    pub class: [u8; 3],
    pub bars: [Bar; 6],
    /// The legacy interrupt line the firmware routed the function's pin to (0xff: none).
    pub irq_line: u8,
    /// Interrupt pin, 1 = INTA# … 4 = INTD#; 0: the function raises no legacy interrupt.
    pub irq_pin: u8,
    /// The command register as the firmware left it.
    pub command: u16,
    /// The raw BAR registers and what each reads after all ones were written to it.
    pub guard: Guard,
}

impl Function {
    /// The legacy interrupt line the 8259 can deliver for it: a pin is wired, and the firmware
    /// routed it to a line other than the timer (0), the cascade (2) and the RTC (8).
    pub fn legacy_line(&self) -> Option<u8> {
        let line = self.irq_line;
        (self.irq_pin != 0 && (3..16).contains(&line) && line != 8).then_some(line)
    }

    /// Make the device harmless after its driver stopped: bus mastering off first (no more
    /// DMA), then the BARs and the command register as the firmware left them (bus mastering
    /// still off), and any BAR sizing in progress forgotten.
    pub fn quiesce(&mut self, cfg: &impl ConfigSpace) {
        let cmd = cfg.read(self.at, reg::COMMAND) as u16;
        cfg.write(self.at, reg::COMMAND, (cmd & !command::BUS_MASTER) as u32);
        for (n, raw) in self.guard.raw.iter().enumerate() {
            cfg.write(self.at, reg::BAR0 + 4 * n as u8, *raw);
        }
        cfg.write(self.at, reg::COMMAND, (self.command & !command::BUS_MASTER) as u32);
        self.guard.reset();
    }
}

/// The line a kernel logs for each function it found:
/// `00:04.0 1af4:1001 class 01.00 irq 11 bar0 io 0xc000+0x80 bar4 mem 0xfe000000+0x4000`.
impl core::fmt::Display for Function {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {:04x}:{:04x} class {:02x}.{:02x} irq {}",
            self.at, self.vendor, self.device, self.class[0], self.class[1], self.irq_line
        )?;
        for (i, b) in self.bars.iter().enumerate().filter(|(_, b)| b.size > 0) {
            let kind = if b.is_memory() { "mem" } else { "io" };
            write!(f, " bar{i} {kind} {:#x}+{:#x}", b.base, b.size)?;
        }
        Ok(())
    }
}

/// Find every type-0 function, calling `found` for each (bridges are skipped: no driver is
/// given one). Buses are walked as the hardware links them, not all 256 probed: bus 0 and the
/// bus of each further host bridge (a function of 00:00.0), then the secondary bus of each
/// PCI-to-PCI bridge found; each bus at most once. Every BAR is sized on the way, with the function's
/// decoding off.
pub fn enumerate(cfg: &impl ConfigSpace, mut found: impl FnMut(Function)) {
    let mut seen = [0u64; 4];
    let mut pending: [u8; 256] = [0; 256];
    // Bus 0 always; more host bridges (functions of 00:00.0) each bring the bus of their number.
    let mut queued = 1;
    let host = Location::default();
    if cfg.read(host, reg::ID) as u16 != 0xffff && cfg.read(host, reg::HEADER) >> 16 & 0x80 != 0 {
        for function in 1..8 {
            if cfg.read(Location { function, ..host }, reg::ID) as u16 != 0xffff {
                pending[queued] = function;
                queued += 1;
            }
        }
    }
    let mut next = 0;
    while next < queued {
        let bus = pending[next];
        next += 1;
        if seen[bus as usize / 64] & 1 << (bus % 64) != 0 {
            continue;
        }
        seen[bus as usize / 64] |= 1 << (bus % 64);
        for device in 0..32u8 {
            let first = Location { bus, device, function: 0 };
            if cfg.read(first, reg::ID) as u16 == 0xffff {
                continue;
            }
            let multi = cfg.read(first, reg::HEADER) >> 16 & 0x80 != 0;
            for function in 0..if multi { 8 } else { 1 } {
                let at = Location { bus, device, function };
                if cfg.read(at, reg::ID) as u16 == 0xffff {
                    continue;
                }
                // A PCI-to-PCI bridge (header type 1): its secondary bus comes next.
                if cfg.read(at, reg::HEADER) >> 16 & 0x7f == 1 && queued < pending.len() {
                    pending[queued] = (cfg.read(at, reg::BUSES) >> 8) as u8;
                    queued += 1;
                } else if let Some(f) = probe(cfg, at) {
                    found(f);
                }
            }
        }
    }
}

/// Read one function; `None` if absent or not a type-0 (endpoint) function.
pub fn probe(cfg: &impl ConfigSpace, at: Location) -> Option<Function> {
    let id = cfg.read(at, reg::ID);
    if id as u16 == 0xffff || cfg.read(at, reg::HEADER) >> 16 & 0x7f != 0 {
        return None;
    }
    let class = cfg.read(at, reg::CLASS);
    let interrupt = cfg.read(at, reg::INTERRUPT);
    let status_command = cfg.read(at, reg::COMMAND);
    let command = status_command as u16;
    // Decoding off while a BAR holds all ones, so it never answers at a bogus address.
    let quiet = command & !(command::IO_SPACE | command::MEMORY_SPACE);
    cfg.write(at, reg::COMMAND, quiet as u32);
    let mut guard = Guard::default();
    for i in 0..6 {
        let off = reg::BAR0 + 4 * i as u8;
        guard.raw[i] = cfg.read(at, off);
        cfg.write(at, off, u32::MAX);
        guard.masks[i] = cfg.read(at, off);
        cfg.write(at, off, guard.raw[i]);
    }
    cfg.write(at, reg::COMMAND, command as u32);
    Some(Function {
        at,
        vendor: id as u16,
        device: (id >> 16) as u16,
        class: [(class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8],
        bars: guard.decode(),
        irq_line: interrupt as u8,
        irq_pin: (interrupt >> 8) as u8,
        command,
        guard,
    })
}

/// A function's BAR registers as recorded at boot, and a driver's BAR sizing in progress.
/// The kernel routes a driver's configuration accesses through it: BAR writes never reach the
/// device (only sizing, all ones, and putting back the recorded value are accepted), the header
/// is read-only but for the command bits a driver needs, and the device-specific part (from
/// 0x40: capabilities) passes through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guard {
    pub raw: [u32; 6],
    pub masks: [u32; 6],
    /// BARs the driver wrote all ones to and has not yet put back.
    sizing: u8,
}

/// What a driver's configuration write becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Write this value to the device.
    Device(u32),
    /// Taken by the guard (BAR sizing); nothing reaches the device.
    Absorbed,
    /// Not allowed: the driver gets an error, nothing changes.
    Refused,
}

impl Guard {
    /// The BARs the raw registers and masks describe.
    pub fn decode(&self) -> [Bar; 6] {
        let mut bars = [Bar::default(); 6];
        let mut i = 0;
        while i < 6 {
            let (raw, mask) = (self.raw[i], self.masks[i]);
            if mask == 0 {
                i += 1;
                continue;
            }
            if raw & 1 == 1 {
                let size = (!(mask & !0x3)).wrapping_add(1) & 0xffff;
                bars[i] =
                    Bar { kind: BarKind::Io, base: (raw & !0x3) as u64, size: size as u64, ..Bar::default() };
                i += 1;
                continue;
            }
            let prefetchable = raw & 0x8 != 0;
            if raw & 0x6 == 0x4 && i < 5 {
                let mask64 = (self.masks[i + 1] as u64) << 32 | (mask & !0xf) as u64;
                let base = (self.raw[i + 1] as u64) << 32 | (raw & !0xf) as u64;
                bars[i] =
                    Bar { kind: BarKind::Memory64, base, size: (!mask64).wrapping_add(1), prefetchable };
                i += 2;
            } else {
                let size = (!(mask & !0xf)).wrapping_add(1);
                bars[i] = Bar {
                    kind: BarKind::Memory32,
                    base: (raw & !0xf) as u64,
                    size: size as u64,
                    prefetchable,
                };
                i += 1;
            }
        }
        bars
    }

    fn bar_index(offset: u8) -> Option<usize> {
        (reg::BAR0..reg::BAR0 + 24).contains(&offset).then(|| ((offset - reg::BAR0) / 4) as usize)
    }

    /// A driver reads dword `offset`: the device's value (`device`), or, for a BAR being
    /// sized, its recorded mask.
    pub fn read(&self, offset: u8, device: u32) -> u32 {
        match Self::bar_index(offset) {
            Some(i) if self.sizing & 1 << i != 0 => self.masks[i],
            Some(i) => self.raw[i],
            None => device,
        }
    }

    /// A driver writes `value` to dword `offset`, which reads `current` on the device now.
    pub fn write(&mut self, offset: u8, value: u32, current: u32) -> Write {
        if let Some(i) = Self::bar_index(offset) {
            return if value == u32::MAX {
                self.sizing |= 1 << i;
                Write::Absorbed
            } else if value == self.raw[i] {
                self.sizing &= !(1 << i);
                Write::Absorbed
            } else {
                Write::Refused
            };
        }
        match offset {
            reg::COMMAND => {
                // The command bits a driver needs; the status half is write-one-to-clear.
                let cmd = (current as u16 & !command::DRIVER_BITS) | (value as u16 & command::DRIVER_BITS);
                Write::Device((value & 0xffff_0000) | cmd as u32)
            }
            o if o >= reg::DEVICE_SPECIFIC => Write::Device(value),
            _ => Write::Refused,
        }
    }

    /// Forget a sizing in progress (the driver stopped).
    pub fn reset(&mut self) {
        self.sizing = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::vec::Vec;

    /// One function at 00:04.0 with a 16 KiB 64-bit prefetchable memory BAR at BAR4/5 (as
    /// QEMU's virtio-blk has), an I/O BAR0 of 128 ports, and nothing else.
    struct Fake {
        regs: RefCell<[u32; 64]>,
        sizes: [u32; 6],
        writes: RefCell<Vec<(u8, u32)>>,
    }

    const AT: Location = Location { bus: 0, device: 4, function: 0 };

    impl Fake {
        fn new() -> Fake {
            let mut regs = [0u32; 64];
            regs[0] = 0x1001_1af4;
            regs[1] = 0x0010_0007;
            regs[2] = 0x0100_0000;
            regs[4] = 0xc041; // I/O BAR0 at 0xc040
            regs[8] = 0xfebf_000c; // 64-bit prefetchable at 0x0000_0008_febf_0000 (BAR4/5)
            regs[9] = 0x8;
            regs[15] = 0x010b; // pin INTA, line 11
            Fake {
                regs: RefCell::new(regs),
                sizes: [!(128 - 1) | 1, 0, 0, 0, !(16384 - 1) | 0xc, u32::MAX],
                writes: RefCell::new(Vec::new()),
            }
        }
    }

    impl ConfigSpace for Fake {
        fn read(&self, at: Location, offset: u8) -> u32 {
            if at != AT {
                return u32::MAX;
            }
            self.regs.borrow()[offset as usize / 4]
        }

        fn write(&self, at: Location, offset: u8, value: u32) {
            assert_eq!(at, AT);
            self.writes.borrow_mut().push((offset, value));
            let i = offset as usize / 4;
            let stored = match Guard::bar_index(offset) {
                // A BAR keeps only the bits its size lets it decode.
                Some(b) if value == u32::MAX => self.sizes[b],
                _ => value,
            };
            self.regs.borrow_mut()[i] = stored;
        }
    }

    #[test]
    fn enumeration_finds_the_function_and_sizes_its_bars_with_decoding_off() {
        let fake = Fake::new();
        let mut found = Vec::new();
        enumerate(&fake, |f| found.push(f));
        assert_eq!(found.len(), 1);
        let f = found[0];
        assert_eq!((f.vendor, f.device, f.at), (0x1af4, 0x1001, AT));
        assert_eq!((f.irq_line, f.irq_pin), (11, 1));
        assert_eq!(f.bars[0], Bar { kind: BarKind::Io, base: 0xc040, size: 128, prefetchable: false });
        assert_eq!(
            f.bars[4],
            Bar { kind: BarKind::Memory64, base: 0x8_febf_0000, size: 16384, prefetchable: true }
        );
        assert_eq!(f.bars[5].kind, BarKind::None, "the upper half of a 64-bit BAR is not a BAR");
        assert_eq!(f.bars[1].kind, BarKind::None);
        // Every BAR register is back as it was, and decoding is back on.
        let regs = fake.regs.borrow();
        assert_eq!((regs[4], regs[8], regs[9], regs[1] & 0xffff), (0xc041, 0xfebf_000c, 0x8, 0x7));
        // Decoding was off before the first all-ones write.
        let w = fake.writes.borrow();
        let first_ones = w.iter().position(|&(_, v)| v == u32::MAX).unwrap();
        assert!(w[..first_ones].iter().any(|&(o, v)| o == reg::COMMAND && v & 3 == 0));
    }

    #[test]
    fn enumeration_walks_only_the_buses_the_hardware_links() {
        // The host bridge (00:00.0, single function) and one function on bus 0: 32 devices
        // probed on one bus, not 8,192 on 256.
        struct Counting(Fake, core::cell::Cell<usize>);
        impl ConfigSpace for Counting {
            fn read(&self, at: Location, offset: u8) -> u32 {
                self.1.set(self.1.get() + 1);
                if at == Location::default() {
                    return if offset == reg::ID { 0x1237_8086 } else { 0 };
                }
                self.0.read(at, offset)
            }
            fn write(&self, at: Location, offset: u8, value: u32) {
                if at != Location::default() {
                    self.0.write(at, offset, value)
                }
            }
        }
        let c = Counting(Fake::new(), core::cell::Cell::new(0));
        let mut found = Vec::new();
        enumerate(&c, |f| found.push(f.at));
        assert_eq!(found, [Location::default(), AT]);
        assert!(c.1.get() < 200, "{} configuration reads", c.1.get());
    }

    #[test]
    fn enumeration_follows_a_bridge_to_its_secondary_bus() {
        // 00:00.0 host bridge, 00:01.0 a PCI-to-PCI bridge to bus 2, 02:03.0 an endpoint.
        struct Tree;
        impl ConfigSpace for Tree {
            fn read(&self, at: Location, offset: u8) -> u32 {
                let (b, d, f) = (at.bus, at.device, at.function);
                match ((b, d, f), offset) {
                    ((0, 0, 0), reg::ID) => 0x1237_8086,
                    ((0, 1, 0), reg::ID) => 0x0001_1b36,
                    ((0, 1, 0), reg::HEADER) => 0x0001_0000,
                    ((0, 1, 0), reg::BUSES) => 0x0002_0200,
                    ((2, 3, 0), reg::ID) => 0x1042_1af4,
                    ((0, 0, 0) | (2, 3, 0), _) => 0,
                    _ => u32::MAX,
                }
            }
            fn write(&self, _: Location, _: u8, _: u32) {}
        }
        let mut found = Vec::new();
        enumerate(&Tree, |f| found.push((f.at, f.device)));
        let at = |bus, device| Location { bus, device, function: 0 };
        assert_eq!(found, [(at(0, 0), 0x1237), (at(2, 3), 0x1042)], "the bridge itself is not handed out");
    }

    #[test]
    fn a_drivers_bar_sizing_is_answered_by_the_guard_without_touching_the_device() {
        let f = probe(&Fake::new(), AT).unwrap();
        let mut g = f.guard;
        // Sizing BAR4 the way a driver does: all ones, read, put back.
        assert_eq!(g.read(0x20, 0), 0xfebf_000c);
        assert_eq!(g.write(0x20, u32::MAX, 0), Write::Absorbed);
        assert_eq!(g.read(0x20, 0xdead), !(16384 - 1) | 0xc);
        assert_eq!(g.write(0x20, 0xfebf_000c, 0), Write::Absorbed);
        assert_eq!(g.read(0x20, 0xdead), 0xfebf_000c);
        // Moving a BAR (say onto RAM) is refused.
        assert_eq!(g.write(0x20, 0x0010_0000, 0), Write::Refused);
        assert_eq!(g.read(0x20, 0), 0xfebf_000c);
        // A driver stopped mid-sizing: the next one reads the real value again.
        g.write(0x24, u32::MAX, 0);
        g.reset();
        assert_eq!(g.read(0x24, 0), 0x8);
    }

    #[test]
    fn the_guard_passes_only_the_command_bits_a_driver_needs_and_the_device_specific_part() {
        let mut g = probe(&Fake::new(), AT).unwrap().guard;
        // Bus master on; an attempt to set SERR# (bit 8) is dropped; status half passed.
        assert_eq!(g.write(reg::COMMAND, 0xffff_0107, 0x0010_0003), Write::Device(0xffff_0007));
        assert_eq!(g.write(reg::INTERRUPT, 5, 0x10b), Write::Refused, "the interrupt line is the kernel's");
        assert_eq!(g.write(reg::ID, 0, 0), Write::Refused);
        assert_eq!(g.write(reg::ROM, u32::MAX, 0), Write::Refused);
        assert_eq!(g.write(0x40, 0x1234, 0), Write::Device(0x1234));
        assert_eq!(g.write(0xfc, 1, 0), Write::Device(1));
    }

    #[test]
    fn a_stopped_drivers_device_loses_bus_mastering_first_and_gets_its_bars_back() {
        let fake = Fake::new();
        let mut f = probe(&fake, AT).unwrap();
        assert_eq!(f.legacy_line(), Some(11));
        // A driver turned bus mastering on, and was killed half-way through sizing BAR4.
        fake.write(AT, reg::COMMAND, 0x0007);
        f.guard.write(0x20, u32::MAX, 0);
        fake.write(AT, 0x20, u32::MAX);
        fake.writes.borrow_mut().clear();
        f.quiesce(&fake);
        let w = fake.writes.borrow();
        assert_eq!(w[0], (reg::COMMAND, 0x0003), "bus mastering off before anything else");
        let regs = fake.regs.borrow();
        assert_eq!((regs[8], regs[9], regs[1] & 0xffff), (0xfebf_000c, 0x8, 0x0003));
        assert_eq!(f.guard.read(0x20, 0), 0xfebf_000c, "the sizing is forgotten");
    }

    #[test]
    fn the_log_line_names_the_function_and_its_bars() {
        let f = probe(&Fake::new(), AT).unwrap();
        assert_eq!(
            std::format!("{f}"),
            "00:04.0 1af4:1001 class 01.00 irq 11 bar0 io 0xc040+0x80 bar4 mem 0x8febf0000+0x4000"
        );
    }

    #[test]
    fn config_addresses_follow_mechanism_one() {
        let at = Location { bus: 1, device: 31, function: 7 };
        assert_eq!(at.address(0x3e), 0x8001_ff3c);
        assert_eq!(std::format!("{at}"), "01:1f.7");
    }
}
