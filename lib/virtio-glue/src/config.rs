//! One PCI function's configuration space as `virtio_drivers`' `ConfigurationAccess`.
//!
//! A driver is given one function; how it reaches its configuration space differs by
//! personality (the microkernel's `pci_read`/`pci_write` syscalls, the libos kernel's guard),
//! so that is a [`ConfigPort`]. The crate addresses functions by bus location: this adapter
//! answers for [`THE_FUNCTION`] only, and every other location reads as absent.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

/// The location the driver's one function is known by to the crate (the real one is the
/// kernel's business).
pub const THE_FUNCTION: DeviceFunction = DeviceFunction { bus: 0, device: 0, function: 0 };

/// Dword access to the driver's function: `offset` is a multiple of 4 below 256. A write the
/// system refuses is dropped (the crate's interface has no error for it); the system's guard
/// has already made sure it changed nothing.
pub trait ConfigPort: Clone {
    fn read(&self, offset: u8) -> u32;
    fn write(&self, offset: u8, value: u32);
}

/// The adapter.
pub struct OneFunction<P: ConfigPort>(pub P);

impl<P: ConfigPort> ConfigurationAccess for OneFunction<P> {
    fn read_word(&self, at: DeviceFunction, offset: u8) -> u32 {
        if at == THE_FUNCTION {
            self.0.read(offset & 0xfc)
        } else {
            u32::MAX
        }
    }

    fn write_word(&mut self, at: DeviceFunction, offset: u8, data: u32) {
        if at == THE_FUNCTION {
            self.0.write(offset & 0xfc, data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        OneFunction(self.0.clone())
    }
}
