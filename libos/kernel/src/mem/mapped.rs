//! [`MappedPages`]: a run of pages in the slot area, owned by value. Dropping it unmaps the
//! pages, returns their frames and frees the slot, so whoever owns the value owns the memory
//! (Theseus's MappedPages). A stack gets an unmapped guard page at the bottom of its slot.
//!
//! A cell never gets a pointer into its pages: it copies in and out with [`MappedPages::read`]
//! and [`MappedPages::write`], kernel code that checks the value first. The pages themselves are
//! read-only to every task (`protect`): a wild write cannot reach them, and `write` copies with
//! protection lifted. Stacks and heaps are the kernel's (`lifecycle`, `heap`): marked as task
//! memory, they are never copied through a cell's `MappedPages` value, bent or not.

use super::paging::{self, NX, SLOTS, SLOT_BASE, SLOT_SIZE, W};
use super::{frames, PAGE};
use crate::sync::Global;
use algo::bitmap::Bitmap;

struct Slots {
    used: [u64; SLOTS / 64],
    /// Slots holding a task's stack or heap.
    task: [u64; SLOTS / 64],
    /// What each slot's value was made with: its base and pages. A value is freed only if it
    /// still says exactly that (see `Drop`).
    made: [(u64, usize); SLOTS],
}

static SLOT_MAP: Global<Slots> =
    Global::new(Slots { used: [0; SLOTS / 64], task: [0; SLOTS / 64], made: [(0, 0); SLOTS] });

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// The request is larger than a slot.
    TooLarge,
    /// No free slot or frame.
    OutOfMemory,
}

pub struct MappedPages {
    slot: usize,
    base: u64,
    pages: usize,
}

impl MappedPages {
    /// `pages` zeroed, writable, never executable pages; with `guard`, an unmapped page below.
    pub fn alloc(pages: usize, guard: bool) -> Result<MappedPages, MapError> {
        if pages == 0 || (pages + guard as usize) as u64 * PAGE > SLOT_SIZE {
            return Err(MapError::TooLarge);
        }
        let slot =
            SLOT_MAP.with(|m| Bitmap::new(&mut m.used, SLOTS).alloc(1, 1)).ok_or(MapError::OutOfMemory)?;
        let base = SLOT_BASE + slot as u64 * SLOT_SIZE + if guard { PAGE } else { 0 };
        let mut mp = MappedPages { slot, base, pages: 0 };
        SLOT_MAP.with(|m| m.made[slot] = (base, 0));
        for i in 0..pages {
            // On failure, `mp` drops and returns what was mapped so far.
            let frame = frames::alloc().ok_or(MapError::OutOfMemory)?;
            paging::map(base + i as u64 * PAGE, frame, W | NX);
            mp.pages += 1;
            SLOT_MAP.with(|m| m.made[slot].1 = i + 1);
        }
        Ok(mp)
    }

    /// A task's stack or heap: the kernel's, never copied through by a cell.
    pub(crate) fn alloc_task(pages: usize, guard: bool) -> Result<MappedPages, MapError> {
        let mp = Self::alloc(pages, guard)?;
        let slot = mp.slot;
        SLOT_MAP.with(|m| Bitmap::new(&mut m.task, SLOTS).mark(slot, 1, true));
        Ok(mp)
    }

    /// The slot it lives in (its page-directory entry: see `paging::open`).
    pub(crate) fn slot(&self) -> usize {
        self.slot
    }

    pub fn start(&self) -> u64 {
        self.base
    }

    pub fn end(&self) -> u64 {
        self.base + self.len() as u64
    }

    pub fn len(&self) -> usize {
        self.pages * PAGE as usize
    }

    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    pub fn contains(&self, addr: u64) -> bool {
        (self.start()..self.end()).contains(&addr)
    }

    /// Does this value describe a cell's mapping the kernel could have made? A cell reaches its
    /// `MappedPages` through a pointer that a fault may have bent; a bent one must not become a
    /// copy into the kernel's memory, or into a task's stack or heap.
    fn sane(&self) -> bool {
        let slot_base = SLOT_BASE + self.slot as u64 * SLOT_SIZE;
        self.slot < SLOTS
            && (self.base == slot_base || self.base == slot_base + PAGE)
            && self.pages as u64 * PAGE <= SLOT_SIZE
            && paging::is_mapped(self.base)
            && !SLOT_MAP.with(|m| Bitmap::new(&mut m.task, SLOTS).is_set(self.slot))
    }

    /// Copy out of the pages at `offset`. Returns false if the range is out of bounds.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> bool {
        if !self.sane() || offset.checked_add(out.len()).is_none_or(|e| e > self.len()) {
            return false;
        }
        // SAFETY: the range is inside pages this value owns and keeps mapped; one CPU and the
        // critical section exclude a concurrent writer.
        crate::sync::critical(|| unsafe {
            core::ptr::copy_nonoverlapping(
                (self.base as usize + offset) as *const u8,
                out.as_mut_ptr(),
                out.len(),
            )
        });
        true
    }

    /// Copy into the pages at `offset`. Returns false if the range is out of bounds.
    pub fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !self.sane() || offset.checked_add(data.len()).is_none_or(|e| e > self.len()) {
            return false;
        }
        // SAFETY: as for `read`; the pages are read-only to every task, so the copy runs with
        // protection lifted, and only into this value's own range (checked above).
        super::protect::unprotected(|| unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.base as usize + offset) as *mut u8,
                data.len(),
            )
        });
        true
    }
}

impl Drop for MappedPages {
    /// Unmaps and frees exactly what the kernel made for this value's slot. A cell owns its
    /// values in its own memory, where a fault may bend one: a value that no longer matches its
    /// slot's record (another slot's number, a length of 256 MiB) would free other tasks' pages.
    /// It is leaked instead, and said so: a few pages lost, nothing of anyone else's touched.
    fn drop(&mut self) {
        let slot = self.slot;
        let matches = slot < SLOTS
            && SLOT_MAP.with(|m| {
                Bitmap::new(&mut m.used, SLOTS).is_set(slot) && m.made[slot] == (self.base, self.pages)
            });
        if !matches {
            crate::serial::kprintln!(
                "a dropped page mapping does not match what the kernel made for it (slot {}, {:#x}, {} pages): left mapped, not freed",
                slot,
                self.base,
                self.pages
            );
            return;
        }
        for i in 0..self.pages {
            if let Some(frame) = paging::unmap(self.base + i as u64 * PAGE) {
                frames::free(frame);
            }
        }
        SLOT_MAP.with(|m| {
            Bitmap::new(&mut m.task, SLOTS).mark(slot, 1, false);
            Bitmap::new(&mut m.used, SLOTS).free(slot, 1);
            m.made[slot] = (0, 0);
        });
    }
}

/// A slot for the kernel's own mappings that no `MappedPages` value describes (a device's DMA
/// region and BARs, see `device`): used for good, and marked as the kernel's like a task's
/// stack, so a cell's (bent) `MappedPages` is never copied through it.
pub(crate) fn reserve_slot() -> Option<usize> {
    SLOT_MAP.with(|m| {
        let slot = Bitmap::new(&mut m.used, SLOTS).alloc(1, 1)?;
        Bitmap::new(&mut m.task, SLOTS).mark(slot, 1, true);
        // No value was made for it: a dropped value that claims this slot never matches.
        m.made[slot] = (u64::MAX, usize::MAX);
        Some(slot)
    })
}

pub fn slots_in_use() -> usize {
    SLOT_MAP.with(|m| Bitmap::new(&mut m.used, SLOTS).used())
}
