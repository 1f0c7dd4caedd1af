//! The redo journal: how an operation's blocks reach the disk so that a power cut at any
//! instant, with the device free to reorder writes between two flushes (a disk's write cache),
//! leaves either the whole operation or none of it.
//!
//! ```text
//!  commit(images)   1  each image into a journal slot, then the header: the images' home
//!                      blocks, a sequence number and a checksum over all of it
//!                   2  flush                          the operation is durable: answer it
//!                   3  each image to its home block
//!                   4  flush                          the journal may be overwritten
//!  mount            a header whose checksum holds, and home blocks that differ from its
//!                   images: write them home again, flush
//! ```
//! A cut before the flush of step 2 leaves a header that does not check (some of step 1 is
//! missing) or the previous operation's, so the operation is absent; a cut after it is redone
//! at the next mount, so it is whole. Redoing is idempotent and the journal holds only the
//! last operation: each commit's step 4 has made every earlier one's home blocks durable
//! before the next step 1 overwrites the journal. Two flushes per operation, and no write
//! order to get right within a step.

use crate::disk::{Disk, Load};
use crate::layout::*;
use crate::{BlockDevice, FsError, Result};
use bytemuck::{Pod, Zeroable};

const JOURNAL_MAGIC: u32 = 0x4c4a_5841; // "AXJL"

/// Most blocks one operation writes: a write of 2 KiB (the protocols' largest) spans at most
/// five data blocks; it or a create changes at most six metadata blocks (`tx::CACHED`); and the
/// bitmap. One slot to spare.
pub const SLOTS: usize = JOURNAL_SLOTS as usize;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Header {
    magic: u32,
    count: u32,
    seq: u64,
    home: [u32; SLOTS],
    sum: u64,
}

/// How an operation's blocks are written: through the journal (what the file system does), or
/// one of the ways the crash tests show to break (they must find these broken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Journal,
    /// The journal without step 2's flush: answered before anything is durable.
    NoCommitFlush,
    /// No journal: the home blocks written in the careful order of the file system before the
    /// journal (new blocks, bitmap, metadata, reused blocks, bitmap), as it was.
    InPlace,
}

impl Durability {
    /// Its name on the command line and in the build's environment.
    pub const fn name(self) -> &'static str {
        match self {
            Durability::Journal => "journal",
            Durability::NoCommitFlush => "no-commit-flush",
            Durability::InPlace => "in-place",
        }
    }

    pub fn from_name(name: &str) -> Option<Durability> {
        [Durability::Journal, Durability::NoCommitFlush, Durability::InPlace]
            .into_iter()
            .find(|d| d.name() == name)
    }

    /// What this build of the file system does: the journal, unless it was built with
    /// `AXOLOTL_FS_DURABILITY` naming a broken way (`cargo os crashtest --broken`, which must
    /// then find it out). The host tool always sets the variable for the guest's build.
    pub fn built() -> Durability {
        option_env!("AXOLOTL_FS_DURABILITY").and_then(Durability::from_name).unwrap_or(Durability::Journal)
    }
}

/// A checksum over the header (its `sum` zero) and the images, a word at a time.
fn checksum(head: &Header, images: &[(u32, Block)]) -> u64 {
    let h = Header { sum: 0, ..*head };
    let mut sum = 0xcbf2_9ce4_8422_2325u64;
    let mut mix = |bytes: &[u8]| {
        for w in bytes.chunks_exact(8) {
            let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            sum = (sum ^ word).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        }
    };
    mix(bytemuck::bytes_of(&h));
    for (_, data) in images {
        mix(data);
    }
    sum
}

impl<D: BlockDevice> Disk<D> {
    fn flush(&self) -> Result<()> {
        if self.device_flush() {
            Ok(())
        } else {
            Err(FsError::Disk)
        }
    }

    /// Write `images` (home block, contents) as one operation: whole after a crash, or not at
    /// all (see the module comment). At most [`SLOTS`] of them.
    pub(crate) fn commit_images(&self, images: &[(u32, Block)]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        if images.len() > SLOTS {
            // Cannot happen: see `SLOTS`. An error rather than a panic: one failed request.
            return Err(FsError::Disk);
        }
        let durability = self.durability();
        if durability == Durability::Journal || durability == Durability::NoCommitFlush {
            let mut head = Header {
                magic: JOURNAL_MAGIC,
                count: images.len() as u32,
                seq: self.next_seq(),
                home: [0; SLOTS],
                sum: 0,
            };
            for (i, (at, data)) in images.iter().enumerate() {
                head.home[i] = *at;
                self.write(JOURNAL_HEAD + 1 + i as u32, data)?;
            }
            head.sum = checksum(&head, images);
            let mut block = [0u8; BLOCK_SIZE];
            block[..size_of::<Header>()].copy_from_slice(bytemuck::bytes_of(&head));
            self.write(JOURNAL_HEAD, &block)?;
            if durability == Durability::Journal {
                self.flush()?;
            }
        }
        for (at, data) in images {
            self.write(*at, data)?;
        }
        self.flush()
    }

    /// Redo the operation the journal holds, if its header checks and its home blocks do not
    /// already hold it: what mounting does first. Returns its sequence number, or `None` if
    /// there was nothing to redo.
    pub(crate) fn replay(&self) -> Result<Option<u64>> {
        let mut block = [0u8; BLOCK_SIZE];
        self.load(JOURNAL_HEAD, &mut block)?;
        let head: Header = bytemuck::pod_read_unaligned(&block[..size_of::<Header>()]);
        if head.magic != JOURNAL_MAGIC || head.count == 0 || head.count as usize > SLOTS {
            return Ok(None);
        }
        let count = head.count as usize;
        if head.home[..count].iter().any(|&b| (JOURNAL_HEAD..DATA_START).contains(&b) || b >= self.blocks()) {
            return Ok(None);
        }
        let mut images = [(0u32, [0u8; BLOCK_SIZE]); SLOTS];
        for (i, image) in images[..count].iter_mut().enumerate() {
            image.0 = head.home[i];
            self.load(JOURNAL_HEAD + 1 + i as u32, &mut image.1)?;
        }
        if checksum(&head, &images[..count]) != head.sum {
            return Ok(None);
        }
        self.seq_after(head.seq);
        // Usually the operation reached its home blocks before the machine stopped: then
        // mounting only reads.
        let mut home = [0u8; BLOCK_SIZE];
        let mut redo = false;
        for (at, data) in &images[..count] {
            self.load(*at, &mut home)?;
            redo |= home != *data;
        }
        if !redo {
            return Ok(None);
        }
        for (at, data) in &images[..count] {
            self.write(*at, data)?;
        }
        self.flush()?;
        Ok(Some(head.seq))
    }

    /// An empty journal (for a format: nothing of a file system that was there is redone).
    pub(crate) fn clear_journal(&self) -> Result<()> {
        self.write(JOURNAL_HEAD, &[0u8; BLOCK_SIZE])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_sees_a_changed_byte_a_changed_home_and_a_changed_count() {
        let head = Header { magic: JOURNAL_MAGIC, count: 2, seq: 7, home: [0; SLOTS], sum: 0 };
        let images = [(40u32, [1u8; BLOCK_SIZE]), (41u32, [2u8; BLOCK_SIZE])];
        let sum = checksum(&head, &images);
        let mut bent = images;
        bent[1].1[511] ^= 1;
        assert_ne!(checksum(&head, &bent), sum);
        let mut home = head;
        home.home[0] = 1;
        assert_ne!(checksum(&home, &images), sum);
        let fewer = Header { count: 1, ..head };
        assert_ne!(checksum(&fewer, &images[..1]), sum);
        assert_eq!(checksum(&Header { sum: 99, ..head }, &images), sum, "the sum field itself is left out");
    }
}
