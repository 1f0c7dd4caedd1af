//! The GDT, and the TSS with its I/O permission bitmap.
//!
//! Layout (the order `syscall` requires: kernel data right after kernel code):
//!
//! ```text
//!  0x00 null   0x08 kernel code   0x10 kernel data   0x18 user data   0x20 user code   0x28 TSS
//! ```
//!
//! The TSS holds `rsp0`, where the CPU pushes the interrupt frame when user code is interrupted:
//! the kernel points it at the end of the running task's saved-register area, so an interrupt
//! saves user state straight into the task's control block. IST1 is the double-fault stack.
//! The I/O bitmap gives ring 3 direct `in`/`out` access to the port ranges the running task has
//! enabled through its I/O-port capabilities; every other port traps with #GP.

use core::cell::UnsafeCell;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lgdt, load_tss};
use x86_64::structures::gdt::SegmentSelector;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;
pub const USER_DS: u16 = 0x18 | 3;
pub const USER_CS: u16 = 0x20 | 3;
const TSS_SEL: u16 = 0x28;

const IOMAP_BYTES: usize = 8192;

#[repr(C, packed(4))]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
    /// One bit per port, set = denied; the CPU reads one byte past the end, which must be 0xff.
    iomap: [u8; IOMAP_BYTES + 1],
}

struct Tables {
    gdt: [u64; 7],
    tss: Tss,
}

/// The descriptor tables of the (only) CPU.
struct TablesCell(UnsafeCell<Tables>);

// SAFETY: the tables are written during single-threaded boot and afterwards only by their own
// CPU with interrupts disabled (rsp0 and the I/O bitmap on a task switch).
unsafe impl Sync for TablesCell {}

static TABLES: TablesCell = TablesCell(UnsafeCell::new(Tables {
    gdt: [0, 0x00af9a000000ffff, 0x00cf92000000ffff, 0x00cff2000000ffff, 0x00affa000000ffff, 0, 0],
    tss: Tss {
        _reserved0: 0,
        rsp: [0; 3],
        _reserved1: 0,
        ist: [0; 7],
        _reserved2: 0,
        _reserved3: 0,
        iomap_base: 104,
        iomap: [0xff; IOMAP_BYTES + 1],
    },
}));

fn tables() -> *mut Tables {
    TABLES.0.get()
}

/// Load the GDT and TSS; `df_stack_top` becomes IST1.
pub fn init(df_stack_top: u64) {
    // SAFETY: boot is single-threaded and nothing else references TABLES yet.
    let t = unsafe { &mut *tables() };
    t.tss.ist[0] = df_stack_top;
    let base = core::ptr::addr_of!(t.tss) as u64;
    let limit = (core::mem::size_of::<Tss>() - 1) as u64;
    // 64-bit available TSS descriptor: type 0x9, present, DPL 0.
    t.gdt[5] = (limit & 0xffff)
        | (base & 0xff_ffff) << 16
        | 0x89 << 40
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56;
    t.gdt[6] = base >> 32;
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of_val(&t.gdt) - 1) as u16,
        base: VirtAddr::new(t.gdt.as_ptr() as u64),
    };
    // SAFETY: the GDT is static and its descriptors match the selectors used below and by the
    // boot code; reloading CS/DS/ES/SS with them keeps the current segments equivalent.
    unsafe {
        lgdt(&ptr);
        CS::set_reg(SegmentSelector::new(KERNEL_CS >> 3, PrivilegeLevel::Ring0));
        DS::set_reg(SegmentSelector::new(KERNEL_DS >> 3, PrivilegeLevel::Ring0));
        ES::set_reg(SegmentSelector::new(KERNEL_DS >> 3, PrivilegeLevel::Ring0));
        SS::set_reg(SegmentSelector::new(KERNEL_DS >> 3, PrivilegeLevel::Ring0));
        load_tss(SegmentSelector::new(TSS_SEL >> 3, PrivilegeLevel::Ring0));
    }
}

/// Where the CPU saves user state on the next interrupt from ring 3.
pub fn set_rsp0(top: u64) {
    // SAFETY: only this CPU writes its TSS, with interrupts disabled; the field is plain data.
    unsafe { core::ptr::addr_of_mut!((*tables()).tss.rsp[0]).write_unaligned(top) }
}

/// Allow (`open`) or deny ring-3 access to ports `[base, base + len)`.
pub fn set_io_ports(base: u16, len: u16, open: bool) {
    // SAFETY: as in `set_rsp0`; indices are bounded by the bitmap size below.
    let map = unsafe { &mut (*tables()).tss.iomap };
    for port in base as usize..(base as usize + len as usize).min(IOMAP_BYTES * 8) {
        if open {
            map[port / 8] &= !(1 << (port % 8));
        } else {
            map[port / 8] |= 1 << (port % 8);
        }
    }
}
