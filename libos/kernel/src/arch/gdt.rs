//! The GDT and TSS: one ring-0 code and data segment, and interrupt stacks.
//!
//! Everything runs in ring 0, so without an interrupt stack the CPU pushes a trap's frame on
//! whatever `rsp` the interrupted task has, which a fault may have bent. IST1 carries every CPU
//! exception, so a task whose stack overflowed into its guard page (or whose stack pointer is
//! garbage) can still be reported and killed; IST2 carries #DF alone; IST3 carries the hardware
//! interrupts, so that taking one never faults (see `trap`). Each stack has an unmapped guard
//! page below it (see `linker.ld`).

use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;

struct Tables {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
}

static mut TABLES: Tables = Tables { gdt: GlobalDescriptorTable::new(), tss: TaskStateSegment::new() };

extern "C" {
    static __ist1_top: u8;
    static __ist2_top: u8;
    static __ist3_top: u8;
}

pub fn init() {
    // SAFETY: single-threaded boot, before interrupts; the tables are static and never moved,
    // which `lgdt`/`ltr` require. Nothing else touches TABLES.
    unsafe {
        let t = &mut *core::ptr::addr_of_mut!(TABLES);
        t.tss.interrupt_stack_table[0] = VirtAddr::new(core::ptr::addr_of!(__ist1_top) as u64);
        t.tss.interrupt_stack_table[1] = VirtAddr::new(core::ptr::addr_of!(__ist2_top) as u64);
        t.tss.interrupt_stack_table[2] = VirtAddr::new(core::ptr::addr_of!(__ist3_top) as u64);
        let cs = t.gdt.append(Descriptor::kernel_code_segment());
        let ds = t.gdt.append(Descriptor::kernel_data_segment());
        let tss = t.gdt.append(Descriptor::tss_segment(&*core::ptr::addr_of!(t.tss)));
        debug_assert_eq!((cs.0, ds.0), (KERNEL_CS, KERNEL_DS));
        (*core::ptr::addr_of!(t.gdt)).load_unsafe();
        use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
        CS::set_reg(SegmentSelector(KERNEL_CS));
        SS::set_reg(SegmentSelector(KERNEL_DS));
        DS::set_reg(SegmentSelector(KERNEL_DS));
        ES::set_reg(SegmentSelector(KERNEL_DS));
        x86_64::instructions::tables::load_tss(tss);
    }
}
