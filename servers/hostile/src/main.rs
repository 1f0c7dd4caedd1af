//! A hostile task: thousands of random and malformed syscalls, then a wild write into the kernel.
//!
//! The manifest also gives it a PCI device nobody drives (QEMU's standard VGA, `victim`) and a
//! DMA region, so the driver syscalls get their share: configuration offsets out of range or
//! misaligned, BAR moves and header writes the kernel's guard must refuse, BARs that do not
//! exist or are not memory, mappings at bad addresses, and pointers into a mapped BAR handed
//! to syscalls that copy (the kernel must refuse them, never touch device memory).
//!
//! It draws syscall numbers and arguments from a seeded generator: bad and empty slots, wrong
//! capability types, wild, kernel, non-canonical and read-only pointers, huge lengths, reserved
//! message bits, garbage console requests. For the cases whose correct answer is known it checks
//! the kernel's answer (an out-of-range slot must give `InvalidSlot`, a read-only or kernel
//! buffer `BadAddress`, ...) and counts every surprise. It avoids only what would end its own
//! run early: `exit`, and deleting or moving its own first capabilities. It finishes with a
//! summary line and a store to a kernel address, which must fault (the kernel is mapped
//! supervisor-only) and be reported, not obeyed.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use console_api::println;
use console_api::{ConsoleError, Response};
use userlib::abi::{
    BootInfo, Error, MsgInfo, Sysno, CAP_SLOTS, MAP_BASE, SYSCALL_COUNT, USER_BASE, USER_END,
};
use userlib::cap::{Cap, Endpoint, Memory, Pci};
use userlib::sys;

use algo::rng::Rng;

const ROUNDS: u32 = 20_000;
const SEED: u64 = 0x5eed_a501_07e1_0c5e;

/// A pointer that no syscall may accept for writing.
fn bad_pointer(r: &mut Rng) -> u64 {
    match r.below(6) {
        0 => 0,
        1 => 0x10_0000 + r.below(0x10_0000),           // the kernel image
        2 => 0xffff_8000_0000_0000 | r.next_u64(),     // kernel half / non-canonical
        3 => 0x0000_8000_0000_0000 + r.below(1 << 40), // non-canonical
        4 => USER_BASE + r.below(0x1000),              // our own code: mapped read-only
        _ => 0x7_0000_0000 + r.below(1 << 30) * 8,     // unmapped user space
    }
}

/// A slot number: mostly small, sometimes far out of range.
fn slot(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 => r.next_u64(),
        1 => CAP_SLOTS as u64 + r.below(1000),
        _ => r.below(CAP_SLOTS as u64),
    }
}

/// A slot an operation may destroy or fill: never one of our first five capabilities.
fn disposable_slot(r: &mut Rng) -> u64 {
    6 + r.below(CAP_SLOTS as u64 + 8)
}

/// The slots of the PCI device and the DMA region (the manifest's fourth and fifth lines).
const PCI: u64 = 4;
const DMA: u64 = 5;
/// Where the victim's register BAR is mapped, and the DMA region.
const DEVICE_AT: u64 = MAP_BASE + 0x4000_0000;
const DMA_AT: u64 = MAP_BASE + 0x5000_0000;

/// What the driver syscalls have to aim at, found at start.
#[derive(Clone, Copy, Default)]
struct Hardware {
    /// A memory BAR mapped at `DEVICE_AT`, and its size.
    device: Option<u64>,
    /// The DMA region is mapped at `DMA_AT`.
    dma: bool,
}

/// One random driver syscall.
fn pci_call(r: &mut Rng, t: &mut Tally, hw: Hardware, me: u64) {
    let raw = |nr: Sysno, a: [u64; 6]| sys::raw(nr as u64, a).code;
    match r.below(7) {
        // Offsets past the 256-byte space, or not dword aligned.
        0 => {
            let offset = if r.below(2) == 0 {
                256 + r.below(u64::MAX - 256)
            } else {
                4 * r.below(64) + 1 + r.below(3)
            };
            let nr = if r.below(2) == 0 { Sysno::PciRead } else { Sysno::PciWrite };
            t.expect("pci offset out of range", raw(nr, [PCI, offset, 0, 0, 0, 0]), Error::InvalidArgument);
        }
        // Moving a BAR (anything but sizing or its own value): refused by the guard.
        1 => {
            let bar = 0x10 + 4 * r.below(6);
            let value = (r.next_u64() as u32 & !0xf).min(0xffff_fff0) as u64;
            t.expect(
                "pci BAR move",
                raw(Sysno::PciWrite, [PCI, bar, value, 0, 0, 0]),
                Error::InvalidArgument,
            );
        }
        // Header registers other than the command: read-only to a driver.
        2 => {
            let offset = [0x00, 0x08, 0x0c, 0x28, 0x2c, 0x30, 0x34, 0x38, 0x3c][r.below(9) as usize];
            let code = raw(Sysno::PciWrite, [PCI, offset, r.next_u64() & 0xffff_ffff, 0, 0, 0]);
            t.expect("pci header write", code, Error::InvalidArgument);
        }
        // BARs that do not exist.
        3 => {
            let bar = 6 + r.below(u64::MAX - 6);
            let code = raw(Sysno::PciMap, [PCI, bar, MAP_BASE + 0x6000_0000, 0, 0, 0]);
            t.expect("pci_map of no BAR", code, Error::InvalidArgument);
        }
        // A BAR mapped where it may not go: unaligned, below MAP_BASE, past the user range.
        4 => {
            let vaddr = match r.below(3) {
                0 => MAP_BASE + 1 + r.below(0xfff),
                1 => r.below(MAP_BASE / 4096) * 4096,
                _ => USER_END + r.below(1 << 30) * 4096,
            };
            t.expect(
                "pci_map at a bad address",
                raw(Sysno::PciMap, [PCI, 2, vaddr, 0, 0, 0]),
                Error::BadAddress,
            );
        }
        // A pointer into device memory handed to a syscall that copies: refused, never followed.
        5 => match hw.device {
            Some(size) => {
                let out = DEVICE_AT + r.below(size);
                t.expect(
                    "task_info into device memory",
                    raw(Sysno::TaskInfo, [2, me, out, 0, 0, 0]),
                    Error::BadAddress,
                );
            }
            None => t.record(raw(Sysno::PciRead, [PCI, 0, 0, 0, 0, 0])),
        },
        // The DMA region is RAM: copying into it is fine; mapping it twice is not.
        _ => {
            if hw.dma {
                t.expect_ok("task_info into DMA memory", raw(Sysno::TaskInfo, [2, me, DMA_AT, 0, 0, 0]));
            }
            t.record(raw(Sysno::MemMap, [DMA, DMA_AT + 0x10_0000, 3, 0, 0, 0]));
        }
    }
}

/// Map the victim's register BAR and the DMA region, and check what the kernel says of them.
fn setup_hardware(t: &mut Tally) -> Hardware {
    let mut hw = Hardware::default();
    match Cap::<Pci>::at(PCI as u8).map_bar(2, DEVICE_AT) {
        Ok(w) => {
            println!("hostile: victim's BAR2 mapped: {:#x} bytes at physical {:#x}", w.size, w.phys);
            hw.device = Some(w.size);
        }
        Err(e) => println!("hostile: no victim device to map ({e}); the PCI rounds hit an absent one"),
    }
    match Cap::<Memory>::at(DMA as u8).map(DMA_AT, true) {
        Ok(m) if m.phys != 0 && m.phys % 4096 == 0 => hw.dma = true,
        Ok(m) => {
            t.surprises += 1;
            println!("hostile: SURPRISE: a DMA region at physical {:#x}", m.phys);
        }
        Err(e) => println!("hostile: no DMA region ({e})"),
    }
    hw
}

#[derive(Default)]
struct Tally {
    ok: u32,
    errors: [u32; 16],
    /// Answers that contradict what the kernel must say.
    surprises: u32,
}

impl Tally {
    fn record(&mut self, code: u64) {
        match Error::from_raw(code) {
            None => self.ok += 1,
            Some(e) => self.errors[(e as usize).min(15)] += 1,
        }
    }

    fn expect_ok(&mut self, what: &str, code: u64) {
        self.record(code);
        if code != 0 {
            self.surprises += 1;
            println!("hostile: SURPRISE {}: got code {}, expected success", what, code);
        }
    }

    fn expect(&mut self, what: &str, code: u64, want: Error) {
        self.record(code);
        if Error::from_raw(code) != Some(want) {
            self.surprises += 1;
            println!("hostile: SURPRISE {}: got code {}, expected {:?}", what, code, want);
        }
    }
}

/// One random syscall; `me` is this task's index (its Task capability covers only itself).
fn random_call(r: &mut Rng, t: &mut Tally, me: u64, hw: Hardware) {
    let a = [r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()];
    match r.below(13) {
        // A syscall number that does not exist.
        0 => {
            let nr = SYSCALL_COUNT + r.below(u64::MAX - SYSCALL_COUNT);
            t.expect("invalid syscall number", sys::raw(nr, a).code, Error::InvalidSyscall);
        }
        // Any capability syscall on a slot past the table.
        1 => {
            let nr = r.below(Sysno::Yield as u64);
            let s = CAP_SLOTS as u64 + r.below(u64::MAX - CAP_SLOTS as u64);
            let code = sys::raw(nr, [s, 0, 0, 0, 0, 0]).code;
            t.expect("slot out of range", code, Error::InvalidSlot);
        }
        // task_info into memory we may not write, or asked with a flag that is neither 0 nor 1.
        2 => {
            if r.below(2) == 0 {
                let code = sys::raw(Sysno::TaskInfo as u64, [2, me, bad_pointer(r), 0, 0, 0]).code;
                t.expect("task_info to a bad pointer", code, Error::BadAddress);
            } else {
                let mut out = userlib::abi::TaskInfo::default();
                let at = &mut out as *mut userlib::abi::TaskInfo as u64;
                let flag = 2 + r.below(u64::MAX - 2);
                let code = sys::raw(Sysno::TaskInfo as u64, [2, me, at, flag, 0, 0]).code;
                t.expect("task_info with count_frames neither 0 nor 1", code, Error::InvalidArgument);
            }
        }
        // task_info through a capability of the wrong type.
        3 => {
            let code = sys::raw(Sysno::TaskInfo as u64, [3, 0, bad_pointer(r), 0, 0, 0]).code;
            t.expect("task_info through a memory capability", code, Error::WrongType);
        }
        // IPC to the console with a malformed message-info word or payload.
        4 => {
            let mut info = r.next_u64() & !(0xff << 48);
            if r.below(2) == 0 {
                info = MsgInfo::with_len(r.next_u64() as u32, r.below(5000) as u16).encode();
            }
            let nr = if r.below(2) == 0 { Sysno::Call } else { Sysno::Send };
            t.record(sys::raw(nr as u64, [1, info, a[2], a[3], a[4], a[5]]).code);
        }
        // The console's own label with a payload that cannot decode: the server must say so.
        5 => {
            let mut garbage = [0u8; 64];
            for b in garbage.iter_mut() {
                *b = r.next_u64() as u8;
            }
            // No such request variant: Write, Read and Poll are 0, 1 and 2.
            garbage[0] = 3 + r.below(250) as u8;
            let len = 1 + r.below(64) as usize;
            match Cap::<Endpoint>::at(1).call(console_api::LABEL, [0; 4], &garbage[..len]) {
                Ok(reply) => {
                    t.ok += 1;
                    let mut buf = [0u8; 16];
                    let n = reply.payload_into(&mut buf);
                    if userlib::msg::decode::<Response<'_>>(&buf[..n])
                        != Ok(Response::Error(ConsoleError::Malformed))
                    {
                        t.surprises += 1;
                        println!("hostile: SURPRISE: console accepted a malformed request");
                    }
                }
                Err(e) => t.record(e as u64),
            }
        }
        // Receiving on an endpoint we may only send to.
        6 => t.expect(
            "recv without the read right",
            sys::raw(Sysno::Recv as u64, [1, 0, 0, 0, 0, 0]).code,
            Error::NoRights,
        ),
        // Capability table operations on disposable slots with random rights and badges.
        7 => {
            let nr =
                [Sysno::CapCopy, Sysno::CapDelete, Sysno::CapRevoke, Sysno::CapInfo][r.below(4) as usize];
            let src = if r.below(2) == 0 { slot(r) } else { r.below(4) };
            let args = match nr {
                Sysno::CapDelete => [disposable_slot(r), 0, 0, 0, 0, 0],
                _ => [src, disposable_slot(r), a[2], if r.below(2) == 0 { 0 } else { a[3] }, 0, 0],
            };
            t.record(sys::raw(nr as u64, args).code);
        }
        // mem_map at random addresses and rights, then maybe unmap.
        8 => {
            let vaddr = match r.below(3) {
                0 => r.next_u64(),
                1 => bad_pointer(r),
                _ => 0x1_0000_0000 + r.below(1 << 20) * 4096,
            };
            t.record(sys::raw(Sysno::MemMap as u64, [3, vaddr, r.below(8), 0, 0, 0]).code);
            if r.below(2) == 0 {
                t.record(sys::raw(Sysno::MemUnmap as u64, [3, 0, 0, 0, 0, 0]).code);
            }
        }
        // Task control aimed at others through a capability for ourselves.
        9 => {
            let nr = [Sysno::TaskStart, Sysno::TaskWait, Sysno::TaskInfo][r.below(3) as usize];
            let index = r.below(64);
            t.record(sys::raw(nr as u64, [2, index, bad_pointer(r), 0, 0, 0]).code);
        }
        // Notifications, interrupts and ports we do not hold.
        10 => {
            let nr =
                [Sysno::Signal, Sysno::Wait, Sysno::BindNotification, Sysno::IrqAck, Sysno::IoPortEnable]
                    [r.below(5) as usize];
            let s = r.below(4);
            let code = sys::raw(nr as u64, [s, a[1] | 1, 0, 0, 0, 0]).code;
            let want = if s == 0 { Error::EmptySlot } else { Error::WrongType };
            t.expect("notification/irq/port op on another type", code, want);
        }
        // The driver syscalls.
        11 => pci_call(r, t, hw, me),
        // Replies we do not have.
        _ => {
            let nr = if r.below(2) == 0 { Sysno::SaveReply } else { Sysno::ReplyRecv };
            let code = sys::raw(nr as u64, [disposable_slot(r), 0, 0, 0, 0, 0]).code;
            t.record(code);
        }
    }
}

userlib::entry!(main);

fn main(boot: &'static BootInfo) -> Result<(), Error> {
    println!("hostile: {} random syscalls, seed {:#x}", ROUNDS, SEED);
    let mut rng = Rng(SEED);
    let mut tally = Tally::default();
    let hw = setup_hardware(&mut tally);
    let start = sys::rdtsc();
    for round in 1..=ROUNDS {
        random_call(&mut rng, &mut tally, boot.task_index as u64, hw);
        if round % 5000 == 0 {
            println!("hostile: {} / {} done", round, ROUNDS);
        }
    }
    let spent = sys::rdtsc() - start;
    let failed: u32 = tally.errors.iter().sum();
    println!(
        "hostile: done: {} syscalls, {} accepted, {} refused, {} surprises, {} TSC ticks",
        ROUNDS, tally.ok, failed, tally.surprises, spent
    );
    for (code, n) in tally.errors.iter().enumerate().filter(|(_, n)| **n > 0) {
        if let Some(e) = Error::from_raw(code as u64) {
            println!("hostile:   {:>6} x {:?}", n, e);
        }
    }
    println!("hostile: now storing to kernel memory at 0x100000; the kernel must stop me");
    wild_store(core::hint::black_box(0x10_0000));
    println!("hostile: SURPRISE: the store to kernel memory went through");
    Err(Error::InvalidArgument)
}

/// The deliberate wild store, out of line so the fault report names it.
#[inline(never)]
#[allow(unsafe_code)]
fn wild_store(addr: usize) {
    // SAFETY: none, on purpose: `addr` is kernel memory, mapped supervisor-only, so the CPU
    // refuses the store with a page fault and the kernel stops this task before it returns.
    unsafe { core::ptr::write_volatile(addr as *mut u64, 0xbad_c0de) };
}
