//! A block cache in front of any [`BlockDevice`], that a fault in the file server's memory
//! cannot turn into wrong data.
//!
//! A cache is server state: it lives in the file server's own memory, where an injected fault
//! (a flipped bit, a bent word) can reach it. So each cached block carries checksums, one per
//! 64-byte piece, each over the block's number, the piece's place and its bytes, taken when it
//! was stored; a hit checks the pieces it hands out, and only those ([`BlockDevice::read_range`]:
//! a 64-byte read of a file, or one inode, checks one piece, not the whole block). A piece that
//! no longer matches is a miss: the block is read from the device again, and the damage is
//! gone. No byte leaves the cache unchecked; a bent byte in a piece nobody reads stays until
//! someone does, and is caught then. The
//! cache is write-through (a write reaches the device before the cache keeps it, and a write
//! the device refused empties the slot), so the device always holds what the cache does, and a
//! new incarnation of the server, which starts with an empty cache, reads the same file system.
//!
//! ```text
//!  read b ─► slot b % SLOTS: number b, its pieces' sums match? ─yes─► lend them (no request)
//!                                          └─no─► device read ─► keep it, with its sums
//!  write b ─► device write ─ok─► keep it        └─refused─► forget slot b % SLOTS
//! ```
//!
//! A [`Shelf`] is the same cache for a server whose store vouches for every block itself (the
//! libos fs cell: the RAM disk's mirror tags, `algo::mirror`): a slot keeps the block as the
//! store's tag vouched for it, not a checksum the server computes. That matters where one
//! fault must not bend two runs alike (the libos cell runs each operation twice and shares its
//! cache between the runs): a checksum taken by the cache over the bytes and number it is
//! handed would vouch for them even if a fault bent them between the store's answer and the
//! cache, and every later run would believe them. A tag the store checked cannot be forged
//! that way: a block filed under another number, or bent since, does not check, and is a miss.
//! It too checks only the pieces a ranged read lends ([`Shelf::get_range`]): a vouched block
//! keeps the states of its tag's seal at every 64-byte boundary, taken in the pass that
//! computed the tag the store's was compared with (`algo::mirror::Vouched`), so a piece checks
//! against the store's tag itself, not against a sum taken later.

use crate::layout::{Block, BLOCK_SIZE, DATA_START, JOURNAL_HEAD};
use crate::BlockDevice;
use algo::bytes::same;
use algo::mirror::{pieces, Vouched};
use core::cell::RefCell;

/// The bytes one checksum of a cached block covers: an inode's size, and the bench's read (the
/// same pieces as a vouched block's marks, `algo::mirror`).
pub use algo::mirror::PIECE;
/// Pieces in a block.
const PIECES: usize = BLOCK_SIZE / PIECE;

/// One cached block: its number, its bytes, and one checksum per piece of them.
#[derive(Clone, Copy)]
struct Slot {
    number: u32,
    sums: [u64; PIECES],
    data: Block,
}

/// An empty slot: its stored sums, 0, match no piece ([`checksum`] is never 0). All zeros, so
/// that a static of them costs the server's image nothing (it is `.bss`).
const EMPTY: Slot = Slot { number: 0, sums: [0; PIECES], data: [0; BLOCK_SIZE] };

/// The number an emptied slot holds (see [`Cached::clear`]).
const NO_BLOCK: u32 = u32::MAX;
/// The journal's blocks, header and slots (`journal`): written through, never kept.
const JOURNAL: core::ops::Range<u32> = JOURNAL_HEAD..DATA_START;

impl Slot {
    /// Block `number` holding `data`, with the checksums of its pieces.
    fn new(number: u32, data: &Block) -> Slot {
        let mut sums = [0; PIECES];
        for (piece, sum) in sums.iter_mut().enumerate() {
            *sum = checksum(number, piece, data);
        }
        Slot { number, sums, data: *data }
    }

    /// Does the slot hold block `number`, with pieces `pieces` as they were stored?
    #[inline]
    fn holds(&self, number: u32, pieces: core::ops::Range<usize>) -> bool {
        self.number == number && pieces.into_iter().all(|p| self.sums[p] == checksum(number, p, &self.data))
    }
}

/// Room for `SLOTS` cached blocks (half a KiB each), wherever the server keeps it: a static,
/// rather than a stack it would overflow.
pub struct Slots<const SLOTS: usize>([Slot; SLOTS]);

impl<const SLOTS: usize> Slots<SLOTS> {
    pub const fn new() -> Self {
        Slots([EMPTY; SLOTS])
    }
}

impl<const SLOTS: usize> Default for Slots<SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

/// A direct-mapped cache of `SLOTS` blocks over `dev`, kept in `slots`.
pub struct Cached<'s, D: BlockDevice, const SLOTS: usize> {
    dev: D,
    slots: RefCell<&'s mut Slots<SLOTS>>,
}

/// A checksum of piece `piece` of block `number` holding `data`: a multiply-rotate hash over
/// the piece's 64-bit words, seeded with the block's number and the piece's place, so a piece
/// is never taken for another block's or another place's. Any single flipped bit (in the
/// number, the piece's bytes or its stored sum) changes it.
#[inline]
pub fn checksum(number: u32, piece: usize, data: &Block) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (((number as u64) << 8) ^ piece as u64 ^ 0x5a5a_5a5a).wrapping_mul(K);
    let (words, _) = data[piece * PIECE..][..PIECE].as_chunks::<8>();
    for w in words {
        h = (h.rotate_left(23) ^ u64::from_le_bytes(*w)).wrapping_mul(K);
    }
    h | 1
}

impl<'s, D: BlockDevice, const SLOTS: usize> Cached<'s, D, SLOTS> {
    /// `dev` behind an empty cache in `slots`.
    pub fn new(dev: D, slots: &'s mut Slots<SLOTS>) -> Self {
        let cache = Cached { dev, slots: RefCell::new(slots) };
        cache.clear();
        cache
    }

    /// The device under the cache.
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// Forget every cached block: each slot is marked as holding a block number no file system
    /// has (the sums and bytes may stay; one flipped bit cannot turn the mark into a block
    /// number below 2^31).
    pub fn clear(&self) {
        for slot in self.slots.borrow_mut().0.iter_mut() {
            slot.number = NO_BLOCK;
        }
    }

    fn keep(&self, number: u32, data: &Block) {
        self.slots.borrow_mut().0[number as usize % SLOTS] = Slot::new(number, data);
    }

    /// Forget block `number` if its slot holds it (and only then: the slot may hold a block
    /// that is read).
    fn forget_if_held(&self, number: u32) {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots.0[number as usize % SLOTS];
        if slot.number == number {
            slot.number = NO_BLOCK;
        }
    }

    fn forget(&self, number: u32) {
        self.slots.borrow_mut().0[number as usize % SLOTS] = EMPTY;
    }
}

impl<D: BlockDevice, const SLOTS: usize> BlockDevice for Cached<'_, D, SLOTS> {
    fn blocks(&self) -> Option<u32> {
        self.dev.blocks()
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        {
            let slots = self.slots.borrow();
            let slot = &slots.0[block as usize % SLOTS];
            if slot.holds(block, 0..PIECES) {
                *out = slot.data;
                return true;
            }
        }
        if !self.dev.read(block, out) {
            return false;
        }
        self.keep(block, out);
        true
    }

    /// A hit is looked at where it is cached, once its checksum matched; a miss is read into a
    /// buffer and kept.
    fn read_with(&self, block: u32, f: &mut dyn FnMut(&Block)) -> bool {
        {
            let slots = self.slots.borrow();
            let slot = &slots.0[block as usize % SLOTS];
            if slot.holds(block, 0..PIECES) {
                f(&slot.data);
                return true;
            }
        }
        let mut out = [0u8; BLOCK_SIZE];
        if !self.dev.read(block, &mut out) {
            return false;
        }
        self.keep(block, &out);
        f(&out);
        true
    }

    /// A hit checks only the pieces `range` lies in, and lends those bytes where they are
    /// cached; a miss reads the whole block and keeps it.
    fn read_range(&self, block: u32, range: core::ops::Range<usize>, f: &mut dyn FnMut(&[u8])) -> bool {
        if range.end > BLOCK_SIZE || range.start > range.end {
            return false;
        }
        {
            let slots = self.slots.borrow();
            let slot = &slots.0[block as usize % SLOTS];
            if slot.holds(block, pieces(&range)) {
                f(&slot.data[range]);
                return true;
            }
        }
        let mut out = [0u8; BLOCK_SIZE];
        if !self.dev.read(block, &mut out) {
            return false;
        }
        self.keep(block, &out);
        f(&out[range]);
        true
    }

    /// A block of the journal is written through but not kept (whatever its slot held of it is
    /// forgotten): only mounting reads the journal, with a new incarnation's empty cache, so
    /// keeping it would only cost its checksums and push out blocks that are read.
    fn write(&self, block: u32, data: &Block) -> bool {
        if self.dev.write(block, data) {
            if JOURNAL.contains(&block) {
                self.forget_if_held(block);
            } else {
                self.keep(block, data);
            }
            true
        } else {
            // What the device holds now is unknown: read it again next time.
            self.forget(block);
            false
        }
    }

    fn flush(&self) -> bool {
        self.dev.flush()
    }
}

/// One place of a [`Shelf`]: a block as its store vouched for it, or nothing.
pub type Shelved = Option<Vouched<BLOCK_SIZE>>;

/// A direct-mapped cache of blocks *as their store vouched for them*, in `places` the server
/// owns (see the module comment). It is not a [`BlockDevice`]: its owner decides what goes in
/// (a block the store just vouched for) and what must go out (a block it wrote, and which it
/// keeps again only once it has read it back).
pub struct Shelf<'s> {
    places: &'s mut [Shelved],
}

impl<'s> Shelf<'s> {
    /// An empty shelf in `places` (whatever they held is forgotten).
    pub fn new(places: &'s mut [Shelved]) -> Self {
        let mut shelf = Shelf { places };
        shelf.clear();
        shelf
    }

    fn place(&self, block: u32) -> Option<usize> {
        (block as usize).checked_rem(self.places.len())
    }

    /// Block `block`, if the shelf has it and its store's tag still checks: a place a fault
    /// bent, or one holding another block, is a miss.
    pub fn get(&self, block: u32) -> Option<&Block> {
        self.places.get(self.place(block)?)?.as_ref()?.of(block)
    }

    /// Whether a read of block `block` would be given something other than `data`: the shelf
    /// has it, its store's tag still checks, and it differs. The same answer as comparing what
    /// [`get`](Self::get) gives, but the tag is checked only when the bytes differ (a whole
    /// block's tag is 64 pieces to check; a block that holds `data` is right whatever its tag).
    #[inline(never)] // only writes come here: inlined, it moved the code every request runs
    pub fn stale(&self, block: u32, data: &Block) -> bool {
        let Some(v) = self.place(block).and_then(|p| self.places.get(p)).and_then(Option::as_ref) else {
            return false;
        };
        !same(v.contents(), data) && v.of(block).is_some()
    }

    /// Bytes `range` of block `block`, if the shelf has it and the pieces they lie in still
    /// check against its store's tag (`algo::mirror::Vouched::of_range`): a place a fault bent
    /// there, or one holding another block, is a miss; a range past the block is none.
    #[inline]
    pub fn get_range(&self, block: u32, range: core::ops::Range<usize>) -> Option<&[u8]> {
        self.places.get(self.place(block)?)?.as_ref()?.of_range(block, range)
    }

    /// Keep `v`, which the store vouched for as block `block` (in the place of `block`: a `v`
    /// of another block is never found there).
    pub fn keep(&mut self, block: u32, v: Vouched<BLOCK_SIZE>) {
        if let Some(p) = self.place(block).and_then(|p| self.places.get_mut(p)) {
            *p = Some(v);
        }
    }

    /// Forget block `block` (and whatever shares its place).
    pub fn forget(&mut self, block: u32) {
        if let Some(p) = self.place(block).and_then(|p| self.places.get_mut(p)) {
            *p = None;
        }
    }

    /// Forget every block.
    pub fn clear(&mut self) {
        self.places.fill(None);
    }

    /// Does it hold nothing? (What a server checks after [`clear`](Self::clear), which a fault
    /// could have skipped.)
    pub fn is_empty(&self) -> bool {
        self.places.iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A RAM device that counts its reads, and can be told to refuse writes.
    /// Blocks of the test device: past the journal (`DATA_START`).
    const RAM_BLOCKS: usize = 40;

    struct Ram {
        blocks: RefCell<[Block; RAM_BLOCKS]>,
        reads: Cell<u32>,
        refuse: Cell<bool>,
    }

    impl BlockDevice for Ram {
        fn blocks(&self) -> Option<u32> {
            Some(RAM_BLOCKS as u32)
        }
        fn read(&self, block: u32, out: &mut Block) -> bool {
            self.reads.set(self.reads.get() + 1);
            *out = self.blocks.borrow()[block as usize];
            true
        }
        fn write(&self, block: u32, data: &Block) -> bool {
            if self.refuse.get() {
                return false;
            }
            self.blocks.borrow_mut()[block as usize] = *data;
            true
        }
        fn flush(&self) -> bool {
            true
        }
    }

    fn ram() -> Ram {
        let mut blocks = [[0u8; BLOCK_SIZE]; RAM_BLOCKS];
        for (i, b) in blocks.iter_mut().enumerate() {
            b.fill(i as u8 + 1);
        }
        Ram { blocks: RefCell::new(blocks), reads: Cell::new(0), refuse: Cell::new(false) }
    }

    #[test]
    fn a_block_read_twice_reaches_the_device_once() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut out = [0u8; BLOCK_SIZE];
        assert!(c.read(3, &mut out) && out == [4; BLOCK_SIZE]);
        assert!(c.read(3, &mut out) && out == [4; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 1);
        // Block 7 shares block 3's slot: it replaces it, and 3 is read again.
        assert!(c.read(7, &mut out) && out == [8; BLOCK_SIZE]);
        assert!(c.read(3, &mut out) && out == [4; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 3);
    }

    #[test]
    fn a_block_looked_at_in_place_is_the_cached_one_and_a_miss_is_kept() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut seen = [0u8; BLOCK_SIZE];
        assert!(c.read_with(2, &mut |b| seen = *b) && seen == [3; BLOCK_SIZE]);
        assert!(c.read_with(2, &mut |b| seen = *b) && seen == [3; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 1, "the second from the cache");
        c.slots.borrow_mut().0[2].data[9] ^= 1;
        assert!(c.read_with(2, &mut |b| seen = *b) && seen == [3; BLOCK_SIZE], "a bent slot is a miss");
        assert_eq!(c.device().reads.get(), 2);
    }

    #[test]
    fn writes_go_through_and_a_refused_one_empties_the_slot() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut out = [0u8; BLOCK_SIZE];
        assert!(c.write(2, &[9; BLOCK_SIZE]));
        assert_eq!(c.device().blocks.borrow()[2], [9; BLOCK_SIZE], "on the device at once");
        assert!(c.read(2, &mut out) && out == [9; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 0, "and kept");
        c.device().refuse.set(true);
        assert!(!c.write(2, &[5; BLOCK_SIZE]));
        assert!(c.read(2, &mut out) && out == [9; BLOCK_SIZE], "the device's bytes, not the refused ones");
        assert_eq!(c.device().reads.get(), 1, "read again");
    }

    /// What an injected fault does to a cached block: every single bit flipped in the slot
    /// (its number, its checksum, any byte of its data) is caught, and the block is read from
    /// the device again; no read returns wrong bytes.
    #[test]
    fn every_flipped_bit_in_a_slot_is_caught() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut out = [0u8; BLOCK_SIZE];
        assert!(c.read(1, &mut out));
        let good = c.slots.borrow().0[1];
        let mut reads = c.device().reads.get();
        let bits = 32 + 64 * PIECES + BLOCK_SIZE * 8;
        for bit in 0..bits {
            let mut bent = good;
            match bit {
                b if b < 32 => bent.number ^= 1 << b,
                b if b < 32 + 64 * PIECES => bent.sums[(b - 32) / 64] ^= 1 << ((b - 32) % 64),
                b => {
                    let b = b - 32 - 64 * PIECES;
                    bent.data[b / 8] ^= 1 << (b % 8)
                }
            }
            c.slots.borrow_mut().0[1] = bent;
            assert!(c.read(1, &mut out));
            assert_eq!(out, [2; BLOCK_SIZE], "bit {bit}: the device's bytes");
            reads += 1;
            assert_eq!(c.device().reads.get(), reads, "bit {bit}: caught, read again");
        }
    }

    /// The journal's blocks go to the device and are not kept: a later read of one reaches the
    /// device, and what its slot held before is forgotten, never lent in its place.
    #[test]
    fn journal_blocks_are_written_through_and_not_kept() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 64> = Cached::new(ram(), &mut slots);
        let mut out = [0u8; BLOCK_SIZE];
        assert!(c.read(JOURNAL_HEAD, &mut out), "kept by a read");
        assert!(c.write(JOURNAL_HEAD, &[7; BLOCK_SIZE]));
        assert_eq!(c.device().blocks.borrow()[JOURNAL_HEAD as usize], [7; BLOCK_SIZE], "on the device");
        let reads = c.device().reads.get();
        assert!(c.read(JOURNAL_HEAD, &mut out) && out == [7; BLOCK_SIZE], "the new contents, not the old");
        assert_eq!(c.device().reads.get(), reads + 1, "from the device: the write was not kept");
        assert!(c.write(DATA_START, &[9; BLOCK_SIZE]));
        assert!(c.read(DATA_START, &mut out) && out == [9; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), reads + 1, "a data block's write is kept");
    }

    /// A ranged read checks the pieces it lends, and only those: a bent byte in another piece
    /// is left for the read that looks at it, one in a lent piece makes the read a miss.
    #[test]
    fn a_ranged_read_checks_the_pieces_it_lends() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut seen = [0u8; 100];
        let mut look = |c: &Cached<Ram, 4>, range: core::ops::Range<usize>| {
            let n = range.len();
            c.read_range(1, range, &mut |b| seen[..n].copy_from_slice(b)) && seen[..n].iter().all(|&x| x == 2)
        };
        assert!(look(&c, 0..64) && c.device().reads.get() == 1, "a miss reads and keeps the block");
        c.slots.borrow_mut().0[1].data[200] ^= 4;
        assert!(look(&c, 60..100), "pieces 0 and 1: unbent, a hit");
        assert_eq!(c.device().reads.get(), 1);
        assert!(look(&c, 150..250), "pieces 2 and 3: the bent byte is caught");
        assert_eq!(c.device().reads.get(), 2, "read again");
        assert!(look(&c, 192..256) && c.device().reads.get() == 2, "and kept unbent");
        assert!(!c.read_range(1, 500..513, &mut |_| {}), "past the block: refused");
        assert!(c.read_range(1, 7..7, &mut |b| assert!(b.is_empty())), "an empty range checks nothing");
        assert_eq!(pieces(&(0..512)), 0..PIECES);
        assert_eq!(pieces(&(63..65)), 0..2);
    }

    /// A shelf hands out only what its store vouched for: the block itself, under its own
    /// number, unbent.
    #[test]
    fn a_shelf_gives_a_block_only_as_its_store_vouched_for_it() {
        let mut places = [None; 4];
        let mut shelf = Shelf::new(&mut places);
        assert!(shelf.is_empty());
        assert_eq!(shelf.get(3), None);
        shelf.keep(3, Vouched::new(3, [7; BLOCK_SIZE]));
        assert_eq!(shelf.get(3), Some(&[7; BLOCK_SIZE]));
        assert_eq!(shelf.get(7), None, "block 7 shares the place: not taken for block 3");
        assert_eq!(shelf.get_range(3, 64..70), Some(&[7; 6][..]));
        assert_eq!(shelf.get_range(7, 64..70), None);
        assert_eq!(shelf.get_range(3, 500..513), None, "past the block");
        // Filed under the wrong number (a bent argument): never found for that number.
        shelf.keep(5, Vouched::new(2, [9; BLOCK_SIZE]));
        assert_eq!(shelf.get(5), None);
        assert_eq!(shelf.get_range(5, 0..64), None);
        assert_eq!(shelf.get(2), None, "nor for its own: it is in another place");
        shelf.forget(3);
        assert_eq!(shelf.get(3), None);
        shelf.keep(0, Vouched::new(0, [1; BLOCK_SIZE]));
        assert!(!shelf.is_empty());
        shelf.clear();
        assert!(shelf.is_empty() && shelf.get(0).is_none());
        let mut none: [Shelved; 0] = [];
        let mut empty = Shelf::new(&mut none);
        empty.keep(1, Vouched::new(1, [1; BLOCK_SIZE]));
        assert_eq!(empty.get(1), None, "a shelf with no places keeps nothing");
        assert_eq!(empty.get_range(1, 0..1), None);
        assert!(!empty.stale(1, &[2; BLOCK_SIZE]));
    }

    /// `stale` answers as comparing what `get` gives would (the check after fs stores a block).
    #[test]
    fn a_stale_block_is_one_a_read_would_be_given_instead() {
        let mut places = [None; 4];
        let mut shelf = Shelf::new(&mut places);
        let (a, b) = ([7u8; BLOCK_SIZE], [8u8; BLOCK_SIZE]);
        let by_get =
            |shelf: &Shelf<'_>, block: u32, data: &Block| shelf.get(block).is_some_and(|k| k != data);
        let mut cases = 0;
        let mut check = |shelf: &Shelf<'_>, block: u32, data: &Block, want: bool| {
            assert_eq!(shelf.stale(block, data), want, "block {block}");
            assert_eq!(by_get(shelf, block, data), want, "block {block}, through get");
            cases += 1;
        };
        check(&shelf, 3, &a, false); // not kept
        shelf.keep(3, Vouched::new(3, a));
        check(&shelf, 3, &a, false); // kept as written
        check(&shelf, 3, &b, true); // kept as it was before the write
        check(&shelf, 7, &b, false); // another block in its place: a miss
        shelf.keep(1, Vouched::new(2, b));
        check(&shelf, 1, &a, false); // filed under a bent number: a miss
        shelf.forget(3);
        check(&shelf, 3, &b, false);
        assert_eq!(cases, 6);
    }
}
