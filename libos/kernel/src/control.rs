//! The privileged operations — kill, restart, inject, power off, mask preemption, quiet mode —
//! and [`Privilege`], the token that opens them (Tock's capability types, e.g.
//! `ProcessManagementCapability`, enforced here by ownership since cells cannot write
//! `unsafe`).
//!
//! ```text
//!  init: Privilege::mint() (once) ──► entry!'s wiring fn (the image) ──► shell cell's closure
//!                                                                          │ &Privilege
//!                                   kill, restart, inject, power_off, ◄────┘
//!                                   without_preemption, set_quiet
//! ```

use crate::arch::pic;
use crate::audit::AuditError;
use crate::inject::InjectError;
use crate::lifecycle::{self, ControlError, UpdateError, Updated};
use crate::state::Report as AuditReport;
use crate::state::KERNEL;
use core::sync::atomic::{AtomicBool, Ordering};
use fault::InjectKind;
use x86::pic::Mask;

/// The right to control other tasks and the machine. Every privileged operation asks for a
/// `&Privilege`; the kernel makes exactly one, at boot, and hands it by value to the image's
/// wiring function (`libos_kernel::entry!`), which gives it to the shell cell.
///
/// Why a cell cannot obtain one except by being handed it:
/// - its field is private, so no code outside this crate can write `Privilege { .. }`;
/// - it has no public constructor, and the crate's own one ([`Privilege::mint`]) refuses a
///   second call, so not even the kernel can make a second token;
/// - it is neither `Clone`, `Copy` nor `Default`, so holding one (or a reference) does not
///   yield another, and a holder that gives it away no longer has it;
/// - making one from bytes (`transmute`, `mem::zeroed`, a pointer cast) needs `unsafe`, which
///   every cell crate forbids (`#![forbid(unsafe_code)]`);
/// - the only function the kernel passes it to is the one `entry!` names, which only the image
///   defines (a second `libos_main` would not link, and `#[no_mangle]` is itself unsafe code).
pub struct Privilege {
    _private: (),
}

static MINTED: AtomicBool = AtomicBool::new(false);

impl Privilege {
    /// The one token, the first time (at boot); `None` ever after.
    pub(crate) fn mint() -> Option<Privilege> {
        (!MINTED.swap(true, Ordering::Relaxed)).then_some(Privilege { _private: () })
    }
}

/// Kill task `index` now (a fault from outside: it counts towards a crash loop). Killing the
/// current task ends it and does not return.
pub fn kill(_: &Privilege, index: usize) -> Result<(), ControlError> {
    lifecycle::kill(index)
}

/// Replace task `index` by a fresh incarnation, whatever its state: also brings back a task
/// held after a crash loop. Not a fault: it resets the task's crash-loop streak. Returns the
/// new generation.
pub fn restart(_: &Privilege, index: usize) -> Result<u32, ControlError> {
    lifecycle::restart(index)
}

/// Start the state-spill audit of task `index` (see `audit`): from now on, each request it
/// takes closes the period of the one before. One audit at a time.
pub fn audit_start(_: &Privilege, index: usize) -> Result<(), AuditError> {
    KERNEL.with(|k| crate::audit::start(k, index))
}

/// Requests the audit has followed so far (`None`: none runs).
pub fn audit_requests(_: &Privilege) -> Option<u32> {
    KERNEL.with(|k| k.audit.as_ref().map(|a| a.report.requests))
}

/// End the audit; what it found (`None`: none ran).
pub fn audit_stop(_: &Privilege) -> Option<AuditReport> {
    KERNEL.with(crate::audit::stop)
}

/// Stop scheduling task `index` (`on`), or schedule it again (see `lifecycle::pause`).
pub fn pause(_: &Privilege, index: usize, on: bool) -> Result<(), ControlError> {
    lifecycle::pause(index, on)
}

/// Update task `index` to its server's version staged in the image as `name` (see
/// `lifecycle::update`): it must be waiting for a request; it rolls back if the new version
/// fails before it has answered `window` requests (1 to `fault::update::MAX_WINDOW`).
pub fn update(_: &Privilege, index: usize, name: &str, window: u32) -> Result<Updated, UpdateError> {
    if !(1..=fault::update::MAX_WINDOW).contains(&window) {
        return Err(UpdateError::BadWindow);
    }
    lifecycle::update(index, name, window)
}

/// Inject `kind` into task `index` with `seed`; returns what it hit (see `inject::arm`; 0 for
/// a kill).
pub fn inject(p: &Privilege, index: usize, kind: InjectKind, seed: u64) -> Result<u64, InjectError> {
    if kind == InjectKind::Kill {
        return kill(p, index).map(|()| 0).map_err(|e| match e {
            ControlError::NotRunning => InjectError::NotRunning,
            _ => InjectError::NoSuchTask,
        });
    }
    KERNEL.with(|k| crate::inject::arm(k, index, kind, seed))
}

/// Switch the machine off cleanly (QEMU's `isa-debug-exit` turns this into exit status 33).
pub fn power_off(_: &Privilege) -> ! {
    crate::report::stop_machine(x86::qemu::DEBUG_EXIT_POWEROFF)
}

/// Leave the kill and restart reports out (`restart NAME COUNT`, the restart benchmark); a
/// crash-loop hold is reported all the same.
pub fn set_quiet(_: &Privilege, quiet: bool) {
    KERNEL.with(|k| k.quiet = quiet);
}

/// Run `f` with the timer and the serial line masked at the interrupt controller, so that a
/// measurement counts only the code under test (deterministic under QEMU `-icount`); a driven
/// device's line stays open, or its driver would wait for ever (see `pic::set_mask`). Task
/// switches still happen when `f` calls or yields; nothing is preempted, no hang is detected
/// and no delayed restart happens (a task in back-off stays down until it returns).
pub fn without_preemption<R>(_: &Privilege, f: impl FnOnce() -> R) -> R {
    crate::sched::set_preemptible(false);
    crate::sync::critical(|| pic::set_mask(Mask::all_but(&[])));
    let r = f();
    crate::sync::critical(|| pic::set_mask(pic::RUNNING));
    crate::sched::set_preemptible(true);
    r
}
