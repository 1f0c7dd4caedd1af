//! The block-store client as the block device under `fs_core::Volume` (the on-disk format, the
//! mount rules and the session operations, shared with the libos fs cell and host-tested
//! there).

use block_api::{Block, BlockDevice};

pub type Volume = fs_core::Volume<Dev>;

pub struct Dev(pub BlockDevice);

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

    fn flush(&self) -> bool {
        self.0.flush().is_ok()
    }
}
