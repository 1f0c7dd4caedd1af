//! Faults and recovery, written once for both personalities.
//!
//! The microkernel (its kernel and the reincarnation server) and the libos kernel detect faults
//! in different ways, but decide what to do about them with the same rules, from this crate:
//!
//! ```text
//!  kinds        FaultKind (why a task stopped), InjectKind (what the injector can do)
//!  inject       the seeded choices of one injected fault: register and bit, word of memory
//!  kernel_code  where the libos kernel's code is, by its symbols (a fault strikes outside it)
//!  recovery     a request in flight when its server fails: delivered again once, then ServerFailed
//!               a crash loop: restart at once, then back off 50, 100, 200 ms; hold at the fifth
//!               a hang: running too long without a syscall, or a request held too long
//!  update       live update: its rollback window, which versions may follow which, its log lines
//! ```
//! Everything here is plain data and pure functions, host-tested, so a rule a test checks is
//! the rule both kernels run.
#![no_std]
#![forbid(unsafe_code)]

pub mod inject;
pub mod kernel_code;
mod kinds;
pub mod recovery;
pub mod update;

pub use kinds::{FaultKind, InjectKind, OneLine};
