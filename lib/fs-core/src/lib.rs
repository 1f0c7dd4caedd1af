//! The file system's on-disk format and the block-level operations on it, over any
//! [`BlockDevice`], and a client's session ([`ClientState`]) with the requests served against
//! it. Both file servers run this code: the microkernel's `servers/fs` over the ramdisk server,
//! the libos fs cell over the ramdisk cell; each keeps only its transport and where the session
//! lives.
//!
//! ```text
//!  block 0        1 ..= 16            17        18 ..
//!  superblock     inode table         bitmap    data blocks
//!                 (128 x 64 bytes)    (1 bit per block)
//! ```
//! An inode has 27 direct block numbers and one indirect block (256 more), so a file holds at
//! most 283 blocks. A directory is a file of 32-byte entries. Inode 1 is the root directory.
//! Nothing is cached: every change is written to the block store before the request is answered.

#![no_std]
#![forbid(unsafe_code)]

use bytemuck::{Pod, Zeroable};
use path::Path;

pub mod path;
mod session;

pub use session::{ClientState, SmallClientState, MAX_FILES, SMALL_MAX_FILES};

pub const BLOCK_SIZE: usize = 512;
pub type Block = [u8; BLOCK_SIZE];
/// Longest name of one path component.
pub const NAME_MAX: usize = 28;
/// Longest path.
pub const PATH_MAX: usize = 96;
/// Open modes, combinable.
pub mod mode {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    /// Every write goes to the end of the file.
    pub const APPEND: u8 = 4;
    /// Create the file if it does not exist.
    pub const CREATE: u8 = 8;
    /// Cut the file to zero length on open.
    pub const TRUNCATE: u8 = 16;
    pub const ALL: u8 = 31;
}

pub const KIND_FILE: u8 = 1;
pub const KIND_DIR: u8 = 2;

/// A store of fixed-size blocks.
pub trait BlockDevice {
    fn blocks(&self) -> Option<u32>;
    fn read(&self, block: u32, out: &mut Block) -> bool;
    fn write(&self, block: u32, data: &Block) -> bool;
}

/// Why an operation on the file system failed: one enum for both file servers and their
/// clients. The microkernel's protocol (`fs-api`) carries it as it is (serde, with the `serde`
/// feature); the libos fs cell hands it back in a plain message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FsError {
    NotFound,
    Exists,
    NotADirectory,
    IsADirectory,
    NotEmpty,
    NoSpace,
    NameTooLong,
    BadPath,
    BadFd,
    TooManyOpen,
    /// The file was not opened for this kind of access.
    BadMode,
    /// The file is open: in the caller's session, or (where the server can see them) in
    /// another client's.
    InUse,
    FileTooLarge,
    /// The client's session state failed its checks and was reset; its open files are gone.
    StateReset,
    /// The block store failed.
    Disk,
    /// The server failed twice on this request (or is held after a crash loop).
    ServerFailed,
    /// The request did not come through a session.
    NoSession,
    /// The request or its answer did not decode.
    Malformed,
    /// The transport failed (the microkernel's IPC, for a reason other than the server's
    /// failure). A unit variant, like every other: a payload would make every `Result` of the
    /// file system wider, and its every operation dearer.
    Ipc,
}

impl FsError {
    pub fn describe(self) -> &'static str {
        use FsError::*;
        match self {
            NotFound => "no such file or directory",
            Exists => "already exists",
            NotADirectory => "not a directory",
            IsADirectory => "is a directory",
            NotEmpty => "directory not empty",
            NoSpace => "no space left",
            NameTooLong => "name too long",
            BadPath => "bad path",
            BadFd => "bad file descriptor",
            TooManyOpen => "too many open files",
            BadMode => "file not opened for that",
            InUse => "file is open",
            FileTooLarge => "file too large",
            StateReset => "session state was broken and has been reset",
            Disk => "block store error",
            ServerFailed => "file server failed",
            NoSession => "not called through a session",
            Malformed => "malformed message",
            Ipc => "IPC failed",
        }
    }
}

impl core::fmt::Display for FsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

const SUPER_MAGIC: u32 = 0x5346_5841; // "AXFS"
const VERSION: u32 = 1;
const INODE_START: u32 = 1;
const INODE_BLOCKS: u32 = 16;
const INODES_PER_BLOCK: usize = BLOCK_SIZE / 64;
pub const INODES: u16 = (INODE_BLOCKS as usize * INODES_PER_BLOCK) as u16;
const BITMAP_BLOCK: u32 = 17;
const DATA_START: u32 = 18;
pub const ROOT: u16 = 1;
const DIRECT: usize = 27;
const PER_INDIRECT: usize = BLOCK_SIZE / 2;
pub const MAX_FILE: u32 = ((DIRECT + PER_INDIRECT) * BLOCK_SIZE) as u32;
const ENTRY: usize = 32;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Super {
    magic: u32,
    version: u32,
    blocks: u32,
    inodes: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub struct Inode {
    pub kind: u8,
    _pad: [u8; 3],
    pub size: u32,
    direct: [u16; DIRECT],
    indirect: u16,
}

const _: () = assert!(core::mem::size_of::<Inode>() == 64);

impl Inode {
    /// An empty inode of `kind` (file or directory).
    pub fn new(kind: u8) -> Inode {
        Inode { kind, ..Default::default() }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct DirEntry {
    pub inode: u16,
    pub kind: u8,
    pub name_len: u8,
    pub name: [u8; NAME_MAX],
}

impl DirEntry {
    pub fn name(&self) -> &[u8] {
        &self.name[..(self.name_len as usize).min(NAME_MAX)]
    }
}

/// One directory entry as a client sees it (what `ls` lists): the same type for every client
/// of both file servers, whatever carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    name: [u8; NAME_MAX],
    name_len: u8,
    /// [`KIND_FILE`] or [`KIND_DIR`].
    pub kind: u8,
    /// Size in bytes (files).
    pub size: u32,
}

impl Entry {
    /// An entry called `name` (cut to `NAME_MAX` bytes, at a character boundary).
    pub fn new(name: &str, kind: u8, size: u32) -> Entry {
        let mut len = name.len().min(NAME_MAX);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut e = Entry { name: [0; NAME_MAX], name_len: len as u8, kind, size };
        e.name[..len].copy_from_slice(&name.as_bytes()[..len]);
        e
    }

    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("?")
    }
}

pub type Result<T> = core::result::Result<T, FsError>;

pub struct Disk<D: BlockDevice> {
    dev: D,
    blocks: u32,
}

impl<D: BlockDevice> Disk<D> {
    /// Attach to the block store; format it if it holds no file system yet.
    pub fn mount(dev: D) -> Result<(Disk<D>, bool)> {
        let blocks = dev.blocks().ok_or(FsError::Disk)?.min(BLOCK_SIZE as u32 * 8);
        let d = Disk { dev, blocks };
        let sb: Super = bytemuck::pod_read_unaligned(&d.read(0)?[..16]);
        if sb.magic == SUPER_MAGIC && sb.version == VERSION && sb.blocks == blocks {
            return Ok((d, false));
        }
        d.format()?;
        Ok((d, true))
    }

    /// Attach to a block store that already holds this file system; never formats (a store
    /// that does not show one — a bent read of its superblock — is an error, not a blank disk).
    pub fn attach(dev: D) -> Result<Disk<D>> {
        let blocks = dev.blocks().ok_or(FsError::Disk)?.min(BLOCK_SIZE as u32 * 8);
        let d = Disk { dev, blocks };
        let sb: Super = bytemuck::pod_read_unaligned(&d.read(0)?[..16]);
        if sb.magic == SUPER_MAGIC && sb.version == VERSION && sb.blocks == blocks {
            return Ok(d);
        }
        Err(FsError::Disk)
    }

    /// The device underneath, given back.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// The same file system seen through `dev` (a device layered over this one's, e.g. one
    /// that holds an operation's writes back until they are checked); nothing is read.
    pub fn on<E: BlockDevice>(&self, dev: E) -> Disk<E> {
        Disk { dev, blocks: self.blocks }
    }

    fn format(&self) -> Result<()> {
        let zero = [0u8; BLOCK_SIZE];
        for b in INODE_START..DATA_START {
            self.write(b, &zero)?;
        }
        let mut bitmap = [0u8; BLOCK_SIZE];
        for b in 0..DATA_START as usize {
            bitmap[b / 8] |= 1 << (b % 8);
        }
        self.write(BITMAP_BLOCK, &bitmap)?;
        self.put_inode(ROOT, &Inode::new(KIND_DIR))?;
        let mut block = [0u8; BLOCK_SIZE];
        let sb = Super { magic: SUPER_MAGIC, version: VERSION, blocks: self.blocks, inodes: INODES as u32 };
        block[..16].copy_from_slice(bytemuck::bytes_of(&sb));
        self.write(0, &block)
    }

    pub fn read(&self, b: u32) -> Result<Block> {
        let mut out = [0u8; BLOCK_SIZE];
        if !self.dev.read(b, &mut out) {
            return Err(FsError::Disk);
        }
        Ok(out)
    }

    pub fn write(&self, b: u32, data: &Block) -> Result<()> {
        if self.dev.write(b, data) {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }

    fn inode_place(i: u16) -> Result<(u32, usize)> {
        if i == 0 || i >= INODES {
            return Err(FsError::NotFound);
        }
        Ok((INODE_START + i as u32 / INODES_PER_BLOCK as u32, (i as usize % INODES_PER_BLOCK) * 64))
    }

    pub fn inode(&self, i: u16) -> Result<Inode> {
        let (b, off) = Self::inode_place(i)?;
        Ok(bytemuck::pod_read_unaligned(&self.read(b)?[off..off + 64]))
    }

    pub fn put_inode(&self, i: u16, inode: &Inode) -> Result<()> {
        let (b, off) = Self::inode_place(i)?;
        let mut block = self.read(b)?;
        block[off..off + 64].copy_from_slice(bytemuck::bytes_of(inode));
        self.write(b, &block)
    }

    /// A free inode number (not yet written).
    pub fn free_inode(&self) -> Result<u16> {
        for i in ROOT + 1..INODES {
            if self.inode(i)?.kind == 0 {
                return Ok(i);
            }
        }
        Err(FsError::NoSpace)
    }

    fn alloc_block(&self) -> Result<u16> {
        let mut bitmap = self.read(BITMAP_BLOCK)?;
        for b in DATA_START..self.blocks {
            let (byte, bit) = (b as usize / 8, b % 8);
            if bitmap[byte] & (1 << bit) == 0 {
                bitmap[byte] |= 1 << bit;
                self.write(b, &[0u8; BLOCK_SIZE])?;
                self.write(BITMAP_BLOCK, &bitmap)?;
                return Ok(b as u16);
            }
        }
        Err(FsError::NoSpace)
    }

    fn free_blocks(&self, blocks: &[u16]) -> Result<()> {
        let mut bitmap = self.read(BITMAP_BLOCK)?;
        for &b in blocks.iter().filter(|&&b| b as u32 >= DATA_START && (b as u32) < self.blocks) {
            bitmap[b as usize / 8] &= !(1 << (b % 8));
        }
        self.write(BITMAP_BLOCK, &bitmap)
    }

    /// The disk block holding block `idx` of the file; allocated if `alloc` and missing.
    fn bmap(&self, inode: &mut Inode, idx: usize, alloc: bool) -> Result<Option<u16>> {
        if idx < DIRECT {
            if inode.direct[idx] == 0 && alloc {
                inode.direct[idx] = self.alloc_block()?;
            }
            return Ok(Some(inode.direct[idx]).filter(|&b| b != 0));
        }
        let idx = idx - DIRECT;
        if idx >= PER_INDIRECT {
            return Err(FsError::FileTooLarge);
        }
        if inode.indirect == 0 {
            if !alloc {
                return Ok(None);
            }
            inode.indirect = self.alloc_block()?;
        }
        let mut table = self.read(inode.indirect as u32)?;
        let entry = u16::from_le_bytes([table[idx * 2], table[idx * 2 + 1]]);
        if entry != 0 || !alloc {
            return Ok(Some(entry).filter(|&b| b != 0));
        }
        let b = self.alloc_block()?;
        table[idx * 2..idx * 2 + 2].copy_from_slice(&b.to_le_bytes());
        self.write(inode.indirect as u32, &table)?;
        Ok(Some(b))
    }

    /// Read from file `inode` at `offset` into `out`; returns bytes read (0 at the end).
    pub fn read_at(&self, inode: &mut Inode, offset: u32, out: &mut [u8]) -> Result<usize> {
        let end = (offset as usize + out.len()).min(inode.size as usize);
        let mut pos = offset as usize;
        while pos < end {
            let (idx, within) = (pos / BLOCK_SIZE, pos % BLOCK_SIZE);
            let n = (BLOCK_SIZE - within).min(end - pos);
            let dst = &mut out[pos - offset as usize..][..n];
            match self.bmap(inode, idx, false)? {
                Some(b) => dst.copy_from_slice(&self.read(b as u32)?[within..within + n]),
                None => dst.fill(0),
            }
            pos += n;
        }
        Ok(end.saturating_sub(offset as usize))
    }

    /// Write `data` into file `ino` at `offset`, growing it; the inode is written back.
    pub fn write_at(&self, ino: u16, inode: &mut Inode, offset: u32, data: &[u8]) -> Result<usize> {
        let end = offset as usize + data.len();
        if end > MAX_FILE as usize {
            return Err(FsError::FileTooLarge);
        }
        let mut pos = offset as usize;
        while pos < end {
            let (idx, within) = (pos / BLOCK_SIZE, pos % BLOCK_SIZE);
            let n = (BLOCK_SIZE - within).min(end - pos);
            let b = self.bmap(inode, idx, true)?.ok_or(FsError::NoSpace)?;
            let mut block = if n == BLOCK_SIZE { [0u8; BLOCK_SIZE] } else { self.read(b as u32)? };
            block[within..within + n].copy_from_slice(&data[pos - offset as usize..][..n]);
            self.write(b as u32, &block)?;
            pos += n;
        }
        inode.size = inode.size.max(end as u32);
        self.put_inode(ino, inode)?;
        Ok(data.len())
    }

    /// Free every data block of the file and set its size to 0 (the inode is written back).
    pub fn truncate(&self, ino: u16, inode: &mut Inode) -> Result<()> {
        let mut blocks = [0u16; DIRECT + PER_INDIRECT + 1];
        let mut n = 0;
        for &b in inode.direct.iter().filter(|&&b| b != 0) {
            blocks[n] = b;
            n += 1;
        }
        if inode.indirect != 0 {
            let table = self.read(inode.indirect as u32)?;
            for pair in table.chunks(2) {
                let b = u16::from_le_bytes([pair[0], pair[1]]);
                if b != 0 {
                    blocks[n] = b;
                    n += 1;
                }
            }
            blocks[n] = inode.indirect;
            n += 1;
        }
        self.free_blocks(&blocks[..n])?;
        inode.direct = [0; DIRECT];
        inode.indirect = 0;
        inode.size = 0;
        self.put_inode(ino, inode)
    }

    /// The `n`-th entry slot of directory `dir` (used or not), or `None` past the end.
    fn entry_at(&self, dir: &mut Inode, n: usize) -> Result<Option<DirEntry>> {
        let mut raw = [0u8; ENTRY];
        if (n + 1) * ENTRY > dir.size as usize {
            return Ok(None);
        }
        self.read_at(dir, (n * ENTRY) as u32, &mut raw)?;
        Ok(Some(bytemuck::pod_read_unaligned(&raw)))
    }

    /// Find `name` in directory `dir`: its slot number and entry.
    pub fn lookup(&self, dir: u16, name: &[u8]) -> Result<Option<(usize, DirEntry)>> {
        let mut d = self.inode(dir)?;
        if d.kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        let mut n = 0;
        while let Some(e) = self.entry_at(&mut d, n)? {
            if e.inode != 0 && e.name() == name {
                return Ok(Some((n, e)));
            }
            n += 1;
        }
        Ok(None)
    }

    /// The `index`-th used entry of directory `dir`.
    pub fn nth_entry(&self, dir: u16, index: u32) -> Result<Option<DirEntry>> {
        let mut d = self.inode(dir)?;
        if d.kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        let (mut n, mut seen) = (0, 0);
        while let Some(e) = self.entry_at(&mut d, n)? {
            if e.inode != 0 {
                if seen == index {
                    return Ok(Some(e));
                }
                seen += 1;
            }
            n += 1;
        }
        Ok(None)
    }

    /// Add an entry to directory `dir`, reusing a free slot if there is one.
    pub fn link(&self, dir: u16, name: &[u8], ino: u16, kind: u8) -> Result<()> {
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        let mut d = self.inode(dir)?;
        let mut slot = 0;
        while let Some(e) = self.entry_at(&mut d, slot)? {
            if e.inode == 0 {
                break;
            }
            slot += 1;
        }
        let mut e = DirEntry { inode: ino, kind, name_len: name.len() as u8, name: [0; NAME_MAX] };
        e.name[..name.len()].copy_from_slice(name);
        self.write_at(dir, &mut d, (slot * ENTRY) as u32, bytemuck::bytes_of(&e)).map(|_| ())
    }

    /// Clear entry slot `slot` of directory `dir`.
    pub fn unlink(&self, dir: u16, slot: usize) -> Result<()> {
        let mut d = self.inode(dir)?;
        self.write_at(dir, &mut d, (slot * ENTRY) as u32, &[0u8; ENTRY]).map(|_| ())
    }

    /// Walk path components down from the root: the inode and kind they name.
    fn walk<'a>(&self, comps: impl Iterator<Item = &'a [u8]>) -> Result<(u16, u8)> {
        let (mut ino, mut kind) = (ROOT, KIND_DIR);
        for c in comps {
            if kind != KIND_DIR {
                return Err(FsError::NotADirectory);
            }
            let (_, e) = self.lookup(ino, c)?.ok_or(FsError::NotFound)?;
            (ino, kind) = (e.inode, e.kind);
        }
        Ok((ino, kind))
    }

    /// The inode and kind that `p` names.
    pub fn resolve(&self, p: &Path) -> Result<(u16, u8)> {
        self.walk(p.components())
    }

    /// The directory that holds what `p` names, and the last name of `p`.
    pub fn parent<'p>(&self, p: &'p Path) -> Result<(u16, &'p [u8])> {
        let (parent, name) = p.split_last().ok_or(FsError::BadPath)?;
        let (ino, kind) = self.walk(path::components(parent))?;
        if kind != KIND_DIR {
            return Err(FsError::NotADirectory);
        }
        Ok((ino, name))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    extern crate std;
    use core::cell::RefCell;
    use std::vec::Vec;

    pub(crate) struct Ram(RefCell<Vec<Block>>);

    impl BlockDevice for Ram {
        fn blocks(&self) -> Option<u32> {
            Some(self.0.borrow().len() as u32)
        }
        fn read(&self, b: u32, out: &mut Block) -> bool {
            self.0.borrow().get(b as usize).map(|blk| *out = *blk).is_some()
        }
        fn write(&self, b: u32, data: &Block) -> bool {
            self.0.borrow_mut().get_mut(b as usize).map(|blk| *blk = *data).is_some()
        }
    }

    /// A freshly formatted file system on 512 blocks of RAM.
    pub(crate) fn disk() -> Disk<Ram> {
        let (d, fresh) = Disk::mount(Ram(RefCell::new(std::vec![[0u8; BLOCK_SIZE]; 512]))).unwrap();
        assert!(fresh);
        d
    }

    #[test]
    fn attach_finds_a_file_system_and_never_formats_a_store_without_one() {
        let blank = Ram(RefCell::new(std::vec![[0u8; BLOCK_SIZE]; 512]));
        assert_eq!(Disk::attach(blank).err(), Some(FsError::Disk));
        let d = disk();
        d.link(ROOT, b"kept", d.free_inode().unwrap(), KIND_FILE).unwrap();
        let again = Disk::attach(d.into_device()).unwrap();
        assert!(again.lookup(ROOT, b"kept").unwrap().is_some());
    }

    #[test]
    fn entry_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(20);
        let e = Entry::new(&long, KIND_FILE, 0);
        assert_eq!(e.name(), "é".repeat(14));
    }

    #[test]
    fn files_grow_read_back_and_truncate() {
        let d = disk();
        let ino = d.free_inode().unwrap();
        let mut inode = Inode::new(KIND_FILE);
        d.put_inode(ino, &inode).unwrap();
        d.link(ROOT, b"f", ino, KIND_FILE).unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        d.write_at(ino, &mut inode, 100, &data).unwrap();
        let mut back = std::vec![0u8; 3100];
        let n = d.read_at(&mut d.inode(ino).unwrap(), 0, &mut back).unwrap();
        assert_eq!(n, 3100);
        assert_eq!(&back[100..], &data[..]);
        assert!(back[..100].iter().all(|&b| b == 0));
        assert_eq!(d.lookup(ROOT, b"f").unwrap().unwrap().1.inode, ino);
        d.truncate(ino, &mut inode).unwrap();
        assert_eq!(d.inode(ino).unwrap().size, 0);
    }

    #[test]
    fn remount_keeps_the_format_and_large_files_use_the_indirect_block() {
        let d = disk();
        let ino = d.free_inode().unwrap();
        let mut inode = Inode::new(KIND_FILE);
        let big = std::vec![7u8; (DIRECT + 3) * BLOCK_SIZE];
        d.write_at(ino, &mut inode, 0, &big).unwrap();
        assert_ne!(inode.indirect, 0);
        assert_eq!(d.write_at(ino, &mut inode, MAX_FILE, b"x"), Err(FsError::FileTooLarge));
        let (d2, fresh) = Disk::mount(d.dev).unwrap();
        assert!(!fresh);
        assert_eq!(d2.inode(ino).unwrap().size, big.len() as u32);
    }
}
