//! The on-disk format: where each kind of block lives, and the records stored in them.
//!
//! ```text
//!  block 0        1 ..= 16            17        18               19 ..= 34        35 ..
//!  superblock     inode table         bitmap    journal header   journal slots    data blocks
//!                 (128 x 64 bytes)    (1 bit per block)          (see `journal`)
//! ```
//! An inode has 27 direct block numbers and one indirect block (256 more), so a file holds at
//! most 283 blocks. A directory is a file of 32-byte entries. Inode 1 is the root directory;
//! inode 0 is never used, so 0 means "none" in an entry and in a block pointer.

use bytemuck::{Pod, Zeroable};

pub const BLOCK_SIZE: usize = 512;
pub type Block = [u8; BLOCK_SIZE];
/// Longest name of one path component.
pub const NAME_MAX: usize = 28;

pub const KIND_FILE: u8 = 1;
pub const KIND_DIR: u8 = 2;

pub(crate) const SUPER_MAGIC: u32 = 0x5346_5841; // "AXFS"
/// Version 1 disks carry inode generations in what was padding (zero on a disk that never had
/// them, which is a valid generation). Version 2 added the journal, before the data blocks: a
/// version 1 disk is refused (`OtherFormat`) until formatted.
pub(crate) const VERSION: u32 = 2;
pub(crate) const INODE_START: u32 = 1;
pub(crate) const INODE_BLOCKS: u32 = 16;
/// Bytes of one inode on the disk.
pub(crate) const INODE_SIZE: usize = 64;
pub(crate) const INODES_PER_BLOCK: usize = BLOCK_SIZE / INODE_SIZE;
/// Inode numbers are below this (0 is never used, 1 is the root).
pub const INODES: u16 = (INODE_BLOCKS as usize * INODES_PER_BLOCK) as u16;
pub(crate) const BITMAP_BLOCK: u32 = 17;
pub(crate) const JOURNAL_HEAD: u32 = 18;
pub(crate) const JOURNAL_SLOTS: u32 = 16;
pub(crate) const DATA_START: u32 = JOURNAL_HEAD + 1 + JOURNAL_SLOTS;
/// The bitmap is one block: the most blocks a disk can have.
pub(crate) const MAX_BLOCKS: u32 = BLOCK_SIZE as u32 * 8;
pub const ROOT: u16 = 1;
pub(crate) const DIRECT: usize = 27;
pub(crate) const PER_INDIRECT: usize = BLOCK_SIZE / 2;
/// Most blocks one file maps.
pub(crate) const FILE_BLOCKS: usize = DIRECT + PER_INDIRECT;
pub const MAX_FILE: u32 = (FILE_BLOCKS * BLOCK_SIZE) as u32;
pub(crate) const ENTRY: usize = 32;
pub(crate) const ENTRIES_PER_BLOCK: usize = BLOCK_SIZE / ENTRY;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct Super {
    pub magic: u32,
    pub version: u32,
    pub blocks: u32,
    pub inodes: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default, PartialEq, Eq, Debug)]
pub(crate) struct Inode {
    /// 0 while free, else [`KIND_FILE`] or [`KIND_DIR`].
    pub kind: u8,
    pub _pad: u8,
    /// Goes up each time the inode is freed, so an open file's descriptor (which records it)
    /// can tell the file it opened from a later one that reuses the number.
    pub generation: u16,
    pub size: u32,
    pub direct: [u16; DIRECT],
    pub indirect: u16,
}

const _: () = assert!(core::mem::size_of::<Inode>() == INODE_SIZE);

impl Inode {
    /// Where inode `i` lives: its block of the table and its offset there.
    pub fn place(i: u16) -> (u32, usize) {
        (INODE_START + i as u32 / INODES_PER_BLOCK as u32, (i as usize % INODES_PER_BLOCK) * INODE_SIZE)
    }

    pub fn from_block(block: &Block, i: u16) -> Inode {
        let off = Self::place(i).1;
        bytemuck::pod_read_unaligned(&block[off..off + 64])
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct DirEntry {
    /// 0 in a free slot.
    pub inode: u16,
    pub kind: u8,
    pub name_len: u8,
    pub name: [u8; NAME_MAX],
}

impl DirEntry {
    pub fn name(&self) -> &[u8] {
        &self.name[..(self.name_len as usize).min(NAME_MAX)]
    }

    /// Entry `slot` of a directory block (`slot < ENTRIES_PER_BLOCK`).
    pub(crate) fn from_block(block: &Block, slot: usize) -> DirEntry {
        bytemuck::pod_read_unaligned(&block[slot * ENTRY..(slot + 1) * ENTRY])
    }
}

const _: () = assert!(core::mem::size_of::<DirEntry>() == ENTRY);

/// Whether bit `b` of a bitmap block is set.
pub(crate) fn bit(map: &Block, b: u32) -> bool {
    map[b as usize / 8] & (1 << (b % 8)) != 0
}

pub(crate) fn set_bit(map: &mut Block, b: u32, on: bool) {
    if on {
        map[b as usize / 8] |= 1 << (b % 8);
    } else {
        map[b as usize / 8] &= !(1 << (b % 8));
    }
}
