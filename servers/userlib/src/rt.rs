//! Task start-up and the panic handler.

use axolotl_abi::{BootInfo, Error, BOOT_INFO, BOOT_INFO_MAGIC, EXIT_PANIC};
use core::fmt::Write;

/// Called by the `entry!` macro with the boot-info pointer the kernel passed in `rdi`.
pub fn start(boot: *const BootInfo, main: fn(&'static BootInfo) -> Result<(), Error>) -> ! {
    // SAFETY: the kernel maps a BootInfo read-only at this address for the task's whole life.
    let info = unsafe { &*boot };
    if info.magic != BOOT_INFO_MAGIC {
        crate::sys::exit(EXIT_PANIC, "boot info has a wrong magic number");
    }
    match main(info) {
        Ok(()) => crate::sys::exit(0, ""),
        Err(e) => crate::sys::exit(e as u64, e.describe()),
    }
}

/// This task's boot info (the kernel maps it read-only at a fixed address).
pub fn boot_info() -> &'static BootInfo {
    // SAFETY: as in `start`: mapped read-only for the task's whole life, never written.
    unsafe { &*(BOOT_INFO as *const BootInfo) }
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut msg: heapless::String<200> = heapless::String::new();
    let _ = write!(msg, "{info}");
    crate::sys::exit(EXIT_PANIC, &msg)
}
