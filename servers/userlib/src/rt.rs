//! Task start-up and the panic handler.

use axolotl_abi::{BootInfo, Error, BOOT_INFO, BOOT_INFO_MAGIC, EXIT_PANIC};

/// Called by the `entry!` macro. (The kernel also passes the boot-info address in `rdi`; it is
/// always [`BOOT_INFO`], so the fixed address is used.)
pub fn start(main: fn(&'static BootInfo) -> Result<(), Error>) -> ! {
    let info = boot_info();
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
    // SAFETY: the kernel maps a BootInfo read-only at this address for the task's whole life
    // and never writes it afterwards.
    unsafe { &*(BOOT_INFO as *const BootInfo) }
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    use core::fmt::Write;
    let mut msg: heapless::String<200> = heapless::String::new();
    let _ = write!(msg, "{info}");
    crate::sys::exit(EXIT_PANIC, &msg)
}
