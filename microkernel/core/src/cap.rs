//! Capabilities: typed, rights-carrying references to kernel objects, kept in per-task tables.
//!
//! User code names a capability by its slot number; every syscall resolves the slot through
//! [`CSpace::lookup`], which checks the slot exists, holds the expected type and carries the
//! rights the operation needs. Derived capabilities (copies, minted badges, transfers) remember
//! their parent, so [`revoke`] can remove everything derived from a capability in every task:
//!
//! ```text
//!   console: [3] ep#0 RWG id=7
//!                    ├── shell:   [1] ep#0 W badge=2 id=9   (parent 7)
//!                    │     └── hostile: [2] ep#0 W id=12    (parent 9)
//!                    └── hostile: [1] ep#0 W badge=3 id=10  (parent 7)
//!   revoke(id 7) removes ids 9, 10 and 12; id 7 stays.
//! ```
//! Deleting a capability hands its children to its own parent, so a later revoke still finds them.

use crate::TaskId;
use axolotl_abi::{CapType, Error, Rights, CAP_SLOTS};

/// What a capability refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Endpoint(u16),
    /// The right to answer one call: valid while the caller still waits with this token.
    Reply {
        caller: TaskId,
        token: u64,
    },
    Notification(u16),
    /// Control over one task, or over all tasks (`None`).
    Task(Option<TaskId>),
    Memory(u16),
    Interrupt(u8),
    IoPort {
        base: u16,
        len: u16,
    },
    /// A client's session (index into the kernel's session table).
    Session(u16),
    /// Read access to every session SSR of an endpoint.
    SsrView(u16),
    /// One PCI function (index into the kernel's device table): its configuration space
    /// (through the kernel's guard) and its memory BARs.
    Pci(u8),
}

impl Object {
    pub fn cap_type(&self) -> CapType {
        match self {
            Object::Endpoint(_) => CapType::Endpoint,
            Object::Reply { .. } => CapType::Reply,
            Object::Notification(_) => CapType::Notification,
            Object::Task(_) => CapType::Task,
            Object::Memory(_) => CapType::Memory,
            Object::Interrupt(_) => CapType::Interrupt,
            Object::IoPort { .. } => CapType::IoPort,
            Object::Session(_) => CapType::Session,
            Object::SsrView(_) => CapType::SsrView,
            Object::Pci(_) => CapType::Pci,
        }
    }
}

/// One capability. `id` is unique for the life of the kernel; `parent` is 0 for an original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    pub object: Object,
    pub rights: Rights,
    /// Delivered to the receiver with every message sent through this (endpoint) capability.
    pub badge: u64,
    pub id: u64,
    pub parent: u64,
}

impl Capability {
    /// An original capability (no parent).
    pub fn original(object: Object, rights: Rights, badge: u64, id: u64) -> Self {
        Capability { object, rights, badge, id, parent: 0 }
    }

    /// A child with at most the rights in `mask`. A badge may be set only on an unbadged
    /// endpoint capability (a badge, once minted, identifies a client and cannot be changed).
    pub fn derive(&self, mask: Rights, badge: u64, id: u64) -> Result<Capability, Error> {
        if matches!(self.object, Object::Reply { .. } | Object::Session(_) | Object::Pci(_)) {
            // A reply is one-shot: copying it would allow answering twice. A session is one
            // client's state: a copy would let two tasks act as one client. A device has one
            // driver: the kernel quiesces it when that task stops, and no other.
            return Err(Error::WrongType);
        }
        let badge = match (badge, &self.object) {
            (0, _) => self.badge,
            (b, Object::Endpoint(_)) if self.badge == 0 => b,
            _ => return Err(Error::InvalidArgument),
        };
        Ok(Capability { rights: self.rights.intersect(mask), badge, id, parent: self.id, ..*self })
    }
}

/// A task's capability table.
#[derive(Clone)]
pub struct CSpace {
    slots: [Option<Capability>; CAP_SLOTS],
}

impl Default for CSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl CSpace {
    pub const fn new() -> Self {
        CSpace { slots: [None; CAP_SLOTS] }
    }

    #[inline]
    fn index(slot: u64) -> Result<usize, Error> {
        usize::try_from(slot).ok().filter(|&s| s < CAP_SLOTS).ok_or(Error::InvalidSlot)
    }

    /// What `slot` holds, `None` if the slot number is out of range. For code that matches the
    /// capability's object anyway (the IPC fastpath): an empty slot is then one more pattern
    /// that does not match, not a separate check.
    #[inline(always)]
    pub fn slot(&self, slot: u64) -> Option<&Option<Capability>> {
        self.slots.get(usize::try_from(slot).ok()?)
    }

    /// The capability in `slot`, of any type.
    #[inline]
    pub fn get(&self, slot: u64) -> Result<&Capability, Error> {
        self.slots[Self::index(slot)?].as_ref().ok_or(Error::EmptySlot)
    }

    /// The capability in `slot`, checked to be of type `kind` and to carry `rights`.
    #[inline]
    pub fn lookup(&self, slot: u64, kind: CapType, rights: Rights) -> Result<&Capability, Error> {
        let cap = self.get(slot)?;
        if cap.object.cap_type() != kind {
            return Err(Error::WrongType);
        }
        if !cap.rights.contains(rights) {
            return Err(Error::NoRights);
        }
        Ok(cap)
    }

    /// Check that `slot` exists and is empty.
    pub fn check_free(&self, slot: u64) -> Result<(), Error> {
        match self.slots[Self::index(slot)?] {
            Some(_) => Err(Error::SlotOccupied),
            None => Ok(()),
        }
    }

    /// Put `cap` into an empty slot.
    pub fn insert(&mut self, slot: u64, cap: Capability) -> Result<(), Error> {
        self.check_free(slot)?;
        self.slots[slot as usize] = Some(cap);
        Ok(())
    }

    /// Empty `slot` and return what was there (without re-parenting; see [`delete`]).
    pub fn take(&mut self, slot: u64) -> Result<Capability, Error> {
        self.slots[Self::index(slot)?].take().ok_or(Error::EmptySlot)
    }

    /// The first empty slot at or after `from`.
    pub fn first_free(&self, from: usize) -> Option<usize> {
        (from..CAP_SLOTS).find(|&s| self.slots[s].is_none())
    }

    /// Occupied slots with their capabilities.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Capability)> {
        self.slots.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
    }

    /// A new incarnation of the task `me` (this table's owner) keeps its capabilities; those
    /// that name the task itself (`task self` in the manifest) must name the new generation,
    /// or every use of them would find the old, dead incarnation. Capabilities to *other*
    /// tasks keep their generation: they named a task that is gone.
    pub fn follow_own_generation(&mut self, me: TaskId) {
        for c in self.slots.iter_mut().flatten() {
            if let Object::Task(Some(id)) = &mut c.object {
                if id.index == me.index {
                    id.generation = me.generation;
                }
            }
        }
    }

    /// Remove every capability matching `pred`, calling `gone` for each.
    pub fn remove_where(
        &mut self,
        mut pred: impl FnMut(&Capability) -> bool,
        mut gone: impl FnMut(Capability),
    ) {
        for s in self.slots.iter_mut() {
            if s.as_ref().is_some_and(&mut pred) {
                gone(s.take().expect("checked above"));
            }
        }
    }
}

/// Delete the capability in `spaces[task]` at `slot`; its children are re-parented to its parent.
pub fn delete(spaces: &mut [CSpace], task: usize, slot: u64) -> Result<Capability, Error> {
    let cap = spaces.get_mut(task).ok_or(Error::InvalidArgument)?.take(slot)?;
    for space in spaces.iter_mut() {
        for c in space.slots.iter_mut().flatten() {
            if c.parent == cap.id {
                c.parent = cap.parent;
            }
        }
    }
    Ok(cap)
}

/// Delete every capability derived, directly or not, from the capability with id `root`, in every
/// table. `scratch` must hold at least as many ids as there are slots in `spaces` (so it never
/// runs out). `gone(task, cap)` is called for each deleted capability so the kernel can undo
/// what it enabled (unmap memory, close ports). Returns how many were deleted.
pub fn revoke(
    spaces: &mut [CSpace],
    root: u64,
    scratch: &mut [u64],
    mut gone: impl FnMut(usize, Capability),
) -> usize {
    assert!(scratch.len() >= spaces.len() * CAP_SLOTS, "revoke scratch too small");
    // Breadth first: scratch[..done] are processed ids, scratch[done..found] wait to be.
    scratch[0] = root;
    let (mut done, mut found) = (0, 1);
    while done < found {
        let id = scratch[done];
        done += 1;
        for (task, space) in spaces.iter_mut().enumerate() {
            for s in space.slots.iter_mut() {
                if s.is_some_and(|c| c.parent == id) {
                    let c = s.take().expect("checked above");
                    scratch[found] = c.id;
                    found += 1;
                    gone(task, c);
                }
            }
        }
    }
    found - 1
}

#[cfg(test)]
mod generation_tests {
    use super::*;

    #[test]
    fn a_new_incarnation_names_itself_and_only_itself_anew() {
        let mut cs = CSpace::new();
        let me = TaskId { index: 3, generation: 0 };
        let other = TaskId { index: 4, generation: 0 };
        cs.insert(1, Capability::original(Object::Task(Some(me)), Rights::ALL, 0, 1)).unwrap();
        cs.insert(2, Capability::original(Object::Task(Some(other)), Rights::ALL, 0, 2)).unwrap();
        cs.follow_own_generation(TaskId { index: 3, generation: 1 });
        assert_eq!(cs.get(1).unwrap().object, Object::Task(Some(TaskId { index: 3, generation: 1 })));
        assert_eq!(cs.get(2).unwrap().object, Object::Task(Some(other)), "another task's stays stale");
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn ep(id: u64) -> Capability {
        Capability::original(Object::Endpoint(0), Rights::ALL, 0, id)
    }

    #[test]
    fn lookup_checks_slot_type_and_rights() {
        let mut cs = CSpace::new();
        cs.insert(3, ep(1)).unwrap();
        assert_eq!(cs.lookup(CAP_SLOTS as u64, CapType::Endpoint, Rights::NONE), Err(Error::InvalidSlot));
        assert_eq!(cs.lookup(u64::MAX, CapType::Endpoint, Rights::NONE), Err(Error::InvalidSlot));
        assert_eq!(cs.lookup(2, CapType::Endpoint, Rights::NONE), Err(Error::EmptySlot));
        assert_eq!(cs.lookup(3, CapType::Memory, Rights::NONE), Err(Error::WrongType));
        assert!(cs.lookup(3, CapType::Endpoint, Rights::ALL).is_ok());
        let weak = ep(1).derive(Rights::WRITE, 0, 2).unwrap();
        cs.insert(4, weak).unwrap();
        assert_eq!(cs.lookup(4, CapType::Endpoint, Rights::READ), Err(Error::NoRights));
        assert!(cs.lookup(4, CapType::Endpoint, Rights::WRITE).is_ok());
    }

    #[test]
    fn insert_refuses_occupied_slots() {
        let mut cs = CSpace::new();
        cs.insert(0, ep(1)).unwrap();
        assert_eq!(cs.insert(0, ep(2)), Err(Error::SlotOccupied));
        assert_eq!(cs.get(0).unwrap().id, 1);
        assert_eq!(cs.first_free(0), Some(1));
    }

    #[test]
    fn derive_never_adds_rights_and_badges_once() {
        let root = ep(1);
        let child = root.derive(Rights::READ.union(Rights::WRITE), 5, 2).unwrap();
        assert_eq!(child.rights, Rights::READ.union(Rights::WRITE));
        assert_eq!((child.badge, child.parent), (5, 1));
        let grandchild = child.derive(Rights::ALL, 0, 3).unwrap();
        assert_eq!(grandchild.rights, child.rights, "a mask cannot add rights");
        assert_eq!(grandchild.badge, 5, "badge is inherited");
        assert_eq!(child.derive(Rights::ALL, 6, 4), Err(Error::InvalidArgument));
        let mem = Capability::original(Object::Memory(0), Rights::ALL, 0, 9);
        assert_eq!(mem.derive(Rights::ALL, 1, 10), Err(Error::InvalidArgument));
        let reply = Capability::original(
            Object::Reply { caller: TaskId { index: 0, generation: 0 }, token: 1 },
            Rights::WRITE,
            0,
            11,
        );
        assert_eq!(reply.derive(Rights::ALL, 0, 12), Err(Error::WrongType));
        let session = Capability::original(Object::Session(3), Rights::WRITE, 0, 13);
        assert_eq!(session.derive(Rights::ALL, 0, 14), Err(Error::WrongType));
    }

    #[test]
    fn revoke_removes_all_descendants_in_all_tables_but_not_the_root() {
        let mut spaces = [CSpace::new(), CSpace::new(), CSpace::new()];
        let root = ep(1);
        let a = root.derive(Rights::WRITE, 2, 2).unwrap();
        let b = a.derive(Rights::WRITE, 0, 3).unwrap();
        let c = root.derive(Rights::WRITE, 4, 4).unwrap();
        let unrelated = ep(5);
        spaces[0].insert(0, root).unwrap();
        spaces[1].insert(0, a).unwrap();
        spaces[2].insert(7, b).unwrap();
        spaces[2].insert(8, c).unwrap();
        spaces[1].insert(9, unrelated).unwrap();
        let mut scratch = [0u64; 3 * CAP_SLOTS];
        let mut gone = Vec::new();
        let n = revoke(&mut spaces, 1, &mut scratch, |t, cap| gone.push((t, cap.id)));
        assert_eq!(n, 3);
        gone.sort();
        assert_eq!(gone, [(1, 2), (2, 3), (2, 4)]);
        assert!(spaces[0].get(0).is_ok());
        assert!(spaces[1].get(9).is_ok());
        assert_eq!(spaces[2].get(7), Err(Error::EmptySlot));
    }

    #[test]
    fn delete_reparents_children_so_revoke_still_reaches_them() {
        let mut spaces = [CSpace::new(), CSpace::new()];
        let root = ep(1);
        let mid = root.derive(Rights::ALL, 0, 2).unwrap();
        let leaf = mid.derive(Rights::ALL, 0, 3).unwrap();
        spaces[0].insert(0, root).unwrap();
        spaces[1].insert(0, mid).unwrap();
        spaces[1].insert(1, leaf).unwrap();
        assert_eq!(delete(&mut spaces, 1, 0).unwrap().id, 2);
        assert_eq!(spaces[1].get(1).unwrap().parent, 1);
        let mut scratch = [0u64; 2 * CAP_SLOTS];
        assert_eq!(revoke(&mut spaces, 1, &mut scratch, |_, _| {}), 1);
        assert_eq!(spaces[1].get(1), Err(Error::EmptySlot));
        assert_eq!(delete(&mut spaces, 1, 1), Err(Error::EmptySlot));
        assert_eq!(delete(&mut spaces, 5, 1), Err(Error::InvalidArgument));
    }

    #[test]
    fn remove_where_reports_each_removed_capability() {
        let mut cs = CSpace::new();
        cs.insert(1, ep(1)).unwrap();
        cs.insert(2, Capability::original(Object::Memory(0), Rights::ALL, 0, 2)).unwrap();
        let mut gone = Vec::new();
        cs.remove_where(|c| c.object.cap_type() == CapType::Memory, |c| gone.push(c.id));
        assert_eq!(gone, [2]);
        assert_eq!(cs.iter().count(), 1);
    }
}
