//! The block store the file system lives on: the disk when one is attached (the disk cell, plain
//! blocks in the microkernel's format), else the RAM disk cell (two tagged copies). Both are
//! checked by their clients (`cell_virtio_blk::Blocks`, `cell_ramdisk::Blocks`), in the ways
//! each crate documents.

use algo::mirror::Vouched;
use fs_core::{Block, BlockDevice, BLOCK_SIZE};

#[derive(Clone, Copy)]
pub(crate) enum Store<'t> {
    Ram(cell_ramdisk::Blocks),
    Disk(cell_virtio_blk::Blocks<'t>),
}

impl Store<'_> {
    /// What the log calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Store::Ram(_) => "the RAM disk",
            Store::Disk(_) => "the disk",
        }
    }

    /// Block `block` with the tag that vouches for it from now on (see `twice`): the RAM disk's
    /// mirror tag, or for the disk one checked against the tag of this boot.
    pub fn read_vouched(&self, block: u32) -> Option<Vouched<BLOCK_SIZE>> {
        match self {
            Store::Ram(r) => r.read_vouched(block),
            Store::Disk(d) => d.read_vouched(block),
        }
    }
}

impl BlockDevice for Store<'_> {
    fn blocks(&self) -> Option<u32> {
        match self {
            Store::Ram(r) => r.blocks(),
            Store::Disk(d) => d.blocks(),
        }
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        match self {
            Store::Ram(r) => r.read(block, out),
            Store::Disk(d) => d.read(block, out),
        }
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        match self {
            Store::Ram(r) => r.write(block, data),
            Store::Disk(d) => d.write(block, data),
        }
    }

    fn flush(&self) -> bool {
        match self {
            Store::Ram(r) => r.flush(),
            Store::Disk(d) => d.flush(),
        }
    }
}
