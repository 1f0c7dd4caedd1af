//! Per-CPU data, the `syscall` model-specific registers, and the kernel's own ports.
//!
//! Each CPU has a [`PerCpu`] block; `GS` points at it while the CPU runs kernel code (`swapgs` on
//! every entry from and exit to user space). The entry assembly reads the first fields at fixed
//! offsets, so their order is part of the trap ABI in `trap.rs`.

use core::cell::Cell;
use x86_64::registers::model_specific::{Efer, EferFlags, GsBase, KernelGsBase, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::VirtAddr;

/// Most CPUs the kernel is built for. One runs today; the structures are per CPU already.
pub const MAX_CPUS: usize = 1;

#[repr(C)]
pub struct PerCpu {
    /// Offset 0: this block's own address, so `gs:0` yields a normal pointer.
    self_ptr: Cell<u64>,
    /// Offset 8: top of this CPU's kernel stack.
    pub kernel_stack_top: Cell<u64>,
    /// Offset 16: user `rsp` during the first instructions of `syscall` entry.
    user_rsp_scratch: Cell<u64>,
    /// Offset 24: end of the running task's saved-register area (`syscall` pushes there).
    pub cur_ctx_end: Cell<u64>,
    /// Index of the task running on this CPU; `usize::MAX` while idle.
    pub current: Cell<usize>,
    /// The task whose I/O-port ranges are open in this CPU's TSS bitmap ([`PerCpu::io_owner`]).
    io_owner: Cell<usize>,
    /// What a switch must do besides loading the next task's frame, stack and space: a
    /// [`SWITCH_ACCOUNTING`] and [`SWITCH_PORTS`] bit set. The IPC fastpath tests this one
    /// byte (and whether the next task holds ports) instead of each condition.
    switch_work: Cell<u8>,
    /// With accounting on: the TSC at the last charge, and whom what ran since is charged to at
    /// the next (a task, or `NO_TASK` for idle and interrupts; `Kernel::charge`), and billed
    /// to (the client it works for, decided when it started running: `Kernel::client_of`).
    pub since: Cell<u64>,
    pub charged: Cell<usize>,
    pub billed: Cell<usize>,
    pub cpu_id: u32,
}

pub const NO_TASK: usize = usize::MAX;

/// [`PerCpu::switch_work`]: CPU accounting is on (each switch charges the time).
pub const SWITCH_ACCOUNTING: u8 = 1;
/// [`PerCpu::switch_work`]: some task's ports are open in the TSS (a switch closes them).
pub const SWITCH_PORTS: u8 = 2;

impl PerCpu {
    /// The task whose I/O-port ranges are open in this CPU's TSS bitmap, or `NO_TASK`.
    pub fn io_owner(&self) -> usize {
        self.io_owner.get()
    }

    pub fn set_io_owner(&self, t: usize) {
        self.io_owner.set(t);
        self.set_switch_work(SWITCH_PORTS, t != NO_TASK);
    }

    /// Set or clear one of the `SWITCH_` bits.
    pub fn set_switch_work(&self, bit: u8, on: bool) {
        let w = self.switch_work.get();
        self.switch_work.set(if on { w | bit } else { w & !bit });
    }

    /// Whether a switch has more to do than load the next task's frame, stack and space.
    #[inline(always)]
    pub fn switch_work(&self) -> u8 {
        self.switch_work.get()
    }
}

struct PerCpuArray([PerCpu; MAX_CPUS]);
// SAFETY: a CPU only touches its own block, and only with interrupts disabled.
unsafe impl Sync for PerCpuArray {}

static PER_CPU: PerCpuArray = PerCpuArray([PerCpu {
    self_ptr: Cell::new(0),
    kernel_stack_top: Cell::new(0),
    user_rsp_scratch: Cell::new(0),
    cur_ctx_end: Cell::new(0),
    current: Cell::new(NO_TASK),
    io_owner: Cell::new(NO_TASK),
    switch_work: Cell::new(0),
    since: Cell::new(0),
    charged: Cell::new(NO_TASK),
    billed: Cell::new(NO_TASK),
    cpu_id: 0,
}]);

/// Set up this CPU's block, `GS`, and the `syscall` MSRs.
pub fn init_this_cpu(kernel_stack_top: u64, syscall_entry: u64) {
    let me = &PER_CPU.0[0];
    me.self_ptr.set(me as *const PerCpu as u64);
    me.kernel_stack_top.set(kernel_stack_top);
    let sel = |s: u16| SegmentSelector(s);
    let (user_cs, user_ds) = (sel(super::gdt::USER_CS), sel(super::gdt::USER_DS));
    let (kernel_cs, kernel_ds) = (sel(super::gdt::KERNEL_CS), sel(super::gdt::KERNEL_DS));
    Star::write(user_cs, user_ds, kernel_cs, kernel_ds).expect("the GDT's order is the one syscall needs");
    // SAFETY: architectural MSRs written with values that match our GDT and entry code:
    // GS_BASE = this block (kernel GS), KERNEL_GS_BASE = 0 (user GS after the first swapgs),
    // LSTAR = the syscall entry, FMASK clears IF/TF/DF/AC so the kernel runs with interrupts
    // off; EFER keeps long mode and no-execute and enables `syscall`.
    unsafe {
        GsBase::write(VirtAddr::new(me as *const PerCpu as u64));
        KernelGsBase::write(VirtAddr::new(0));
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS | EferFlags::NO_EXECUTE_ENABLE));
        LStar::write(VirtAddr::new(syscall_entry));
    }
    SFMask::write(
        RFlags::INTERRUPT_FLAG | RFlags::TRAP_FLAG | RFlags::DIRECTION_FLAG | RFlags::ALIGNMENT_CHECK,
    );
}

/// This CPU's block (valid once `init_this_cpu` ran; kernel `GS` is always loaded in the kernel).
#[inline(always)]
pub fn this() -> &'static PerCpu {
    // With one CPU its block is the first: a static address, where reading it through GS
    // costs a load more at every use (the entry stubs still use GS).
    if MAX_CPUS == 1 {
        return &PER_CPU.0[0];
    }
    let ptr: u64;
    // SAFETY: in kernel mode GS_BASE points at this CPU's PerCpu, whose first field is its address.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, readonly, preserves_flags)) };
    // SAFETY: the pointer is to a static PerCpu.
    unsafe { &*(ptr as *const PerCpu) }
}

/// The I/O ports the kernel drives itself: the PIC, the PIT, COM1 for its log, QEMU's
/// debug-exit device.
// SAFETY: the kernel runs in ring 0 and is the only code there; it drives these devices
// itself (a task that may write the debug-exit port does so through its own I/O bitmap, which
// this value does not touch).
pub const PORTS: x86::port::Direct = unsafe { x86::port::Direct::new() };

/// Halt with interrupts enabled until one arrives, then disable them again (the kernel runs
/// with interrupts off).
pub fn idle_wait() {
    x86::cpu::wait_for_interrupt();
    x86::cpu::disable_interrupts();
}
