//! Write protection between tasks in the one address space.
//!
//! While a task runs, the only memory it can write is its own stack and heap and the image's
//! data (the kernel's statics and heap, which its kernel calls update): every other task's
//! stack and heap, every [`super::MappedPages`] a cell owns (the ramdisk's blocks) and all RAM
//! outside the image (page tables, frames) are mapped read-only, and CR0.WP makes ring 0 honour
//! that (see `paging`). A wild write from a faulty cell then faults in the cell that made it,
//! which is restarted, instead of silently landing in another cell.
//!
//! ```text
//!  task T runs:   T's stack, T's heap ......... rw      (paging::open at every switch)
//!                 other tasks, MappedPages .... r-      write → #PF in T → T restarted
//!                 page tables, frames ......... r-
//!                 image data/bss .............. rw      (the kernel's own state: not contained)
//!  kernel copies across tasks (a reply into its caller's buffer, a first frame, a block into
//!  the ramdisk's pages, an injected fault): unprotected(|| copy), WP clear, interrupts masked
//! ```

use crate::arch::cpu;

/// Run `f` with write protection lifted (CR0.WP clear) and interrupts masked: for kernel code
/// that writes memory the running task may not — another task's, a cell's pages, a page table.
/// Keep `f` to the copy itself, with every address checked before. A fault inside it stops the
/// task the kernel works for, and the trap path sets WP again before anything else runs.
pub fn unprotected<R>(f: impl FnOnce() -> R) -> R {
    crate::sync::critical(|| {
        let was = cpu::write_protect(false);
        let r = f();
        cpu::write_protect(was);
        r
    })
}

/// Protection on, whatever it was: before the trap path resumes a task (a kernel copy that
/// faulted with it lifted never resumes).
pub fn restore() {
    cpu::write_protect(true);
}
