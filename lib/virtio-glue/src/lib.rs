//! What a driver built on the unmodified `virtio-drivers` crate needs from the system it runs
//! on, written once for both personalities.
//!
//! ```text
//!  virtio-drivers (VirtIOBlk, PciTransport, VirtQueue)        unmodified, third party
//!        │ Hal: dma_alloc / share / mmio_phys_to_virt    │ ConfigurationAccess
//!  ┌─────▼──────────────────────────────────────┐ ┌──────▼─────────────────────┐
//!  │ hal::GlueHal<R>: a DMA region (bitmap of    │ │ config::OneFunction<P>:    │
//!  │ pages, zeroed on allocation), bounce buffers│ │ the driver's one function, │
//!  │ for every shared buffer, device windows     │ │ every other reads absent   │
//!  └─────▲──────────────────────────────────────┘ └──────▲─────────────────────┘
//!        │ Resources (a static the driver installs)       │ ConfigPort
//!  microkernel: DMA region and BARs mapped through capabilities, config through pci_read/write
//!  libos:       the same, identity mapped in ring 0, config through the kernel's guard
//! ```
//!
//! `blk::BlockDriver` puts a virtio-blk device behind a block-store interface that sleeps on
//! the device's interrupt while a request is in flight (the crate's non-blocking calls).
//!
//! The crate's `Hal` has no `self`: its state is a static the driver installs at start
//! ([`hal::Resources`]). A driver is one task, so the lock is never contended; it is there
//! because the crate may call the HAL from any code the driver runs.
#![no_std]
// The one place both personalities' virtio drivers do raw memory work (DMA pages, bounce
// copies, device windows): each block fenced and explained.
#![allow(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod blk;
pub mod config;
pub mod dma;
pub mod hal;

pub use virtio_drivers;
