//! The kernel's Multiboot2 entry: the shared trampoline (`x86::multiboot2_trampoline!`) brings
//! the CPU into long mode and calls `kmain(magic, info)` on the guarded kernel stack. The
//! microkernel turns on `syscall` (EFER.SCE) and no-execute; it leaves SSE off, so a task that
//! strays into an SSE instruction faults instead of running with state the kernel never saves.

use x86_64::registers::model_specific::EferFlags;

extern "C" {
    static __kstack_top: u8;
}

x86::multiboot2_trampoline!(
    entry = crate::kmain,
    stack_top = __kstack_top,
    cr4 = 0,
    efer = (EferFlags::NO_EXECUTE_ENABLE.bits() | EferFlags::SYSTEM_CALL_EXTENSIONS.bits()) as u32,
);
