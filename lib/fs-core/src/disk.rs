//! The disk as the read side sees it: reading inodes, files and directories through a
//! [`Store`] — the device itself, or one operation's change set over it (`tx`), which must see
//! its own changes before they are written. Mounting and formatting are `volume`'s.

use crate::journal::Durability;
use crate::layout::*;
use crate::path::{self, Path};
use crate::{BlockDevice, FsError, Result};
use core::cell::Cell;

pub struct Disk<D: BlockDevice> {
    dev: D,
    blocks: u32,
    /// The journal's next sequence number (`journal`).
    seq: Cell<u64>,
    durability: Cell<Durability>,
}

impl<D: BlockDevice> Disk<D> {
    /// The device, sized (the file system spans at most [`MAX_BLOCKS`] of it), and how many
    /// blocks the device has; nothing is read or written.
    pub(crate) fn open(dev: D) -> Result<(Disk<D>, u32)> {
        let device = dev.blocks().ok_or(FsError::Disk)?;
        let blocks = device.min(MAX_BLOCKS);
        if blocks <= DATA_START {
            return Err(FsError::Disk);
        }
        Ok((Disk { dev, blocks, seq: Cell::new(1), durability: Cell::new(Durability::built()) }, device))
    }

    /// The device under the file system.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The same file system seen through `dev` (a device layered over this one's, e.g. one
    /// that holds an operation's writes back until they are checked); nothing is read.
    pub fn on<E: BlockDevice>(&self, dev: E) -> Disk<E> {
        Disk { dev, blocks: self.blocks, seq: self.seq.clone(), durability: self.durability.clone() }
    }

    /// How operations reach the disk: through the journal, unless a crash test asks for one of
    /// the broken ways it must catch (`Durability`).
    #[doc(hidden)]
    pub fn set_durability(&self, d: Durability) {
        self.durability.set(d);
    }

    pub(crate) fn durability(&self) -> Durability {
        self.durability.get()
    }

    /// The journal's sequence number for the next operation.
    pub(crate) fn next_seq(&self) -> u64 {
        let s = self.seq.get();
        self.seq.set(s.wrapping_add(1));
        s
    }

    /// Number operations after `seq` (the one the journal held at mount).
    pub(crate) fn seq_after(&self, seq: u64) {
        self.seq.set(seq.wrapping_add(1));
    }

    pub(crate) fn device_flush(&self) -> bool {
        self.dev.flush()
    }

    /// Blocks the file system spans, metadata included.
    pub fn blocks(&self) -> u32 {
        self.blocks
    }

    /// The device underneath, given back.
    pub fn into_device(self) -> D {
        self.dev
    }

    pub(crate) fn write(&self, b: u32, data: &Block) -> Result<()> {
        if self.dev.write(b, data) {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }
}

impl<D: BlockDevice> Load for Disk<D> {
    fn load(&self, b: u32, out: &mut Block) -> Result<()> {
        if self.dev.read(b, out) {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }

    fn with(&self, b: u32, f: &mut dyn FnMut(&Block)) -> Result<()> {
        if self.dev.read_with(b, f) {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }

    fn with_range(&self, b: u32, range: core::ops::Range<usize>, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        if self.dev.read_range(b, range, f) {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }
}

/// Where blocks are read from: the device, or a change set that must see its own changes.
pub(crate) trait Load {
    fn load(&self, b: u32, out: &mut Block) -> Result<()>;

    /// `f` on block `b`, where it lies if the store keeps it ([`BlockDevice::read_with`]).
    fn with(&self, b: u32, f: &mut dyn FnMut(&Block)) -> Result<()> {
        let mut block = [0u8; BLOCK_SIZE];
        self.load(b, &mut block)?;
        f(&block);
        Ok(())
    }

    /// `f` on bytes `range` of block `b` ([`BlockDevice::read_range`]; `range` lies within a
    /// block: the callers make it so).
    fn with_range(&self, b: u32, range: core::ops::Range<usize>, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut ok = false;
        self.with(b, &mut |block| {
            if let Some(bytes) = block.get(range.clone()) {
                ok = true;
                f(bytes);
            }
        })?;
        if ok {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }
}

/// Reading inodes, files and directories from any [`Load`]. The directory code (scan, look
/// up, walk) exists once, over a `&dyn Load`, rather than once for the device and once for a
/// change set: the file server's image, which every restart loads again, stays small. The
/// few functions a file read runs (an inode, a block of the file) are compiled for each
/// store, so that reading a file makes no indirect call.
pub(crate) trait Store: Load + Sized {
    fn inode(&self, i: u16) -> Result<Inode> {
        inode(self, i)
    }

    /// The disk block holding block `idx` of a file, or `None` for a hole.
    fn block_of(&self, inode: &Inode, idx: usize) -> Result<Option<u16>> {
        block_of(self, inode, idx)
    }

    /// Read from a file at `offset` into `out`; returns bytes read (0 at the end).
    fn read_at(&self, inode: &Inode, offset: u32, out: &mut [u8]) -> Result<usize> {
        read_at(self, inode, offset, out)
    }

    /// Call `visit` on every entry slot of directory `dir`, used or free, in order, until it
    /// returns `Some`; that value, or `None` if it never did.
    fn scan<T>(
        &self,
        dir: &Inode,
        mut visit: impl FnMut(usize, &DirEntry) -> Option<T>,
    ) -> Result<Option<T>> {
        let mut found = None;
        scan(self, dir, &mut |slot, e| {
            found = visit(slot, e);
            found.is_some()
        })?;
        Ok(found)
    }

    /// The directory inode `dir`, or `NotADirectory`.
    fn dir(&self, dir: u16) -> Result<Inode> {
        let d = inode(self, dir)?;
        if d.kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        Ok(d)
    }

    /// Find `name` in directory `dir`: its slot number and entry.
    fn lookup(&self, dir: u16, name: &[u8]) -> Result<Option<(usize, DirEntry)>> {
        lookup(self, dir, name)
    }

    /// The `index`-th used entry of directory `dir`.
    fn nth_entry(&self, dir: u16, index: u32) -> Result<Option<DirEntry>> {
        let mut seen = 0;
        self.scan(&self.dir(dir)?, |_, e| {
            if e.inode == 0 {
                return None;
            }
            seen += 1;
            (seen > index).then_some(*e)
        })
    }

    /// The inode and kind that `p` names.
    fn resolve(&self, p: &Path) -> Result<(u16, u8)> {
        walk(self, p.as_bytes())
    }

    /// The directory that holds what `p` names, and the last name of `p`.
    fn parent<'p>(&self, p: &'p Path) -> Result<(u16, &'p [u8])> {
        let (parent, name) = p.split_last().ok_or(FsError::BadPath)?;
        let (ino, kind) = walk(self, parent)?;
        if kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        Ok((ino, name))
    }
}

impl<T: Load> Store for T {}

fn inode<S: Load + ?Sized>(s: &S, i: u16) -> Result<Inode> {
    if i == 0 || i >= INODES {
        return Err(FsError::NotFound);
    }
    let mut inode = Inode::default();
    let (block, at) = Inode::place(i);
    s.with_range(block, at..at + INODE_SIZE, &mut |bytes| inode = bytemuck::pod_read_unaligned(bytes))?;
    Ok(inode)
}

fn block_of<S: Load + ?Sized>(s: &S, inode: &Inode, idx: usize) -> Result<Option<u16>> {
    if idx < DIRECT {
        return Ok(Some(inode.direct[idx]).filter(|&b| b != 0));
    }
    let idx = idx - DIRECT;
    if idx >= PER_INDIRECT || inode.indirect == 0 {
        return Ok(None);
    }
    let mut at = 0;
    s.with_range(inode.indirect as u32, idx * 2..idx * 2 + 2, &mut |entry| {
        at = u16::from_le_bytes([entry[0], entry[1]])
    })?;
    Ok(Some(at).filter(|&b| b != 0))
}

fn read_at<S: Load + ?Sized>(s: &S, inode: &Inode, offset: u32, out: &mut [u8]) -> Result<usize> {
    let end = (offset as usize + out.len()).min(inode.size as usize);
    let mut pos = offset as usize;
    while pos < end {
        let (idx, within) = (pos / BLOCK_SIZE, pos % BLOCK_SIZE);
        let n = (BLOCK_SIZE - within).min(end - pos);
        let dst = &mut out[pos - offset as usize..][..n];
        match block_of(s, inode, idx)? {
            Some(b) => s.with_range(b as u32, within..within + n, &mut |bytes| dst.copy_from_slice(bytes))?,
            None => dst.fill(0),
        }
        pos += n;
    }
    Ok(end.saturating_sub(offset as usize))
}

/// [`Store::scan`] without its type parameter: `visit` says whether to stop.
fn scan(s: &dyn Load, dir: &Inode, visit: &mut dyn FnMut(usize, &DirEntry) -> bool) -> Result<()> {
    let slots = dir.size as usize / ENTRY;
    let mut stop = false;
    for first in (0..slots).step_by(ENTRIES_PER_BLOCK) {
        let mut each = |block: &Block| {
            stop = (first..slots.min(first + ENTRIES_PER_BLOCK))
                .any(|slot| visit(slot, &DirEntry::from_block(block, slot - first)));
        };
        match block_of(s, dir, first / ENTRIES_PER_BLOCK)? {
            Some(b) => s.with(b as u32, &mut each)?,
            None => each(&[0; BLOCK_SIZE]),
        }
        if stop {
            break;
        }
    }
    Ok(())
}

fn lookup(s: &dyn Load, dir: u16, name: &[u8]) -> Result<Option<(usize, DirEntry)>> {
    let d = inode(s, dir)?;
    if d.kind != KIND_DIR {
        return Err(FsError::NotADirectory);
    }
    let mut found = None;
    scan(s, &d, &mut |slot, e| {
        if e.inode != 0 && e.name() == name {
            found = Some((slot, *e));
        }
        found.is_some()
    })?;
    Ok(found)
}

/// Walk the names of `path` down from the root: the inode and kind they name.
fn walk(s: &dyn Load, path: &[u8]) -> Result<(u16, u8)> {
    let (mut ino, mut kind) = (ROOT, KIND_DIR);
    for c in path::components(path) {
        if kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        let (_, e) = lookup(s, ino, c)?.ok_or(FsError::NotFound)?;
        (ino, kind) = (e.inode, e.kind);
    }
    Ok((ino, kind))
}
