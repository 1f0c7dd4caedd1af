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
//! cache is write-through (a write reaches the device before the cache keeps it), so the device
//! always holds what the cache does, and a new incarnation of the server, which starts with an
//! empty cache, reads the same file system. A block's slot is emptied *before* the device
//! write: a keep that a fault skips, or sends to another slot, then leaves a miss, never the
//! block as it was before the write (its sums would still match); and a write the device
//! refused leaves it empty.
//!
//! Any block may be in any slot: an [`Index`] says, for each block a file system can span,
//! which slot holds it, and a new block takes the slot a clock hand finds first that was not
//! used since the hand last passed it (CLOCK, a cheap approximation of least recently used).
//! What a read costs therefore depends only on the order in which blocks are used, never on
//! their numbers. It did, with each block in the slot of its number modulo the slots: a read of
//! a file larger than the cache pushed the file's own inode block out at whichever data block
//! shared its slot, so what a 64 KiB read cost moved with where the file had landed, and so with
//! how many records the scribe had appended before it was made. Under CLOCK the blocks used at
//! every request (an inode, an index block) keep their slots through any scan.
//!
//! ```text
//!  read b ─► index[b] = slot s: s holds b, its pieces' sums match? ─yes─► lend them, mark s used
//!                                          └─no─► device read ─► keep it: slot index[b], or
//!                                                the hand's first slot not used since it passed
//!  write b ─► empty b's slot ─► device write ─ok─► keep it (in that slot: index[b] names it)
//! ```
//!
//! The index is checked like the rest: a slot it names is believed only if the slot's number
//! and sums say it holds the block, so a bent entry is a miss (and the block's copy it lost is
//! never found again, until its slot is taken).
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

use crate::layout::{Block, BLOCK_SIZE, DATA_START, JOURNAL_HEAD, MAX_BLOCKS};
use crate::BlockDevice;
use algo::bytes::same;
use algo::mirror::{pieces, Vouched};
use core::cell::{Cell, RefCell};

/// The bytes one checksum of a cached block covers: an inode's size, and the bench's read (the
/// same pieces as a vouched block's marks, `algo::mirror`).
pub use algo::mirror::PIECE;
/// Pieces in a block.
const PIECES: usize = BLOCK_SIZE / PIECE;

/// Most slots a cache has: whether each was used since the hand passed is a bit of a `u64`.
pub const MAX_SLOTS: usize = 64;
/// Blocks a cache can hold: those a file system can span. A block past them (on a larger
/// device) is read and written through, never kept.
const INDEXED: usize = MAX_BLOCKS as usize;
/// An index entry for a block no slot holds (slot `s` is entry `s + 1`: an empty index is
/// zeros, and a static of it `.bss`).
const NOWHERE: u8 = 0;

/// Which slot holds each block, and which slot a new block takes (see the module comment).
/// Nothing in it is believed without the slot's own check: it only says where to look.
pub struct Index {
    /// Block `b`'s slot plus one, or [`NOWHERE`].
    slot_of: [u8; INDEXED],
    /// Bit `s`: slot `s` was used since the hand last passed it. A cell: a hit marks it, where
    /// the cache is only looked at.
    used: Cell<u64>,
    hand: u8,
}

impl Index {
    pub const fn new() -> Index {
        Index { slot_of: [NOWHERE; INDEXED], used: Cell::new(0), hand: 0 }
    }

    /// Every block is nowhere, the hand at the first slot, none marked used. (Its 4 KiB cost a
    /// new incarnation's mount about 530 instructions. Leaving the entries, with the slots
    /// emptied, would be as safe, since an entry is only believed where its slot holds its
    /// block; but a hit then marks its slot used only once the slot checked, which kept the
    /// slot's number live across the checksum and cost each lookup 5 to 12 instructions.)
    fn clear(&mut self) {
        self.slot_of.fill(NOWHERE);
        (self.used, self.hand) = (Cell::new(0), 0);
    }

    /// The slot the index gives block `block`, if it gives one below `slots` (whether the slot
    /// holds the block is its owner's to check).
    #[inline]
    fn slot(&self, block: u32, slots: usize) -> Option<usize> {
        let s = (*self.slot_of.get(block as usize)? as usize).wrapping_sub(1);
        (s < slots).then_some(s)
    }

    /// As [`slot`](Self::slot), and the slot is marked used (a hit, or a miss its owner will
    /// fill at once).
    #[inline]
    fn touch(&self, block: u32, slots: usize) -> Option<usize> {
        let s = self.slot(block, slots)?;
        self.used.set(self.used.get() | 1 << s);
        Some(s)
    }

    /// The slot block `block` goes in, of `slots`, whose blocks `holder` names ([`NO_BLOCK`]
    /// for none): the one the index gives it if that slot holds it or nothing, else the first
    /// the hand finds unused since it last passed (each passed one loses its mark, so the hand
    /// goes round at most once). The block that slot held is nowhere from now on. `None` for a
    /// block past what the index covers.
    fn take(&mut self, block: u32, slots: usize, holder: impl Fn(usize) -> u32) -> Option<usize> {
        let slots = slots.min(MAX_SLOTS);
        if block as usize >= INDEXED || slots == 0 {
            return None;
        }
        // The slot the index names, if it holds the block or nothing (emptied for a write).
        let named = |s: &usize| matches!(holder(*s), h if h == block || h == NO_BLOCK);
        let s = match self.slot(block, slots).filter(named) {
            Some(s) => s,
            None => {
                let (mut s, mut used) = (self.hand as usize % slots, self.used.get());
                while used & (1 << s) != 0 {
                    used &= !(1 << s);
                    s = if s + 1 == slots { 0 } else { s + 1 };
                }
                self.used.set(used);
                self.hand = if s + 1 == slots { 0 } else { s as u8 + 1 };
                s
            }
        };
        let old = holder(s) as usize;
        let entry = s as u8 + 1;
        if old != block as usize && self.slot_of.get(old) == Some(&entry) {
            self.slot_of[old] = NOWHERE;
        }
        self.slot_of[block as usize] = entry;
        Some(s)
    }

    /// Block `block` is nowhere; the slot the index gave it, if any.
    fn forget(&mut self, block: u32, slots: usize) -> Option<usize> {
        let s = self.slot(block, slots)?;
        self.slot_of[block as usize] = NOWHERE;
        Some(s)
    }
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

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

/// Room for `SLOTS` cached blocks (over half a KiB each) and their [`Index`] (4 KiB), wherever
/// the server keeps it: a static, rather than a stack it would overflow.
pub struct Slots<const SLOTS: usize> {
    slots: [Slot; SLOTS],
    index: Index,
}

impl<const SLOTS: usize> Slots<SLOTS> {
    pub const fn new() -> Self {
        const { assert!(SLOTS <= MAX_SLOTS) };
        Slots { slots: [EMPTY; SLOTS], index: Index::new() }
    }

    /// The slot that holds block `number` with pieces `pieces` as stored, marked used.
    #[inline]
    fn hit(&self, number: u32, pieces: core::ops::Range<usize>) -> Option<&Slot> {
        let slot = &self.slots[self.index.touch(number, SLOTS)?];
        slot.holds(number, pieces).then_some(slot)
    }
}

impl<const SLOTS: usize> Default for Slots<SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

/// A cache of up to `SLOTS` blocks (at most [`MAX_SLOTS`]) over `dev`, kept in `slots`.
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

    /// Forget every cached block: the index says nowhere for each, and each slot is marked as
    /// holding a block number no file system has (the sums and bytes may stay; one flipped bit
    /// cannot turn the mark into a block number below 2^31).
    pub fn clear(&self) {
        let mut slots = self.slots.borrow_mut();
        slots.index.clear();
        for slot in slots.slots.iter_mut() {
            slot.number = NO_BLOCK;
        }
    }

    fn keep(&self, number: u32, data: &Block) {
        let mut slots = self.slots.borrow_mut();
        let Slots { slots, index } = &mut **slots;
        if let Some(s) = index.take(number, SLOTS, |s| slots[s].number) {
            slots[s] = Slot::new(number, data);
        }
    }

    /// Empty the slot of block `number` if it holds it (and only then: the slot may hold a
    /// block that is read, which a bent index entry pointed at). The index still names the
    /// slot, so a keep of the block that follows fills the same one.
    fn empty(&self, number: u32) {
        let mut slots = self.slots.borrow_mut();
        let Slots { slots, index } = &mut **slots;
        if let Some(slot) = index.slot(number, SLOTS).map(|s| &mut slots[s]) {
            if slot.number == number {
                slot.number = NO_BLOCK;
            }
        }
    }
}

impl<D: BlockDevice, const SLOTS: usize> BlockDevice for Cached<'_, D, SLOTS> {
    fn blocks(&self) -> Option<u32> {
        self.dev.blocks()
    }

    fn read(&self, block: u32, out: &mut Block) -> bool {
        if let Some(slot) = self.slots.borrow().hit(block, 0..PIECES) {
            *out = slot.data;
            return true;
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
        if let Some(slot) = self.slots.borrow().hit(block, 0..PIECES) {
            f(&slot.data);
            return true;
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
        if let Some(slot) = self.slots.borrow().hit(block, pieces(&range)) {
            f(&slot.data[range]);
            return true;
        }
        let mut out = [0u8; BLOCK_SIZE];
        if !self.dev.read(block, &mut out) {
            return false;
        }
        self.keep(block, &out);
        f(&out[range]);
        true
    }

    /// The block's slot is emptied first (see the module comment); a write the device refused
    /// leaves it so (what the device holds is unknown: read it again next time). A block of the
    /// journal is written through but not kept: only mounting reads the journal, with a new
    /// incarnation's empty cache, so keeping it would only cost its checksums and push out
    /// blocks that are read.
    fn write(&self, block: u32, data: &Block) -> bool {
        self.empty(block);
        if !self.dev.write(block, data) {
            return false;
        }
        if !JOURNAL.contains(&block) {
            self.keep(block, data);
        }
        true
    }

    fn flush(&self) -> bool {
        self.dev.flush()
    }
}

/// One place of a [`Shelf`]: a block as its store vouched for it, or nothing.
pub type Shelved = Option<Vouched<BLOCK_SIZE>>;

/// A cache of blocks *as their store vouched for them*, in `places` (at most [`MAX_SLOTS`])
/// and an [`Index`] the server owns (see the module comment). It is not a [`BlockDevice`]: its
/// owner decides what goes in (a block the store just vouched for) and what must go out (a
/// block it wrote, and which it keeps again only once it has read it back).
pub struct Shelf<'s> {
    places: &'s mut [Shelved],
    index: &'s mut Index,
}

impl<'s> Shelf<'s> {
    /// An empty shelf in `places` and `index` (whatever they held is forgotten).
    pub fn new(places: &'s mut [Shelved], index: &'s mut Index) -> Self {
        let mut shelf = Shelf { places, index };
        shelf.clear();
        shelf
    }

    fn slots(&self) -> usize {
        self.places.len().min(MAX_SLOTS)
    }

    /// What the index's place for block `block` holds (anything: its owner checks).
    #[inline]
    fn at(&self, block: u32) -> Option<&Vouched<BLOCK_SIZE>> {
        self.places.get(self.index.slot(block, self.slots())?)?.as_ref()
    }

    /// Block `block`, if the shelf has it and its store's tag still checks: a place a fault
    /// bent, or one holding another block, is a miss.
    pub fn get(&self, block: u32) -> Option<&Block> {
        let s = self.index.touch(block, self.slots())?;
        self.places.get(s)?.as_ref()?.of(block)
    }

    /// Whether a read of block `block` would be given something other than `data`: the shelf
    /// has it, its store's tag still checks, and it differs. The same answer as comparing what
    /// [`get`](Self::get) gives, but the tag is checked only when the bytes differ (a whole
    /// block's tag is 64 pieces to check; a block that holds `data` is right whatever its tag).
    #[inline(never)] // only writes come here: inlined, it moved the code every request runs
    pub fn stale(&self, block: u32, data: &Block) -> bool {
        let Some(v) = self.at(block) else {
            return false;
        };
        !same(v.contents(), data) && v.of(block).is_some()
    }

    /// Bytes `range` of block `block`, if the shelf has it and the pieces they lie in still
    /// check against its store's tag (`algo::mirror::Vouched::of_range`): a place a fault bent
    /// there, or one holding another block, is a miss; a range past the block is none.
    #[inline]
    pub fn get_range(&self, block: u32, range: core::ops::Range<usize>) -> Option<&[u8]> {
        let s = self.index.touch(block, self.slots())?;
        self.places.get(s)?.as_ref()?.of_range(block, range)
    }

    /// Keep `v`, which the store vouched for as block `block` (filed as `block`: a `v` of
    /// another block is never found there).
    pub fn keep(&mut self, block: u32, v: Vouched<BLOCK_SIZE>) {
        let slots = self.slots();
        let places = &mut *self.places;
        let holder = |s: usize| places[s].as_ref().map_or(NO_BLOCK, Vouched::number);
        if let Some(s) = self.index.take(block, slots, holder) {
            places[s] = Some(v);
        }
    }

    /// Forget block `block`: its place, if it has one, is emptied if it holds it.
    pub fn forget(&mut self, block: u32) {
        if let Some(s) = self.index.forget(block, self.slots()) {
            let p = &mut self.places[s];
            if p.as_ref().is_some_and(|v| v.number() == block) {
                *p = None;
            }
        }
    }

    /// Forget every block.
    pub fn clear(&mut self) {
        self.places.fill(None);
        self.index.clear();
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
    /// Blocks of the test device: the table's, the journal's, and 29 data blocks.
    const RAM_BLOCKS: usize = 64;

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

    /// Change what `c` keeps of block `block` (which it must keep).
    fn bend<const S: usize>(c: &Cached<Ram, S>, block: u32, f: impl FnOnce(&mut Slot)) {
        let mut slots = c.slots.borrow_mut();
        let s = slots.index.slot(block, S).expect("the block is kept");
        f(&mut slots.slots[s]);
    }

    #[test]
    fn a_block_read_twice_reaches_the_device_once() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut out = [0u8; BLOCK_SIZE];
        assert!(c.read(3, &mut out) && out == [4; BLOCK_SIZE]);
        assert!(c.read(3, &mut out) && out == [4; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 1);
        // Four more blocks, each used once, through the four slots: the fifth takes the slot
        // of the first of them, not block 3's, which was used again since it came in.
        for b in 40..45 {
            assert!(c.read(b, &mut out) && out == [b as u8 + 1; BLOCK_SIZE]);
        }
        assert_eq!(c.device().reads.get(), 6);
        assert!(c.read(3, &mut out) && out == [4; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 6, "block 3 stayed");
        assert!(c.read(40, &mut out) && out == [41; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 7, "block 40 went");
    }

    /// A write empties the block's slot before the device has it, so a keep that a fault
    /// skipped leaves a miss, not the old contents (whose sums still match); the keep that
    /// follows fills the same slot. An index entry bent to another block's slot neither
    /// empties that block nor takes its slot.
    #[test]
    fn a_write_empties_the_slot_first_and_bent_entries_take_nothing() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut out = [0u8; BLOCK_SIZE];
        assert!(c.read(40, &mut out) && c.read(41, &mut out));
        let at = c.slots.borrow().index.slot(40, 4);
        // The write's first step, with the keep after the device write skipped.
        c.empty(40);
        c.device().blocks.borrow_mut()[40] = [9; BLOCK_SIZE];
        assert!(c.read(40, &mut out) && out == [9; BLOCK_SIZE], "the device's new bytes");
        assert_eq!(c.device().reads.get(), 3, "a miss");
        assert!(c.write(40, &[5; BLOCK_SIZE]));
        assert_eq!(c.slots.borrow().index.slot(40, 4), at, "kept in the same slot");
        assert!(c.read(40, &mut out) && out == [5; BLOCK_SIZE] && c.device().reads.get() == 3);
        // Block 1's entry bent to block 41's slot: a read of 1 misses and goes elsewhere; an
        // empty of 1 leaves 41; 41 stays a hit.
        let s41 = c.slots.borrow().index.slot_of[41];
        c.slots.borrow_mut().index.slot_of[1] = s41;
        c.empty(1);
        assert!(c.read(1, &mut out) && out == [2; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 4);
        assert!(c.read(41, &mut out) && out == [42; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 4, "41 kept its slot");
    }

    /// A new cache over slots an old one used (a new incarnation's, were its room reused)
    /// finds none of their blocks, and places blocks as an empty one would.
    #[test]
    fn a_new_cache_over_used_slots_starts_empty() {
        let mut slots = Slots::new();
        let mut out = [0u8; BLOCK_SIZE];
        {
            let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
            for b in [1, 2, 40, 41] {
                assert!(c.read(b, &mut out));
            }
        }
        let other = ram();
        for b in other.blocks.borrow_mut().iter_mut() {
            b.fill(0xee);
        }
        let c: Cached<Ram, 4> = Cached::new(other, &mut slots);
        for b in [41, 40, 2, 1, 3] {
            assert!(c.read(b, &mut out) && out == [0xee; BLOCK_SIZE], "block {b}: the new device's");
        }
        assert_eq!(c.device().reads.get(), 5, "each a miss");
        let held: [u32; 4] = core::array::from_fn(|s| c.slots.borrow().slots[s].number);
        assert_eq!(held, [3, 40, 2, 1], "in the hand's order, the fifth in the first's slot");
    }

    /// What a read costs the device depends on the order blocks are used in, not on their
    /// numbers: a file of 13 blocks read twice through 4 slots, its inode looked at before each
    /// block, makes the same device reads wherever the file starts, and its inode stays. (With
    /// each block in the slot of its number modulo 4, the inode's block went at whichever data
    /// block shared its slot: 33 reads or 34, by where the file lay.)
    #[test]
    fn what_a_read_costs_does_not_depend_on_where_the_blocks_lie() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let inode_block = 1;
        let mut counts = [0; 8];
        for (start, count) in (DATA_START..).zip(counts.iter_mut()) {
            c.clear();
            let before = c.device().reads.get();
            for _ in 0..2 {
                for b in start..start + 13 {
                    assert!(c.read_range(inode_block, 0..64, &mut |x| assert_eq!(x, [2; 64])));
                    let right = |x: &[u8]| assert!(x.iter().all(|&y| y == b as u8 + 1));
                    assert!(c.read_range(b, 0..BLOCK_SIZE, &mut |x| right(x)));
                }
            }
            *count = c.device().reads.get() - before;
        }
        assert_eq!(counts, [1 + 2 * 13; 8], "the inode once, every data block twice");
        // The same for a shelf.
        let (mut places, mut index) = ([None; 4], Index::new());
        for start in DATA_START..DATA_START + 8 {
            let mut shelf = Shelf::new(&mut places, &mut index);
            let mut reads = 0;
            for _ in 0..2 {
                for b in start..start + 13 {
                    for (block, fill) in [(inode_block, 2), (b, 3)] {
                        if shelf.get_range(block, 0..64).is_none() {
                            shelf.keep(block, Vouched::new(block, [fill; BLOCK_SIZE]));
                            reads += 1;
                        }
                    }
                }
            }
            assert_eq!(reads, 1 + 2 * 13, "a shelf from block {start}");
        }
    }

    #[test]
    fn a_block_looked_at_in_place_is_the_cached_one_and_a_miss_is_kept() {
        let mut slots = Slots::new();
        let c: Cached<Ram, 4> = Cached::new(ram(), &mut slots);
        let mut seen = [0u8; BLOCK_SIZE];
        assert!(c.read_with(2, &mut |b| seen = *b) && seen == [3; BLOCK_SIZE]);
        assert!(c.read_with(2, &mut |b| seen = *b) && seen == [3; BLOCK_SIZE]);
        assert_eq!(c.device().reads.get(), 1, "the second from the cache");
        bend(&c, 2, |s| s.data[9] ^= 1);
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
        let mut good = EMPTY;
        bend(&c, 1, |s| good = *s);
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
            bend(&c, 1, |s| *s = bent);
            assert!(c.read(1, &mut out));
            assert_eq!(out, [2; BLOCK_SIZE], "bit {bit}: the device's bytes");
            reads += 1;
            assert_eq!(c.device().reads.get(), reads, "bit {bit}: caught, read again");
        }
        // Block 1's index entry bent to every value: a miss (or the hit it was), never another
        // block's bytes; the cache goes on.
        for entry in 0..=u8::MAX {
            c.slots.borrow_mut().index.slot_of[1] = entry;
            assert!(c.read(1, &mut out) && out == [2; BLOCK_SIZE], "entry {entry}");
            for b in [2, 40, 41] {
                assert!(c.read(b, &mut out) && out == [b as u8 + 1; BLOCK_SIZE], "entry {entry}, block {b}");
            }
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
        bend(&c, 1, |s| s.data[200] ^= 4);
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
        let (mut places, mut index) = ([None; 4], Index::new());
        let mut shelf = Shelf::new(&mut places, &mut index);
        assert!(shelf.is_empty());
        assert_eq!(shelf.get(3), None);
        shelf.keep(3, Vouched::new(3, [7; BLOCK_SIZE]));
        assert_eq!(shelf.get(3), Some(&[7; BLOCK_SIZE]));
        assert_eq!(shelf.get(7), None, "not kept");
        shelf.index.slot_of[7] = shelf.index.slot_of[3];
        assert_eq!(shelf.get(7), None, "an index entry bent to block 3's place: not taken for block 7");
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
        let mut index = Index::new();
        let mut empty = Shelf::new(&mut none, &mut index);
        empty.keep(1, Vouched::new(1, [1; BLOCK_SIZE]));
        assert_eq!(empty.get(1), None, "a shelf with no places keeps nothing");
        assert_eq!(empty.get_range(1, 0..1), None);
        assert!(!empty.stale(1, &[2; BLOCK_SIZE]));
    }

    /// `stale` answers as comparing what `get` gives would (the check after fs stores a block).
    #[test]
    fn a_stale_block_is_one_a_read_would_be_given_instead() {
        let (mut places, mut index) = ([None; 4], Index::new());
        let mut shelf = Shelf::new(&mut places, &mut index);
        let (a, b) = ([7u8; BLOCK_SIZE], [8u8; BLOCK_SIZE]);
        let by_get =
            |shelf: &mut Shelf<'_>, block: u32, data: &Block| shelf.get(block).is_some_and(|k| k != data);
        let mut cases = 0;
        let mut check = |shelf: &mut Shelf<'_>, block: u32, data: &Block, want: bool| {
            assert_eq!(shelf.stale(block, data), want, "block {block}");
            assert_eq!(by_get(shelf, block, data), want, "block {block}, through get");
            cases += 1;
        };
        check(&mut shelf, 3, &a, false); // not kept
        shelf.keep(3, Vouched::new(3, a));
        check(&mut shelf, 3, &a, false); // kept as written
        check(&mut shelf, 3, &b, true); // kept as it was before the write
        shelf.index.slot_of[7] = shelf.index.slot_of[3];
        check(&mut shelf, 7, &b, false); // another block in its place: a miss
        shelf.keep(1, Vouched::new(2, b));
        check(&mut shelf, 1, &a, false); // filed under a bent number: a miss
        shelf.forget(3);
        check(&mut shelf, 3, &b, false);
        assert_eq!(cases, 6);
    }
}
