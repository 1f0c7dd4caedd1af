//! The file system's on-disk format: `fs_core::Disk` (shared with the libos fs cell, and
//! host-tested there) over the block-store client, with its errors in `fs_api` terms.

use block_api::{Block, BlockDevice};
use fs_api::FsError;

pub use fs_core::{DirEntry, Inode, INODES, MAX_FILE, ROOT};

pub type Result<T> = core::result::Result<T, FsError>;

/// The block-store client as an `fs_core` block device.
struct Dev(BlockDevice);

impl fs_core::BlockDevice for Dev {
    fn blocks(&self) -> Option<u32> {
        self.0.blocks().ok()
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        self.0.read(block, out).is_ok()
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        self.0.write(block, data).is_ok()
    }
}

pub struct Disk(fs_core::Disk<Dev>);

impl Disk {
    /// Attach to the block store; format it if it holds no file system yet.
    pub fn mount(dev: BlockDevice) -> Result<(Disk, bool)> {
        fs_core::Disk::mount(Dev(dev)).map(|(d, fresh)| (Disk(d), fresh)).map_err(FsError::from)
    }

    pub fn inode(&self, i: u16) -> Result<Inode> {
        self.0.inode(i).map_err(FsError::from)
    }

    pub fn put_inode(&self, i: u16, inode: &Inode) -> Result<()> {
        self.0.put_inode(i, inode).map_err(FsError::from)
    }

    /// A free inode number (not yet written).
    pub fn free_inode(&self) -> Result<u16> {
        self.0.free_inode().map_err(FsError::from)
    }

    /// Read from file `inode` at `offset` into `out`; returns bytes read (0 at the end).
    pub fn read_at(&self, inode: &mut Inode, offset: u32, out: &mut [u8]) -> Result<usize> {
        self.0.read_at(inode, offset, out).map_err(FsError::from)
    }

    /// Write `data` into file `ino` at `offset`, growing it; the inode is written back.
    pub fn write_at(&self, ino: u16, inode: &mut Inode, offset: u32, data: &[u8]) -> Result<usize> {
        self.0.write_at(ino, inode, offset, data).map_err(FsError::from)
    }

    /// Free every data block of the file and set its size to 0 (the inode is written back).
    pub fn truncate(&self, ino: u16, inode: &mut Inode) -> Result<()> {
        self.0.truncate(ino, inode).map_err(FsError::from)
    }

    /// Find `name` in directory `dir`: its slot number and entry.
    pub fn lookup(&self, dir: u16, name: &[u8]) -> Result<Option<(usize, DirEntry)>> {
        self.0.lookup(dir, name).map_err(FsError::from)
    }

    /// The `index`-th used entry of directory `dir`.
    pub fn nth_entry(&self, dir: u16, index: u32) -> Result<Option<DirEntry>> {
        self.0.nth_entry(dir, index).map_err(FsError::from)
    }

    /// Add an entry to directory `dir`, reusing a free slot if there is one.
    pub fn link(&self, dir: u16, name: &[u8], ino: u16, kind: u8) -> Result<()> {
        self.0.link(dir, name, ino, kind).map_err(FsError::from)
    }

    /// Clear entry slot `slot` of directory `dir`.
    pub fn unlink(&self, dir: u16, slot: usize) -> Result<()> {
        self.0.unlink(dir, slot).map_err(FsError::from)
    }
}
