//! A block cache in front of any [`BlockDevice`], that a fault in the file server's memory
//! cannot turn into wrong data.
//!
//! A cache is server state: it lives in the file server's own memory, where an injected fault
//! (a flipped bit, a bent word) can reach it. So each cached block carries a checksum over its
//! block number and its bytes, taken when it was stored and checked on every hit. A block that
//! no longer matches is a miss: it is read from the device again, and the damage is gone. The
//! cache is write-through (a write reaches the device before the cache keeps it, and a write
//! the device refused empties the slot), so the device always holds what the cache does, and a
//! new incarnation of the server, which starts with an empty cache, reads the same file system.
//!
//! ```text
//!  read b ─► slot b % SLOTS: number b, checksum matches? ─yes─► copy out (no device request)
//!                                    └─no─► device read ─► keep it, with its checksum
//!  write b ─► device write ─ok─► keep it        └─refused─► forget slot b % SLOTS
//! ```

use crate::layout::{Block, BLOCK_SIZE};
use crate::BlockDevice;
use core::cell::RefCell;

/// One cached block: its number, its bytes, and the checksum of both.
#[derive(Clone, Copy)]
struct Slot {
    number: u32,
    sum: u64,
    data: Block,
}

/// An empty slot: its stored sum, 0, matches no block ([`checksum`] is never 0). All zeros, so
/// that a static of them costs the server's image nothing (it is `.bss`).
const EMPTY: Slot = Slot { number: 0, sum: 0, data: [0; BLOCK_SIZE] };

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

/// A checksum of block `number` holding `data`: a multiply-rotate hash over its 64-bit words.
/// Any single flipped bit (in the number, the bytes or the stored sum) changes it.
pub fn checksum(number: u32, data: &Block) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (number as u64 ^ 0x5a5a_5a5a).wrapping_mul(K);
    for w in data.chunks_exact(8) {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h.rotate_left(23) ^ w).wrapping_mul(K);
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

    /// Forget every cached block (a stored sum of 0 matches none; the bytes may stay).
    pub fn clear(&self) {
        for slot in self.slots.borrow_mut().0.iter_mut() {
            slot.sum = 0;
        }
    }

    fn keep(&self, number: u32, data: &Block) {
        let mut slots = self.slots.borrow_mut();
        slots.0[number as usize % SLOTS] = Slot { number, sum: checksum(number, data), data: *data };
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
            if slot.number == block && slot.sum == checksum(block, &slot.data) {
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

    fn write(&self, block: u32, data: &Block) -> bool {
        if self.dev.write(block, data) {
            self.keep(block, data);
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    /// A RAM device that counts its reads, and can be told to refuse writes.
    struct Ram {
        blocks: RefCell<[Block; 8]>,
        reads: Cell<u32>,
        refuse: Cell<bool>,
    }

    impl BlockDevice for Ram {
        fn blocks(&self) -> Option<u32> {
            Some(8)
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
        let mut blocks = [[0u8; BLOCK_SIZE]; 8];
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
        let bits = 32 + 64 + BLOCK_SIZE * 8;
        for bit in 0..bits {
            let mut bent = good;
            match bit {
                b if b < 32 => bent.number ^= 1 << b,
                b if b < 96 => bent.sum ^= 1 << (b - 32),
                b => bent.data[(b - 96) / 8] ^= 1 << ((b - 96) % 8),
            }
            c.slots.borrow_mut().0[1] = bent;
            assert!(c.read(1, &mut out));
            assert_eq!(out, [2; BLOCK_SIZE], "bit {bit}: the device's bytes");
            reads += 1;
            assert_eq!(c.device().reads.get(), reads, "bit {bit}: caught, read again");
        }
    }
}
