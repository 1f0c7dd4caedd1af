//! What deleting or revoking a capability does to the object it names, where the object types
//! live (seL4's `finaliseCap`): an I/O-port range is closed, a memory object unmapped, a
//! session closed with its SSR.

use crate::state::Kernel;
use axolotl_abi::PAGE_SIZE;
use axolotl_kcore::cap::{Capability, Object};

/// Undo what capability `cap`, just deleted from task `t`, had enabled in `t`.
pub fn finalise(k: &mut Kernel, t: usize, cap: &Capability) {
    match cap.object {
        Object::IoPort { base, len } => {
            let task = &mut k.tasks[t];
            if let Some(i) = task.io_ranges[..task.io_count].iter().position(|&r| r == (base, len)) {
                task.io_ranges.copy_within(i + 1..task.io_count, i);
                task.io_count -= 1;
                if crate::arch::cpu::this().io_owner() == t {
                    crate::arch::gdt::set_io_ports(base, len, false);
                }
            }
        }
        Object::Memory(m) => {
            let obj = &mut k.memory[m as usize];
            if let Some((owner, vaddr)) = obj.mapped.filter(|&(owner, _)| owner as usize == t) {
                let pages = obj.pages as u64;
                obj.mapped = None;
                unmap_pages(k, owner as usize, vaddr, pages);
            }
        }
        Object::Session(s) => k.close_session(s),
        _ => {}
    }
}

/// Whether deleting a capability of this object has anything to undo (see [`finalise`]).
pub fn needs_finalise(object: &Object) -> bool {
    matches!(object, Object::IoPort { .. } | Object::Memory(_) | Object::Session(_))
}

/// Unmap `pages` pages at `vaddr` from task `t` (frames of memory objects are not freed).
pub fn unmap_pages(k: &mut Kernel, t: usize, vaddr: u64, pages: u64) {
    if let Some(space) = k.tasks[t].space.as_ref() {
        for p in 0..pages {
            space.unmap(&mut k.frames, vaddr + p * PAGE_SIZE);
        }
    }
}

/// Forget every mapping task `t` holds of a memory object (its address space is going away).
pub fn forget_mappings_of(k: &mut Kernel, t: usize) {
    for m in k.memory.iter_mut() {
        if m.mapped.is_some_and(|(owner, _)| owner as usize == t) {
            m.mapped = None;
        }
    }
}

/// Physical address of page `p` of memory object `m`.
pub fn memory_page(k: &Kernel, m: usize, p: u64) -> u64 {
    // SAFETY: a live object's page list frame holds `pages` physical addresses, written at
    // creation; callers pass `p < pages`.
    unsafe { *(k.memory[m].page_list as *const u64).add(p as usize) }
}
