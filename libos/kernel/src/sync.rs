//! Critical sections of the kernel: one CPU, so "interrupts off" is the lock.
//!
//! [`Global`] holds kernel state that interrupts and tasks share. `with` masks interrupts for
//! the duration of the closure and counts the nesting depth: the fault injector never lands a
//! fault while the depth is non-zero, so an injected fault never strikes in the middle of a
//! kernel update (a fault *there* would be a kernel bug, not a cell's).

use crate::arch::cpu;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, Ordering};

static DEPTH: AtomicU32 = AtomicU32::new(0);
/// How many [`Global`]s are borrowed right now: kernel state mid-update if non-zero.
static BUSY: AtomicU32 = AtomicU32::new(0);

/// Is a kernel table borrowed right now? A fault then is a kernel failure, not a cell's.
pub fn busy() -> bool {
    BUSY.load(Ordering::Relaxed) != 0
}

/// Swap in another task's depth (each task has its own: a task preempted or killed inside a
/// critical section it entered wrongly — its `cli` faulted away — leaves no trace on others).
pub(crate) fn swap_depth(next: u32) -> u32 {
    DEPTH.swap(next, Ordering::Relaxed)
}

/// Drop the borrow a killed task held (see the trap dispatcher).
pub(crate) fn reset_busy() {
    BUSY.store(0, Ordering::Relaxed);
}

/// Forget critical sections a killed task left open (only plain copies, never a Global: a
/// fault with a Global borrowed stops the kernel instead).
pub(crate) fn reset_depth() {
    DEPTH.store(0, Ordering::Relaxed);
}

/// Nesting depth of kernel critical sections right now.
pub fn depth() -> u32 {
    DEPTH.load(Ordering::Relaxed)
}

/// Run `f` with interrupts masked (restored afterwards).
///
/// The depth is raised *before* `cli` and lowered *after* `sti`: an injected fault never lands
/// while it is non-zero, and an interrupt that finds it non-zero (a skipped `cli`) does not
/// switch tasks, so a critical section is never interleaved with another task even when the
/// mask itself was faulted away. The direction flag is cleared: the flags are the calling
/// cell's, and every copy the kernel makes (a reply into another task's stack among them)
/// must run forwards.
pub fn critical<R>(f: impl FnOnce() -> R) -> R {
    let was = cpu::interrupts_enabled();
    DEPTH.fetch_add(1, Ordering::Relaxed);
    cpu::disable_interrupts();
    cpu::clear_direction();
    let r = f();
    if was {
        cpu::enable_interrupts();
    }
    leave(&DEPTH);
    r
}

/// Proof that interrupts are masked by an enclosing [`masked`] section (not `Copy`, not
/// constructible elsewhere): [`Global::with_masked`] borrows without masking them again.
pub struct Masked(());

/// [`critical`], handing its body the proof that it runs masked: for a body that borrows a
/// [`Global`] more than once, or switches tasks between borrows (`sched::block_on`), in one
/// masked section.
pub fn masked<R>(f: impl FnOnce(&Masked) -> R) -> R {
    critical(|| f(&Masked(())))
}

/// Count down without wrapping: an injected `skip` can step over the increment (at depth 0,
/// where faults may land), and the counter must not wrap to "inside a critical section for ever".
/// One CPU, and an interrupt that finds the depth non-zero never switches tasks, so a plain
/// load and store cannot race.
fn leave(counter: &AtomicU32) {
    counter.store(counter.load(Ordering::Relaxed).saturating_sub(1), Ordering::Relaxed);
}

/// Kernel state behind the interrupt mask. Never borrow the same `Global` twice: `with` is not
/// re-entrant, and each `Global` documents who may call it from where.
pub struct Global<T>(UnsafeCell<T>);

// SAFETY: one CPU; every access goes through `with`, which masks interrupts, and callers never
// nest `with` on the same Global, so at most one `&mut T` exists at a time.
unsafe impl<T: Send> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(v: T) -> Self {
        Global(UnsafeCell::new(v))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // Interrupts are masked and the borrow does not escape `f`.
        critical(|| {
            BUSY.fetch_add(1, Ordering::Relaxed);
            // SAFETY: see the Sync impl.
            let r = f(unsafe { &mut *self.0.get() });
            leave(&BUSY);
            r
        })
    }

    /// [`Global::with`] inside a [`masked`] section: the borrow alone (no second mask).
    pub fn with_masked<R>(&self, _masked: &Masked, f: impl FnOnce(&mut T) -> R) -> R {
        BUSY.fetch_add(1, Ordering::Relaxed);
        // SAFETY: see the Sync impl; `Masked` proves interrupts are masked (and the depth
        // raised) for as long as the borrow lives.
        let r = f(unsafe { &mut *self.0.get() });
        leave(&BUSY);
        r
    }

    /// Access from the trap path, where interrupts are already masked by the gate.
    ///
    /// # Safety
    /// Interrupts must be masked and no other borrow of this Global may be live.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_in_trap(&self) -> &mut T {
        // SAFETY: the caller's contract.
        unsafe { &mut *self.0.get() }
    }
}
