//! Blocks kept end to end through a store that may be wrong: two copies of every block, each
//! stored with a tag over (block number, copy, contents) that the *client* computes and checks.
//!
//! The store (a block server that faults) may write a block to the wrong place, write garbage,
//! drop a write and say it did it, or answer a read with another block. None of that may reach
//! the client as data:
//!
//! ```text
//!  write B:  put(0, B, tag0, data), put(1, B, tag1, data), then tags(B) must show [tag0, tag1]
//!            (a copy that does not is put again); a copy that never shows its tag fails the write
//!  read B:   get(0, B) with a tag that checks ─► data
//!            else get(1, B) that checks ─► data, and copy 0 is repaired from it
//!            neither (after retries) ─► false: a clear error, never wrong data
//! ```
//! The read-back is what makes a write durable: a put the store dropped or sent elsewhere
//! leaves B's old contents under their old tag, which check — stale data that no read could
//! tell from current data. It asks for the tags only, in a request of its own (so a block
//! number bent while storing is computed afresh): a right tag over wrong contents is caught by
//! the next read of that copy, and the other copy, stored by a separate request, serves it.
//! A put that landed on block B' leaves B' with a tag for B: B' no longer checks and is read
//! from its other copy. The store starts with every block holding zeros under its true tag
//! ([`fresh`]), so no answer is ever taken on trust, not even "nothing written here yet".

use crate::seal::seal;

/// Copies of every block.
pub const COPIES: usize = 2;
/// Tries of one write (puts and read-back) or of one read of all copies.
const ATTEMPTS: u32 = 3;
const KEY: u64 = 0x626c_6f63_6b5f_7461;
/// Tells the copies' tags apart: a read of copy 1 answered with copy 0 does not check.
const COPY_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// A block store that may be faulty: it answers, but not necessarily truly.
pub trait Store<const N: usize> {
    /// Store `data` and `tag` as copy `copy` of block `block`; true if the store says it did.
    fn put(&self, copy: u32, block: u32, tag: u64, data: &[u8; N]) -> bool;
    /// Copy `copy` of block `block` with its tag, if the store answers.
    fn get(&self, copy: u32, block: u32) -> Option<(u64, [u8; N])>;
    /// The tags stored with every copy of block `block`, if the store answers.
    fn tags(&self, block: u32) -> Option<[u64; COPIES]>;
}

/// The tag of copy `copy` of block `block` holding `data`.
pub fn tag(block: u32, copy: u32, data: &[u8]) -> u64 {
    let t = seal(KEY ^ (u64::from(block) + 1).wrapping_mul(0xff51_afd7_ed55_8ccd), data);
    t ^ u64::from(copy).wrapping_mul(COPY_SALT)
}

/// The tag copy `copy` of block `block` holds before anything was written: that of zeros.
/// A store is filled with these before it serves (by whoever creates it, not by the store).
pub fn fresh<const N: usize>(block: u32, copy: u32) -> u64 {
    tag(block, copy, &[0; N])
}

/// Two tagged copies of every block of a [`Store`], checked by the client.
pub struct Mirror<S>(pub S);

impl<S> Mirror<S> {
    /// Read block `block` into `out`: false if no copy checks (a clear error, never wrong data).
    pub fn read<const N: usize>(&self, block: u32, out: &mut [u8; N]) -> bool
    where
        S: Store<N>,
    {
        self.read_vouched(block).map(|v| *out = *v.contents()).is_some()
    }

    /// Block `block` with the tag that vouched for it, or `None` if no copy checks.
    pub fn read_vouched<const N: usize>(&self, block: u32) -> Option<Vouched<N>>
    where
        S: Store<N>,
    {
        for _ in 0..ATTEMPTS {
            for copy in 0..COPIES as u32 {
                if let Some((tag, data)) = self.fetch(copy, block) {
                    // Best effort: a copy found broken is rewritten from the good one (a failed
                    // repair leaves it broken, which the next read sees again).
                    for broken in 0..copy {
                        self.0.put(broken, block, self::tag(block, broken, &data), &data);
                    }
                    return Some(Vouched { block, copy, tag, data });
                }
            }
        }
        None
    }

    /// Write `data` to every copy of block `block`, then read the tags back: false if a copy
    /// never showed this write's tag (the block is then unknown to the client, as after any
    /// failed write: a copy may hold the new contents, another the old).
    pub fn write<const N: usize>(&self, block: u32, data: &[u8; N]) -> bool
    where
        S: Store<N>,
    {
        let want: [u64; COPIES] = core::array::from_fn(|c| tag(block, c as u32, data));
        let mut pending = [true; COPIES];
        for _ in 0..ATTEMPTS {
            for (copy, _) in pending.iter().enumerate().filter(|(_, p)| **p) {
                self.0.put(copy as u32, block, want[copy], data);
            }
            if let Some(got) = self.0.tags(block) {
                pending = core::array::from_fn(|c| got[c] != want[c]);
            }
            if !pending.contains(&true) {
                return true;
            }
        }
        false
    }

    fn fetch<const N: usize>(&self, copy: u32, block: u32) -> Option<(u64, [u8; N])>
    where
        S: Store<N>,
    {
        let (t, data) = self.0.get(copy, block)?;
        (t == tag(block, copy, &data)).then_some((t, data))
    }
}

/// A block as the mirror read it, with the copy and tag that vouched for it: a holder can check
/// it again later without asking the store, and a copy of it bent since (or filed under another
/// block number) does not check.
#[derive(Clone, Copy)]
pub struct Vouched<const N: usize> {
    block: u32,
    copy: u32,
    tag: u64,
    data: [u8; N],
}

impl<const N: usize> Vouched<N> {
    /// Block `block` whose contents `data` a client checked by other means than the mirror (a
    /// store with one plain copy: see the libos disk cell's `Blocks`); tagged from now on, so a
    /// copy bent while it is kept is still caught by [`Vouched::of`].
    pub fn new(block: u32, data: [u8; N]) -> Vouched<N> {
        Vouched { block, copy: 0, tag: tag(block, 0, &data), data }
    }

    /// The contents as the mirror checked them when it read them (for a value kept since, use
    /// [`Vouched::of`]).
    pub fn contents(&self) -> &[u8; N] {
        &self.data
    }

    /// The contents, if this is block `block` and its tag still checks.
    pub fn of(&self, block: u32) -> Option<&[u8; N]> {
        (self.block == block && self.tag == tag(block, self.copy, &self.data)).then_some(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use core::cell::{Cell, RefCell};

    const N: usize = 16;
    const BLOCKS: usize = 8;

    /// What a faulty store does wrong, once, at its next operation of that kind.
    #[derive(Clone, Copy, Debug)]
    enum Fault {
        /// A put lands on this (copy, block) instead.
        Misplace(u32, u32),
        /// A put is dropped and reported done.
        Drop,
        /// A put stores its data with this byte flipped (under the right tag).
        FlipPut(usize),
        /// A get flips this byte of what it answers.
        FlipGet(usize),
        /// A get, or a tags answer, gives (copy, block)'s instead.
        Misread(u32, u32),
        /// The operation fails.
        Fail,
    }

    /// Every copy of every block: its tag and contents.
    type Records = [[(u64, [u8; N]); BLOCKS]; COPIES];

    /// A store that does what it is told, except for the faults armed in it.
    struct Faulty {
        copies: RefCell<Records>,
        put_fault: Cell<Option<Fault>>,
        get_fault: Cell<Option<Fault>>,
        /// Every get of this block fails (the store lost it for good).
        dead: Cell<Option<u32>>,
    }

    impl Faulty {
        /// A store as its creator hands it over: zeros under their true tags.
        fn new() -> Faulty {
            let copies =
                core::array::from_fn(|c| core::array::from_fn(|b| (fresh::<N>(b as u32, c as u32), [0; N])));
            Faulty {
                copies: RefCell::new(copies),
                put_fault: Cell::new(None),
                get_fault: Cell::new(None),
                dead: Cell::new(None),
            }
        }

        fn at(&self, copy: u32, block: u32) -> (u64, [u8; N]) {
            self.copies.borrow()[copy as usize][block as usize]
        }
    }

    impl Store<N> for Faulty {
        fn put(&self, copy: u32, block: u32, tag: u64, data: &[u8; N]) -> bool {
            let (mut copy, mut block, mut data) = (copy, block, *data);
            match self.put_fault.take() {
                Some(Fault::Drop) => return true,
                Some(Fault::Fail) => return false,
                Some(Fault::Misplace(c, b)) => (copy, block) = (c, b),
                Some(Fault::FlipPut(i)) => data[i] ^= 0x10,
                _ => {}
            }
            self.copies.borrow_mut()[copy as usize][block as usize] = (tag, data);
            true
        }

        fn get(&self, copy: u32, block: u32) -> Option<(u64, [u8; N])> {
            if self.dead.get() == Some(block) {
                return None;
            }
            match self.get_fault.take() {
                Some(Fault::Fail) => None,
                Some(Fault::Misread(c, b)) => Some(self.at(c, b)),
                Some(Fault::FlipGet(i)) => {
                    let (t, mut d) = self.at(copy, block);
                    d[i] ^= 1;
                    Some((t, d))
                }
                _ => Some(self.at(copy, block)),
            }
        }

        fn tags(&self, block: u32) -> Option<[u64; COPIES]> {
            match self.get_fault.take() {
                Some(Fault::Fail) => None,
                Some(Fault::Misread(_, b)) => Some(core::array::from_fn(|c| self.at(c as u32, b).0)),
                _ => Some(core::array::from_fn(|c| self.at(c as u32, block).0)),
            }
        }
    }

    fn block(v: u8) -> [u8; N] {
        [v; N]
    }

    fn read(m: &Mirror<Faulty>, b: u32) -> Option<[u8; N]> {
        let mut out = [0xee; N];
        m.read(b, &mut out).then_some(out)
    }

    #[test]
    fn written_blocks_read_back_and_fresh_ones_read_as_zeros() {
        let m = Mirror(Faulty::new());
        assert!(m.write(3, &block(7)));
        assert_eq!(read(&m, 3), Some(block(7)));
        assert_eq!(read(&m, 4), Some([0; N]), "never written");
    }

    #[test]
    fn a_read_answered_with_a_block_never_written_is_not_taken_for_zeros() {
        let m = Mirror(Faulty::new());
        assert!(m.write(2, &block(2)));
        m.0.get_fault.set(Some(Fault::Misread(0, 6)));
        assert_eq!(read(&m, 2), Some(block(2)), "block 6's zeros are refused for block 2");
        m.0.copies.borrow_mut()[0][6] = (0, [0; N]);
        assert_eq!(read(&m, 6), Some([0; N]), "zeros under no tag are refused, and copy 1 serves");
        assert_eq!(m.0.at(0, 6).0, fresh::<N>(6, 0), "and copy 0 is repaired");
    }

    #[test]
    fn a_misplaced_write_is_redone_and_its_victim_recovered_from_the_other_copy() {
        let m = Mirror(Faulty::new());
        assert!(m.write(5, &block(5)));
        m.0.put_fault.set(Some(Fault::Misplace(0, 5)));
        assert!(
            m.write(2, &block(2)),
            "the put that landed on block 5 is read back, found missing, done again"
        );
        assert_eq!(read(&m, 2), Some(block(2)));
        assert_eq!(m.0.at(0, 5).1, block(2), "copy 0 of block 5 holds block 2's data");
        assert_eq!(read(&m, 5), Some(block(5)), "block 5 comes from copy 1, never as block 2's data");
        assert_eq!(m.0.at(0, 5).1, block(5), "and copy 0 is repaired");
    }

    #[test]
    fn a_write_put_into_the_other_copy_is_refused_there() {
        let m = Mirror(Faulty::new());
        assert!(m.write(1, &block(1)));
        m.0.put_fault.set(Some(Fault::Misplace(1, 1)));
        assert!(m.write(1, &block(9)));
        m.0.copies.borrow_mut()[0][1].1[3] ^= 1;
        assert_eq!(read(&m, 1), Some(block(9)));
    }

    #[test]
    fn a_dropped_write_is_seen_and_done_again() {
        let m = Mirror(Faulty::new());
        assert!(m.write(1, &block(1)));
        m.0.put_fault.set(Some(Fault::Drop));
        assert!(m.write(1, &block(9)));
        assert_eq!(read(&m, 1), Some(block(9)), "not the stale contents with their valid old tag");
        m.0.copies.borrow_mut()[0][1].1[0] ^= 1;
        assert_eq!(read(&m, 1), Some(block(9)), "nor from copy 1");
    }

    #[test]
    fn contents_stored_wrong_under_the_right_tag_are_refused_at_the_read() {
        let m = Mirror(Faulty::new());
        m.0.put_fault.set(Some(Fault::FlipPut(4)));
        assert!(m.write(3, &block(3)), "the tags read back are right");
        assert_eq!(read(&m, 3), Some(block(3)), "copy 0's contents do not check: copy 1 serves");
        assert_eq!(m.0.at(0, 3).1, block(3), "and copy 0 is repaired");
    }

    #[test]
    fn a_corrupted_or_misdirected_read_is_never_returned() {
        let m = Mirror(Faulty::new());
        assert!(m.write(6, &block(6)) && m.write(7, &block(7)));
        m.0.get_fault.set(Some(Fault::FlipGet(0)));
        assert_eq!(read(&m, 6), Some(block(6)));
        m.0.get_fault.set(Some(Fault::Misread(0, 7)));
        assert_eq!(read(&m, 6), Some(block(6)), "block 7's copy, valid for block 7, is refused for 6");
        m.0.get_fault.set(Some(Fault::Misread(1, 6)));
        assert_eq!(read(&m, 6), Some(block(6)), "copy 1 offered as copy 0 is refused");
    }

    #[test]
    fn a_block_lost_in_both_copies_is_an_error_not_data() {
        let m = Mirror(Faulty::new());
        assert!(m.write(3, &block(3)));
        m.0.dead.set(Some(3));
        assert_eq!(read(&m, 3), None);
        m.0.dead.set(None);
        m.0.copies.borrow_mut()[0][3].1[1] ^= 4;
        m.0.copies.borrow_mut()[1][3].1[2] ^= 4;
        assert_eq!(read(&m, 3), None, "both copies damaged: refused");
    }

    #[test]
    fn a_store_that_keeps_failing_fails_the_write_clearly() {
        struct Deaf;
        impl Store<N> for Deaf {
            fn put(&self, _: u32, _: u32, _: u64, _: &[u8; N]) -> bool {
                true
            }
            fn get(&self, _: u32, _: u32) -> Option<(u64, [u8; N])> {
                None
            }
            fn tags(&self, _: u32) -> Option<[u64; COPIES]> {
                Some([0; COPIES])
            }
        }
        assert!(!Mirror(Deaf).write(0, &block(1)));
        assert!(!Mirror(Deaf).read(0, &mut [0; N]));
    }

    /// Thousands of writes and reads through a store that does something wrong at two
    /// operations in five: every read gives a value the block may hold (the last one written
    /// and acknowledged, or one a failed write since tried to put there) or an error; never
    /// anything else.
    #[test]
    fn random_faults_never_give_wrong_data() {
        let m = Mirror(Faulty::new());
        let mut rng = Rng(12);
        // What each block may hold, as far as a client that saw every answer knows: a bit per
        // value (blocks of one repeated byte).
        let mut may = [[false; 256]; BLOCKS];
        for b in may.iter_mut() {
            b[0] = true;
        }
        let (mut errors, mut reads) = (0, 0);
        for _ in 0..20_000 {
            let (c, b, i) = (
                rng.below(COPIES as u64) as u32,
                rng.below(BLOCKS as u64) as u32,
                rng.below(N as u64) as usize,
            );
            if rng.below(5) == 0 {
                let faults = [Fault::Misplace(c, b), Fault::Drop, Fault::FlipPut(i), Fault::Fail];
                m.0.put_fault.set(Some(faults[rng.below(4) as usize]));
            }
            if rng.below(5) == 0 {
                let faults = [Fault::Misread(c, b), Fault::FlipGet(i), Fault::Fail];
                m.0.get_fault.set(Some(faults[rng.below(3) as usize]));
            }
            let b = rng.below(BLOCKS as u64) as usize;
            if rng.below(2) == 0 {
                let v = rng.below(256) as usize;
                if m.write(b as u32, &block(v as u8)) {
                    may[b] = [false; 256];
                }
                may[b][v] = true;
            } else {
                reads += 1;
                match read(&m, b as u32) {
                    Some(d) => assert!(d == block(d[0]) && may[b][d[0] as usize], "block {b} read as {d:?}"),
                    None => errors += 1,
                }
            }
        }
        assert!(errors < reads / 50, "{errors} errors in {reads} reads: the copies mask almost every fault");
    }

    #[test]
    fn a_vouched_block_checks_again_only_unchanged_and_under_its_own_number() {
        let m = Mirror(Faulty::new());
        assert!(m.write(4, &block(4)));
        let v = m.read_vouched(4).expect("block 4 reads");
        assert_eq!(v.of(4), Some(&block(4)));
        assert_eq!(v.of(5), None, "filed under another block");
        let mut bent = v;
        bent.data[7] ^= 2;
        assert_eq!(bent.of(4), None, "bent since it was read");
    }

    /// What a fault in a holder's memory does to a kept block (the libos fs cell's cache,
    /// `fs_core::cache::Shelf`): every single bit flipped in it — its number, its copy, its
    /// tag, any byte of its contents — makes it not check.
    #[test]
    fn every_flipped_bit_in_a_vouched_block_is_caught() {
        let data: [u8; N] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let good = Vouched::new(6, data);
        assert_eq!(good.of(6), Some(&data));
        for bit in 0..32 + 32 + 64 + N * 8 {
            let mut bent = good;
            match bit {
                b if b < 32 => bent.block ^= 1 << b,
                b if b < 64 => bent.copy ^= 1 << (b - 32),
                b if b < 128 => bent.tag ^= 1 << (b - 64),
                b => bent.data[(b - 128) / 8] ^= 1 << ((b - 128) % 8),
            }
            assert_eq!(bent.of(6), None, "bit {bit}");
        }
    }

    #[test]
    fn tags_depend_on_block_copy_and_every_bit() {
        let d = [0x5au8; 512];
        let t = tag(9, 0, &d);
        assert_ne!(tag(10, 0, &d), t);
        assert_ne!(tag(9, 1, &d), t);
        for byte in 0..d.len() {
            let mut e = d;
            e[byte] ^= 0x80;
            assert_ne!(tag(9, 0, &e), t, "flip in byte {byte} went unseen");
        }
    }
}
