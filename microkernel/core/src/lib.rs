//! Hardware-free logic of the Axolotl microkernel, unit-tested on the host.
//!
//! The ring-0 binary (`microkernel/kernel`) owns page tables, traps and context switches; every
//! rule that can be decided without touching hardware lives here instead, so `cargo test` checks
//! it: the physical frame allocator, capability tables and revocation, task and run queues, the
//! boot manifest and the checks an ELF image must pass before it is loaded.
#![no_std]
#![forbid(unsafe_code)]

pub mod cap;
pub mod elf;
pub mod frames;
pub mod manifest;
pub mod queue;

/// A task's identity: table index plus the generation of the task occupying it. A stale id (the
/// slot was reused by a restarted task) is detected by the generation, never misdirected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskId {
    pub index: u16,
    pub generation: u32,
}
