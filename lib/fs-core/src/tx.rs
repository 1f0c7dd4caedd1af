//! One operation's changes to the disk, held in memory until it has done everything that can
//! fail, then written in one go ([`Tx::commit`]) through the journal (`journal`): whole after
//! a power cut, or not at all. An operation that fails drops its `Tx`, and the disk is as it
//! was: not a block, an inode, an entry or a size changed.
//!
//! Before the journal, commit wrote in place, in the order below, which kept the disk
//! consistent between any two writes *in order* — but a disk may reorder writes between two
//! flushes, and then it did not (`Durability::InPlace` keeps that way for the crash tests):
//!
//! Metadata (inode-table blocks, directory blocks, indirect tables) is changed in a few cached
//! copies; the allocation bitmap is kept in memory as it was (`before`) and as it will be
//! (`now`); a file's new bytes are kept as a reference to the caller's data and written
//! straight to their blocks at commit. Commit writes in an order that keeps the disk
//! consistent between any two writes, so a failing device or a server that dies part-way
//! can leak a block or an inode (`fsck` reports it) but never hand one out twice or leave an
//! entry naming a free inode:
//!
//! ```text
//!  1  new blocks (data and metadata) and file data in place   nothing points at new ones yet
//!  2  bitmap with the new blocks marked (before | now)         new blocks in use, unreached
//!  3  changed metadata, in the order the operation changed it  an inode before the entry that
//!                                                              names it; an entry cleared
//!                                                              before its inode is freed
//!  4  file data in blocks this operation freed and took again  only after the inode that
//!                                                              owned them let go (step 3)
//!  5  bitmap with the freed blocks cleared (now)               nothing points at them any more
//! ```

use crate::disk::{Disk, Load, Store};
use crate::journal::{Durability, SLOTS};
use crate::layout::*;
use crate::{BlockDevice, FsError, Result};

/// Metadata blocks one operation may change. The most any does is 5: creating a file with
/// content (`Session::put`) changes the new inode's table block, the parent's inode block, the
/// block of the new entry, the parent's indirect table and the file's indirect table.
const CACHED: usize = 6;

struct Cached {
    at: u32,
    data: Block,
}

/// File bytes to write at commit: `bytes` at `offset`, into the blocks listed for the file's
/// block indices `first..`.
struct Data<'a> {
    offset: u32,
    bytes: &'a [u8],
    first: usize,
    blocks: [u16; FILE_BLOCKS],
}

/// The allocation bitmap as it was and as this operation leaves it; `taken` marks the blocks
/// it allocated.
struct Bitmaps {
    before: Block,
    now: Block,
    taken: Block,
}

pub(crate) struct Tx<'d, 'a, D: BlockDevice> {
    disk: &'d Disk<D>,
    /// In the order the operation first changed them. A `heapless::Vec`, so that a new `Tx`
    /// writes a length rather than zeroing 3 KB (an array of `Option`s was zeroed whole:
    /// 411 instructions of every write, traced).
    cache: heapless::Vec<Cached, CACHED>,
    /// The bitmaps once loaded, the file bytes once given: each at most one, in a
    /// `heapless::Vec` for the same reason (two `Option`s of 1.5 KB each were zeroed whole by
    /// `Tx::new`: 410 instructions of every write, traced).
    bitmaps: heapless::Vec<Bitmaps, 1>,
    data: heapless::Vec<Data<'a>, 1>,
}

impl<D: BlockDevice> Load for Tx<'_, '_, D> {
    fn load(&self, b: u32, out: &mut Block) -> Result<()> {
        match self.cached().find(|c| c.at == b) {
            Some(c) => {
                *out = c.data;
                Ok(())
            }
            None => self.disk.load(b, out),
        }
    }

    fn with(&self, b: u32, f: &mut dyn FnMut(&Block)) -> Result<()> {
        match self.cached().find(|c| c.at == b) {
            Some(c) => {
                f(&c.data);
                Ok(())
            }
            None => self.disk.with(b, f),
        }
    }
}

impl<'d, 'a, D: BlockDevice> Tx<'d, 'a, D> {
    pub fn new(disk: &'d Disk<D>) -> Self {
        Tx { disk, cache: heapless::Vec::new(), bitmaps: heapless::Vec::new(), data: heapless::Vec::new() }
    }

    fn cached(&self) -> impl Iterator<Item = &Cached> {
        self.cache.iter()
    }

    /// Block `b`'s cached copy, to change: read on first use, or zeros if this operation
    /// allocated it (a new block's old contents mean nothing).
    fn block_mut(&mut self, b: u32) -> Result<&mut Block> {
        let i = match self.cache.iter().position(|c| c.at == b) {
            Some(i) => i,
            None => {
                let mut data = [0u8; BLOCK_SIZE];
                if !self.bitmaps.first().is_some_and(|m| bit(&m.taken, b)) {
                    self.disk.load(b, &mut data)?;
                }
                // Full cannot happen: the operations change at most `CACHED` blocks (see
                // there). An error rather than a panic, so a mistake is one failed request,
                // not a crash loop.
                self.cache.push(Cached { at: b, data }).map_err(|_| FsError::Disk)?;
                self.cache.len() - 1
            }
        };
        Ok(&mut self.cache[i].data)
    }

    fn bitmaps(&mut self) -> Result<&mut Bitmaps> {
        if self.bitmaps.is_empty() {
            let mut before = [0u8; BLOCK_SIZE];
            self.disk.load(BITMAP_BLOCK, &mut before)?;
            let loaded = Bitmaps { before, now: before, taken: [0; BLOCK_SIZE] };
            self.bitmaps.push(loaded).map_err(|_| FsError::Disk)?;
        }
        self.bitmaps.first_mut().ok_or(FsError::Disk)
    }

    /// Allocate a block that was free before this operation began; with `reuse`, one this
    /// operation freed will do if there is no other. Metadata never reuses: a block freed
    /// here may still be what the old inode points at until commit's step 3, and new metadata
    /// is written before that.
    fn alloc(&mut self, reuse: bool) -> Result<u16> {
        let blocks = self.disk.blocks();
        let m = self.bitmaps()?;
        let free = |m: &Bitmaps, b: u32| !bit(&m.now, b) && (reuse || !bit(&m.before, b));
        let fresh = (DATA_START..blocks).find(|&b| !bit(&m.now, b) && !bit(&m.before, b));
        let b = fresh.or_else(|| (DATA_START..blocks).find(|&b| free(m, b))).ok_or(FsError::NoSpace)?;
        set_bit(&mut m.now, b, true);
        set_bit(&mut m.taken, b, true);
        Ok(b as u16)
    }

    /// Write inode `i` (only if it changed).
    pub fn put_inode(&mut self, i: u16, inode: &Inode) -> Result<()> {
        if self.inode(i)? == *inode {
            return Ok(());
        }
        let (b, off) = Inode::place(i);
        self.block_mut(b)?[off..off + 64].copy_from_slice(bytemuck::bytes_of(inode));
        Ok(())
    }

    /// Take a free inode for a new, empty file or directory of `kind`; keeps its generation.
    pub fn new_inode(&mut self, kind: u8) -> Result<u16> {
        let mut block = [0u8; BLOCK_SIZE];
        for t in 0..INODE_BLOCKS {
            self.load(INODE_START + t, &mut block)?;
            for k in 0..INODES_PER_BLOCK as u16 {
                let i = (t as u16) * INODES_PER_BLOCK as u16 + k;
                let old = Inode::from_block(&block, i);
                if i > ROOT && old.kind == 0 {
                    self.put_inode(i, &Inode { kind, generation: old.generation, ..Default::default() })?;
                    return Ok(i);
                }
            }
        }
        Err(FsError::NoInodes)
    }

    /// Free inode `i` and every block it holds; its generation moves on, so a descriptor
    /// still naming it no longer matches.
    pub fn free_inode(&mut self, i: u16, inode: &mut Inode) -> Result<()> {
        self.truncate(i, inode)?;
        let freed = Inode { generation: inode.generation.wrapping_add(1), ..Default::default() };
        self.put_inode(i, &freed)
    }

    /// Free every block of the file and set its size to 0.
    pub fn truncate(&mut self, ino: u16, inode: &mut Inode) -> Result<()> {
        if inode.indirect != 0 || inode.direct.iter().any(|&b| b != 0) {
            // The indirect table's entries (zeros if there is none), then the table itself.
            let mut table = [0u8; BLOCK_SIZE];
            if inode.indirect != 0 {
                self.load(inode.indirect as u32, &mut table)?;
            }
            let entries = table.chunks(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]]));
            let blocks = self.disk.blocks();
            let m = self.bitmaps()?;
            for b in inode.direct.into_iter().chain(entries).chain([inode.indirect]) {
                if (DATA_START..blocks).contains(&(b as u32)) {
                    set_bit(&mut m.now, b as u32, false);
                }
            }
        }
        *inode = Inode { kind: inode.kind, generation: inode.generation, ..Default::default() };
        self.put_inode(ino, inode)
    }

    /// The disk block for block `idx` of the file, allocated if missing (`data`: a file data
    /// block, which may reuse a block freed by this operation).
    fn map(&mut self, inode: &mut Inode, idx: usize, data: bool) -> Result<u16> {
        if idx < DIRECT {
            if inode.direct[idx] == 0 {
                inode.direct[idx] = self.alloc(data)?;
            }
            return Ok(inode.direct[idx]);
        }
        let k = idx - DIRECT;
        if k >= PER_INDIRECT {
            return Err(FsError::FileTooLarge);
        }
        if inode.indirect == 0 {
            inode.indirect = self.alloc(false)?;
            self.block_mut(inode.indirect as u32)?; // a new table: zeros, written at commit
        }
        let at = inode.indirect as u32;
        // Read, not changed yet: a table only looked up is not written back.
        if let Some(b) = self.block_of(inode, idx)? {
            return Ok(b);
        }
        let b = self.alloc(data)?;
        self.block_mut(at)?[k * 2..k * 2 + 2].copy_from_slice(&b.to_le_bytes());
        Ok(b)
    }

    /// Write `bytes` into file `ino` at `offset`, growing it: its blocks are allocated now,
    /// the bytes written at commit. One per operation.
    pub fn write_file(&mut self, ino: u16, inode: &mut Inode, offset: u32, bytes: &'a [u8]) -> Result<()> {
        let end = offset as usize + bytes.len();
        if end > MAX_FILE as usize {
            return Err(FsError::FileTooLarge);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if !self.data.is_empty() {
            return Err(FsError::Disk); // cannot happen: each operation writes one file once
        }
        let first = offset as usize / BLOCK_SIZE;
        let mut data = Data { offset, bytes, first, blocks: [0; FILE_BLOCKS] };
        for idx in first..=(end - 1) / BLOCK_SIZE {
            data.blocks[idx - first] = self.map(inode, idx, true)?;
        }
        inode.size = inode.size.max(end as u32);
        self.put_inode(ino, inode)?;
        self.data.push(data).map_err(|_| FsError::Disk)
    }

    /// Write directory entry `e` into slot `slot` of directory `dir`, growing it if the slot is
    /// past its end.
    pub fn put_entry(&mut self, dir: u16, d: &mut Inode, slot: usize, e: &DirEntry) -> Result<()> {
        let at = slot * ENTRY;
        if at + ENTRY > MAX_FILE as usize {
            return Err(FsError::FileTooLarge);
        }
        let b = self.map(d, at / BLOCK_SIZE, false)? as u32;
        let within = at % BLOCK_SIZE;
        self.block_mut(b)?[within..within + ENTRY].copy_from_slice(bytemuck::bytes_of(e));
        d.size = d.size.max((at + ENTRY) as u32);
        self.put_inode(dir, d)
    }

    /// Add an entry naming `ino` to directory `dir`, in its first free slot.
    pub fn link(&mut self, dir: u16, name: &[u8], ino: u16, kind: u8) -> Result<()> {
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        let mut d = self.dir(dir)?;
        let slot = self.scan(&d, |slot, e| (e.inode == 0).then_some(slot))?;
        let slot = slot.unwrap_or(d.size as usize / ENTRY);
        let mut e = DirEntry { inode: ino, kind, name_len: name.len() as u8, name: [0; NAME_MAX] };
        e.name[..name.len()].copy_from_slice(name);
        self.put_entry(dir, &mut d, slot, &e)
    }

    /// Clear entry slot `slot` of directory `dir`.
    pub fn unlink(&mut self, dir: u16, slot: usize) -> Result<()> {
        let mut d = self.dir(dir)?;
        self.put_entry(dir, &mut d, slot, &bytemuck::Zeroable::zeroed())
    }

    /// Write everything, through the journal: after a crash the operation is on the disk whole
    /// or not at all (`journal`). File data going into blocks that were free before this
    /// operation is written straight to them first, and flushed: nothing on the disk points at
    /// them until the journal's metadata lands (ext4's "ordered" mode), so only metadata and
    /// data that overwrites blocks in use pass through the journal. An error here is the
    /// device's.
    ///
    /// (Borrowed, not taken: a `Tx` is 5 KiB, and moving it into the call was a third of the
    /// change set's cost of a write, traced. Each caller commits once and then drops it.)
    pub fn commit(&self) -> Result<()> {
        if self.disk.durability() == Durability::InPlace {
            return self.commit_in_place();
        }
        // Filled as they come, never zeroed first (an array of SLOTS images was 7.5 KiB to
        // clear on every write).
        let mut images: heapless::Vec<(u32, Block), SLOTS> = heapless::Vec::new();
        let mut direct = false;
        let m = self.bitmaps.first();
        let fresh = |b: u32| m.is_some_and(|m| bit(&m.taken, b) && !bit(&m.before, b));
        let mut push = |at: u32, data: &Block| -> Result<()> {
            // Cannot overflow for a write of 2 KiB or less (`journal::SLOTS`); `Session::write`
            // cuts longer ones. An error rather than a panic: one failed request.
            images.push((at, *data)).map_err(|_| FsError::Disk)
        };
        self.each_data_block(|b, block| {
            if fresh(b) {
                direct = true;
                self.disk.write(b, block)
            } else {
                push(b, block)
            }
        })?;
        for c in self.cached() {
            push(c.at, &c.data)?;
        }
        if let Some(m) = m {
            if m.now != m.before {
                push(BITMAP_BLOCK, &m.now)?;
            }
        }
        if direct && !self.disk.device_flush() {
            return Err(FsError::Disk);
        }
        self.disk.commit_images(&images)
    }

    /// Each block of file data this operation writes, as it will be (merged with what a block
    /// the file had holds where the write does not cover it), in file order. Reads the partly
    /// covered old blocks first, so that a failed read changes nothing.
    fn each_data_block(&self, mut f: impl FnMut(u32, &Block) -> Result<()>) -> Result<()> {
        let Some(d) = self.data.first() else { return Ok(()) };
        let m = self.bitmaps.first();
        let taken = |b: u32| m.is_some_and(|m| bit(&m.taken, b));
        let count = (d.offset as usize + d.bytes.len() - 1) / BLOCK_SIZE - d.first + 1;
        let none = [0u8; BLOCK_SIZE];
        let mut edges = [(0u16, none), (0u16, none)];
        // The first and the last block (one block is both: read once).
        for (i, idx) in [0, count - 1].into_iter().take(count.min(2)).enumerate() {
            let b = d.blocks[idx];
            if !taken(b as u32) && !Self::covers(d, d.first + idx) {
                edges[i].0 = b;
                self.disk.load(b as u32, &mut edges[i].1)?;
            }
        }
        for (i, &b) in d.blocks[..count].iter().enumerate() {
            let start = (d.first + i) * BLOCK_SIZE;
            let mut block = edges.iter().find(|e| e.0 == b && b != 0).map_or(none, |e| e.1);
            let lo = (d.offset as usize).max(start);
            let hi = (d.offset as usize + d.bytes.len()).min(start + BLOCK_SIZE);
            block[lo - start..hi - start]
                .copy_from_slice(&d.bytes[lo - d.offset as usize..hi - d.offset as usize]);
            f(b as u32, &block)?;
        }
        Ok(())
    }

    /// Write everything in place, in the order the module comment gives, with no journal: how
    /// the file system committed before it had one, kept for the crash tests to show what the
    /// journal fixes (`Durability::InPlace`). An error here is the device's.
    fn commit_in_place(&self) -> Result<()> {
        let disk = self.disk;
        let none = [0u8; BLOCK_SIZE];
        let m = self.bitmaps.first();
        let taken = |b: u32| m.is_some_and(|m| bit(&m.taken, b));
        let reused = |b: u32| m.is_some_and(|m| bit(&m.taken, b) && bit(&m.before, b));
        // (Each pass reads the partly written old blocks first, so a failed read there changes
        // nothing; the second pass reads them again.)
        let write_data = |reused_blocks: bool| -> Result<()> {
            self.each_data_block(
                |b, block| if reused(b) == reused_blocks { disk.write(b, block) } else { Ok(()) },
            )
        };
        // 1: new blocks, and file data that goes where it was.
        write_data(false)?;
        for c in self.cached().filter(|c| taken(c.at)) {
            disk.write(c.at, &c.data)?;
        }
        // 2: the new blocks marked in use.
        let mut marked = none;
        if let Some(m) = m {
            for (i, byte) in marked.iter_mut().enumerate() {
                *byte = m.before[i] | m.now[i];
            }
            if marked != m.before {
                disk.write(BITMAP_BLOCK, &marked)?;
            }
        }
        // 3: the rest of the metadata, in the order the operation changed it.
        for c in self.cached().filter(|c| !taken(c.at)) {
            disk.write(c.at, &c.data)?;
        }
        // 4: data in blocks freed and taken again.
        write_data(true)?;
        // 5: the freed blocks released.
        if let Some(m) = m {
            if m.now != marked {
                disk.write(BITMAP_BLOCK, &m.now)?;
            }
        }
        if disk.device_flush() {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }

    /// Whether the write covers all of file block `idx`.
    fn covers(d: &Data<'_>, idx: usize) -> bool {
        let start = idx * BLOCK_SIZE;
        d.offset as usize <= start && d.offset as usize + d.bytes.len() >= start + BLOCK_SIZE
    }
}
