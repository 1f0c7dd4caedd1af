//! Restart recipes: the closure every incarnation of a task runs ([`crate::spawn`]) and the one
//! of each staged version ([`crate::stage`]). A restart rebuilds everything else a task has
//! from its recipe, so a recipe must outlive every fault of every cell: a bent one would make
//! each later incarnation fail the same way, and no restart could mend it.
//!
//! That happened. In a 1,000-fault libos campaign against the fs cell, a stray write from fs
//! (a bent pointer: the kernel heap is image data, which every cell may write) changed the
//! console handle the scribe's closure had captured; from then on each scribe incarnation
//! panicked at its first line of output ("send on a mailbox handle the kernel never made")
//! until the kernel held it for crash-looping.
//!
//! So recipes live apart, in a page-aligned region of the image that [`seal`] makes read-only
//! when the scheduler starts, for cells and kernel alike (tasks are made before it starts, see
//! `SpawnError::AfterBoot`). A wild write there now faults in the cell that made it, which is
//! restarted, and the report names the region. A recipe is never freed (a task and its staged
//! versions last as long as the system), so it is a `&'static`, with no count to write. What
//! a recipe shares with others by reference goes there too ([`sealed`]: fs's parts, which every
//! fs version captures).
//!
//! ```text
//!  boot:     spawn / stage ──► keep(f): f moved into RECIPES (bump) ──► &'static dyn Fn()
//!  start:    seal(): RECIPES' pages lose their writable bit (4 KiB pages of the image)
//!  running:  a write into RECIPES ──► #PF in the writer ──► it is restarted from its recipe
//! ```

use crate::sync::Global;

/// Room for every recipe of the image (its closures capture handles: tens of bytes each).
const SIZE: usize = 16 << 10;

#[repr(C, align(4096))]
struct Region([u8; SIZE]);

/// Written only by [`keep`], before [`seal`].
static mut RECIPES: Region = Region([0; SIZE]);

/// Bytes of [`RECIPES`] handed out, and whether the region is sealed (then nothing more is).
static USED: Global<(usize, bool)> = Global::new((0, false));

/// What a task's incarnations run.
pub(crate) type Recipe = &'static (dyn Fn() + Send + Sync);

/// Move `f` into the recipe region; `None` if the region is full or already sealed.
pub(crate) fn keep<F: Fn() + Send + Sync + 'static>(f: F) -> Option<Recipe> {
    place(f).map(|f| f as Recipe)
}

/// Move `v`, which tasks share read-only for the system's life, into the recipe region: what a
/// recipe reaches through a reference is as lasting as the recipe, and as worth keeping from a
/// wild write (fs's endpoints and disk tags, which every fs incarnation and version starts
/// from). Only while the image wires the system: `None` once the scheduler runs, or if the
/// region is full. `T` must be immutable through `&T` in its own bytes: a `Cell`, atomic or
/// lock in it would fault the first time it is written.
pub fn sealed<T: Send + Sync + 'static>(v: T) -> Option<&'static T> {
    place(v).map(|v| &*v)
}

fn place<T: 'static>(v: T) -> Option<&'static mut T> {
    let (size, align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
    USED.with(|(used, sealed)| {
        let at = used.next_multiple_of(align);
        let end = at.checked_add(size).filter(|&end| end <= SIZE && align <= 4096 && !*sealed)?;
        *used = end;
        let base = core::ptr::addr_of_mut!(RECIPES) as *mut u8;
        // SAFETY: `[at, end)` lies inside RECIPES (checked above), is aligned for `T` (the
        // region is page-aligned and `at` a multiple of `align`), and was handed out to no one
        // before (`used` only grows); the region is writable until `seal`, which sets `sealed`
        // first. The value is never moved or dropped again: it lives as long as the
        // system, so the reference is `'static`, and the only one made.
        unsafe {
            let p = base.add(at) as *mut T;
            p.write(v);
            Some(&mut *p)
        }
    })
}

/// Where the region lies.
fn region() -> core::ops::Range<u64> {
    let start = core::ptr::addr_of!(RECIPES) as u64;
    start..start + SIZE as u64
}

/// No more recipes: make the region read-only (when the scheduler starts).
pub(crate) fn seal() {
    USED.with(|(_, sealed)| *sealed = true);
    let r = region();
    super::paging::read_only(r.start, r.end);
}

/// Is `addr` a recipe's? (For the report of a wild write stopped there.)
pub(crate) fn contains(addr: u64) -> bool {
    region().contains(&addr)
}

/// Bytes the recipes take, and whether every page of the region is read-only now, as the live
/// page tables map it (for `mem`: the seal, seen from outside).
pub fn usage() -> (usize, bool) {
    let read_only = region().step_by(4096).all(|page| !super::paging::writable(page));
    (USED.with(|(used, _)| *used), read_only)
}
