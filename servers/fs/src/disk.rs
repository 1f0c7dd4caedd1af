//! The block-store client as the block device under `fs_core::Volume` (the on-disk format, the
//! mount rules and the session operations, shared with the libos fs cell and host-tested
//! there).

use block_api::{Block, BlockDevice};

pub type Volume = fs_core::Volume<Dev>;

pub struct Dev(pub BlockDevice);

/// Ask twice before calling a block operation failed. A store that answers an error for a
/// request it should have served (a fault bent the request inside the driver: a block number
/// out of range, a message that no longer decodes) serves it the second time; one that fails
/// twice has a real problem, and the file operation fails with `Disk`, changing nothing.
/// Reads and writes of whole blocks are idempotent, so asking again is harmless.
fn twice<T>(mut op: impl FnMut() -> Result<T, block_api::BlockError>) -> Option<T> {
    match op() {
        Ok(v) => Some(v),
        Err(_) => op().ok(),
    }
}

impl fs_core::BlockDevice for Dev {
    fn blocks(&self) -> Option<u32> {
        twice(|| self.0.blocks())
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        twice(|| self.0.read(block, out)).is_some()
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        twice(|| self.0.write(block, data)).is_some()
    }

    fn flush(&self) -> bool {
        twice(|| self.0.flush()).is_some()
    }
}
