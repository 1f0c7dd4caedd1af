//! The block-store client as the block device under `fs_core::Volume` (the on-disk format, the
//! mount rules and the session operations, shared with the libos fs cell and host-tested
//! there).

use block_api::{Block, BlockDevice};
use fs_core::cache::{Cached, Slots};

/// Blocks this server keeps between requests (each checked on every hit, so a fault in that
/// memory is a miss, never wrong data: `fs_core::cache`).
pub const CACHED_BLOCKS: usize = 64;

/// The cache's room: a static (41 KiB would not fit the 64 KiB stack beside the rest). It is
/// server-global state by design: a new incarnation starts with it empty (its image's).
static CACHE: spin::Mutex<Slots<CACHED_BLOCKS>> = spin::Mutex::new(Slots::new());

/// The block store, behind this server's cache. Called once per incarnation.
pub fn cached(dev: Dev) -> Cached<'static, Dev, CACHED_BLOCKS> {
    // Taken once and never given back: the one incarnation that runs holds it for good.
    let slots = spin::MutexGuard::leak(CACHE.try_lock().expect("fs: the block cache is taken twice"));
    // Server-global by design (see above), so declared: the state-spill audit reports it apart.
    let _ = userlib::declare(&CACHE, "block cache");
    Cached::new(dev, slots)
}

pub type Volume = fs_core::Volume<Cached<'static, Dev, CACHED_BLOCKS>>;

pub struct Dev {
    pub store: BlockDevice,
    /// The store keeps nothing across a power cut (the RAM disk): a flush has nothing to make
    /// durable, and every write it answered is already where every read finds it, so none is
    /// sent (two round trips of every write, traced).
    pub volatile: bool,
}

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
        twice(|| self.store.blocks())
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        twice(|| self.store.read(block, out)).is_some()
    }

    fn write(&self, block: u32, data: &Block) -> bool {
        twice(|| self.store.write(block, data)).is_some()
    }

    fn flush(&self) -> bool {
        self.volatile || twice(|| self.store.flush()).is_some()
    }
}
